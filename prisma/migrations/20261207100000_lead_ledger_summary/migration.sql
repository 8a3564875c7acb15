-- Each rule's total of a lead's score ledger, kept beside the lead by the Lead Scorer: a rescore
-- read every lead_scores row of its leads and summed them, and a lead gathers a decay row per
-- rescore for years. Leads scored before this column hold null: their next rescore sums their rows
-- once and stores the totals.
ALTER TABLE "leads" ADD COLUMN "ledger_summary" JSONB;
