-- The id of a delivery is recorded on its rows when they are first claimed, so a retry re-sends the same
-- rows under the same X-CRM-Delivery id, and the index finds the rows of a delivery being retried.

-- AlterTable
ALTER TABLE "outbox" ADD COLUMN     "delivery_id" UUID;

-- CreateIndex
CREATE INDEX "outbox_delivery_id_idx" ON "outbox"("delivery_id") WHERE (delivery_id IS NOT NULL AND status = 'pending');
