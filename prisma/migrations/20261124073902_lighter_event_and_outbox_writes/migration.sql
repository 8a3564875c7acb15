-- Every ingested event paid a foreign-key check on its site (a lookup and a lock on the site's row)
-- and two indexes no query needs: events by site and type (the one query on type also bounds the
-- time, which (site_id, occurred_at) serves) and outbox rows by site and creation time (privacy
-- and stats look them up through (site_id, status)). Together they were a fifth of the database's
-- work per batch.

-- DropForeignKey
ALTER TABLE "outbox" DROP CONSTRAINT "outbox_site_id_fkey";

-- DropForeignKey
ALTER TABLE "visitor_events" DROP CONSTRAINT "visitor_events_site_id_fkey";

-- DropIndex
DROP INDEX "outbox_site_id_created_at_idx";

-- DropIndex
DROP INDEX "visitor_events_site_id_type_occurred_at_idx";
