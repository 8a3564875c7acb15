import { randomUUID } from 'node:crypto';

import type { DeliveredLead, LeadPayload } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { sealSubmission, type PiiCipher } from '../../lib/pii';
import { enqueueStatement } from '../outbox/enqueue';
import type { StoredHistory } from './historyClaim';
import { withFormFields } from './normalize';

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
}

/**
 * A lead submission as an `identify` event (so the visitor's history shows it, without the
 * address) and an outbox row carrying the submission to the Lead Processor, in one statement.
 * The submission's event id makes a retried form post store and forward nothing twice. On a site
 * with privacy.encryptPii (`cipher` given) the outbox holds the address, names, phone, company and
 * job title sealed, for as long as it keeps the row: the CRM Tracker Trigger opens them with the
 * keys of its credential, so the workflow's items are as posted.
 */
const STORE_LEAD = `
WITH inserted AS (
	INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, type, name, properties, user_agent, ip_anonymized, country, is_bot, occurred_at, received_at)
	VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, 'identify', $4, $5::jsonb, $6, $7, $8, false, now(), now())
	ON CONFLICT (site_id, event_id) DO NOTHING
	RETURNING event_id, anonymous_id
), outboxed AS (
	${enqueueStatement(
		{ siteId: '$1::uuid', destination: 'destination', partitionKey: 'anonymous_id', payload: "$9::jsonb || jsonb_build_object('eventId', event_id)" },
		'FROM inserted CROSS JOIN jsonb_array_elements_text($10::jsonb) AS d(destination)',
	)}
)
SELECT (SELECT count(*) FROM inserted)::int AS stored`;

export async function storeLead(
	prisma: PrismaClient,
	siteId: string,
	submitted: LeadPayload,
	hash: string,
	facts: RequestFacts,
	destinations: string[],
	cipher: PiiCipher | null = null,
): Promise<{ stored: boolean }> {
	const lead = withFormFields(submitted);
	const eventId = lead.eventId ?? randomUUID();
	const anonymousId = lead.anonymousId ?? `lead:${hash.slice(0, 32)}`;
	// The statement adds the eventId it stored the submission under.
	const payload: Omit<DeliveredLead, 'eventId'> = { kind: 'lead', lead: sealSubmission(cipher, lead), emailHash: hash, country: facts.country, receivedAt: new Date().toISOString() };
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

/**
 * What a lead post's claim on an anonymous history weighs (historyClaim), in one query: the client
 * the visitor's history began on (the anonymized network and user agent of its first received
 * event), and its latest analytics consent choice.
 */
export async function storedHistory(prisma: PrismaClient, siteId: string, anonymousId: string): Promise<StoredHistory> {
	const [row] = await prisma.$queryRawUnsafe<Array<{ ipAnonymized: string | null; userAgent: string | null; hasEvent: boolean; analyticsConsent: 'granted' | 'withdrawn' | null }>>(
		`SELECT first.ip_anonymized AS "ipAnonymized", first.user_agent AS "userAgent", first.site_id IS NOT NULL AS "hasEvent",
			(SELECT state::text FROM consent_records WHERE site_id = $1::uuid AND anonymous_id = $2 AND purpose = 'analytics' ORDER BY occurred_at DESC, created_at DESC LIMIT 1) AS "analyticsConsent"
		FROM (SELECT 1) AS one
		LEFT JOIN LATERAL (SELECT site_id, ip_anonymized, user_agent FROM visitor_events WHERE site_id = $1::uuid AND anonymous_id = $2 ORDER BY received_at, id LIMIT 1) AS first ON true`,
		siteId,
		anonymousId,
	);
	return {
		firstEvent: row.hasEvent ? { ipAnonymized: row.ipAnonymized, userAgent: row.userAgent } : undefined,
		analyticsConsent: row.analyticsConsent ?? undefined,
	};
}
