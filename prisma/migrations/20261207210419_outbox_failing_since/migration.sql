-- Deliveries give up by time instead of by a count of tries (DISPATCH_GIVE_UP_AFTER_MS, 3 days by
-- default): a row records when its delivery first failed. Rows failing now start counting at their
-- next failure.
-- AlterTable
ALTER TABLE "outbox" ADD COLUMN     "failing_since" TIMESTAMPTZ(3);
