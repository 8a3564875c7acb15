-- CreateTable
CREATE TABLE "visitor_event_links" (
    "site_id" UUID NOT NULL,
    "event_id" UUID NOT NULL,
    "visitor_id" UUID NOT NULL,
    "session_id" UUID NOT NULL,

    CONSTRAINT "visitor_event_links_pkey" PRIMARY KEY ("site_id","event_id")
);

-- The links made so far move to the new table.
INSERT INTO "visitor_event_links" ("site_id", "event_id", "visitor_id", "session_id")
SELECT "site_id", "event_id", "visitor_id", "session_id" FROM "visitor_events" WHERE "visitor_id" IS NOT NULL AND "session_id" IS NOT NULL;

-- CreateIndex
CREATE INDEX "visitor_event_links_session_id_idx" ON "visitor_event_links"("session_id");

-- DropIndex
DROP INDEX "visitor_events_session_id_idx";

-- DropIndex
DROP INDEX "visitor_events_visitor_id_occurred_at_idx";

-- AlterTable
ALTER TABLE "visitor_events" DROP COLUMN "session_id",
DROP COLUMN "visitor_id";

-- Statistics from the start: a new table counts as tiny to the planner, which then plans the
-- Visitor Processor's read of a delivery's events against it badly until autovacuum comes by.
ANALYZE "visitor_event_links";
