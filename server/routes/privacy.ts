import { type Request, type Response, Router } from 'express';
import { z } from 'zod/v4';

import type { DeliveredLead } from '../../lib/contracts';
import type { Prisma, PrismaClient } from '../../lib/db';
import { canonicalEmail, emailHash } from '../../lib/email';
import { anonymousIdHash } from '../../lib/ids';
import { MESSAGE_RECIPIENT_FIELD, MESSAGE_SUBJECT_FIELD, openLead, openSubmission, siteCipher, type PiiCipher } from '../../lib/pii';
import { lockBrowsers } from '../../nodes/shared/events';
import { forgetVisitors } from '../analytics/rollup';
import { requireApiKey } from '../auth';
import type { Logger } from '../logger';
import { readBodyFor } from './body';
import { cleanText, parseInput, parseQuery } from './inputs';
import { databaseFailure, sendProblem, sendUnavailable } from './problems';

interface PrivacyContext {
	prisma: PrismaClient;
	logger: Logger;
}

/**
 * Deliberately looser than the lead contract: an address stored by any path (an import, a
 * node) must be exportable and erasable even if a stricter validator would refuse it today.
 */
const email = cleanText(z.string().trim().max(254, { error: 'must be at most 254 characters' })).regex(/^[^\s@]+@[^\s@]+$/, {
	error: 'must be an email address such as jane@example.com',
});

export const exportQuery = z.strictObject({ email });
export const eraseBody = z.strictObject({ email });

type Tx = Prisma.TransactionClient;

/** Long enough for a person with years of events; the default 5 s is not. */
const TRANSACTION = { timeout: 60_000, maxWait: 10_000 };

/** The body reader's refusals keep this endpoint's code, `invalid_body`. */
const readSmallBody = readBodyFor('text', { limitBytes: 16 * 1024, send: 'a UTF-8 JSON body of at most 16 KB, e.g. {"email":"jane@example.com"}' }, (res, status, _type, message) =>
	sendProblem(res, status, 'invalid_body', message, { issues: [{ field: 'body', message: 'could not be read' }] }),
);

function parseJson(req: Request, res: Response): unknown {
	const text = typeof req.body === 'string' ? req.body : '';
	try {
		return JSON.parse(text);
	} catch (error) {
		sendProblem(res, 400, 'invalid_json', `The body is not valid JSON: ${(error as Error).message}; send {"email":"jane@example.com"}`, {
			issues: [{ field: 'body', message: 'is not valid JSON' }],
		});
		return undefined;
	}
}

interface Person {
	/** The hash the address is stored and suppressed under: the keyed hash on a site with privacy.encryptPii. */
	hash: string;
	/** Every hash rows of the address may carry: on a site with privacy.encryptPii also the SHA-256 of rows written in clear. */
	hashes: string[];
	leadIds: string[];
	visitorIds: string[];
	anonymousIds: string[];
	/** The visitor row of each of those browsers that has one. */
	visitorOf: Map<string, string>;
	contactIds: string[];
	messageIds: string[];
	conversionIds: string[];
	/** Form posts still held in the outbox, which carry the address itself. */
	submissions: number;
	/** Consent records of the address; a person may have given consent before any lead of theirs was written. */
	consents: number;
}

/**
 * Everything that identifies one person on one site. A person is found by the hash of the
 * address (leads) and the address itself (contacts and messages, which may exist without a
 * lead); their browsers are the visitors linked to their leads plus the anonymous ids they
 * submitted forms from, which the receiver's outbox still names while no visitor is linked.
 */
async function findPerson(tx: Tx, siteId: string, address: string, cipher: PiiCipher | null): Promise<Person> {
	const canonical = canonicalEmail(address);
	const hash = emailHash(address, cipher);
	const hashes = [...new Set([hash, emailHash(address)])];
	// Compared in SQL: Prisma's case-insensitive `equals` is ILIKE, where the "_" of an address
	// would match any character and find (and erase) someone else.
	type Ids = Array<{ id: string }>;
	const ids = (rows: Ids) => rows.map((row) => row.id);
	const leadIds = ids(
		await tx.$queryRawUnsafe<Ids>(`SELECT id::text FROM leads WHERE site_id = $1::uuid AND (email_hash = ANY($2::text[]) OR lower(btrim(email)) = $3)`, siteId, hashes, canonical),
	);
	const visitors = await tx.visitor.findMany({ where: { siteId, leadId: { in: leadIds } }, select: { id: true, anonymousId: true } });
	const visitorIds = visitors.map((visitor) => visitor.id);
	const submittedFrom = await tx.$queryRawUnsafe<Array<{ partition_key: string; rows: number }>>(
		`SELECT partition_key, count(*)::int AS rows FROM outbox WHERE site_id = $1::uuid AND payload->>'kind' = 'lead' AND payload->>'emailHash' = ANY($2::text[]) GROUP BY partition_key`,
		siteId,
		hashes,
	);
	// A lead posted without an anonymous id is stored under this id (see server/ingest/store.ts).
	const anonymousIds = [...new Set([...visitors.map((visitor) => visitor.anonymousId), ...submittedFrom.map((row) => row.partition_key), ...hashes.map((each) => `lead:${each.slice(0, 32)}`)])];
	const contactIds = ids(
		await tx.$queryRawUnsafe<Ids>(
			`SELECT id::text FROM contacts WHERE site_id = $1::uuid AND (lead_id::text IN (SELECT jsonb_array_elements_text($2::jsonb)) OR lower(btrim(email)) = $3)`,
			siteId,
			JSON.stringify(leadIds),
			canonical,
		),
	);
	// A sealed recipient (privacy.encryptPii) compares equal to no address: those messages are found by their lead.
	const messageIds = ids(
		await tx.$queryRawUnsafe<Ids>(
			`SELECT id::text FROM email_messages WHERE site_id = $1::uuid AND (lead_id::text IN (SELECT jsonb_array_elements_text($2::jsonb)) OR lower(btrim(to_email)) = $3)`,
			siteId,
			JSON.stringify(leadIds),
			canonical,
		),
	);
	const conversions = await tx.conversion.findMany({ where: { siteId, OR: [{ leadId: { in: leadIds } }, { visitorId: { in: visitorIds } }] }, select: { id: true } });
	const consents = await tx.consentRecord.count({ where: { siteId, emailHash: { in: hashes } } });
	return {
		hash,
		hashes,
		leadIds,
		visitorIds,
		anonymousIds,
		visitorOf: new Map(visitors.map((visitor) => [visitor.anonymousId, visitor.id])),
		contactIds,
		messageIds,
		conversionIds: ids(conversions),
		submissions: submittedFrom.reduce((sum, row) => sum + row.rows, 0),
		consents,
	};
}

/** The site's cipher when its stored config has privacy.encryptPii; the keys are the receiver's environment's. */
async function cipherOf(tx: Tx, siteId: string): Promise<PiiCipher | null> {
	const site = await tx.site.findUniqueOrThrow({ where: { id: siteId }, select: { config: true } });
	const privacy = (site.config as { privacy?: { encryptPii?: unknown } } | null)?.privacy;
	return siteCipher(siteId, privacy?.encryptPii === true);
}

const isKnown = (person: Person) => person.leadIds.length + person.contactIds.length + person.messageIds.length + person.submissions + person.consents > 0;

/** The person's consent records: those of the address, and those of the browsers they used. */
const consentsOf = (siteId: string, person: Person) => ({ siteId, OR: [{ emailHash: { in: person.hashes } }, { anonymousId: { in: person.anonymousIds } }] });

/** Outbox rows that carry or point at the person: their browsers' events, their form posts, their email events. */
const DELETE_OUTBOX = `
DELETE FROM outbox WHERE site_id = $1::uuid AND (
	partition_key IN (SELECT jsonb_array_elements_text($2::jsonb))
	OR payload->>'emailHash' = ANY($3::text[])
	OR payload->>'leadId' IN (SELECT jsonb_array_elements_text($4::jsonb))
	OR payload->>'messageId' IN (SELECT jsonb_array_elements_text($5::jsonb)))`;

/** The person's data as they gave it: sealed values are opened, the export is theirs to read. */
/** The person's raw events (a visitor's are those of its browser's anonymous id), and the visitor and session each was put in. */
async function eventsOf(tx: Tx, siteId: string, anonymousIds: string[]) {
	const events = await tx.visitorEvent.findMany({ where: { siteId, anonymousId: { in: anonymousIds } }, orderBy: [{ occurredAt: 'asc' }, { eventId: 'asc' }] });
	const eventLinks = await tx.visitorEventLink.findMany({ where: { siteId, eventId: { in: events.map((event) => event.eventId) } } });
	return { events, eventLinks };
}

async function exportPerson(tx: Tx, siteId: string, person: Person, cipher: PiiCipher | null) {
	const { leadIds, visitorIds, anonymousIds, contactIds, messageIds, conversionIds } = person;
	const ofLeads = { siteId, leadId: { in: leadIds } };
	const leads = (await tx.lead.findMany({ where: { siteId, id: { in: leadIds } }, orderBy: { createdAt: 'asc' } })).map((lead) => openLead(cipher, lead));
	const contacts = await tx.contact.findMany({ where: { siteId, id: { in: contactIds } } });
	const businessIds = [...leads, ...contacts].flatMap((row) => (row.businessId ? [row.businessId] : []));
	return {
		leads,
		contacts,
		businesses: await tx.business.findMany({ where: { siteId, id: { in: businessIds } } }),
		visitors: await tx.visitor.findMany({ where: { siteId, id: { in: visitorIds } }, orderBy: { firstSeenAt: 'asc' } }),
		sessions: await tx.visitorSession.findMany({ where: { siteId, visitorId: { in: visitorIds } }, orderBy: { startedAt: 'asc' } }),
		...(await eventsOf(tx, siteId, anonymousIds)),
		activities: await tx.activity.findMany({ where: { siteId, OR: [{ leadId: { in: leadIds } }, { visitorId: { in: visitorIds } }] }, orderBy: { occurredAt: 'asc' } }),
		conversions: await tx.conversion.findMany({ where: { siteId, id: { in: conversionIds } }, include: { attributions: true }, orderBy: { occurredAt: 'asc' } }),
		scores: await tx.leadScore.findMany({ where: ofLeads, orderBy: { occurredAt: 'asc' } }),
		tags: await tx.leadTag.findMany({ where: ofLeads }),
		stageChanges: await tx.leadStageChange.findMany({ where: ofLeads, orderBy: { occurredAt: 'asc' } }),
		channelStatuses: await tx.channelStatus.findMany({ where: ofLeads }),
		enrollments: await tx.sequenceEnrollment.findMany({ where: ofLeads }),
		emailMessages: (
			await tx.emailMessage.findMany({ where: { siteId, id: { in: messageIds } }, include: { events: { orderBy: { occurredAt: 'asc' } } }, orderBy: { createdAt: 'asc' } })
		).map((message) =>
			cipher ? { ...message, toEmail: cipher.open(message.toEmail, MESSAGE_RECIPIENT_FIELD), subject: cipher.open(message.subject, MESSAGE_SUBJECT_FIELD) } : message,
		),
		suppressions: await tx.suppression.findMany({ where: { siteId, emailHash: { in: person.hashes } } }),
		consentRecords: await tx.consentRecord.findMany({ where: consentsOf(siteId, person), orderBy: [{ occurredAt: 'asc' }, { createdAt: 'asc' }] }),
		formSubmissions: (
			await tx.$queryRawUnsafe<Array<{ payload: DeliveredLead; status: string; createdAt: Date }>>(
				`SELECT payload, status, created_at AS "createdAt" FROM outbox WHERE site_id = $1::uuid AND payload->>'kind' = 'lead' AND payload->>'emailHash' = ANY($2::text[]) ORDER BY id`,
				siteId,
				person.hashes,
			)
		).map((row) => (cipher ? { ...row, payload: { ...row.payload, lead: openSubmission(cipher, row.payload.lead) } } : row)),
	};
}

/**
 * Deletes children before parents so each table's count is what was really removed, not
 * hidden in a cascade. Businesses stay: a company row is shared by its other contacts and is
 * not the person's data.
 */
async function erasePerson(tx: Tx, siteId: string, person: Person): Promise<Record<string, number>> {
	const { leadIds, visitorIds, anonymousIds, contactIds, messageIds, conversionIds } = person;
	const ofLeads = { siteId, leadId: { in: leadIds } };
	const removed: Record<string, number> = {};
	removed.outbox = await tx.$executeRawUnsafe(DELETE_OUTBOX, siteId, JSON.stringify(anonymousIds), person.hashes, JSON.stringify(leadIds), JSON.stringify(messageIds));
	removed.email_events = (await tx.emailEvent.deleteMany({ where: { siteId, messageId: { in: messageIds } } })).count;
	removed.email_messages = (await tx.emailMessage.deleteMany({ where: { siteId, id: { in: messageIds } } })).count;
	removed.attribution_data = (await tx.attributionData.deleteMany({ where: { siteId, conversionId: { in: conversionIds } } })).count;
	removed.conversions = (await tx.conversion.deleteMany({ where: { siteId, id: { in: conversionIds } } })).count;
	removed.activities = (await tx.activity.deleteMany({ where: { siteId, OR: [{ leadId: { in: leadIds } }, { visitorId: { in: visitorIds } }] } })).count;
	removed.lead_scores = (await tx.leadScore.deleteMany({ where: ofLeads })).count;
	removed.lead_tags = (await tx.leadTag.deleteMany({ where: ofLeads })).count;
	removed.lead_stage_changes = (await tx.leadStageChange.deleteMany({ where: ofLeads })).count;
	removed.channel_statuses = (await tx.channelStatus.deleteMany({ where: ofLeads })).count;
	removed.sequence_enrollments = (await tx.sequenceEnrollment.deleteMany({ where: ofLeads })).count;
	// The rollups' per-session page rows hold the visitor: they go now, found through the sessions deleted below.
	await forgetVisitors(tx, siteId, visitorIds);
	removed.visitor_event_links = await tx.$executeRawUnsafe(
		`DELETE FROM visitor_event_links l USING visitor_events e WHERE e.site_id = $1::uuid AND e.anonymous_id = ANY($2::text[]) AND l.site_id = e.site_id AND l.event_id = e.event_id`,
		siteId,
		anonymousIds,
	);
	removed.visitor_events = (await tx.visitorEvent.deleteMany({ where: { siteId, anonymousId: { in: anonymousIds } } })).count;
	removed.visitor_sessions = (await tx.visitorSession.deleteMany({ where: { siteId, visitorId: { in: visitorIds } } })).count;
	removed.visitors = (await tx.visitor.deleteMany({ where: { siteId, id: { in: visitorIds } } })).count;
	removed.contacts = (await tx.contact.deleteMany({ where: { siteId, id: { in: contactIds } } })).count;
	removed.leads = (await tx.lead.deleteMany({ where: { siteId, id: { in: leadIds } } })).count;
	removed.consent_records = (await tx.consentRecord.deleteMany({ where: consentsOf(siteId, person) })).count;
	return removed;
}

/**
 * The erased address stays suppressed for good: ingest refuses it (reason `erased`) and no
 * email goes to it, even when it had been suppressed before for another reason.
 */
/**
 * The erased browsers' tombstones, written after every delete of the erasure: an event they had
 * sent by then (by the database's clock) was erased with them, and a delivery of it still on its
 * way is not stored again (the Visitor Processor). Erasing again moves the time on.
 */
const REMEMBER_ERASED_BROWSERS = `
INSERT INTO erased_visitors (site_id, anonymous_id_hash, visitor_id, erased_at)
SELECT $1::uuid, v.hash, v.visitor_id, clock_timestamp() FROM unnest($2::text[], $3::uuid[]) AS v(hash, visitor_id)
ON CONFLICT (site_id, anonymous_id_hash) DO UPDATE SET erased_at = EXCLUDED.erased_at, visitor_id = COALESCE(EXCLUDED.visitor_id, erased_visitors.visitor_id)`;

const SUPPRESS_ERASED = `
INSERT INTO suppressions (id, site_id, email_hash, channel, reason, created_at)
SELECT gen_random_uuid(), $1::uuid, hash, 'email', 'erased'::suppression_reason, now() FROM unnest($2::text[]) AS hash
ON CONFLICT (site_id, email_hash, channel) DO UPDATE SET reason = 'erased'::suppression_reason`;

/**
 * GDPR access and erasure for one person on the admin key's site.
 *
 * - `GET /api/privacy/export?email=` answers everything stored about the person, or 404 when
 *   the site holds no lead, contact, email message, pending form post or consent record of the
 *   address.
 * - `POST /api/privacy/erase` with `{"email": …}` deletes it all in one transaction and answers
 *   200 with the rows removed per table. An unknown address answers 200 with zero counts and is
 *   still suppressed and logged: erasure is a promise about the future too, so repeating it is
 *   safe and an address can be erased before it ever arrives. What stays holds no personal data:
 *   the address's hashes (suppressed as erased), the ids of the leads deleted (erased_leads), a
 *   hash of each browser's anonymous id with the visitor's id (erased_visitors) and the
 *   erasure_log entry.
 */
export function privacyRouter(context: PrivacyContext): Router {
	const router = Router();
	const { prisma, logger } = context;
	const adminOnly = requireApiKey(prisma, 'admin');

	/** A database that is away is worth a retry; anything else goes to the app's error answer (a 400 if the value was the cause). */
	const unavailable = (res: Response, error: unknown, what: string) => {
		if (databaseFailure(error) !== 'unavailable') throw error;
		logger.error({ err: error }, `privacy ${what} failed`);
		sendUnavailable(res, what);
	};

	router.get('/api/privacy/export', adminOnly, async (req, res) => {
		const query = parseQuery(exportQuery, req, res, 'invalid_request', 'query');
		if (!query) return;
		const { siteId, keyName } = req.auth!;
		try {
			const answer = await prisma.$transaction(
				async (tx) => {
					const cipher = await cipherOf(tx, siteId);
					const person = await findPerson(tx, siteId, query.email, cipher);
					return isKnown(person) ? { emailHash: person.hash, ...(await exportPerson(tx, siteId, person, cipher)) } : undefined;
				},
				// One snapshot: an export taken while the nodes write is still consistent with itself.
				{ ...TRANSACTION, isolationLevel: 'RepeatableRead' },
			);
			if (!answer) {
				sendProblem(res, 404, 'not_found', 'This site holds no lead, contact, email message, form post or consent record of this address', {
					issues: [{ field: 'email', message: 'is not known on this site' }],
				});
				return;
			}
			logger.info({ siteId, by: keyName, emailHash: answer.emailHash }, 'privacy export');
			res.setHeader('Cache-Control', 'no-store');
			res.json({ email: canonicalEmail(query.email), exportedAt: new Date().toISOString(), ...answer });
		} catch (error) {
			unavailable(res, error, 'export');
		}
	});

	router.post('/api/privacy/erase', adminOnly, readSmallBody, async (req, res) => {
		const input = parseJson(req, res);
		if (input === undefined) return;
		const body = parseInput(eraseBody, input, res, 'invalid_request', 'body');
		if (!body) return;
		const { siteId, keyName } = req.auth!;
		try {
			const result = await prisma.$transaction(async (tx) => {
				// The Lead Scorer stores leads under a share lock of their site's row and checks for an
				// erasure after taking it: this waits for the batches storing leads now, so their leads
				// are found below, and the batches after it find the address erased.
				await tx.$queryRawUnsafe(`SELECT 1 FROM sites WHERE id = $1::uuid FOR NO KEY UPDATE`, siteId);
				const person = await findPerson(tx, siteId, body.email, await cipherOf(tx, siteId));
				// The Visitor Processor stores a browser's events under these locks: this waits for the
				// batches storing the person's events now, and the batches after it find the tombstones.
				await lockBrowsers(tx, siteId, person.anonymousIds);
				const removed = await erasePerson(tx, siteId, person);
				// Both hashes on a site with privacy.encryptPii: the receiver's ingest checks the SHA-256 of a posted address.
				await tx.$executeRawUnsafe(SUPPRESS_ERASED, siteId, person.hashes);
				// A delivery already on its way may still name a lead by its id, which nothing else recalls
				// now: the nodes find it here and leave its items out instead of failing the delivery.
				await tx.erasedLead.createMany({ data: person.leadIds.map((leadId) => ({ siteId, leadId })) });
				await tx.$executeRawUnsafe(
					REMEMBER_ERASED_BROWSERS,
					siteId,
					person.anonymousIds.map((anonymousId) => anonymousIdHash(anonymousId)),
					person.anonymousIds.map((anonymousId) => person.visitorOf.get(anonymousId) ?? null),
				);
				await tx.erasureLog.create({ data: { siteId, emailHash: person.hash, requestedBy: keyName, removed } });
				return { emailHash: person.hash, removed };
			}, TRANSACTION);
			const total = Object.values(result.removed).reduce((sum, count) => sum + count, 0);
			logger.info({ siteId, by: keyName, emailHash: result.emailHash, removed: total }, 'privacy erasure');
			res.json({ erased: total > 0, emailHash: result.emailHash, suppressed: true, removed: result.removed });
		} catch (error) {
			unavailable(res, error, 'erasure');
		}
	});

	return router;
}
