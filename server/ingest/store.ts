import { randomUUID } from 'node:crypto';

import type { DeliveredLead, LeadPayload } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { sealSubmission, type PiiCipher } from '../../lib/pii';
import { enqueueStatement } from '../outbox/enqueue';
import type { ClientFacts } from './historyClaim';
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

/** The client the visitor's history began on: the anonymized network and user agent of its first received event. */
export async function firstEventClient(prisma: PrismaClient, siteId: string, anonymousId: string): Promise<ClientFacts | undefined> {
	const [first] = await prisma.$queryRawUnsafe<ClientFacts[]>(
		`SELECT ip_anonymized AS "ipAnonymized", user_agent AS "userAgent" FROM visitor_events
		WHERE site_id = $1::uuid AND anonymous_id = $2 ORDER BY received_at, id LIMIT 1`,
		siteId,
		anonymousId,
	);
	return first;
}
