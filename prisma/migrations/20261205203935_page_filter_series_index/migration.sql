-- A page filter's totals and series read one path's rollup rows over a range (server/analytics/rollup.ts).
-- CreateIndex
CREATE INDEX "analytics_session_facts_page_idx" ON "analytics_session_facts"("site_id", "segment", "value", "grain", "bucket") WHERE (dimension = 'page');
