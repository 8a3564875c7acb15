-- Page filters, and channel and campaign together, read rollups as well (server/analytics/rollup.ts):
-- segments gain (channel, campaign) pairs and escaped keys, page rows their path's views and
-- distinct visitors, and two tables hold what a page filter reads. Everything is rebuilt by the next
-- fold: the rows are emptied here and every hour with sessions noted as dirty below.
DELETE FROM "analytics_session_facts";

DELETE FROM "analytics_visitor_pairs";

-- AlterTable
ALTER TABLE "analytics_session_facts" ADD COLUMN     "path_views" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "analytics_page_sessions" (
    "site_id" UUID NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "session_id" UUID NOT NULL,
    "path" TEXT NOT NULL,
    "visitor_id" UUID NOT NULL,
    "views" INTEGER NOT NULL,
    "channel" TEXT,
    "campaign" TEXT,
    "entry_page" TEXT,
    "exit_page" TEXT,
    "referrer_domain" TEXT,
    "source" TEXT,
    "medium" TEXT,
    "device_type" TEXT,
    "browser" TEXT,
    "os" TEXT,
    "country" TEXT,
    "duration_seconds" INTEGER NOT NULL,
    "max_scroll_depth" INTEGER NOT NULL,
    "engagement_level" "engagement_level" NOT NULL,
    "is_bounce" BOOLEAN NOT NULL,
    "pageviews" INTEGER NOT NULL,
    "conversions" INTEGER NOT NULL,

    CONSTRAINT "analytics_page_sessions_pkey" PRIMARY KEY ("site_id","started_at","session_id","path")
);

-- CreateTable
CREATE TABLE "analytics_page_facts" (
    "site_id" UUID NOT NULL,
    "segment" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "grain" TEXT NOT NULL,
    "dimension" TEXT NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "value" TEXT NOT NULL,
    "sessions" INTEGER NOT NULL,
    "bounces" INTEGER NOT NULL,
    "pageviews" INTEGER NOT NULL,
    "path_views" INTEGER NOT NULL,
    "duration_seconds" BIGINT NOT NULL,
    "low" INTEGER NOT NULL,
    "medium" INTEGER NOT NULL,
    "high" INTEGER NOT NULL,
    "conversions" INTEGER NOT NULL,
    "converting_sessions" INTEGER NOT NULL,

    CONSTRAINT "analytics_page_facts_pkey" PRIMARY KEY ("site_id","segment","path","grain","dimension","bucket","value")
);

-- CreateIndex
CREATE INDEX "analytics_page_sessions_path_idx" ON "analytics_page_sessions"("site_id", "path", "started_at", "channel", "campaign");

-- CreateIndex
CREATE INDEX "analytics_page_facts_site_id_grain_bucket_idx" ON "analytics_page_facts"("site_id", "grain", "bucket");

-- Each fold updates the kept rows of the current day and week in place (as for the other rollups).
ALTER TABLE "analytics_page_facts" SET (fillfactor = 80);

INSERT INTO analytics_dirty_hours (site_id, hour)
SELECT DISTINCT site_id, date_trunc('hour', started_at, 'UTC') FROM visitor_sessions;
