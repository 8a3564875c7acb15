import { z } from 'zod/v4';

import { EVENT_TYPES, type TrackerSettings } from '../../lib/contracts';
import type { campaignAnalytics, conversionAnalytics } from '../analytics/campaigns';
import type { leadAnalytics } from '../analytics/leads';
import type { SiteOutbox, visitorAnalytics } from '../analytics/queries';
import { SCROLL_DEPTHS } from '../analytics/rollup';
import type { MailboxEntry } from '../mail/mailboxPages';

/**
 * The receiver's answers, as zod schemas. The requests have their zod contracts in the routes and
 * lib/contracts; the answers are built by the routes and the analytics queries with TypeScript types
 * only, so their schemas are here. Each one whose shape has a type of its own is checked against it
 * at compile time (`answerOf`): a field added to, renamed in or dropped from the type fails the
 * typecheck until the document says the same.
 */

/** What JSON.stringify makes of a value of type T: dates become ISO strings, undefined fields vanish. */
type Json<T> = T extends Date
	? string
	: T extends ReadonlyArray<infer Item>
		? Array<Json<Item>>
		: T extends object
			? { [K in keyof T as T[K] extends undefined ? never : K]: Json<T[K]> }
			: T;

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * The schema, typed so that it compiles only when its output is exactly the JSON of T (each is
 * assignable to the other): the answer's schema cannot drift from the code that builds the answer.
 */
export function answerOf<T>() {
	return <S extends z.ZodType>(schema: S & (Same<z.output<S>, Json<T>> extends true ? unknown : { error: 'the schema does not match the type'; schema: z.output<S>; type: Json<T> })): S => schema;
}

const count = z.int().min(0);
const ratio = z.number().nullable();
const instant = z.iso.datetime({ offset: false });
/** The instant a report's figures are counted up to (server/analytics/rollup.ts rollupsForRead). */
const asOf = instant.meta({
	description: 'Every visit and conversion recorded before this instant is counted. It is the time of the request, or on a busy site the time of the oldest change the receiver is still adding to the figures (within seconds).',
});

/**
 * Every error answer of the receiver (server/routes/problems.ts sendProblem): an RFC 9457 problem
 * document (`application/problem+json`) with a stable code to branch on, a sentence for a person,
 * and for a bad input the fields to fix.
 */
export const problemSchema = z
	.looseObject({
		type: z.literal('about:blank').meta({ description: 'RFC 9457: no problem type beyond the HTTP status; branch on `error`.' }),
		title: z.string().meta({ description: 'The HTTP status’s phrase, e.g. `Bad Request`.' }),
		status: z.int().meta({ description: 'The HTTP status of the answer.' }),
		detail: z.string().meta({ description: 'What went wrong and how to fix it, in a sentence for a person.' }),
		error: z.string().meta({ description: 'A stable code to branch on, such as `invalid_parameter`; the codes each operation answers are listed with it.' }),
		message: z.string().meta({ description: 'The same sentence as `detail`, under the name answers before 0.2 used.' }),
		issues: z
			.array(
				z.strictObject({
					field: z.string().meta({ description: 'The field, parameter or header to fix, e.g. `events[0].url`, `from` or `Authorization`.' }),
					message: z.string().meta({ description: 'What is wrong with it and what is expected instead.' }),
				}),
			)
			.optional()
			.meta({ description: 'One entry per bad field, for answers about the request’s input.' }),
	})
	.meta({ description: 'An error answer. Further members may carry details (e.g. `workflow` and `durationMs` of a failed test delivery).' });

/**
 * What a workflow's CRM Tracker Trigger answers a refused delivery (nodes/CrmTrackerTrigger). The
 * embedded engine's own refusals are problem documents.
 */
export const triggerRefusalSchema = z.looseObject({ error: z.string(), message: z.string(), field: z.string().optional() });

/** GET /api/track: lib/contracts/trackerSettings.ts. */
export const trackerSettingsSchema = answerOf<TrackerSettings>()(
	z.strictObject({
		rules: z
			.array(
				z.strictObject({
					type: z.enum(EVENT_TYPES).optional(),
					name: z.string().optional(),
					path: z.string().optional().meta({ description: 'A case-insensitive regular expression over the page’s path.' }),
					relevance: z.int().min(1).max(10),
				}),
			)
			.meta({ description: 'Relevance rules in order; the first that matches an event decides its relevance. The last rules match any event.' }),
		threshold: z.number().meta({ description: 'Events scored below it are not sent.' }),
		timeout: z.number().meta({ description: 'Inactivity in milliseconds after which the next event starts a new session.' }),
		maxLength: z.number().meta({ description: 'The longest session, in milliseconds.' }),
		hashRouting: z.boolean(),
		cookieless: z.boolean(),
		consent: z.boolean().meta({ description: 'Whether tracking waits for the visitor’s consent.' }),
		downloads: z.string().meta({ description: 'A case-insensitive regular expression over a link’s path: the files whose links count as downloads.' }),
	}),
);

/** POST /api/track (server/routes/ingest.ts acceptBatch). */
export const batchAcceptedSchema = z.union([
	z.strictObject({
		stored: count.meta({ description: 'Events stored now.' }),
		duplicates: count.meta({ description: 'Events of the batch already stored (a retried batch): not stored twice.' }),
		bot: z.literal(true).optional().meta({ description: 'Present when the sender is an automated browser or a bot: its events are stored, marked as a bot’s, and not forwarded.' }),
	}),
	z.strictObject({
		stored: z.literal(0),
		duplicates: z.literal(0),
		ignored: count.meta({ description: 'Events dropped without being stored.' }),
		reason: z
			.enum(['global-privacy-control', 'do-not-track', 'consent-denied', 'consent-missing', 'prefetch'])
			.meta({ description: 'Why the batch was dropped: a privacy signal the site honours, consent denied or (where the site requires it) not given, or a prefetching browser.' }),
	}),
]);

/** POST /api/lead (server/routes/ingest.ts). */
export const leadAcceptedSchema = z.union([
	z.strictObject({
		stored: z.boolean().meta({ description: 'Whether the lead was stored now; false for a retried post (see `duplicate`).' }),
		duplicate: z.boolean().meta({ description: 'The same submission (same `eventId`) was stored before.' }),
		history: z
			.string()
			.regex(/^(joined|kept anonymous: .+)$/)
			.optional()
			.meta({ description: '`joined` when the browsing history of `anonymousId` now belongs to the lead, otherwise `kept anonymous: <why>`. Absent without an `anonymousId`.' }),
	}),
	z.strictObject({
		stored: z.literal(false),
		reason: z.enum(['automated-client', 'erased']).meta({ description: '`automated-client`: a bot’s or automated browser’s post without the site’s admin key; `erased`: the address was erased on request and is never stored again.' }),
	}),
]);

const healthBase = {
	status: z.enum(['ok', 'degraded']),
	version: z.string().meta({ description: 'The receiver’s package version.' }),
	engine: z.string().meta({ description: 'What runs the workflows: `embedded n8n engine`, `n8n`, or both.' }),
};

const outboxSchema = answerOf<SiteOutbox & { maxHealthyLagSeconds: number; action?: string }>()(
	z.strictObject({
		pending: count,
		dead: count.meta({ description: 'Rows of deliveries that failed for DISPATCH_GIVE_UP_AFTER_MS (3 days by default) and were dead-lettered; they keep the receiver `degraded` until re-queued or discarded.' }),
		oldestPendingAgeSeconds: z.int().nullable(),
		lastError: z.string().nullable().meta({ description: 'The last delivery error of a row still undelivered.' }),
		maxHealthyLagSeconds: z.int().meta({ description: 'A pending row older than this makes the receiver `degraded`.' }),
		action: z.string().optional().meta({ description: 'With dead-lettered rows: how many, and the scripts/dead-letters commands that send them again or drop them.' }),
	}),
);

const databaseHealth = z.strictObject({ ok: z.boolean(), kind: z.string(), latencyMs: z.number().optional() });

/** GET /health (server/app.ts): the short answer for anyone, the site's details for its admin key, the database's state when the key could not be checked. */
export const healthSchema = z.union([
	z.strictObject(healthBase),
	z.strictObject({
		...healthBase,
		database: databaseHealth,
		message: z.string().meta({ description: 'Why the answer holds no site details: the database did not answer, so the key could not be checked.' }),
	}),
	z.strictObject({
		...healthBase,
		site: z.strictObject({
			key: z.string(),
			forwarding: z.array(z.string()).meta({ description: 'The workflows the site’s events and leads are delivered to.' }),
			signed: z.boolean().meta({ description: 'Whether the site’s webhook secret is set, so deliveries are signed.' }),
		}),
		database: databaseHealth,
		outbox: outboxSchema.nullable().meta({ description: 'The site’s undelivered rows; null when the database cannot be reached.' }),
		dispatcher: z.strictObject({ enabled: z.boolean(), lastSuccessAt: instant.nullable().meta({ description: 'When the dispatcher last delivered a row (to any site).' }) }),
		n8n: z.array(z.strictObject({ url: z.string(), ok: z.boolean(), error: z.string().optional() })).meta({ description: 'Whether the site’s n8n answers (empty when the site forwards nothing or runs on the embedded engine).' }),
	}),
]);

export const receiverIdentitySchema = z.strictObject({ trackingCrmReceiver: z.string().meta({ description: 'The receiver’s version.' }) });

/** GET /api/stats (server/routes/analytics.ts). */
export const statsSchema = z.strictObject({
	site: z.string(),
	generatedAt: instant,
	asOf,
	events: z.strictObject({
		total: count.meta({ description: 'Every event stored, bots’ included.' }),
		today: count,
		todayStartedAt: instant.meta({ description: 'The start of today, UTC.' }),
		lastAt: instant.nullable(),
	}),
	visitors: count,
	sessions: count,
	leads: count,
	outbox: z.strictObject({ pending: count, dead: count }),
});

/** The envelope of every /api/analytics report: its site and the range it covers. */
const reportEnvelope = {
	site: z.string(),
	range: z.strictObject({
		from: instant,
		to: instant.meta({ description: 'The end of the range, exclusive.' }),
		interval: z.enum(['day', 'hour']),
	}),
};

const breakdownRow = { value: z.string().nullable(), sessions: count, bounces: count, pageviews: count, avgDurationSeconds: z.number().nullable() };
const breakdown = z.array(z.strictObject(breakdownRow));

export const visitorsReportSchema = answerOf<Awaited<ReturnType<typeof visitorAnalytics>>>()(
	z.strictObject({
		asOf,
		activeSessions: count.meta({ description: 'Sessions with an event in the last 30 minutes.' }),
		visitorsNow: count.meta({ description: 'Distinct visitors with an event in the last 5 minutes.' }),
		summary: z.strictObject({
			sessions: count,
			visitors: count,
			pageviews: count,
			pageviewsPerSession: ratio,
			avgDurationSeconds: z.number().nullable(),
			medianDurationSeconds: z.number().nullable(),
			bounces: count,
			bounceRate: ratio,
		}),
		engagement: z.strictObject({ low: count, medium: count, high: count }),
		topPages: z.array(z.strictObject({ path: z.string(), pageviews: count, visitors: count })),
		entryPages: z.array(z.strictObject({ path: z.string(), sessions: count, bounceRate: ratio })),
		breakdowns: z
			.strictObject({
				channels: z.array(z.strictObject({ ...breakdownRow, conversions: count, convertingSessions: count })),
				exitPages: breakdown,
				referrers: breakdown,
				sources: breakdown,
				mediums: breakdown,
				campaigns: breakdown,
				devices: breakdown,
				browsers: breakdown,
				os: breakdown,
				countries: breakdown,
				scrollDepth: z.array(z.strictObject({ ...breakdownRow, value: z.enum(SCROLL_DEPTHS) })),
			})
			.meta({ description: 'The ten values with the most sessions of each dimension; `value` null counts the sessions without one.' }),
		series: z.array(z.strictObject({ at: instant, sessions: count, visitors: count, pageviews: count, bounces: count })),
	}),
);

export const leadsReportSchema = answerOf<Awaited<ReturnType<typeof leadAnalytics>>>()(
	z.strictObject({
		asOf,
		summary: z.strictObject({ newLeads: count, avgScore: z.number().nullable(), medianScore: z.number().nullable(), visitors: count, convertedVisitors: count, visitorToLeadRate: ratio }),
		scoreDistribution: z
			.array(z.strictObject({ min: z.int().nullable(), max: z.int().nullable(), leads: count }))
			.meta({ description: 'Leads by score in buckets of ten: `min` inclusive (null: below zero), `max` exclusive (null: open top).' }),
		sources: z.array(z.strictObject({ source: z.string().nullable(), leads: count, share: ratio })),
		pipeline: z.array(z.strictObject({ stage: z.string(), leads: count })).meta({ description: 'Leads per lifecycle stage, in the site’s order of stages.' }),
		stageChanges: z.array(z.strictObject({ from: z.string(), to: z.string(), leads: count })),
		series: z.array(z.strictObject({ at: instant, leads: count })),
	}),
);

const emailCounts = { sent: count, opened: count, clicked: count, converted: count, unsubscribed: count, bounced: count };
const emailRates = { openRate: ratio, clickRate: ratio, clickToOpenRate: ratio, conversionRate: ratio };

export const campaignsReportSchema = answerOf<Awaited<ReturnType<typeof campaignAnalytics>>>()(
	z.strictObject({
		asOf,
		email: z.strictObject({ ...emailCounts, ...emailRates, conversionWindowDays: count }),
		campaigns: z.array(z.strictObject({ campaignId: z.string().nullable(), name: z.string().nullable(), ...emailCounts, ...emailRates })),
		channels: z.array(z.strictObject({ channel: z.string().nullable(), sessions: count, conversions: count, convertingSessions: count, conversionRate: ratio })),
		series: z.array(z.strictObject({ at: instant, sent: count, opened: count, clicked: count })),
	}),
);

export const conversionReportSchema = answerOf<Awaited<ReturnType<typeof conversionAnalytics>>>()(
	z.strictObject({
		asOf,
		funnel: z.strictObject({
			steps: z.array(z.strictObject({ step: z.enum(['visitors', 'engaged', 'leads', 'qualified', 'customers']), count, rateFromPrevious: ratio, rateFromFirst: ratio })),
			qualifiedStages: z.array(z.string()),
			customerStage: z.string(),
		}),
		summary: z.strictObject({ conversions: count, convertingVisitors: count, visitors: count, conversionRate: ratio }),
		goals: z.array(z.strictObject({ goal: z.string(), currency: z.string().nullable(), conversions: count, visitors: count, value: z.number() })),
		series: z.array(z.strictObject({ at: instant, conversions: count })),
	}),
);

/** A report's answer: its envelope and the report. */
export const reportAnswer = (report: z.ZodObject) => report.extend(reportEnvelope);

const rows = (what: string) => z.array(z.record(z.string(), z.unknown())).meta({ description: what });

/** GET /api/privacy/export (server/routes/privacy.ts): the person's rows as stored, columns in camelCase. */
export const privacyExportSchema = z.strictObject({
	email: z.string().meta({ description: 'The address, lower-cased and trimmed.' }),
	exportedAt: instant,
	emailHash: z.string().meta({ description: 'The hash the address is stored and suppressed under.' }),
	leads: rows('The person’s leads.'),
	contacts: rows('Contacts of the address or of its leads.'),
	businesses: rows('The companies of those leads and contacts.'),
	visitors: rows('The browsers linked to the leads.'),
	sessions: rows('Those browsers’ sessions.'),
	events: rows('Those browsers’ tracking events.'),
	eventLinks: rows('The visitor and session each of those events was put in.'),
	activities: rows('The activity log of the leads and browsers.'),
	conversions: rows('Their conversions, each with its `attributions`.'),
	scores: rows('Score changes of the leads, with their reasons.'),
	tags: rows('Tags of the leads.'),
	stageChanges: rows('Lifecycle stage changes of the leads.'),
	channelStatuses: rows('Subscription status per channel.'),
	enrollments: rows('Email sequence enrollments.'),
	emailMessages: rows('Emails sent to the person, each with its `events` (opens, clicks, unsubscribes).'),
	suppressions: rows('Suppressions of the address (unsubscribed, bounced, erased).'),
	consentRecords: rows(
		'Consent choices of the address and of the browsers above, oldest first: purpose (`analytics`, `marketing`), `granted` or `withdrawn`, source (`tracker`, `form`, `api`, `confirmation`, `unsubscribe`), the page (origin and path), form, policy version and time.',
	),
	formSubmissions: rows('Form posts still waiting in the outbox.'),
});

/** POST /api/privacy/erase. */
export const privacyErasureSchema = z.strictObject({
	erased: z.boolean().meta({ description: 'Whether any row was removed.' }),
	emailHash: z.string(),
	suppressed: z.literal(true).meta({ description: 'The address stays suppressed: no lead of it is stored and no email goes to it again.' }),
	removed: z.record(z.string(), count).meta({ description: 'Rows removed per table.' }),
});

/** POST /api/test-microworkflow. */
export const testDeliverySchema = z.strictObject({
	workflow: z.string(),
	url: z.string().meta({ description: 'The webhook the payload was posted to.' }),
	status: z.int().meta({ description: 'The HTTP status n8n (or the embedded engine) answered.' }),
	ok: z.boolean(),
	durationMs: z.number(),
	response: z.unknown().meta({ description: 'The workflow’s answer: its JSON, or its text (at most 10,000 characters).' }),
});

const mailboxEntry = answerOf<MailboxEntry>()(
	z.strictObject({
		id: z.uuid(),
		siteKey: z.string().nullable(),
		fromAddress: z.string(),
		toAddresses: z.array(z.string()),
		subject: z.string(),
		receivedAt: instant,
		rawSize: count.meta({ description: 'The message’s size in bytes.' }),
		unsubscribeUrl: z.string().nullable().meta({ description: 'The one-click unsubscribe link of its List-Unsubscribe header.' }),
	}),
);

const mailboxLinks = {
	siteId: z.uuid().nullable(),
	emailMessageId: z.uuid().nullable().meta({ description: 'The CRM’s email message this is a copy of.' }),
	messageId: z.string().nullable().meta({ description: 'The Message-ID header.' }),
	url: z.string().meta({ description: 'The message’s page in the mailbox.' }),
	previewUrl: z.string().meta({ description: 'Its HTML part, as a page.' }),
};

export const mailboxListSchema = z.strictObject({
	catcher: z.strictObject({ host: z.string(), port: z.int() }).nullable().meta({ description: 'Where the mail catcher listens for SMTP.' }),
	messages: z.array(mailboxEntry.extend(mailboxLinks)).meta({ description: 'The newest first.' }),
});

export const mailboxMessageSchema = mailboxEntry.extend({
	...mailboxLinks,
	html: z.string().nullable(),
	text: z.string().nullable(),
	headers: z.array(z.strictObject({ name: z.string(), value: z.string() })),
});
