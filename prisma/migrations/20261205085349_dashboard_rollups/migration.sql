-- CreateTable
CREATE TABLE "analytics_session_facts" (
    "site_id" UUID NOT NULL,
    "grain" TEXT NOT NULL,
    "dimension" TEXT NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "value" TEXT NOT NULL,
    "sessions" INTEGER NOT NULL,
    "bounces" INTEGER NOT NULL,
    "pageviews" INTEGER NOT NULL,
    "duration_seconds" BIGINT NOT NULL,
    "low" INTEGER NOT NULL,
    "medium" INTEGER NOT NULL,
    "high" INTEGER NOT NULL,

    CONSTRAINT "analytics_session_facts_pkey" PRIMARY KEY ("site_id","grain","dimension","bucket","value")
);

-- CreateTable
CREATE TABLE "analytics_visitor_pairs" (
    "site_id" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "grain" TEXT NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "prev_hour" TIMESTAMPTZ(3) NOT NULL,
    "sessions" INTEGER NOT NULL,

    CONSTRAINT "analytics_visitor_pairs_pkey" PRIMARY KEY ("site_id","kind","grain","bucket","prev_hour")
);

-- CreateTable
CREATE TABLE "analytics_dirty_hours" (
    "id" BIGSERIAL NOT NULL,
    "site_id" UUID NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "analytics_dirty_hours_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "analytics_event_counts" (
    "id" BIGSERIAL NOT NULL,
    "site_id" UUID NOT NULL,
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "events" BIGINT NOT NULL,

    CONSTRAINT "analytics_event_counts_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "analytics_dirty_hours_site_id_idx" ON "analytics_dirty_hours"("site_id");

-- CreateIndex
CREATE INDEX "analytics_event_counts_site_id_hour_idx" ON "analytics_event_counts"("site_id", "hour");

-- CreateIndex
CREATE INDEX "visitor_sessions_site_id_last_activity_at_idx" ON "visitor_sessions"("site_id", "last_activity_at");

-- Keeping the rollups current (server/analytics/rollup.ts folds what these triggers note).
-- Trigger bodies are written as E'' strings with \073 for each semicolon: the Postgres driver
-- adapter runs a migration statement by statement, split at every semicolon in the file.

-- A changed session changes its own hour and, through "the previous session of this visitor",
-- the hours of the visitor's later sessions: all of them are noted as dirty.
CREATE FUNCTION analytics_note_sessions() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	INSERT INTO analytics_dirty_hours (site_id, hour)
	SELECT DISTINCT touched.site_id, date_trunc(''hour'', touched.started_at, ''UTC'') FROM (
		SELECT site_id, started_at FROM changed_sessions
		UNION ALL
		SELECT later.site_id, later.started_at FROM changed_sessions c
		JOIN visitor_sessions later ON later.visitor_id = c.visitor_id AND later.started_at >= c.started_at) touched\073
	RETURN NULL\073
END'
;

CREATE TRIGGER analytics_sessions_inserted AFTER INSERT ON visitor_sessions REFERENCING NEW TABLE AS changed_sessions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_sessions();

CREATE TRIGGER analytics_sessions_updated_from AFTER UPDATE ON visitor_sessions REFERENCING OLD TABLE AS changed_sessions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_sessions();

CREATE TRIGGER analytics_sessions_updated_to AFTER UPDATE ON visitor_sessions REFERENCING NEW TABLE AS changed_sessions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_sessions();

CREATE TRIGGER analytics_sessions_deleted AFTER DELETE ON visitor_sessions REFERENCING OLD TABLE AS changed_sessions
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_note_sessions();

-- Raw events are counted per site and hour as deltas: one row per statement and hour, never an update of a shared row.
CREATE FUNCTION analytics_count_events() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN
	INSERT INTO analytics_event_counts (site_id, hour, events)
	SELECT site_id, date_trunc(''hour'', occurred_at, ''UTC''), CASE WHEN TG_OP = ''DELETE'' THEN -count(*) ELSE count(*) END
	FROM changed_events GROUP BY 1, 2\073
	RETURN NULL\073
END'
;

CREATE TRIGGER analytics_events_inserted AFTER INSERT ON visitor_events REFERENCING NEW TABLE AS changed_events
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_count_events();

CREATE TRIGGER analytics_events_deleted AFTER DELETE ON visitor_events REFERENCING OLD TABLE AS changed_events
	FOR EACH STATEMENT EXECUTE FUNCTION analytics_count_events();

-- What is already stored: every hour with sessions is folded on the first run, and the events are counted once here.
INSERT INTO analytics_dirty_hours (site_id, hour)
SELECT DISTINCT site_id, date_trunc('hour', started_at, 'UTC') FROM visitor_sessions;

INSERT INTO analytics_event_counts (site_id, hour, events)
SELECT site_id, date_trunc('hour', occurred_at, 'UTC'), count(*) FROM visitor_events GROUP BY 1, 2;
