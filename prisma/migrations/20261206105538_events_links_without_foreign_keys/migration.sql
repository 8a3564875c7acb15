-- DropForeignKey
ALTER TABLE "visitor_events" DROP CONSTRAINT "visitor_events_session_id_fkey";

-- DropForeignKey
ALTER TABLE "visitor_events" DROP CONSTRAINT "visitor_events_visitor_id_fkey";
