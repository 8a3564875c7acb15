import { createHash } from 'node:crypto';
import { InputError } from '../shared/inputError';
import { checkedJson, checkedText, checkedTime, shownValue } from '../shared/parameters';

/** Activity types are short machine names such as `page_viewed` or `email.opened`. */
export const ACTIVITY_TYPE = /^[a-z][a-z0-9_.:-]{0,63}$/;
const MAX_DESCRIPTION = 2000;
const MAX_DATA_BYTES = 32 * 1024;

export interface ActivityDraft {
	type: string;
	description: string;
	data?: unknown;
	/** ISO time or epoch milliseconds; absent means "now". */
	occurredAt?: string | number | Date;
	dedupeKey?: string;
	/** Identifies the subject so a derived dedupe key differs between leads and visitors. */
	subject: string;
}

export interface ActivityRecord {
	type: string;
	description: string;
	data: Record<string, unknown> | null;
	occurredAt: Date;
	dedupeKey: string | null;
}

/** An activity type as written, trimmed; anything else is refused, naming `field`. */
export function checkedActivityType(field: string, value: string): string {
	const type = value.trim();
	if (!ACTIVITY_TYPE.test(type)) {
		throw new InputError(field, `${type === '' ? '""' : shownValue(type)} is not an activity type; start with a lowercase letter, then lowercase letters, digits and _ . : - (e.g. page_viewed), at most 64 characters`);
	}
	return type;
}

/**
 * Validates one activity and decides its dedupe key: the given one, or — when the time of
 * the activity is known — a hash of what it says, so an n8n retry of the same item writes
 * nothing new. An activity stamped "now" has no natural identity and is not deduplicated.
 */
export function buildActivity(draft: ActivityDraft, now: Date = new Date()): ActivityRecord {
	const type = checkedActivityType('activityType', checkedText('activityType', draft.type));
	const description = checkedText('description', draft.description).trim();
	if (!description) throw new InputError('description', 'is empty; describe what happened, e.g. "Visited the pricing page"');
	if (description.length > MAX_DESCRIPTION) throw new InputError('description', `is ${description.length} characters; at most ${MAX_DESCRIPTION} are kept`);

	let data: Record<string, unknown> | null = null;
	if (draft.data !== undefined && draft.data !== null && draft.data !== '') {
		const parsed = typeof draft.data === 'string' ? parseJson(draft.data) : draft.data;
		if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
			throw new InputError('data', 'must be a JSON object such as {"page": "/pricing"}');
		}
		if (Buffer.byteLength(JSON.stringify(parsed)) > MAX_DATA_BYTES) {
			throw new InputError('data', `is larger than ${MAX_DATA_BYTES / 1024} KB; store a summary instead`);
		}
		data = checkedJson('data', parsed) as Record<string, unknown>;
	}

	const givenTime = checkedTime('occurredAt', draft.occurredAt);
	const occurredAt = givenTime ?? now;
	const given = checkedText('dedupeKey', draft.dedupeKey).trim();
	if (given && given.length > 200) throw new InputError('dedupeKey', 'is longer than 200 characters');
	const dedupeKey = given
		? given
		: givenTime
			? createHash('sha256').update(JSON.stringify([draft.subject, type, occurredAt.toISOString(), description, data])).digest('hex')
			: null;
	return { type, description, data, occurredAt, dedupeKey };
}

function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch (error) {
		throw new InputError('data', `is not valid JSON (${(error as Error).message})`);
	}
}

/** What a CRM item reports, as the Log CRM Outcome operation writes it on a timeline. */
export interface OutcomeActivity {
	subject: 'lead' | 'visitor';
	/** The lead's id or address, or the visitor's anonymous id. */
	reference: string;
	type: 'conversion' | 'stage_changed' | 'lead_scored';
	description: string;
	data: Record<string, unknown>;
	dedupeKey: string;
}

interface OutcomeConversion {
	conversionId?: unknown;
	goal?: unknown;
	value?: unknown;
	currency?: unknown;
}

type Loose = Record<string, unknown> | undefined;

/**
 * The activity of one item of the CRM nodes: a Conversion Detector's converting event
 * (`conversions`), or a Lead Scorer's result (`scoring`, with `stageChange` when the stage moved
 * and the Enricher's `enrichment.tags`). Written on the lead's timeline when the item names a lead
 * (`leadId` or `email`), else on its visitor's (`anonymousId`); its dedupe key is what happened, so
 * a retried delivery logs nothing twice.
 */
export function outcomeActivity(json: Record<string, unknown>): OutcomeActivity {
	const lead = (json.leadId || json.email) as string | undefined;
	const subject = lead ? 'lead' : 'visitor';
	const reference = String((lead ? lead : json.anonymousId) ?? '');
	if (!reference) throw new InputError('anonymousId', 'is missing, and so are leadId and email: the item names no lead or visitor whose timeline the outcome belongs on');
	if (Array.isArray(json.conversions)) {
		const conversions = json.conversions as OutcomeConversion[];
		return {
			subject,
			reference,
			type: 'conversion',
			description: `Converted: ${conversions.map((c) => `${String(c.goal)}${c.value ? ` (${String(c.value)}${c.currency ? ` ${String(c.currency)}` : ''})` : ''}`).join(', ')}`,
			data: { eventId: json.id, conversions: conversions.map((c) => ({ id: c.conversionId, goal: c.goal, value: c.value, currency: c.currency })) },
			dedupeKey: `conversion:${conversions.map((c) => String(c.conversionId)).join(',')}`,
		};
	}
	const scoring = json.scoring as Loose;
	if (typeof scoring !== 'object' || scoring === null) {
		throw new InputError('scoring', 'is missing: Log CRM Outcome takes items of the Conversion Detector (with "conversions") or of the Lead Scorer (with "scoring"); use Log Activity for anything else');
	}
	const stageChange = json.stageChange as Loose;
	const tags = ((json.enrichment as Loose)?.tags as unknown[] | undefined) ?? [];
	const data = { score: scoring.total, engagement: scoring.engagement, fit: scoring.fit, stageChange, tags };
	if (stageChange) {
		return {
			subject,
			reference,
			type: 'stage_changed',
			description: `Stage ${String(stageChange.from)} → ${String(stageChange.to)} at score ${String(scoring.total)}`,
			data,
			dedupeKey: `stage:${reference}:${String(stageChange.to)}`,
		};
	}
	return {
		subject,
		reference,
		type: 'lead_scored',
		description: `Score ${String(scoring.total)}${tags.length ? ` · ${tags.join(', ')}` : ''}`,
		data,
		dedupeKey: `scored:${reference}:${String(scoring.total)}`,
	};
}
