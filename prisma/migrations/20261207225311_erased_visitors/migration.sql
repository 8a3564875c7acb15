-- CreateTable
CREATE TABLE "erased_visitors" (
    "site_id" UUID NOT NULL,
    "anonymous_id_hash" TEXT NOT NULL,
    "visitor_id" UUID,
    "erased_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "erased_visitors_pkey" PRIMARY KEY ("site_id","anonymous_id_hash")
);

-- CreateIndex
CREATE INDEX "erased_visitors_site_id_visitor_id_idx" ON "erased_visitors"("site_id", "visitor_id");

-- AddForeignKey
ALTER TABLE "erased_visitors" ADD CONSTRAINT "erased_visitors_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;
