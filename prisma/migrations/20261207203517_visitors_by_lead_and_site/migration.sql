-- A lead's browsers are read by lead and site (the Lead Scorer's histories, the lead pages). With
-- the site in the index the planner no longer ANDs visitors_lead_id_idx with the site's
-- last-seen index, a scan that grew with every visitor of the site, a lead at a time.
-- DropIndex
DROP INDEX "visitors_lead_id_idx";

-- CreateIndex
CREATE INDEX "visitors_lead_id_site_id_idx" ON "visitors"("lead_id", "site_id");
