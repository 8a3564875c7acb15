-- The built-in mail catcher (server/mail/catcher.ts) stores what the Email Orchestrator sends on the
-- embedded default without SMTP_URL, and /mailbox shows it.

-- CreateTable
CREATE TABLE "mailbox_messages" (
    "id" UUID NOT NULL,
    "site_id" UUID,
    "email_message_id" UUID,
    "message_id" TEXT,
    "from_address" TEXT NOT NULL,
    "to_addresses" TEXT[],
    "subject" TEXT NOT NULL,
    "html" TEXT,
    "text" TEXT,
    "headers" JSONB NOT NULL,
    "raw_size" INTEGER NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "mailbox_messages_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "mailbox_messages_site_id_received_at_idx" ON "mailbox_messages"("site_id", "received_at");

-- CreateIndex
CREATE INDEX "mailbox_messages_email_message_id_idx" ON "mailbox_messages"("email_message_id");

-- AddForeignKey
ALTER TABLE "mailbox_messages" ADD CONSTRAINT "mailbox_messages_email_message_id_fkey" FOREIGN KEY ("email_message_id") REFERENCES "email_messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;
