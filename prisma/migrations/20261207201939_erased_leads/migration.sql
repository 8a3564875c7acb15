-- The ids of the leads an erasure deletes, written by the erasure in its transaction: a node given
-- one later (an item already on its way when the person was erased) leaves the item out instead of
-- failing the delivery. No personal data, only random ids. Rows go with their site.
-- CreateTable
CREATE TABLE "erased_leads" (
    "site_id" UUID NOT NULL,
    "lead_id" UUID NOT NULL,
    "erased_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "erased_leads_pkey" PRIMARY KEY ("site_id","lead_id")
);

-- AddForeignKey
ALTER TABLE "erased_leads" ADD CONSTRAINT "erased_leads_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;
