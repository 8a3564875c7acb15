-- DropIndex
DROP INDEX "visitor_events_session_id_idx";

-- DropIndex
DROP INDEX "visitor_events_visitor_id_occurred_at_idx";

-- CreateIndex
CREATE INDEX "visitor_events_session_id_idx" ON "visitor_events"("session_id") WHERE (session_id IS NOT NULL);

-- CreateIndex
CREATE INDEX "visitor_events_visitor_id_occurred_at_idx" ON "visitor_events"("visitor_id", "occurred_at") WHERE (visitor_id IS NOT NULL);
