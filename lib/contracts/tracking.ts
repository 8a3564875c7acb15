import { z } from 'zod/v4';

/** Limits shared by the tracker (which batches to stay under them) and the receiver (which enforces them). */
export const TRACK_LIMITS = {
	maxEventsPerBatch: 50,
	maxBatchBytes: 64 * 1024,
	maxUrlLength: 2048,
	maxPropertyKeys: 50,
	maxPropertyValueLength: 1000,
	maxIdLength: 64,
} as const;

export const EVENT_TYPES = [
	'pageview',
	'click',
	'outbound',
	'download',
	'form_submit',
	'scroll',
	'engagement',
	'session_end',
	'identify',
	'custom',
] as const;

/**
 * The short keys of the tracker's session record (tracker/src/rules.ts, Session), which it sends
 * as a session_end event's properties, and the names the receiver stores them under. The record
 * also counts the session's events by type, under the type's name (pageview: 3).
 */
export const SESSION_KEYS = {
	s: 'start',
	l: 'last',
	c: 'campaign',
	d: 'maxScrollDepth',
	g: 'engagedMs',
	r: 'relevanceSum',
	n: 'entry',
	x: 'exit',
} as const;

export const CLICK_ID_PARAMS = [
	'gclid',
	'gbraid',
	'wbraid',
	'dclid',
	'fbclid',
	'msclkid',
	'ttclid',
	'li_fat_id',
	'twclid',
	'yclid',
] as const;

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
// Control characters other than tab/newline never belong in tracking strings and break log lines.
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
/** CONTROL_CHARS, every one, for replace(). */
export const EVERY_CONTROL_CHAR = new RegExp(CONTROL_CHARS.source, 'g');

/** Half of a character: a UTF-16 surrogate without its partner (with the u flag, a whole pair is one code point and does not match). */
const LONE_SURROGATE = /\p{Surrogate}/gu;
const isHighSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;

/**
 * A string as Postgres can hold it: at most `max` UTF-16 units, cut before a character rather than
 * through it (an emoji is two units), with every lone surrogate replaced by U+FFFD. UTF-8, and so
 * Postgres, has no encoding for half a character: in a jsonb value JSON.stringify keeps it as a
 * \ud800 escape, which Postgres refuses, failing the whole statement and every batch in it.
 * Every string that reaches storage passes here, JSON keys too.
 */
export function storableText(value: string, max = Infinity): string {
	const cut = value.length <= max ? value : value.slice(0, isHighSurrogate(value.charCodeAt(max - 1)) ? max - 1 : max);
	return cut.replace(LONE_SURROGATE, '\ufffd');
}

const text = (max: number) =>
	z
		.string()
		.max(max, { error: `must be at most ${max} characters` })
		.refine((value) => !CONTROL_CHARS.test(value), { error: 'must not contain control characters' })
		.overwrite((value) => storableText(value));

/**
 * What a page shows (its URL, title and referrer, a link's or form's name, property values), taken
 * at the contract's length and without control characters: cleaned rather than refused, since an
 * odd page title is no mistake of the sender's, and refusing it would lose the whole batch. Only
 * strings are cleaned; anything else is still refused.
 */
export const observed = (max: number) =>
	z.preprocess((value) => (typeof value == 'string' ? storableText(value.replace(EVERY_CONTROL_CHAR, ''), max) : value), z.string());

/** An id of the tracker's (a site key, a visitor's or a session's): it keys rows and indexes, so a wrong one is refused, not cut. */
export const identifier = text(TRACK_LIMITS.maxIdLength).min(1, { error: 'must not be empty' });

/**
 * The UTF-8 bytes of a page's path that visitor_events' and the page reports' indexes take with
 * room to spare: an index row holds at most a third of an 8 KB page.
 */
export const MAX_PATH_BYTES = 2048;

/**
 * A page's path as it is stored, at most MAX_PATH_BYTES of UTF-8, cut before a character (or a
 * %XX escape) rather than through it. A URL's path is percent-encoded: 2,048 characters of a URL
 * outside ASCII are 18,000 characters of path, which would fail the whole insert.
 */
export function storablePath(path: string): string {
	if (path.length * 3 <= MAX_PATH_BYTES) return path;
	let bytes = 0;
	let end = 0;
	for (const char of path) {
		const code = char.codePointAt(0) as number;
		bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
		if (bytes > MAX_PATH_BYTES) break;
		end += char.length;
	}
	const cut = path.slice(0, end);
	return end < path.length ? cut.replace(/%[0-9A-Fa-f]?$/, '') : cut;
}

const isHttpUrl = (value: string) => {
	try {
		const { protocol } = new URL(value);
		return protocol === 'http:' || protocol === 'https:';
	} catch {
		return false;
	}
};

const httpUrl = observed(TRACK_LIMITS.maxUrlLength).refine(isHttpUrl, { error: 'must be an absolute http(s) URL' });

const propertyValue = z.union([
	observed(TRACK_LIMITS.maxPropertyValueLength),
	z.number().finite(),
	z.boolean(),
	z.null(),
]);

/** Names every JavaScript object answers to: as a property's name they are read as the object's own machinery, not as data. */
const RESERVED_PROPERTY_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The names of an object's properties, checked before its values: a reserved name made the record
 * check say the object was no record ("constructor") or drop the property and what it held
 * ("__proto__"), and a control character was "Invalid key in record", naming no fix.
 */
const propertyNames = z.unknown().superRefine((value, context) => {
	if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
	for (const name of Object.keys(value)) {
		const problem = RESERVED_PROPERTY_NAMES.has(name)
			? `is a name every JavaScript object reserves ("${name}"): rename the property`
			: CONTROL_CHARS.test(name)
				? 'is a property name with a control character: property names must not contain control characters'
				: null;
		if (problem) context.addIssue({ code: 'custom', path: [name], input: name, message: problem, continue: false });
	}
});

export const propertiesSchema = propertyNames.pipe(
	z.record(text(100), propertyValue).refine((props) => Object.keys(props).length <= TRACK_LIMITS.maxPropertyKeys, {
		error: `must have at most ${TRACK_LIMITS.maxPropertyKeys} keys`,
	}),
);

/** Campaign parameters, click ids and device hints captured by the tracker on landing. */
export const eventContextSchema = z.strictObject({
	utm_source: text(200).optional(),
	utm_medium: text(200).optional(),
	utm_campaign: text(200).optional(),
	utm_term: text(200).optional(),
	utm_content: text(200).optional(),
	utm_id: text(200).optional(),
	utm_source_platform: text(200).optional(),
	clickIds: z.partialRecord(z.enum(CLICK_ID_PARAMS), text(500)).optional(),
	screen: text(20).optional(),
	language: text(35).optional(),
	timezone: text(64).optional(),
	/** The tracker's own guess that it runs under automation (navigator.webdriver, headless UA). */
	automation: z.boolean().optional(),
});

/** The earliest event time the receiver stores: older times are a client clock gone wrong. */
export const EARLIEST_EVENT_TIME = Date.UTC(2020, 0, 1);
/**
 * The latest time a client clock may say: the end of the year 9999, the last of four-digit ISO years.
 * A JS Date ends at the year 275760 and a Postgres timestamptz at 294276, and no clock is near either.
 */
export const LATEST_CLIENT_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A client clock within this of ours is trusted as it is. The offset between a batch's sentAt and
 * its arrival is the clock's skew plus the transit time, and transit varies by batch (a beacon
 * sent as a page closes may arrive after the next page's first batch): correcting by it would
 * reorder one browser's events, and the Visitor Processor would split a visit where a page view
 * lands before the landing page. A minute is far above transit and far below a session's timeout.
 */
export const TRUSTED_CLOCK_SKEW_MS = 60_000;

/**
 * The latest time an event may say it happened: when a receiver stamped it received or, for an
 * event no receiver stamped (another sender's, through n8n), the node's clock; either give or take
 * TRUSTED_CLOCK_SKEW_MS, as the receiver's own stamp is the database's clock and its bound of a
 * client's time the receiver's. A later time would put a session in the future, out of every
 * report's range and of the retention's reach.
 */
export function latestEventTime(receivedAt: number | undefined, now: number): number {
	return (receivedAt ?? now) + TRUSTED_CLOCK_SKEW_MS;
}

/** The earliest time stored from anyone but the tracker (a node's parameter, another sender's event): Postgres holds earlier ones, but none is a CRM's. */
export const EARLIEST_STORED_TIME = Date.UTC(1900, 0, 1);

const clientTime = z
	.number()
	.int({ error: 'must be an integer (milliseconds since the epoch)' })
	.max(LATEST_CLIENT_TIME, { error: 'must be a time before the year 10000 (milliseconds since the epoch)' });

export const trackEventSchema = z.strictObject({
	/** Client-generated UUIDv7: the idempotency key of the event within its site. */
	id: z.string().regex(UUID_V7, { error: 'must be a UUIDv7 (version nibble 7, RFC 9562 variant)' }),
	type: z.enum(EVENT_TYPES),
	/** Name of a custom event, or a label refining the type (e.g. the form id of a form_submit). */
	name: observed(100).optional(),
	/** Client time in milliseconds since the epoch. */
	ts: clientTime.min(EARLIEST_EVENT_TIME, { error: 'must be after 2020-01-01 (milliseconds since the epoch)' }),
	anonymousId: identifier,
	sessionId: identifier,
	url: httpUrl,
	title: observed(512).optional(),
	/** A referrer that is no http(s) URL (an app's android-app://…, a mangled one) is taken as none (''). */
	referrer: observed(TRACK_LIMITS.maxUrlLength)
		.transform((value) => (isHttpUrl(value) ? value : ''))
		.optional(),
	relevance: z.number().int().min(1).max(10).optional(),
	props: propertiesSchema.optional(),
	context: eventContextSchema.optional(),
});

export const CONSENT_STATES = ['granted', 'denied', 'unknown'] as const;

export const trackBatchSchema = z.strictObject({
	/** Public key of the site (data-site on the script tag). */
	site: identifier,
	/** Client clock when the batch was sent, to correct skew in event times. */
	sentAt: clientTime.positive().optional(),
	consent: z.enum(CONSENT_STATES).optional(),
	/** The banner or policy version the visitor's consent choice was made under; recorded with the choice. */
	consentVersion: text(64)
		.min(1, { error: 'must not be empty' })
		.optional()
		.meta({ description: 'The site’s own label of the consent banner or privacy policy the visitor’s choice (`consent`) was made under, e.g. `2026-11`; recorded with the choice. At most 64 characters.' }),
	/** The tracker's own finding that the browser is automated (navigator.webdriver): every event of the batch is a bot's. */
	automation: z.boolean().optional(),
	events: z
		.array(trackEventSchema)
		.min(1, { error: 'must hold at least one event' })
		.max(TRACK_LIMITS.maxEventsPerBatch, { error: `must hold at most ${TRACK_LIMITS.maxEventsPerBatch} events` }),
});

export type TrackEventType = (typeof EVENT_TYPES)[number];
export type ClickIdParam = (typeof CLICK_ID_PARAMS)[number];
export type ConsentState = (typeof CONSENT_STATES)[number];
export type EventContext = z.infer<typeof eventContextSchema>;
export type TrackEvent = z.infer<typeof trackEventSchema>;
export type TrackBatch = z.infer<typeof trackBatchSchema>;
