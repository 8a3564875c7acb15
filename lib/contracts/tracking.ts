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

const text = (max: number) =>
	z
		.string()
		.max(max, { error: `must be at most ${max} characters` })
		.refine((value) => !CONTROL_CHARS.test(value), { error: 'must not contain control characters' });

/**
 * What a page shows (its URL, title and referrer, a link's or form's name, property values), taken
 * at the contract's length and without control characters: cleaned rather than refused, since an
 * odd page title is no mistake of the sender's, and refusing it would lose the whole batch. Only
 * strings are cleaned; anything else is still refused.
 */
export const observed = (max: number) =>
	z.preprocess((value) => (typeof value == 'string' ? value.replace(EVERY_CONTROL_CHAR, '').slice(0, max) : value), z.string());

const identifier = text(TRACK_LIMITS.maxIdLength).min(1, { error: 'must not be empty' });

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

export const propertiesSchema = z
	.record(text(100), propertyValue)
	.refine((props) => Object.keys(props).length <= TRACK_LIMITS.maxPropertyKeys, {
		error: `must have at most ${TRACK_LIMITS.maxPropertyKeys} keys`,
	});

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

export const trackEventSchema = z.strictObject({
	/** Client-generated UUIDv7: the idempotency key of the event within its site. */
	id: z.string().regex(UUID_V7, { error: 'must be a UUIDv7 (version nibble 7, RFC 9562 variant)' }),
	type: z.enum(EVENT_TYPES),
	/** Name of a custom event, or a label refining the type (e.g. the form id of a form_submit). */
	name: observed(100).optional(),
	/** Client time in milliseconds since the epoch. */
	ts: z
		.number()
		.int({ error: 'must be an integer (milliseconds since the epoch)' })
		.min(Date.UTC(2020, 0, 1), { error: 'must be after 2020-01-01 (milliseconds since the epoch)' }),
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
	sentAt: z.number().int().positive().optional(),
	consent: z.enum(CONSENT_STATES).optional(),
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
