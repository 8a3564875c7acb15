-- The Visitor Analytics rollups gain segments (the sessions of one channel or UTM campaign, so a
-- filtered report reads rollups too), week rows, each bucket's distinct visitors and the sessions'
-- conversions (server/analytics/rollup.ts). The rows are rebuilt by the next fold: emptied here and
-- every hour with sessions noted as dirty below.
DELETE FROM "analytics_session_facts";

DELETE FROM "analytics_visitor_pairs";

-- AlterTable
ALTER TABLE "analytics_session_facts" DROP CONSTRAINT "analytics_session_facts_pkey",
ADD COLUMN     "conversions" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "converting_sessions" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "segment" TEXT NOT NULL DEFAULT '',
ADD COLUMN     "visitors" INTEGER NOT NULL DEFAULT 0,
ADD CONSTRAINT "analytics_session_facts_pkey" PRIMARY KEY ("site_id", "segment", "grain", "dimension", "bucket", "value");

-- AlterTable
ALTER TABLE "analytics_visitor_pairs" DROP CONSTRAINT "analytics_visitor_pairs_pkey",
ADD COLUMN     "segment" TEXT NOT NULL DEFAULT '',
ADD CONSTRAINT "analytics_visitor_pairs_pkey" PRIMARY KEY ("site_id", "segment", "kind", "grain", "bucket", "prev_hour");

-- CreateIndex
CREATE INDEX "analytics_session_facts_site_id_grain_bucket_idx" ON "analytics_session_facts"("site_id", "grain", "bucket");

-- CreateIndex
CREATE INDEX "analytics_visitor_pairs_site_id_grain_bucket_idx" ON "analytics_visitor_pairs"("site_id", "grain", "bucket");

-- CreateIndex
CREATE INDEX "visitor_events_site_id_path_occurred_at_idx" ON "visitor_events"("site_id", "path", "occurred_at") WHERE (type = 'pageview');

-- Each fold updates the rows of the current day and week in place: room in their pages keeps the
-- new versions beside the old ones (heap-only updates), so those rows stay together for the reads.
ALTER TABLE "analytics_session_facts" SET (fillfactor = 80);

ALTER TABLE "analytics_visitor_pairs" SET (fillfactor = 80);

-- A conversion counts for the hour its session started in: a changed conversion notes that hour.
-- (Trigger bodies as in 20261205085349_dashboard_rollups: E'' strings, \073 for each semicolon.)
CREATE FUNCTION analytics_note_conversions() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	INSERT INTO analytics_dirty_hours (site_id, hour)
	SELECT DISTINCT s.site_id, date_trunc(''hour'', s.started_at, ''UTC'')
	FROM changed_conversions c JOIN visitor_sessions s ON s.id = c.session_id\073
	RETURN NULL\073
END'
;

CREATE TRIGGER analytics_conversions_inserted AFTER INSERT ON conversions REFERENCING NEW TABLE AS changed_conversions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_conversions();

CREATE TRIGGER analytics_conversions_updated_from AFTER UPDATE ON conversions REFERENCING OLD TABLE AS changed_conversions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_conversions();

CREATE TRIGGER analytics_conversions_updated_to AFTER UPDATE ON conversions REFERENCING NEW TABLE AS changed_conversions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_conversions();

CREATE TRIGGER analytics_conversions_deleted AFTER DELETE ON conversions REFERENCING OLD TABLE AS changed_conversions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_conversions();

-- The dashboards' statements run in tens of milliseconds, and Postgres' JIT compiler spent 50–100 ms
-- compiling each of them (their costs are estimated high): off for this database's new sessions.
-- A role that may not change the database's settings keeps them, and its dashboards are slower.
DO E'BEGIN
	EXECUTE format(''ALTER DATABASE %I SET jit = off'', current_database())\073
EXCEPTION WHEN insufficient_privilege THEN
	RAISE NOTICE ''jit stays as configured: this role may not alter the database''\073
END'
;

INSERT INTO analytics_dirty_hours (site_id, hour)
SELECT DISTINCT site_id, date_trunc('hour', started_at, 'UTC') FROM visitor_sessions;
