import { z } from 'zod/v4';

import { DELIVERY_ENTRY_ARRAYS, EMAIL_EVENT_TYPES } from './deliveryKinds';
import { leadPayloadSchema } from './lead';
import { EARLIEST_STORED_TIME, EVENT_TYPES, identifier, LATEST_CLIENT_TIME, observed, storablePath, storableText, TRACK_LIMITS } from './tracking';

/**
 * What the receiver's outbox posts to a workflow's CRM Tracker Trigger (server/outbox/dispatcher.ts
 * builds it, the trigger parses it once and hands its entries to the nodes as items), and the
 * delivery a CRM Hand Off posts to the next workflow. Objects keep fields they do not name, so
 * a newer receiver can add one without an older trigger refusing its deliveries.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const uuid = (what: string) =>
	z
		.string({ error: `must be ${what} (a UUID)` })
		.regex(UUID, { error: `must be ${what} (a UUID)` })
		.overwrite((value) => value.toLowerCase());

const TIME = 'must be an ISO 8601 time from the year 1900 to 9999, such as 2026-11-20T09:00:00.000Z';

/** A time Postgres stores and a person means: what the receiver sends is ingest time, within it. */
const time = z.string({ error: TIME }).refine(
	(value) => {
		const at = Date.parse(value);
		return at >= EARLIEST_STORED_TIME && at <= LATEST_CLIENT_TIME;
	},
	{ error: TIME },
);

const absoluteUrl = observed(TRACK_LIMITS.maxUrlLength).refine(
	(value) => {
		try {
			new URL(value);
			return true;
		} catch {
			return false;
		}
	},
	{ error: 'must be an absolute URL' },
);

/** What a page shows, cleaned to the tracking contract's length as the receiver cleans it (so nothing it delivers is refused). */
const shown = (max: number) => observed(max).nullable();

/** A page's path; the receiver's (a URL's, so percent-encoded ASCII) are within it as they are. */
const path = observed(TRACK_LIMITS.maxUrlLength).overwrite(storablePath);

// Postgres stores no NUL in text or jsonb, and no half of a character (storableText).
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /[\u0000\p{Surrogate}]/u;
// eslint-disable-next-line no-control-regex
const EVERY_NUL = /\u0000/g;

function storableJson(value: unknown): unknown {
	if (typeof value === 'string') return UNSTORABLE.test(value) ? storableText(value.replace(EVERY_NUL, '')) : value;
	if (value === null || typeof value !== 'object') return value;
	if (Array.isArray(value)) return value.map(storableJson);
	const clean: Record<string, unknown> = {};
	for (const [key, inner] of Object.entries(value)) clean[storableJson(key) as string] = storableJson(inner);
	return clean;
}

const record = z.record(z.string(), z.unknown());

/**
 * Properties or context as another sender may shape them, keys and string values at any depth
 * made storable: sent as jsonb, one NUL or lone surrogate would fail the statement of every event.
 */
const storableRecord = z.preprocess(storableJson, record);

/** A tracking event as stored in visitor_events (the dispatcher's EVENTS_FOR_DELIVERY selects exactly these). */
export const deliveredEventSchema = z.looseObject({
	id: uuid('the event’s id'),
	anonymousId: identifier,
	/** The tracker's session id; null for events another sender stored without one. */
	sessionId: identifier.nullable(),
	type: z.enum(EVENT_TYPES, { error: `must be one of ${EVENT_TYPES.join(', ')}` }),
	name: shown(100),
	url: absoluteUrl.nullable(),
	path: path.nullable(),
	title: shown(512),
	referrer: shown(TRACK_LIMITS.maxUrlLength),
	relevance: z.number().int().min(1).max(10).nullable(),
	/** What the tracker sent; a session_end's also holds the receiver's engagementScore and engagement. */
	props: storableRecord.nullable(),
	context: storableRecord.nullable(),
	/** The request's, as the receiver keeps it (its first 512 characters). */
	userAgent: shown(512),
	/** An ISO 3166-1 alpha-2 code from the receiver; another sender's name of a country is kept as text. */
	country: shown(100),
	occurredAt: time,
	receivedAt: time,
});

/**
 * An event as a node takes it: the delivered event, or one another source built with only what
 * sessions need (id, anonymousId, type, occurredAt); the other fields may be left out.
 */
export const eventItemSchema = deliveredEventSchema.partial({
	sessionId: true,
	name: true,
	url: true,
	path: true,
	title: true,
	referrer: true,
	relevance: true,
	props: true,
	context: true,
	userAgent: true,
	country: true,
	receivedAt: true,
});

/** A lead as stored in the outbox by POST /api/lead (server/ingest/store.ts): the submission, its form fields mapped and dropped. */
export const deliveredLeadSchema = z.looseObject({
	kind: z.literal('lead'),
	/** The identify event the submission was stored as: the idempotency key of the lead downstream. */
	eventId: uuid('the submission’s event id'),
	lead: leadPayloadSchema.omit({ fields: true }),
	/** lib/email.ts emailHash of the address, for suppressions without the address. */
	emailHash: z.string().min(1),
	country: z.string().nullable(),
	receivedAt: time,
});

/** An open, click, unsubscribe or double opt-in confirmation of an email (server/routes/email.ts), for the Email Orchestrator. */
export const deliveredEmailEventSchema = z.looseObject({
	kind: z.literal('email-event'),
	type: z.enum(EMAIL_EVENT_TYPES, { error: `must be one of ${EMAIL_EVENT_TYPES.join(', ')}` }),
	messageId: uuid('the email message’s id'),
	leadId: uuid('the lead’s id').nullable(),
	/** The email_events row; for a confirmation, the consent record it wrote. */
	eventId: uuid('the email event’s id'),
	/** A click's link; null for an open. Unsubscribes have none. */
	url: z.string().nullable().optional(),
	/** Whether this is the message's first open (first click); unsubscribes have none. */
	first: z.boolean().optional(),
	occurredAt: time,
});

/** Items as a node or trigger takes them: what the nodes need is required, the rest may be left out. */
export const leadItemSchema = deliveredLeadSchema.partial({ kind: true, eventId: true, emailHash: true, country: true, receivedAt: true });
export const emailEventItemSchema = deliveredEmailEventSchema.partial({ kind: true, leadId: true, eventId: true, occurredAt: true });

const envelope = {
	/** The site the delivery is signed for; the trigger refuses a body naming another. */
	site: z.string().min(1),
	siteId: z.string(),
	/** The workflow it is for (integrations.webhookEndpoints[].workflow, or the hand-off's path). */
	destination: z.string(),
	/** Also in the x-crm-delivery header; a retry carries the same one. */
	deliveryId: z.string().min(1),
	sentAt: time,
};

/** What the receiver's dispatcher posts: every field present, as it stores and forwards them. */
export const receiverDeliverySchema = z.looseObject({
	...envelope,
	events: z.array(deliveredEventSchema),
	leads: z.array(deliveredLeadSchema),
	emailEvents: z.array(deliveredEmailEventSchema),
});

/**
 * What a CRM Tracker Trigger accepts: the receiver's deliveries, a CRM Hand Off's (`items`, the
 * items of another workflow, each with its own fields), and deliveries written by hand (the
 * test payloads, /api/test-microworkflow, scripts/n8n-node-tester), which may leave out what no
 * node needs. Its site is the signed one; it holds at least one of the entry arrays.
 */
export const deliverySchema = z
	.looseObject({})
	.refine((body) => DELIVERY_ENTRY_ARRAYS.some((key) => key in body), { error: 'is required: a delivery holds "events", "leads", "emailEvents" or "items"', path: ['events'] })
	.pipe(
		z.looseObject({
			site: envelope.site,
			siteId: envelope.siteId.optional(),
			destination: envelope.destination.optional(),
			deliveryId: envelope.deliveryId.optional(),
			sentAt: envelope.sentAt.optional(),
			events: z.array(eventItemSchema).default([]),
			leads: z.array(leadItemSchema).default([]),
			emailEvents: z.array(emailEventItemSchema).default([]),
			items: z.array(record, { error: 'must be an array of objects (the items handed on)' }).optional(),
		}),
	);

export type DeliveredEvent = z.infer<typeof deliveredEventSchema>;
export type EventItem = z.infer<typeof eventItemSchema>;
export type DeliveredLead = z.infer<typeof deliveredLeadSchema>;
export type LeadItem = z.infer<typeof leadItemSchema>;
export type DeliveredEmailEvent = z.infer<typeof deliveredEmailEventSchema>;
export type EmailEventItem = z.infer<typeof emailEventItemSchema>;
export type ReceiverDelivery = z.infer<typeof receiverDeliverySchema>;
/** A delivery as the trigger parsed it; a ReceiverDelivery is one. */
export type Delivery = z.infer<typeof deliverySchema>;
