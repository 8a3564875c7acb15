-- CreateEnum
CREATE TYPE "api_key_scope" AS ENUM ('read', 'admin');

-- CreateEnum
CREATE TYPE "engagement_level" AS ENUM ('low', 'medium', 'high');

-- CreateEnum
CREATE TYPE "attribution_model" AS ENUM ('first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based');

-- CreateEnum
CREATE TYPE "channel_state" AS ENUM ('subscribed', 'unsubscribed', 'bounced', 'complained', 'do_not_contact');

-- CreateEnum
CREATE TYPE "suppression_reason" AS ENUM ('unsubscribed', 'bounced', 'complained', 'erased', 'manual');

-- CreateEnum
CREATE TYPE "outbox_status" AS ENUM ('pending', 'delivered', 'dead');

-- CreateEnum
CREATE TYPE "enrollment_status" AS ENUM ('active', 'completed', 'unenrolled');

-- CreateEnum
CREATE TYPE "email_message_status" AS ENUM ('sending', 'sent', 'failed', 'suppressed');

-- CreateEnum
CREATE TYPE "email_event_type" AS ENUM ('open', 'click', 'unsubscribe', 'bounce', 'complaint');

-- CreateEnum
CREATE TYPE "campaign_status" AS ENUM ('draft', 'active', 'paused', 'archived');

-- CreateTable
CREATE TABLE "sites" (
    "id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "domain" TEXT NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "sites_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "scope" "api_key_scope" NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "visitors" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "anonymous_id" TEXT NOT NULL,
    "lead_id" UUID,
    "first_seen_at" TIMESTAMPTZ(3) NOT NULL,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL,
    "first_touch" JSONB,
    "device_type" TEXT,
    "browser" TEXT,
    "os" TEXT,
    "country" TEXT,
    "is_bot" BOOLEAN NOT NULL DEFAULT false,
    "session_count" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "visitors_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "visitor_sessions" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "visitor_id" UUID NOT NULL,
    "session_key" TEXT NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "last_activity_at" TIMESTAMPTZ(3) NOT NULL,
    "ended_at" TIMESTAMPTZ(3),
    "pageviews" INTEGER NOT NULL DEFAULT 0,
    "event_count" INTEGER NOT NULL DEFAULT 0,
    "duration_seconds" INTEGER NOT NULL DEFAULT 0,
    "engaged_time_ms" INTEGER NOT NULL DEFAULT 0,
    "max_scroll_depth" INTEGER NOT NULL DEFAULT 0,
    "is_bounce" BOOLEAN NOT NULL DEFAULT true,
    "entry_page" TEXT,
    "exit_page" TEXT,
    "engagement_score" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "engagement_level" "engagement_level" NOT NULL DEFAULT 'low',
    "channel" TEXT,
    "source" TEXT,
    "medium" TEXT,
    "campaign" TEXT,
    "term" TEXT,
    "content" TEXT,
    "referrer" TEXT,
    "referrer_domain" TEXT,
    "click_id_type" TEXT,
    "landing_page" TEXT,
    "device_type" TEXT,
    "browser" TEXT,
    "os" TEXT,
    "country" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "visitor_sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "visitor_events" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "event_id" UUID NOT NULL,
    "anonymous_id" TEXT NOT NULL,
    "session_key" TEXT,
    "visitor_id" UUID,
    "session_id" UUID,
    "type" TEXT NOT NULL,
    "name" TEXT,
    "url" TEXT,
    "path" TEXT,
    "title" TEXT,
    "referrer" TEXT,
    "relevance" INTEGER,
    "properties" JSONB,
    "context" JSONB,
    "user_agent" TEXT,
    "ip_anonymized" TEXT,
    "country" TEXT,
    "is_bot" BOOLEAN NOT NULL DEFAULT false,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "visitor_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "leads" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "email_hash" TEXT NOT NULL,
    "first_name" TEXT,
    "last_name" TEXT,
    "phone" TEXT,
    "company" TEXT,
    "job_title" TEXT,
    "country" TEXT,
    "timezone" TEXT,
    "source" TEXT,
    "lifecycle_stage" TEXT NOT NULL DEFAULT 'subscriber',
    "score" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "engagement_score" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "fit_score" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "scored_at" TIMESTAMPTZ(3),
    "first_touch" JSONB,
    "properties" JSONB,
    "consent_given" BOOLEAN NOT NULL DEFAULT false,
    "business_id" UUID,
    "converted_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "leads_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "contacts" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID,
    "business_id" UUID,
    "email" TEXT NOT NULL,
    "first_name" TEXT,
    "last_name" TEXT,
    "phone" TEXT,
    "job_title" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "contacts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "businesses" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "domain" TEXT NOT NULL,
    "name" TEXT,
    "industry" TEXT,
    "size" TEXT,
    "country" TEXT,
    "properties" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "businesses_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "activities" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID,
    "visitor_id" UUID,
    "type" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "data" JSONB,
    "dedupe_key" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "activities_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "conversions" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "visitor_id" UUID NOT NULL,
    "lead_id" UUID,
    "session_id" UUID,
    "goal" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "value" DECIMAL(14,4) NOT NULL DEFAULT 0,
    "currency" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "conversions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "attribution_data" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "conversion_id" UUID NOT NULL,
    "model" "attribution_model" NOT NULL,
    "touchpoint_index" INTEGER NOT NULL,
    "session_id" UUID,
    "channel" TEXT NOT NULL,
    "source" TEXT,
    "medium" TEXT,
    "campaign" TEXT,
    "touched_at" TIMESTAMPTZ(3) NOT NULL,
    "credit" DOUBLE PRECISION NOT NULL,
    "value" DECIMAL(14,4) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "attribution_data_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "channel_statuses" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID NOT NULL,
    "channel" TEXT NOT NULL,
    "status" "channel_state" NOT NULL,
    "reason" TEXT,
    "changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "channel_statuses_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "email_campaigns" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "status" "campaign_status" NOT NULL DEFAULT 'draft',
    "from_name" TEXT,
    "from_email" TEXT,
    "reply_to" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "email_campaigns_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "email_sequences" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "campaign_id" UUID,
    "name" TEXT NOT NULL,
    "status" "campaign_status" NOT NULL DEFAULT 'active',
    "trigger" JSONB,
    "settings" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "email_sequences_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "email_sequence_steps" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "sequence_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "delay_minutes" INTEGER NOT NULL DEFAULT 0,
    "subject" TEXT NOT NULL,
    "html_template" TEXT NOT NULL,
    "text_template" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "email_sequence_steps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sequence_enrollments" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "sequence_id" UUID NOT NULL,
    "lead_id" UUID NOT NULL,
    "status" "enrollment_status" NOT NULL DEFAULT 'active',
    "next_step" INTEGER NOT NULL DEFAULT 0,
    "next_run_at" TIMESTAMPTZ(3),
    "enrolled_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completed_at" TIMESTAMPTZ(3),
    "unenrolled_at" TIMESTAMPTZ(3),
    "unenroll_reason" TEXT,

    CONSTRAINT "sequence_enrollments_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "email_messages" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID,
    "campaign_id" UUID,
    "sequence_id" UUID,
    "step_id" UUID,
    "enrollment_id" UUID,
    "idempotency_key" TEXT NOT NULL,
    "to_email" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "status" "email_message_status" NOT NULL DEFAULT 'sending',
    "smtp_message_id" TEXT,
    "links" JSONB NOT NULL DEFAULT '[]',
    "error" TEXT,
    "sent_at" TIMESTAMPTZ(3),
    "first_opened_at" TIMESTAMPTZ(3),
    "first_clicked_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "email_messages_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "email_events" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "message_id" UUID NOT NULL,
    "type" "email_event_type" NOT NULL,
    "url" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "email_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "lead_scores" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID NOT NULL,
    "rule" TEXT NOT NULL,
    "delta" DOUBLE PRECISION NOT NULL,
    "score_after" DOUBLE PRECISION NOT NULL,
    "cause" TEXT NOT NULL,
    "cause_key" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "lead_scores_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "lead_tags" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID NOT NULL,
    "tag" TEXT NOT NULL,
    "source" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "lead_tags_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "lead_stage_changes" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "lead_id" UUID NOT NULL,
    "from_stage" TEXT NOT NULL,
    "to_stage" TEXT NOT NULL,
    "score_at" DOUBLE PRECISION NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "lead_stage_changes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "suppressions" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "email_hash" TEXT NOT NULL,
    "channel" TEXT NOT NULL DEFAULT 'email',
    "reason" "suppression_reason" NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "suppressions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "erasure_log" (
    "id" UUID NOT NULL,
    "site_id" UUID NOT NULL,
    "email_hash" TEXT NOT NULL,
    "requested_by" TEXT NOT NULL,
    "removed" JSONB NOT NULL,
    "erased_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "erasure_log_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "outbox" (
    "id" BIGSERIAL NOT NULL,
    "site_id" UUID NOT NULL,
    "destination" TEXT NOT NULL,
    "partition_key" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" "outbox_status" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "outbox_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "sites_key_key" ON "sites"("key");

-- CreateIndex
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys"("key_hash");

-- CreateIndex
CREATE INDEX "api_keys_site_id_idx" ON "api_keys"("site_id");

-- CreateIndex
CREATE INDEX "visitors_site_id_last_seen_at_idx" ON "visitors"("site_id", "last_seen_at");

-- CreateIndex
CREATE INDEX "visitors_lead_id_idx" ON "visitors"("lead_id");

-- CreateIndex
CREATE UNIQUE INDEX "visitors_site_id_anonymous_id_key" ON "visitors"("site_id", "anonymous_id");

-- CreateIndex
CREATE INDEX "visitor_sessions_site_id_started_at_idx" ON "visitor_sessions"("site_id", "started_at");

-- CreateIndex
CREATE INDEX "visitor_sessions_visitor_id_started_at_idx" ON "visitor_sessions"("visitor_id", "started_at");

-- CreateIndex
CREATE INDEX "visitor_sessions_site_id_channel_started_at_idx" ON "visitor_sessions"("site_id", "channel", "started_at");

-- CreateIndex
CREATE UNIQUE INDEX "visitor_sessions_site_id_session_key_key" ON "visitor_sessions"("site_id", "session_key");

-- CreateIndex
CREATE INDEX "visitor_events_site_id_occurred_at_idx" ON "visitor_events"("site_id", "occurred_at");

-- CreateIndex
CREATE INDEX "visitor_events_site_id_anonymous_id_occurred_at_idx" ON "visitor_events"("site_id", "anonymous_id", "occurred_at");

-- CreateIndex
CREATE INDEX "visitor_events_site_id_type_occurred_at_idx" ON "visitor_events"("site_id", "type", "occurred_at");

-- CreateIndex
CREATE INDEX "visitor_events_session_id_idx" ON "visitor_events"("session_id");

-- CreateIndex
CREATE INDEX "visitor_events_visitor_id_occurred_at_idx" ON "visitor_events"("visitor_id", "occurred_at");

-- CreateIndex
CREATE UNIQUE INDEX "visitor_events_site_id_event_id_key" ON "visitor_events"("site_id", "event_id");

-- CreateIndex
CREATE INDEX "leads_site_id_created_at_idx" ON "leads"("site_id", "created_at");

-- CreateIndex
CREATE INDEX "leads_site_id_lifecycle_stage_idx" ON "leads"("site_id", "lifecycle_stage");

-- CreateIndex
CREATE INDEX "leads_site_id_score_idx" ON "leads"("site_id", "score");

-- CreateIndex
CREATE INDEX "leads_site_id_email_hash_idx" ON "leads"("site_id", "email_hash");

-- CreateIndex
CREATE UNIQUE INDEX "leads_site_id_email_key" ON "leads"("site_id", "email");

-- CreateIndex
CREATE UNIQUE INDEX "contacts_lead_id_key" ON "contacts"("lead_id");

-- CreateIndex
CREATE INDEX "contacts_business_id_idx" ON "contacts"("business_id");

-- CreateIndex
CREATE UNIQUE INDEX "contacts_site_id_email_key" ON "contacts"("site_id", "email");

-- CreateIndex
CREATE UNIQUE INDEX "businesses_site_id_domain_key" ON "businesses"("site_id", "domain");

-- CreateIndex
CREATE INDEX "activities_site_id_lead_id_occurred_at_idx" ON "activities"("site_id", "lead_id", "occurred_at");

-- CreateIndex
CREATE INDEX "activities_site_id_visitor_id_occurred_at_idx" ON "activities"("site_id", "visitor_id", "occurred_at");

-- CreateIndex
CREATE INDEX "activities_site_id_occurred_at_idx" ON "activities"("site_id", "occurred_at");

-- CreateIndex
CREATE UNIQUE INDEX "activities_site_id_dedupe_key_key" ON "activities"("site_id", "dedupe_key");

-- CreateIndex
CREATE INDEX "conversions_site_id_occurred_at_idx" ON "conversions"("site_id", "occurred_at");

-- CreateIndex
CREATE INDEX "conversions_visitor_id_idx" ON "conversions"("visitor_id");

-- CreateIndex
CREATE UNIQUE INDEX "conversions_site_id_goal_event_id_key" ON "conversions"("site_id", "goal", "event_id");

-- CreateIndex
CREATE INDEX "attribution_data_site_id_model_channel_idx" ON "attribution_data"("site_id", "model", "channel");

-- CreateIndex
CREATE UNIQUE INDEX "attribution_data_conversion_id_model_touchpoint_index_key" ON "attribution_data"("conversion_id", "model", "touchpoint_index");

-- CreateIndex
CREATE INDEX "channel_statuses_site_id_channel_status_idx" ON "channel_statuses"("site_id", "channel", "status");

-- CreateIndex
CREATE UNIQUE INDEX "channel_statuses_lead_id_channel_key" ON "channel_statuses"("lead_id", "channel");

-- CreateIndex
CREATE UNIQUE INDEX "email_campaigns_site_id_name_key" ON "email_campaigns"("site_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "email_sequences_site_id_name_key" ON "email_sequences"("site_id", "name");

-- CreateIndex
CREATE INDEX "email_sequence_steps_site_id_idx" ON "email_sequence_steps"("site_id");

-- CreateIndex
CREATE UNIQUE INDEX "email_sequence_steps_sequence_id_position_key" ON "email_sequence_steps"("sequence_id", "position");

-- CreateIndex
CREATE INDEX "sequence_enrollments_site_id_status_next_run_at_idx" ON "sequence_enrollments"("site_id", "status", "next_run_at");

-- CreateIndex
CREATE INDEX "sequence_enrollments_lead_id_idx" ON "sequence_enrollments"("lead_id");

-- CreateIndex
CREATE UNIQUE INDEX "sequence_enrollments_sequence_id_lead_id_key" ON "sequence_enrollments"("sequence_id", "lead_id");

-- CreateIndex
CREATE INDEX "email_messages_site_id_sent_at_idx" ON "email_messages"("site_id", "sent_at");

-- CreateIndex
CREATE INDEX "email_messages_lead_id_idx" ON "email_messages"("lead_id");

-- CreateIndex
CREATE INDEX "email_messages_campaign_id_idx" ON "email_messages"("campaign_id");

-- CreateIndex
CREATE UNIQUE INDEX "email_messages_site_id_idempotency_key_key" ON "email_messages"("site_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "email_events_site_id_occurred_at_idx" ON "email_events"("site_id", "occurred_at");

-- CreateIndex
CREATE INDEX "email_events_message_id_type_idx" ON "email_events"("message_id", "type");

-- CreateIndex
CREATE INDEX "lead_scores_site_id_lead_id_created_at_idx" ON "lead_scores"("site_id", "lead_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "lead_scores_lead_id_rule_cause_key_key" ON "lead_scores"("lead_id", "rule", "cause_key");

-- CreateIndex
CREATE INDEX "lead_tags_site_id_tag_idx" ON "lead_tags"("site_id", "tag");

-- CreateIndex
CREATE UNIQUE INDEX "lead_tags_lead_id_tag_key" ON "lead_tags"("lead_id", "tag");

-- CreateIndex
CREATE INDEX "lead_stage_changes_site_id_occurred_at_idx" ON "lead_stage_changes"("site_id", "occurred_at");

-- CreateIndex
CREATE UNIQUE INDEX "lead_stage_changes_lead_id_from_stage_to_stage_key" ON "lead_stage_changes"("lead_id", "from_stage", "to_stage");

-- CreateIndex
CREATE UNIQUE INDEX "suppressions_site_id_email_hash_channel_key" ON "suppressions"("site_id", "email_hash", "channel");

-- CreateIndex
CREATE INDEX "erasure_log_site_id_email_hash_idx" ON "erasure_log"("site_id", "email_hash");

-- CreateIndex
CREATE INDEX "outbox_status_next_attempt_at_idx" ON "outbox"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "outbox_destination_partition_key_id_idx" ON "outbox"("destination", "partition_key", "id");

-- CreateIndex
CREATE INDEX "outbox_site_id_created_at_idx" ON "outbox"("site_id", "created_at");

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitors" ADD CONSTRAINT "visitors_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitors" ADD CONSTRAINT "visitors_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitor_sessions" ADD CONSTRAINT "visitor_sessions_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitor_sessions" ADD CONSTRAINT "visitor_sessions_visitor_id_fkey" FOREIGN KEY ("visitor_id") REFERENCES "visitors"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitor_events" ADD CONSTRAINT "visitor_events_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitor_events" ADD CONSTRAINT "visitor_events_visitor_id_fkey" FOREIGN KEY ("visitor_id") REFERENCES "visitors"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "visitor_events" ADD CONSTRAINT "visitor_events_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "visitor_sessions"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "leads" ADD CONSTRAINT "leads_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "leads" ADD CONSTRAINT "leads_business_id_fkey" FOREIGN KEY ("business_id") REFERENCES "businesses"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "contacts" ADD CONSTRAINT "contacts_business_id_fkey" FOREIGN KEY ("business_id") REFERENCES "businesses"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "businesses" ADD CONSTRAINT "businesses_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "activities" ADD CONSTRAINT "activities_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "activities" ADD CONSTRAINT "activities_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "activities" ADD CONSTRAINT "activities_visitor_id_fkey" FOREIGN KEY ("visitor_id") REFERENCES "visitors"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "conversions" ADD CONSTRAINT "conversions_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "conversions" ADD CONSTRAINT "conversions_visitor_id_fkey" FOREIGN KEY ("visitor_id") REFERENCES "visitors"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "conversions" ADD CONSTRAINT "conversions_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "conversions" ADD CONSTRAINT "conversions_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "visitor_sessions"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "attribution_data" ADD CONSTRAINT "attribution_data_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "attribution_data" ADD CONSTRAINT "attribution_data_conversion_id_fkey" FOREIGN KEY ("conversion_id") REFERENCES "conversions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "channel_statuses" ADD CONSTRAINT "channel_statuses_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "channel_statuses" ADD CONSTRAINT "channel_statuses_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_campaigns" ADD CONSTRAINT "email_campaigns_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_sequences" ADD CONSTRAINT "email_sequences_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_sequences" ADD CONSTRAINT "email_sequences_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "email_campaigns"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_sequence_steps" ADD CONSTRAINT "email_sequence_steps_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_sequence_steps" ADD CONSTRAINT "email_sequence_steps_sequence_id_fkey" FOREIGN KEY ("sequence_id") REFERENCES "email_sequences"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sequence_enrollments" ADD CONSTRAINT "sequence_enrollments_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sequence_enrollments" ADD CONSTRAINT "sequence_enrollments_sequence_id_fkey" FOREIGN KEY ("sequence_id") REFERENCES "email_sequences"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sequence_enrollments" ADD CONSTRAINT "sequence_enrollments_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_messages" ADD CONSTRAINT "email_messages_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_messages" ADD CONSTRAINT "email_messages_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_messages" ADD CONSTRAINT "email_messages_campaign_id_fkey" FOREIGN KEY ("campaign_id") REFERENCES "email_campaigns"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_messages" ADD CONSTRAINT "email_messages_sequence_id_fkey" FOREIGN KEY ("sequence_id") REFERENCES "email_sequences"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_messages" ADD CONSTRAINT "email_messages_step_id_fkey" FOREIGN KEY ("step_id") REFERENCES "email_sequence_steps"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_messages" ADD CONSTRAINT "email_messages_enrollment_id_fkey" FOREIGN KEY ("enrollment_id") REFERENCES "sequence_enrollments"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_events" ADD CONSTRAINT "email_events_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "email_events" ADD CONSTRAINT "email_events_message_id_fkey" FOREIGN KEY ("message_id") REFERENCES "email_messages"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "lead_scores" ADD CONSTRAINT "lead_scores_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "lead_scores" ADD CONSTRAINT "lead_scores_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "lead_tags" ADD CONSTRAINT "lead_tags_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "lead_tags" ADD CONSTRAINT "lead_tags_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "lead_stage_changes" ADD CONSTRAINT "lead_stage_changes_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "lead_stage_changes" ADD CONSTRAINT "lead_stage_changes_lead_id_fkey" FOREIGN KEY ("lead_id") REFERENCES "leads"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "suppressions" ADD CONSTRAINT "suppressions_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "erasure_log" ADD CONSTRAINT "erasure_log_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "outbox" ADD CONSTRAINT "outbox_site_id_fkey" FOREIGN KEY ("site_id") REFERENCES "sites"("id") ON DELETE CASCADE ON UPDATE CASCADE;
