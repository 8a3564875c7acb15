-- A lead is de-duplicated by the hash of its address: on a site with privacy.encryptPii the address
-- itself is sealed with a random nonce and two seals of one address never compare equal.
-- DropIndex
DROP INDEX "leads_site_id_email_hash_idx";

-- CreateIndex
CREATE UNIQUE INDEX "leads_site_id_email_hash_key" ON "leads"("site_id", "email_hash");
