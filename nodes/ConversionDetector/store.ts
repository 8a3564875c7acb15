import type { ConversionRule } from '../../lib/contracts/siteConfig';
import type { RawDatabase, RawSql } from '../../lib/db/rawSql';
// One UUIDv7 per row, as Prisma's own `uuid(7)` default would give.
import { uuidv7s } from '../../lib/ids';
import { attributeConversion, type AttributionOptions, type AttributionResult, type Touchpoint } from './attribution';
import { matchConversionRules } from './rules';
import { engagementAt, type StoredEvent } from '../shared/sessionEngagement';
import { InputError } from '../shared/inputError';

/** One event to check, by its id, with the goals and attribution settings of its item. */
export interface DetectEntry {
	eventId: string;
	rules: readonly ConversionRule[];
	options: AttributionOptions & { hashRouting?: boolean };
}

export interface RecordedConversion {
	conversionId: string;
	goal: string;
	value: string;
	currency: string | null;
	duplicate: boolean;
	/** The lead the converting visitor was at the time (null for an anonymous visitor): its email sequences end with the conversion. */
	leadId: string | null;
	/** Credits per model: the channel of each touch and its share of the value. */
	attribution: Record<string, Array<{ channel: string; source: string | null; campaign: string | null; credit: number; value: string }>>;
}

/** A stored event: what the rules read of it, and the visitor, session and lead it was linked to. */
interface EventFacts {
	event_id: string;
	type: string;
	name: string | null;
	url: string | null;
	visitor_id: string | null;
	session_id: string | null;
	lead_id: string | null;
	anonymous_id: string;
	occurred_at: Date;
}

interface StoredTouch {
	id: string;
	visitor_id: string;
	channel: string | null;
	source: string | null;
	medium: string | null;
	campaign: string | null;
	started_at: Date;
}

/** A goal an event reached, attributed: what the batch records unless an earlier delivery did. */
interface PlannedConversion {
	entry: number;
	goal: string;
	eventId: string;
	currency: string | null;
	facts: EventFacts;
	result: AttributionResult;
}

const EVENT_FACTS = `
SELECT e.event_id::text, e.type, e.name, e.url, l.visitor_id, l.session_id, v.lead_id, e.anonymous_id, e.occurred_at
FROM visitor_events e LEFT JOIN visitor_event_links l ON l.site_id = e.site_id AND l.event_id = e.event_id LEFT JOIN visitors v ON v.id = l.visitor_id
WHERE e.site_id = $1::uuid AND e.event_id = ANY($2::uuid[])`;

/** Each event's session up to and including it, in the Visitor Processor's order (time, then event id). */
const SESSIONS_SO_FAR = `
SELECT c.event_id::text AS at_event, e.event_id::text, e.type, e.url, e.referrer, e.relevance, e.properties, e.context, e.user_agent, e.country, e.occurred_at
FROM visitor_events c
JOIN visitor_event_links cl ON cl.site_id = c.site_id AND cl.event_id = c.event_id
JOIN visitor_event_links el ON el.session_id = cl.session_id
JOIN visitor_events e ON e.site_id = $1::uuid AND e.event_id = el.event_id AND (e.occurred_at, e.event_id) <= (c.occurred_at, c.event_id)
WHERE c.site_id = $1::uuid AND c.event_id = ANY($2::uuid[])
ORDER BY c.event_id, e.occurred_at, e.event_id`;

/** Sessions that start at the same instant come in the Visitor Processor's order: by the id of their first event, which ends their key. */
const VISITOR_SESSIONS = `
SELECT id, visitor_id, channel, source, medium, campaign, started_at FROM visitor_sessions
WHERE site_id = $1::uuid AND visitor_id = ANY($2::uuid[])
ORDER BY started_at, session_key COLLATE "C"`;

const INSERT_CONVERSIONS = `
INSERT INTO conversions (id, site_id, visitor_id, lead_id, session_id, goal, event_id, value, currency, occurred_at)
SELECT c.id, $1::uuid, c.visitor_id, c.lead_id, c.session_id, c.goal, c.event_id, c.value, c.currency, c.occurred_at
FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::numeric[], $9::text[], $10::timestamptz[])
	AS c(id, visitor_id, lead_id, session_id, goal, event_id, value, currency, occurred_at)
ON CONFLICT (site_id, goal, event_id) DO NOTHING
RETURNING id, goal, event_id`;

/** A separate statement from the insert: it sees a conversion another execution committed while the insert waited for it. */
const RECORDED_CONVERSIONS = `
SELECT c.id, c.goal, c.event_id FROM conversions c JOIN unnest($2::text[], $3::text[]) AS k(goal, event_id) ON c.goal = k.goal AND c.event_id = k.event_id
WHERE c.site_id = $1::uuid`;

const INSERT_ATTRIBUTION = `
INSERT INTO attribution_data (id, site_id, conversion_id, model, touchpoint_index, session_id, channel, source, medium, campaign, touched_at, credit, value)
SELECT a.id, $1::uuid, a.conversion_id, a.model::attribution_model, a.touchpoint_index, a.session_id, a.channel, a.source, a.medium, a.campaign, a.touched_at, a.credit, a.value
FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::float8[], $13::numeric[])
	AS a(id, conversion_id, model, touchpoint_index, session_id, channel, source, medium, campaign, touched_at, credit, value)
ON CONFLICT (conversion_id, model, touchpoint_index) DO NOTHING`;

/** A lead converts once: at its first conversion recorded. Leads are locked in id order, the order the Lead Scorer locks them in. */
const MARK_CONVERTED = `
WITH locked AS (
	SELECT l.id, v.at FROM leads l JOIN unnest($1::uuid[], $2::timestamptz[]) AS v(id, at) ON v.id = l.id
	WHERE l.converted_at IS NULL ORDER BY l.id FOR UPDATE OF l)
UPDATE leads SET converted_at = locked.at FROM locked WHERE leads.id = locked.id AND leads.converted_at IS NULL`;

const ATTRIBUTION_OF = `
SELECT conversion_id, model::text, channel, source, campaign, credit, value::text
FROM attribution_data WHERE conversion_id = ANY($1::uuid[])
ORDER BY conversion_id, model, touchpoint_index`;

/**
 * Checks stored events against their goals and records each goal an event reaches, once: the
 * conversion is unique per (site, goal, event) and its attribution rows per (conversion, model,
 * touch), so a replayed event records nothing new and returns what was recorded the first time.
 * A fixed number of statements whatever the number of events: their facts in one read, their
 * visitors' sessions in another, and the conversions, attribution rows and converted leads of
 * the whole batch in one transaction. The rules read the event as stored, never as an item
 * describes it: a conversion is recorded against the stored event, so an item whose fields
 * differ from it must not reach a goal that event did not. Returns, per entry, its conversions
 * in rule order, or why the event cannot be checked yet.
 */
export async function detectConversions(
	db: RawDatabase,
	site: { id: string; domain: string },
	entries: readonly DetectEntry[],
): Promise<Array<RecordedConversion[] | InputError>> {
	if (entries.length === 0) return [];
	const siteId = site.id;
	const ids = [...new Set(entries.map((entry) => entry.eventId.toLowerCase()))];
	const factsOf = new Map((await db.$queryRawUnsafe<EventFacts[]>(EVENT_FACTS, siteId, ids)).map((facts) => [facts.event_id, facts]));

	const results: Array<RecordedConversion[] | InputError> = [];
	// Engagement is read only for the events that reach a goal on every other criterion.
	const candidates: Array<{ entry: number; facts: EventFacts; rules: ConversionRule[] }> = [];
	entries.forEach(({ eventId, rules, options }, index) => {
		const facts = factsOf.get(eventId.toLowerCase());
		if (!facts?.visitor_id) {
			results[index] = new InputError('eventId', `Event ${eventId} has no visitor yet; run the CRM Visitor Processor on it before this node`);
			return;
		}
		const reached = matchConversionRules(facts, { engagementScore: Number.POSITIVE_INFINITY }, rules, { hashRouting: options.hashRouting });
		results[index] = [];
		if (reached.length > 0) candidates.push({ entry: index, facts, rules: reached });
	});
	const engagementAtEvent = await engagementOfSessionsSoFar(
		db,
		siteId,
		candidates.filter(({ rules }) => rules.some((rule) => rule.minEngagementScore !== undefined)).map(({ facts }) => facts.event_id),
		site.domain,
		new Map(candidates.map(({ facts }) => [facts.event_id, facts.anonymous_id])),
	);
	const matched = candidates
		.map((candidate) => {
			const engagementScore = engagementAtEvent.get(candidate.facts.event_id) ?? 0;
			return { ...candidate, rules: candidate.rules.filter((rule) => rule.minEngagementScore === undefined || engagementScore >= rule.minEngagementScore) };
		})
		.filter(({ rules }) => rules.length > 0);
	if (matched.length === 0) return results;

	const visitors = [...new Set(matched.map(({ facts }) => facts.visitor_id as string))];
	const touches = await db.$queryRawUnsafe<StoredTouch[]>(VISITOR_SESSIONS, siteId, visitors);
	const touchesOf = new Map<string, StoredTouch[]>();
	for (const touch of touches) touchesOf.set(touch.visitor_id, [...(touchesOf.get(touch.visitor_id) ?? []), touch]);

	const planned: PlannedConversion[] = [];
	for (const { entry, facts, rules } of matched) {
		const touchpoints: Touchpoint[] = (touchesOf.get(facts.visitor_id as string) ?? [])
			.filter((touch) => touch.started_at.getTime() <= facts.occurred_at.getTime())
			.map((touch, index) => ({
				index,
				sessionId: touch.id,
				channel: touch.channel ?? 'Direct',
				source: touch.source,
				medium: touch.medium,
				campaign: touch.campaign,
				touchedAt: touch.started_at,
			}));
		for (const rule of rules) {
			const result = attributeConversion({ value: rule.value, occurredAt: facts.occurred_at, sessionId: facts.session_id }, touchpoints, entries[entry].options);
			planned.push({ entry, goal: rule.name, eventId: entries[entry].eventId, currency: rule.currency ?? null, facts, result });
		}
	}

	const { conversionOf, inserted, attribution } = await db.$transaction(async (tx) => await record(tx, siteId, planned));
	for (const conversion of planned) {
		const key = `${conversion.goal}\n${conversion.eventId}`;
		const id = conversionOf.get(key) as string;
		(results[conversion.entry] as RecordedConversion[]).push({
			conversionId: id,
			goal: conversion.goal,
			value: conversion.result.value,
			currency: conversion.currency,
			duplicate: inserted.get(key) !== conversion,
			leadId: conversion.facts.lead_id,
			attribution: attribution.get(id) ?? {},
		});
	}
	return results;
}

/** The engagement each event's session had reached at it (engagementAt), by event id; one read for all of them. */
async function engagementOfSessionsSoFar(
	db: RawSql,
	siteId: string,
	eventIds: readonly string[],
	siteDomain: string,
	anonymousIdOf: ReadonlyMap<string, string>,
): Promise<Map<string, number>> {
	const scores = new Map<string, number>();
	if (eventIds.length === 0) return scores;
	const rows = await db.$queryRawUnsafe<Array<StoredEvent & { at_event: string }>>(SESSIONS_SO_FAR, siteId, eventIds);
	for (let start = 0; start < rows.length; ) {
		const atEvent = rows[start].at_event;
		let end = start;
		while (end < rows.length && rows[end].at_event === atEvent) end++;
		scores.set(atEvent, engagementAt(anonymousIdOf.get(atEvent) as string, rows.slice(start, end), siteDomain));
		start = end;
	}
	return scores;
}

/**
 * Writes what a batch recorded: conversions not recorded yet, the attribution rows of those, the
 * converted time of their leads; reads back every conversion's id and credits. The first entry of
 * a (goal, event) in the batch is the one that records it, as if the entries ran one by one.
 */
async function record(tx: RawSql, siteId: string, planned: readonly PlannedConversion[]) {
	const first = new Map<string, PlannedConversion>();
	for (const conversion of planned) {
		const key = `${conversion.goal}\n${conversion.eventId}`;
		if (!first.has(key)) first.set(key, conversion);
	}
	const fresh = [...first.values()];
	const newIds = uuidv7s(fresh.length);
	const written = await tx.$queryRawUnsafe<Array<{ id: string; goal: string; event_id: string }>>(
		INSERT_CONVERSIONS,
		siteId,
		newIds,
		fresh.map((c) => c.facts.visitor_id),
		fresh.map((c) => c.facts.lead_id),
		fresh.map((c) => c.facts.session_id),
		fresh.map((c) => c.goal),
		fresh.map((c) => c.eventId),
		fresh.map((c) => c.result.value),
		fresh.map((c) => c.currency),
		fresh.map((c) => c.facts.occurred_at),
	);
	const conversionOf = new Map(written.map((row) => [`${row.goal}\n${row.event_id}`, row.id]));
	const inserted = new Map(written.map((row) => [`${row.goal}\n${row.event_id}`, first.get(`${row.goal}\n${row.event_id}`) as PlannedConversion]));
	const earlier = fresh.filter((c) => !conversionOf.has(`${c.goal}\n${c.eventId}`));
	if (earlier.length > 0) {
		const recorded = await tx.$queryRawUnsafe<Array<{ id: string; goal: string; event_id: string }>>(
			RECORDED_CONVERSIONS,
			siteId,
			earlier.map((c) => c.goal),
			earlier.map((c) => c.eventId),
		);
		for (const row of recorded) conversionOf.set(`${row.goal}\n${row.event_id}`, row.id);
	}

	const rows = [...inserted].flatMap(([key, conversion]) => {
		const touchOf = new Map(conversion.result.touchpoints.map((touch) => [touch.index, touch]));
		return conversion.result.rows.map((row) => ({ conversionId: conversionOf.get(key) as string, row, touch: touchOf.get(row.touchpointIndex) as Touchpoint }));
	});
	if (rows.length > 0) {
		await tx.$executeRawUnsafe(
			INSERT_ATTRIBUTION,
			siteId,
			uuidv7s(rows.length),
			rows.map((r) => r.conversionId),
			rows.map((r) => r.row.model),
			rows.map((r) => r.row.touchpointIndex),
			rows.map((r) => r.touch.sessionId ?? null),
			rows.map((r) => r.touch.channel),
			rows.map((r) => r.touch.source ?? null),
			rows.map((r) => r.touch.medium ?? null),
			rows.map((r) => r.touch.campaign ?? null),
			rows.map((r) => r.touch.touchedAt),
			rows.map((r) => r.row.credit),
			rows.map((r) => r.row.value),
		);
	}
	const convertedAt = new Map<string, Date>();
	for (const conversion of inserted.values()) {
		const { lead_id: leadId, occurred_at: at } = conversion.facts;
		if (!leadId) continue;
		const known = convertedAt.get(leadId);
		if (!known || at < known) convertedAt.set(leadId, at);
	}
	if (convertedAt.size > 0) await tx.$executeRawUnsafe(MARK_CONVERTED, [...convertedAt.keys()], [...convertedAt.values()]);

	const attribution = new Map<string, RecordedConversion['attribution']>();
	const credits = await tx.$queryRawUnsafe<Array<{ conversion_id: string; model: string; channel: string; source: string | null; campaign: string | null; credit: number; value: string }>>(
		ATTRIBUTION_OF,
		[...new Set(conversionOf.values())],
	);
	for (const credit of credits) {
		let models = attribution.get(credit.conversion_id);
		if (!models) attribution.set(credit.conversion_id, (models = {}));
		(models[credit.model] ??= []).push({ channel: credit.channel, source: credit.source, campaign: credit.campaign, credit: credit.credit, value: credit.value });
	}
	return { conversionOf, inserted, attribution };
}
