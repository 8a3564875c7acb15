import { randomUUID } from 'node:crypto';

import type { LeadPayload } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import type { EventRow } from './normalize';

export interface RequestFacts {
	userAgent: string | null;
	ipAnonymized: string | null;
	country: string | null;
	isBot: boolean;
}

export interface StoreResult {
	/** Events new to the database. */
	stored: number;
	/** Events already stored by an earlier delivery of the same batch. */
	duplicates: number;
	/** Outbox rows written, one per (visitor, destination). */
	outboxRows: number;
}

/**
 * Raw events and their outbox rows in ONE statement, so they commit together or not at all.
 * Only events that are new get an outbox row: a replayed batch stores and forwards nothing twice.
 * The outbox row names the events rather than copying them; the dispatcher reads them at send time.
 */
const STORE_BATCH = `
WITH input AS (
	SELECT * FROM jsonb_to_recordset($2::jsonb) AS e(
		event_id uuid, anonymous_id text, session_key text, type text, name text, url text, path text,
		title text, referrer text, relevance int, properties jsonb, context jsonb, occurred_at timestamptz)
), inserted AS (
	INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, name, url, path, title,
		referrer, relevance, properties, context, user_agent, ip_anonymized, country, is_bot, occurred_at, received_at)
	SELECT gen_random_uuid(), $1::uuid, event_id, anonymous_id, session_key, type, name, url, path, title,
		referrer, relevance, properties, context, $3, $4, $5, $6, occurred_at, now()
	FROM input
	ON CONFLICT (site_id, event_id) DO NOTHING
	RETURNING event_id, anonymous_id, occurred_at
), outboxed AS (
	INSERT INTO outbox (site_id, destination, partition_key, payload, status, attempts, next_attempt_at, created_at)
	SELECT $1::uuid, destination, anonymous_id,
		jsonb_build_object('kind', 'events', 'eventIds', jsonb_agg(event_id ORDER BY occurred_at, event_id)),
		'pending', 0, now(), now()
	FROM inserted CROSS JOIN jsonb_array_elements_text($7::jsonb) AS d(destination)
	GROUP BY destination, anonymous_id
	RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)::int AS stored, (SELECT count(*) FROM outboxed)::int AS outbox_rows`;

export async function storeEvents(
	prisma: PrismaClient,
	siteId: string,
	rows: EventRow[],
	facts: RequestFacts,
	destinations: string[],
): Promise<StoreResult> {
	const [result] = await prisma.$queryRawUnsafe<Array<{ stored: number; outbox_rows: number }>>(
		STORE_BATCH,
		siteId,
		JSON.stringify(rows),
		facts.userAgent,
		facts.ipAnonymized,
		facts.country,
		facts.isBot,
		JSON.stringify(destinations),
	);
	return { stored: result.stored, duplicates: rows.length - result.stored, outboxRows: result.outbox_rows };
}

/**
 * A lead submission as an `identify` event (so the visitor's history shows it, without the
 * address) and an outbox row carrying the submission to the Lead Processor, in one statement.
 * The submission's event id makes a retried form post store and forward nothing twice.
 */
const STORE_LEAD = `
WITH inserted AS (
	INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, type, name, properties, user_agent, ip_anonymized, country, is_bot, occurred_at, received_at)
	VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, 'identify', $4, $5::jsonb, $6, $7, $8, false, now(), now())
	ON CONFLICT (site_id, event_id) DO NOTHING
	RETURNING event_id, anonymous_id
), outboxed AS (
	INSERT INTO outbox (site_id, destination, partition_key, payload, status, attempts, next_attempt_at, created_at)
	SELECT $1::uuid, destination, anonymous_id, $9::jsonb || jsonb_build_object('eventId', event_id), 'pending', 0, now(), now()
	FROM inserted CROSS JOIN jsonb_array_elements_text($10::jsonb) AS d(destination)
	RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)::int AS stored`;

export async function storeLead(
	prisma: PrismaClient,
	siteId: string,
	lead: LeadPayload,
	hash: string,
	facts: RequestFacts,
	destinations: string[],
): Promise<{ stored: boolean }> {
	const eventId = lead.eventId ?? randomUUID();
	const anonymousId = lead.anonymousId ?? `lead:${hash.slice(0, 32)}`;
	const payload = { kind: 'lead', lead, emailHash: hash, country: facts.country, receivedAt: new Date().toISOString() };
	const [result] = await prisma.$queryRawUnsafe<Array<{ stored: number }>>(
		STORE_LEAD,
		siteId,
		eventId,
		anonymousId,
		lead.formId ?? null,
		JSON.stringify({ formId: lead.formId ?? null, source: lead.source ?? null, consent: lead.consent }),
		facts.userAgent,
		facts.ipAnonymized,
		facts.country,
		JSON.stringify(payload),
		JSON.stringify(destinations),
	);
	return { stored: result.stored > 0 };
}
