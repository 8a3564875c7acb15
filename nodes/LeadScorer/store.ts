/**
 * Leads in the database: upsert by normalized email, merge of the visitors' anonymous history,
 * and a recomputed score written as explainable per-rule deltas. Every write is keyed so that a
 * replayed item writes nothing new.
 */
import { isDeepStrictEqual } from 'node:util';

import type { LeadPayload } from '../../lib/contracts/lead';
import type { SiteConfig } from '../../lib/contracts/siteConfig';
import { emailHash } from '../../lib/email';
import { LEAD_PII_COLUMNS, leadField, openLead, openLeadProperties, sealLeadProperties, siteCipher, type LeadPiiField, type PiiCipher, type PiiKeyring } from '../../lib/pii';
// One UUIDv7 per row, as Prisma's own `uuid(7)` default would give.
import { isUuid, uuidv7s } from '../../lib/ids';
import type { Prisma } from '../../lib/db/generated/client';
import type { RawSql } from '../../lib/db/rawSql';
import { phoneFacts } from '../shared/contact';
import { normalizeEmail } from '../../lib/mailbox';
import { retentionCutoff } from '../../lib/retention';
import { browserClaims, LEAD_FIELDS, mergeEntries, mergeProperties, otherOwner, reportOnce, type LeadFields, type LeadProperties } from './batch';
import { browsersHistory, recordedOfSummary, recordedRules, rescore, summaryOf, type LeadHistory, type LedgerSummary, type RecordedRule, type Rescored, type StoredBrowser, type StoredLead, type SummaryEntry } from './rescore';
import type { CompiledRules, ScoreResult } from './scoring';
import { InputError } from '../shared/inputError';
import { ErasedPerson, erasedReferences, erasedVisitorReferences } from '../shared/leads';

export interface ScoredLead {
	id: string;
	email: string;
	emailHash: string;
	firstName: string | null;
	lastName: string | null;
	company: string | null;
	jobTitle: string | null;
	country: string | null;
	lifecycleStage: string;
	score: number;
	engagementScore: number;
	fitScore: number;
	firstTouch: Prisma.JsonValue;
	/** Visitors (anonymous ids) whose history the lead holds. */
	visitors: string[];
	/** Events of those visitors the score was computed from. */
	events: number;
}

export interface ScoringOutcome {
	lead: ScoredLead;
	score: ScoreResult;
	/** Rows written to `lead_scores` by this call (0 on a replay). */
	scoreRows: number;
	/** The transition this call recorded; null when the stage stayed or a replay had recorded it already. */
	stageChange: { from: string; to: string } | null;
	/** The visitor was already linked to another lead and kept that link. */
	visitorOfOtherLead?: string;
}

export interface ScoringContext {
	siteId: string;
	config: SiteConfig;
	rules: CompiledRules;
	/** Scoring time, epoch ms. */
	now: number;
	/** The keys of a site with privacy.encryptPii (the Tracking CRM API credential's); the environment's when absent. */
	keyring?: PiiKeyring | null;
}

/** The cipher of the context's site; null for a site that stores in clear. */
export const cipherOf = (context: ScoringContext): PiiCipher | null => siteCipher(context.siteId, context.config.privacy.encryptPii, context.keyring);

/**
 * Reads and writes of a batch run in one transaction: leads, visitor links, score rows and stage
 * moves commit together, so a crash mid-batch leaves nothing half-recorded for the retry.
 */
type Db = RawSql;

/** A submission or identify call, checked and normalized, ready to be written. */
export interface PreparedLead {
	email: string;
	payload: LeadPayload;
	receivedAt: Date;
	fields: LeadFields;
}

/** Checks one payload; a bad email names the item field. */
export function prepareLead(payload: LeadPayload, receivedAt: Date): PreparedLead {
	const email = normalizeEmail(payload.email);
	if (!email) throw new InputError('lead.email', `"${payload.email}" is not an email address`);
	const phone = payload.phone ? phoneFacts(payload.phone, payload.country ?? null) : null;
	return {
		email: email.key,
		payload,
		receivedAt,
		fields: {
			firstName: payload.firstName,
			lastName: payload.lastName,
			// E.164 as the Enricher stores it, so a replayed form does not undo its normalization.
			phone: phone ? (phone.valid && phone.e164 ? phone.e164 : phone.input) : undefined,
			company: payload.company,
			jobTitle: payload.jobTitle,
			country: payload.country?.toUpperCase(),
			timezone: payload.timezone,
		},
	};
}

const LEAD_COLUMNS: Record<(typeof LEAD_FIELDS)[number], string> = {
	firstName: 'first_name',
	lastName: 'last_name',
	phone: 'phone',
	company: 'company',
	jobTitle: 'job_title',
	country: 'country',
	timezone: 'timezone',
};

type StoredPii = { id: string; emailHash: string; properties: Prisma.JsonValue } & Record<LeadPiiField, string | null>;

const PII_FIELDS = Object.keys(LEAD_PII_COLUMNS) as LeadPiiField[];

/**
 * The sealed value of each personal field of a lead about to be written: what the batch gives, else
 * what is stored (opened), sealed anew only where it differs from what is stored. A lead stored in
 * clear before its site turned encryption on is sealed whole by its first write.
 */
function sealedFields(cipher: PiiCipher, row: { email: string; fields: LeadFields }, stored: StoredPii | undefined): Record<LeadPiiField, string | null> {
	const given: Partial<Record<LeadPiiField, string>> = { email: row.email, ...row.fields };
	const sealed = {} as Record<LeadPiiField, string | null>;
	for (const field of PII_FIELDS) {
		const clear = given[field] ?? (stored?.[field] == null ? null : cipher.open(stored[field] as string, leadField(field)));
		sealed[field] = cipher.sealUnlessSame(clear, stored?.[field], leadField(field));
	}
	return sealed;
}

/** A jsonb parameter: the value's JSON text, SQL NULL for none. */
const jsonText = (value: unknown): string | null => (value === undefined || value === null ? null : JSON.stringify(value));

/**
 * A lead's properties on an upsert (EXCLUDED.properties: what propertiesToWrite gives, null for
 * "as stored"). In clear, both objects are merged once more in SQL, so a lead another batch created
 * meanwhile keeps its own names; sealed ones are one string, merged by propertiesToWrite.
 */
const MERGED_PROPERTIES = `CASE WHEN jsonb_typeof(leads.properties) = 'object' AND jsonb_typeof(EXCLUDED.properties) = 'object' THEN leads.properties || EXCLUDED.properties
	ELSE COALESCE(EXCLUDED.properties, leads.properties) END`;

/**
 * The properties a batch writes for a lead: the stored ones (opened) updated by the batch's; null
 * where that changes nothing, so a replayed form leaves the stored value, sealed or not, as it is.
 */
function propertiesToWrite(cipher: PiiCipher | null, given: LeadProperties | undefined, stored: StoredPii | undefined): string | null {
	if (!stored) return jsonText(sealLeadProperties(cipher, given));
	const before = openLeadProperties(cipher, stored.properties);
	const after = mergeProperties(before, given);
	return isDeepStrictEqual(after, before) ? null : jsonText(sealLeadProperties(cipher, after));
}

/**
 * The batch's addresses whose person was erased (the receiver's /api/privacy/erase), by the
 * hashes the erasure suppressed: the keyed one and, on a site that seals addresses, the SHA-256.
 *
 * An erasure holds its site's row FOR NO KEY UPDATE while it deletes the person. This share lock
 * makes a batch wait for an erasure in progress, or the erasure for the batch, so no address is
 * stored during or after its erasure; the check is a statement of its own after the lock, so it
 * sees an erasure that committed while this waited.
 */
async function erasedAddresses(prisma: Db, context: ScoringContext, entries: readonly PreparedLead[]): Promise<Set<string>> {
	await prisma.$queryRawUnsafe(`SELECT 1 FROM sites WHERE id = $1::uuid FOR SHARE`, context.siteId);
	return await erasedReferences(prisma, context.siteId, [], [...new Set(entries.map((entry) => entry.email))], cipherOf(context));
}

/**
 * Creates or updates the leads of a batch, links their visitors and rescores them, with a fixed
 * number of statements whatever the batch size. Returns one outcome per entry, in order, null for
 * an entry whose address was erased (nothing is stored of it); several entries of one lead act as
 * if run one after the other (batch.ts).
 */
export async function upsertLeads(prisma: Db, context: ScoringContext, entries: readonly PreparedLead[]): Promise<Array<ScoringOutcome | null>> {
	const erased = await erasedAddresses(prisma, context, entries);
	const kept = entries.filter((entry) => !erased.has(entry.email));
	const stored = kept.length === 0 ? [] : await storeLeads(prisma, context, kept);
	let next = 0;
	return entries.map((entry) => (erased.has(entry.email) ? null : stored[next++]));
}

async function storeLeads(prisma: Db, context: ScoringContext, entries: readonly PreparedLead[]): Promise<ScoringOutcome[]> {
	const rows = mergeEntries(entries);
	const columns = LEAD_FIELDS.map((key) => LEAD_COLUMNS[key]).join(', ');
	const casts = LEAD_FIELDS.map((_, index) => `$${index + 8}::text[]`).join(', ');
	const names = LEAD_FIELDS.map((_, index) => `f${index}`).join(', ');
	const merges = LEAD_FIELDS.map((key) => `COALESCE(EXCLUDED.${LEAD_COLUMNS[key]}, leads.${LEAD_COLUMNS[key]})`);
	const updates = LEAD_FIELDS.map((key, index) => `${LEAD_COLUMNS[key]} = ${merges[index]}`).join(', ');
	// updated_at moves only when the lead's content does, so a replayed delivery leaves it as it was.
	const unchanged = `(${merges.join(', ')}, leads.consent_given OR EXCLUDED.consent_given, ${MERGED_PROPERTIES}) IS NOT DISTINCT FROM (${LEAD_FIELDS.map((key) => `leads.${LEAD_COLUMNS[key]}`).join(', ')}, leads.consent_given, leads.properties)`;
	// A lead is found by the hash of its address: the keyed hash on a site that seals addresses.
	const cipher = cipherOf(context);
	const hashOf = new Map(rows.map((row) => [row.email, emailHash(row.email, cipher)]));
	// On a site that has just turned encryption on, a lead still in clear is found by its SHA-256.
	const clearHashOf = new Map(cipher ? rows.map((row) => [emailHash(row.email), row.email]) : []);
	// The batch's existing leads are locked in id order first, the order every node locks leads in;
	// the insert then only waits for leads another batch is creating.
	const stored = await prisma.$queryRawUnsafe<StoredPii[]>(
		`SELECT id, email_hash AS "emailHash", email, first_name AS "firstName", last_name AS "lastName", phone, company, job_title AS "jobTitle", properties
		FROM leads WHERE site_id = $1::uuid AND email_hash = ANY($2::text[]) ORDER BY id FOR UPDATE`,
		context.siteId,
		[...hashOf.values(), ...clearHashOf.keys()],
	);
	const storedOf = new Map<string, StoredPii>();
	for (const lead of stored) {
		const email = clearHashOf.get(lead.emailHash);
		if (email === undefined) {
			storedOf.set(lead.emailHash, lead);
			continue;
		}
		// The clear lead takes the keyed hash, so the insert below updates it instead of adding a second
		// lead; its properties, which the insert leaves as they are, are sealed here.
		await prisma.$executeRawUnsafe(`UPDATE leads SET email_hash = $2, properties = $3::jsonb WHERE id = $1::uuid`, lead.id, hashOf.get(email), jsonText(sealLeadProperties(cipher, openLeadProperties(cipher, lead.properties))));
		storedOf.set(hashOf.get(email) as string, lead);
	}
	const values: Array<Partial<Record<keyof LeadFields | 'email', string | null>>> = rows.map((row) => ({
		...row.fields,
		email: row.email,
		...(cipher ? sealedFields(cipher, row, storedOf.get(hashOf.get(row.email) as string)) : {}),
	}));
	// One statement for the batch: Prisma's createMany / upsert build one bind parameter per value
	// and cost more in the client than the whole insert costs in Postgres. A lead created here has no
	// score rows yet, so its ledger summary starts empty and its first rescore sums no rows.
	const written = await prisma.$queryRawUnsafe<Array<{ id: string; emailHash: string }>>(
		`INSERT INTO leads (id, site_id, email, email_hash, source, consent_given, properties, ${columns}, ledger_summary, updated_at)
		SELECT v.id, $1::uuid, v.email, v.email_hash, v.source, v.consent, v.properties::jsonb, ${names}, '{}'::jsonb, now()
		FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], ${casts}) AS v(id, email, email_hash, source, consent, properties, ${names})
		ON CONFLICT (site_id, email_hash) DO UPDATE SET email = EXCLUDED.email, ${updates}, consent_given = leads.consent_given OR EXCLUDED.consent_given, properties = ${MERGED_PROPERTIES},
			updated_at = CASE WHEN ${unchanged} THEN leads.updated_at ELSE now() END
		RETURNING id, email_hash AS "emailHash"`,
		context.siteId,
		uuidv7s(rows.length),
		values.map((value) => value.email),
		rows.map((row) => hashOf.get(row.email)),
		rows.map((row) => row.first.payload.source ?? null),
		rows.map((row) => row.consent),
		rows.map((row) => propertiesToWrite(cipher, row.properties, storedOf.get(hashOf.get(row.email) as string))),
		...LEAD_FIELDS.map((key) => values.map((value) => value[key] ?? null)),
	);
	const idOf = new Map(written.map((lead) => [lead.emailHash, lead.id]));

	const leadOf = (email: string) => idOf.get(hashOf.get(email) as string) as string;
	const claims = browserClaims(entries, leadOf);
	const owners = new Map<string, string | null>();
	const linked = new Set<string>();
	if (claims.length > 0) {
		// Creates the missing visitors, links the unlinked ones, and reports every visitor's lead as
		// it stands after and whether this statement linked it: conditional, so two leads submitted
		// from one browser at once cannot both take it. Rows not written are read from the
		// statement's snapshot, their lead unchanged.
		const visitors = await prisma.$queryRawUnsafe<Array<{ anonymousId: string; leadId: string | null; linked: boolean }>>(
			`WITH claim AS (SELECT * FROM unnest($2::uuid[], $3::text[], $4::uuid[], $5::timestamptz[]) AS v(id, anonymous_id, lead_id, at)),
			written AS (
				INSERT INTO visitors (id, site_id, anonymous_id, lead_id, first_seen_at, last_seen_at, updated_at)
				SELECT id, $1::uuid, anonymous_id, lead_id, at, at, now() FROM claim
				ON CONFLICT (site_id, anonymous_id) DO UPDATE SET lead_id = EXCLUDED.lead_id, updated_at = now() WHERE visitors.lead_id IS NULL
				RETURNING anonymous_id, lead_id
			)
			SELECT anonymous_id AS "anonymousId", lead_id AS "leadId", true AS linked FROM written
			UNION ALL
			SELECT anonymous_id, lead_id, false FROM visitors WHERE site_id = $1::uuid AND anonymous_id = ANY($3::text[]) AND anonymous_id NOT IN (SELECT anonymous_id FROM written)`,
			context.siteId,
			uuidv7s(claims.length),
			claims.map((claim) => claim.anonymousId),
			claims.map((claim) => claim.leadId),
			claims.map((claim) => claim.at),
		);
		for (const visitor of visitors) {
			owners.set(visitor.anonymousId, visitor.leadId);
			if (visitor.linked) linked.add(visitor.anonymousId);
		}
	}

	const leadIds = entries.map((entry) => leadOf(entry.email));
	const outcomes = await rescoreLeads(prisma, context, leadIds, linked);
	const reported = reportOnce(leadIds, (leadId) => outcomes.get(leadId) as ScoringOutcome);
	return entries.map((entry, index) => {
		const owner = entry.payload.anonymousId ? owners.get(entry.payload.anonymousId) : undefined;
		const visitorOfOtherLead = otherOwner(leadIds[index], owner);
		return visitorOfOtherLead ? { ...reported[index], visitorOfOtherLead } : reported[index];
	});
}

/** A lead as a rescore reads it and reports it. */
interface LeadRow extends StoredLead {
	emailHash: string;
	firstName: string | null;
	lastName: string | null;
	/** What its rows record per rule, as the scorer last stored it; read by {@link recordedOfSummary}. */
	ledgerSummary: unknown;
}

/**
 * The leads, locked in id order: two scorings of one lead (a form and the sessions of its visit,
 * scored by different workflows or n8n workers at once) run one after the other, the second
 * reading what the first recorded, and concurrent batches never hold each other's leads crosswise.
 */
const LOCK_LEADS = `
SELECT id, email, email_hash AS "emailHash", first_name AS "firstName", last_name AS "lastName", company, job_title AS "jobTitle", country, source, phone,
	lifecycle_stage AS "lifecycleStage", first_touch AS "firstTouch", ledger_summary AS "ledgerSummary",
	score, engagement_score AS "engagementScore", fit_score AS "fitScore"
FROM leads WHERE site_id = $1::uuid AND id = ANY($2::uuid[]) ORDER BY id FOR UPDATE`;

/**
 * A time column as epoch milliseconds, the unit scoring compares in: a lead's history is read as
 * plain numbers rather than two Date objects per event, converted and copied again. Every time the
 * scorer reads is stored to the millisecond (timestamptz(3)), so the float epoch rounds back to it
 * exactly; EXTRACT's exact numeric cost Postgres more than the rest of an event's row.
 */
const EPOCH_MS = (column: string) => `round(date_part('epoch', ${column}) * 1000)`;

/**
 * Each lead's tags (a JSON array, null for none), and its browsers in the order it met them, each
 * with its events (by column) and sessions, as one JSON array of {@link StoredBrowser}: one
 * statement and one value per lead, where a row per browser, event and session cost the node most
 * of its time to receive and decode. Tags as JSON rather than text[], whose parser cost more even
 * for a lead with no tag. Read after the leads are locked, so it sees what a scoring of the same
 * lead committed while this one waited.
 */
const LEAD_HISTORIES = `
SELECT l.id AS "leadId",
	(SELECT json_agg(t.tag ORDER BY t.tag) FROM lead_tags t WHERE t.lead_id = l.id)::text AS tags,
	(SELECT json_agg(json_build_array(v.id, v.anonymous_id, v.first_touch, ${EPOCH_MS('v.first_seen_at')},
		(SELECT json_build_array(COALESCE(array_agg(e.event_id), '{}'), COALESCE(array_agg(e.type), '{}'), COALESCE(array_agg(e.name), '{}'), COALESCE(array_agg(e.url), '{}'),
				COALESCE(array_agg(${EPOCH_MS('e.occurred_at')}), '{}'), COALESCE(array_agg(${EPOCH_MS('e.received_at')}), '{}'))
			FROM visitor_events e WHERE e.site_id = $1::uuid AND e.anonymous_id = v.anonymous_id),
		(SELECT COALESCE(json_agg(json_build_array(s.id, ${EPOCH_MS('s.started_at')}, ${EPOCH_MS('s.created_at')})), '[]')
			FROM visitor_sessions s WHERE s.visitor_id = v.id)
	) ORDER BY v.first_seen_at, v.anonymous_id)::text FROM visitors v WHERE v.site_id = $1::uuid AND v.lead_id = l.id) AS browsers
FROM unnest($2::uuid[]) AS l(id)`;

/**
 * The ledger per lead and rule, summed in the database in the order the rows were written: for a
 * lead whose `ledger_summary` is not stored yet (scored before the column existed).
 */
const LEDGER_BY_RULE = `
SELECT lead_id AS "leadId", rule, sum(delta ORDER BY occurred_at, created_at) AS sum, count(*)::int AS rows,
	(array_agg(cause_key ORDER BY occurred_at DESC, created_at DESC))[1] AS "causeKey",
	${EPOCH_MS('max(occurred_at)')} AS "occurredAt",
	(array_agg(${EPOCH_MS('created_at')} ORDER BY occurred_at DESC, created_at DESC))[1] AS "createdAt"
FROM lead_scores WHERE lead_id = ANY($1::uuid[]) GROUP BY lead_id, rule`;

/** What the leads' score rows record, per lead and rule. */
export async function recordedLedger(prisma: Pick<Db, '$queryRawUnsafe'>, leadIds: readonly string[]): Promise<Map<string, Map<string, RecordedRule>>> {
	return recordedRules(await prisma.$queryRawUnsafe<LedgerSummary[]>(LEDGER_BY_RULE, [...leadIds]));
}

/**
 * A lead as a rescore reads it: its row, its tags, what its ledger records, the summary to store
 * when it had none stored, and its browsers still as the JSON text the database sent.
 */
interface LoadedLead {
	lead: LeadRow;
	tags: readonly string[];
	recorded: ReadonlyMap<string, RecordedRule> | undefined;
	summed: Record<string, SummaryEntry> | null;
	browsers: string | null;
}

/** Everything a rescore reads about the leads, in id order. */
async function loadLeads(prisma: Db, siteId: string, ids: readonly string[], cipher: PiiCipher | null): Promise<LoadedLead[]> {
	const leads = (await prisma.$queryRawUnsafe<LeadRow[]>(LOCK_LEADS, siteId, [...ids])).map((lead) => openLead(cipher, lead));
	const recorded = new Map(leads.map((lead) => [lead.id, recordedOfSummary(lead.ledgerSummary)]));
	const unsummed = leads.filter((lead) => recorded.get(lead.id) === null).map((lead) => lead.id);
	const summed = unsummed.length === 0 ? new Map<string, Map<string, RecordedRule>>() : await recordedLedger(prisma, unsummed);
	const stored = await prisma.$queryRawUnsafe<Array<{ leadId: string; tags: string | null; browsers: string | null }>>(LEAD_HISTORIES, siteId, [...ids]);
	const storedOf = new Map(stored.map((row) => [row.leadId, row]));
	return leads.map((lead) => {
		const row = storedOf.get(lead.id);
		const ofSummary = recorded.get(lead.id);
		const ofRows = ofSummary ? null : (summed.get(lead.id) ?? new Map<string, RecordedRule>());
		return { lead, tags: row?.tags ? (JSON.parse(row.tags) as string[]) : [], recorded: ofSummary ?? ofRows ?? undefined, summed: ofRows && summaryOf(ofRows), browsers: row?.browsers ?? null };
	});
}

/** A loaded lead's history. `linked`: the browsers (anonymous ids) this call linked. */
function historyOf({ lead, tags, recorded, browsers }: LoadedLead, linked: ReadonlySet<string>): LeadHistory {
	return { lead, tags, recorded, ...browsersHistory(lead.id, browsers ? (JSON.parse(browsers) as StoredBrowser[]) : [], linked) };
}

/** Inserts the stage moves not recorded yet; the leads whose move this call recorded. */
async function insertStageChanges(prisma: Db, siteId: string, scoredAt: Date, rows: ReadonlyArray<{ leadId: string; from: string; to: string; scoreAt: number }>): Promise<Set<string>> {
	if (rows.length === 0) return new Set();
	const inserted = await prisma.$queryRawUnsafe<Array<{ leadId: string }>>(
		`INSERT INTO lead_stage_changes (id, site_id, lead_id, from_stage, to_stage, score_at, occurred_at)
		SELECT v.id, $1::uuid, v.lead_id, v.from_stage, v.to_stage, v.score_at, $2
		FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::float8[]) AS v(id, lead_id, from_stage, to_stage, score_at)
		ON CONFLICT (lead_id, from_stage, to_stage) DO NOTHING
		RETURNING lead_id AS "leadId"`,
		siteId,
		scoredAt,
		uuidv7s(rows.length),
		rows.map((row) => row.leadId),
		rows.map((row) => row.from),
		rows.map((row) => row.to),
		rows.map((row) => row.scoreAt),
	);
	return new Set(inserted.map((row) => row.leadId));
}

/**
 * Records a scoring in one statement: the score rows no earlier call wrote (by their keys); each
 * lead's `ledger_summary` moved on by the rows inserted, from the stored one or, for a lead that had
 * none, from the one summed from its rows ($8); and its score, stage and first touch. A row already
 * there (a replay, a concurrent scoring of the same change) is not inserted and not counted twice.
 */
const RECORD_SCORES = `
WITH scored AS (
	SELECT * FROM unnest($2::uuid[], $3::float8[], $4::float8[], $5::float8[], $6::text[], $7::text[], $8::text[]) AS v(id, score, engagement, fit, stage, first_touch, summed)
),
inserted AS (
	INSERT INTO lead_scores (id, site_id, lead_id, rule, delta, score_after, cause, cause_key, occurred_at)
	SELECT r.id, $9::uuid, r.lead_id, r.rule, r.delta, r.score_after, r.cause, r.cause_key, $1
	FROM unnest($10::uuid[], $11::uuid[], $12::text[], $13::float8[], $14::float8[], $15::text[], $16::text[]) AS r(id, lead_id, rule, delta, score_after, cause, cause_key)
	ON CONFLICT (lead_id, rule, cause_key) DO NOTHING
	RETURNING lead_id, rule, delta, cause_key, occurred_at, created_at
),
added AS (
	SELECT inserted.lead_id, count(*)::int AS rows, jsonb_object_agg(inserted.rule, jsonb_build_array(
		COALESCE((before.summary -> inserted.rule ->> 0)::float8, 0) + inserted.delta,
		COALESCE((before.summary -> inserted.rule ->> 1)::int, 0) + 1,
		substr(inserted.cause_key, strpos(inserted.cause_key, ':') + 1),
		GREATEST((before.summary -> inserted.rule ->> 3)::float8, ${EPOCH_MS('inserted.occurred_at')}),
		${EPOCH_MS('inserted.created_at')})) AS entries
	FROM inserted JOIN (
		SELECT scored.id, COALESCE(scored.summed::jsonb, leads.ledger_summary) AS summary FROM scored JOIN leads ON leads.id = scored.id
		WHERE scored.id IN (SELECT lead_id FROM inserted)
	) AS before ON before.id = inserted.lead_id
	GROUP BY inserted.lead_id
)
UPDATE leads SET score = v.score, engagement_score = v.engagement, fit_score = v.fit, scored_at = $1, lifecycle_stage = v.stage,
	first_touch = COALESCE(v.first_touch::jsonb, leads.first_touch),
	ledger_summary = CASE WHEN added.entries IS NULL AND v.summed IS NULL THEN leads.ledger_summary
		ELSE COALESCE(v.summed::jsonb, leads.ledger_summary, '{}'::jsonb) || COALESCE(added.entries, '{}'::jsonb) END,
	updated_at = CASE WHEN (v.score, v.engagement, v.fit, v.stage, COALESCE(v.first_touch::jsonb, leads.first_touch))
		IS NOT DISTINCT FROM (leads.score, leads.engagement_score, leads.fit_score, leads.lifecycle_stage, leads.first_touch)
		THEN leads.updated_at ELSE now() END
FROM scored AS v LEFT JOIN added ON added.lead_id = v.id
WHERE leads.id = v.id
RETURNING leads.id, added.rows`;

/** A lead's rescore as recordScores stores it. */
type ToRecord = Rescored & { lead: { id: string }; summed: Record<string, SummaryEntry> | null };

/**
 * Stores each lead's new score, stage and first touch, and the score rows to add; how many rows
 * each lead got. scored_at is when the lead was last scored (rescoreStale's cursor); updated_at
 * moves only with the content. A lead whose row and ledger already say it all (most rescores on a
 * new delivery of events no rule counts) only has its scored_at moved, by a statement that sends
 * nothing but ids.
 */
async function recordScores(prisma: Db, siteId: string, scoredAt: Date, all: ReadonlyArray<ToRecord>): Promise<Map<string, number>> {
	const written = new Map<string, number>();
	const onlyScoredAt: string[] = [];
	const rescored: ToRecord[] = [];
	for (const entry of all) {
		if (entry.unchanged && entry.summed === null) onlyScoredAt.push(entry.lead.id);
		else rescored.push(entry);
	}
	if (onlyScoredAt.length > 0) await prisma.$executeRawUnsafe(`UPDATE leads SET scored_at = $1 WHERE id = ANY($2::uuid[])`, scoredAt, onlyScoredAt);
	if (rescored.length === 0) return written;
	const rows = rescored.flatMap(({ lead, scoreRows }) => scoreRows.map((row) => ({ leadId: lead.id, ...row })));
	const recorded = await prisma.$queryRawUnsafe<Array<{ id: string; rows: number | null }>>(
		RECORD_SCORES,
		scoredAt,
		rescored.map((entry) => entry.lead.id),
		rescored.map((entry) => entry.total),
		rescored.map((entry) => entry.engagement),
		rescored.map((entry) => entry.fit),
		rescored.map((entry) => entry.stage),
		rescored.map((entry) => (entry.firstTouch === null ? null : JSON.stringify(entry.firstTouch))),
		rescored.map((entry) => (entry.summed === null ? null : JSON.stringify(entry.summed))),
		siteId,
		uuidv7s(rows.length),
		rows.map((row) => row.leadId),
		rows.map((row) => row.rule),
		rows.map((row) => row.delta),
		rows.map((row) => row.scoreAfter),
		rows.map((row) => row.cause),
		rows.map((row) => row.causeKey),
	);
	for (const lead of recorded) if (lead.rows) written.set(lead.id, lead.rows);
	return written;
}

/**
 * The lead of each visitor named by its id or the tracker's anonymous id, in one query: the lead's
 * id, null for a visitor that is no lead, {@link ErasedPerson} for a browser an erasure deleted (one
 * query more, for the references no visitor answers), or why the reference names no visitor of the site.
 */
export async function findVisitorLeads(db: Pick<RawSql, '$queryRawUnsafe'>, siteId: string, references: readonly string[]): Promise<Map<string, string | null | InputError | ErasedPerson>> {
	const found = new Map<string, string | null | InputError | ErasedPerson>();
	if (references.length === 0) return found;
	const unique = [...new Set(references)];
	// Workflow 01 asks this for every visitor of every delivery: a raw statement, not Prisma Client's query compiler.
	const rows = await db.$queryRawUnsafe<Array<{ id: string; anonymousId: string; leadId: string | null }>>(
		`SELECT id, anonymous_id AS "anonymousId", lead_id AS "leadId" FROM visitors WHERE site_id = $1::uuid AND (id = ANY($2::uuid[]) OR anonymous_id = ANY($3::text[]))`,
		siteId,
		unique.filter((reference) => isUuid(reference)),
		unique,
	);
	const leadOf = new Map<string, string | null>();
	for (const row of rows) {
		leadOf.set(row.anonymousId, row.leadId);
		leadOf.set(row.id, row.leadId);
	}
	const erased = await erasedVisitorReferences(
		db,
		siteId,
		unique.filter((reference) => !leadOf.has(reference)),
	);
	for (const reference of unique) {
		const leadId = leadOf.get(reference);
		if (leadId !== undefined) found.set(reference, leadId);
		else if (erased.has(reference)) found.set(reference, new ErasedPerson(reference, 'visitor'));
		else found.set(reference, new InputError('visitor', `No visitor "${reference}" on this site; give the visitor's id or the tracker's anonymous id`));
	}
	return found;
}

/**
 * Recomputes the scores of several leads from their whole merged histories and records what
 * changed (decided by {@link rescore}): every read and write is one statement for all of them.
 * `linked`: the browsers (anonymous ids) the calling upsert has just linked to their leads.
 */
export async function rescoreLeads(prisma: Db, context: ScoringContext, leadIds: readonly string[], linked: ReadonlySet<string> = new Set()): Promise<Map<string, ScoringOutcome>> {
	const loaded = await loadLeads(prisma, context.siteId, [...new Set(leadIds)].sort(), cipherOf(context));
	const scoring = {
		rules: context.rules,
		stages: context.config.crm.lifecycleStages,
		now: context.now,
		cutoff: retentionCutoff(context.config.privacy.dataRetention, new Date(context.now)).getTime(),
	};
	// Each lead's history is parsed, scored and dropped before the next one's: only what the output
	// and the writes need stays alive across the round trips, not every event of the batch.
	const rescored = loaded.map((entry) => {
		const history = historyOf(entry, linked);
		return {
			lead: entry.lead,
			summed: entry.summed,
			visitors: history.visitors.map((visitor) => visitor.anonymousId),
			events: history.events.length,
			...rescore(history, scoring),
		};
	});
	const scoredAt = new Date(context.now);
	const transitioned = await insertStageChanges(
		prisma,
		context.siteId,
		scoredAt,
		rescored.flatMap(({ lead, stageChange, total }) => (stageChange ? [{ leadId: lead.id, ...stageChange, scoreAt: total }] : [])),
	);
	const written = await recordScores(prisma, context.siteId, scoredAt, rescored);

	return new Map(
		rescored.map((entry) => {
			const { lead } = entry;
			const outcome: ScoringOutcome = {
				lead: {
					id: lead.id,
					email: lead.email,
					emailHash: lead.emailHash,
					firstName: lead.firstName,
					lastName: lead.lastName,
					company: lead.company,
					jobTitle: lead.jobTitle,
					country: lead.country,
					lifecycleStage: entry.stage,
					score: entry.total,
					engagementScore: entry.engagement,
					fitScore: entry.fit,
					firstTouch: entry.firstTouch,
					visitors: entry.visitors,
					events: entry.events,
				},
				score: entry.score,
				scoreRows: written.get(lead.id) ?? 0,
				// Recorded by this call only: a replay finds the transition already there.
				stageChange: transitioned.has(lead.id) ? entry.stageChange : null,
			};
			return [lead.id, outcome];
		}),
	);
}
