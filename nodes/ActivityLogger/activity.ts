import { createHash } from 'node:crypto';
import { InputError } from '../shared/inputError';

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

function toDate(value: ActivityDraft['occurredAt']): Date {
	const date = value instanceof Date ? value : new Date(value as string | number);
	if (Number.isNaN(date.getTime())) {
		throw new InputError('occurredAt', `"${String(value)}" is not a date; use an ISO 8601 time such as 2026-11-23T10:00:00Z`);
	}
	return date;
}

/**
 * Validates one activity and decides its dedupe key: the given one, or — when the time of
 * the activity is known — a hash of what it says, so an n8n retry of the same item writes
 * nothing new. An activity stamped "now" has no natural identity and is not deduplicated.
 */
export function buildActivity(draft: ActivityDraft, now: Date = new Date()): ActivityRecord {
	const type = draft.type.trim();
	if (!ACTIVITY_TYPE.test(type)) {
		throw new InputError('activityType', `"${type}" is not an activity type; use lowercase letters, digits and _ . : - (e.g. page_viewed), at most 64 characters`);
	}
	const description = draft.description.trim();
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
		data = parsed as Record<string, unknown>;
	}

	const explicitTime = draft.occurredAt !== undefined && draft.occurredAt !== '';
	const occurredAt = explicitTime ? toDate(draft.occurredAt) : now;
	const given = draft.dedupeKey?.trim();
	if (given && given.length > 200) throw new InputError('dedupeKey', 'is longer than 200 characters');
	const dedupeKey = given
		? given
		: explicitTime
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
