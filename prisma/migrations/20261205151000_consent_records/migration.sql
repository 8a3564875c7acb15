-- CreateEnum
CREATE TYPE "consent_purpose" AS ENUM ('analytics', 'marketing');

-- CreateEnum
CREATE TYPE "consent_state" AS ENUM ('granted', 'withdrawn');

-- CreateEnum
CREATE TYPE "consent_source" AS ENUM ('tracker', 'form', 'api', 'confirmation', 'unsubscribe');

-- CreateTable
CREATE TABLE "consent_records" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "anonymous_id" TEXT,
    "email_hash" TEXT,
    "purpose" "consent_purpose" NOT NULL,
    "state" "consent_state" NOT NULL,
    "source" "consent_source" NOT NULL,
    "page_url" TEXT,
    "form_id" TEXT,
    "policy_version" TEXT,
    "message_id" UUID,
    "dedupe_key" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "consent_records_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "consent_records_site_id_email_hash_purpose_occurred_at_idx" ON "consent_records"("site_id", "email_hash", "purpose", "occurred_at");

-- CreateIndex
CREATE INDEX "consent_records_site_id_anonymous_id_purpose_occurred_at_idx" ON "consent_records"("site_id", "anonymous_id", "purpose", "occurred_at");

-- CreateIndex
CREATE UNIQUE INDEX "consent_records_site_id_dedupe_key_key" ON "consent_records"("site_id", "dedupe_key");
