-- CreateIndex
CREATE INDEX "conversions_lead_id_idx" ON "conversions"("lead_id");

-- CreateIndex
CREATE INDEX "outbox_site_id_status_idx" ON "outbox"("site_id", "status");
