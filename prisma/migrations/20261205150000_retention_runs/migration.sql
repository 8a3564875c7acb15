-- CreateTable
CREATE TABLE "retention_runs" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "retention_days" INTEGER NOT NULL,
    "cutoff" TIMESTAMPTZ(3) NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),
    "batches" INTEGER NOT NULL DEFAULT 0,
    "deleted_events" BIGINT NOT NULL DEFAULT 0,
    "deleted_sessions" BIGINT NOT NULL DEFAULT 0,
    "deleted_outbox" BIGINT NOT NULL DEFAULT 0,
    "error" TEXT,

    CONSTRAINT "retention_runs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "retention_runs_site_id_started_at_idx" ON "retention_runs"("site_id", "started_at");

-- The rollups are what the dashboards show for periods whose raw rows the retention job deletes
-- (server/retention): its deletes must neither note hours for the fold to recompute from the rows
-- left, nor subtract their events from the counts. Its transactions SET LOCAL crm.retention = 'on',
-- and each trigger function below is the one of 20261205085349_dashboard_rollups or
-- 20261205120000_visitor_dashboard_segments with only that check added. (Trigger bodies as there:
-- E'' strings, \073 for each semicolon.)
CREATE OR REPLACE FUNCTION analytics_note_sessions() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	IF current_setting(''crm.retention'', true) = ''on'' THEN
		RETURN NULL\073
	END IF\073
	INSERT INTO analytics_dirty_hours (site_id, hour)
	SELECT DISTINCT touched.site_id, date_trunc(''hour'', touched.started_at, ''UTC'') FROM (
		SELECT site_id, started_at FROM changed_sessions
		UNION ALL
		SELECT later.site_id, later.started_at FROM changed_sessions c
		JOIN visitor_sessions later ON later.visitor_id = c.visitor_id AND later.started_at >= c.started_at) touched\073
	RETURN NULL\073
END'
;

CREATE OR REPLACE FUNCTION analytics_count_events() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	IF current_setting(''crm.retention'', true) = ''on'' THEN
		RETURN NULL\073
	END IF\073
	INSERT INTO analytics_event_counts (site_id, hour, events)
	SELECT site_id, date_trunc(''hour'', occurred_at, ''UTC''), CASE WHEN TG_OP = ''DELETE'' THEN -count(*) ELSE count(*) END
	FROM changed_events GROUP BY 1, 2\073
	RETURN NULL\073
END'
;

CREATE OR REPLACE FUNCTION analytics_note_conversions() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	IF current_setting(''crm.retention'', true) = ''on'' THEN
		RETURN NULL\073
	END IF\073
	INSERT INTO analytics_dirty_hours (site_id, hour)
	SELECT DISTINCT s.site_id, date_trunc(''hour'', s.started_at, ''UTC'')
	FROM changed_conversions c JOIN visitor_sessions s ON s.id = c.session_id\073
	RETURN NULL\073
END'
;
