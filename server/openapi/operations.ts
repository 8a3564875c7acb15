import { z } from 'zod/v4';

import { deliverySchema, leadPayloadSchema, TRACK_LIMITS, trackBatchSchema } from '../../lib/contracts';
import { DELIVERY_HEADER, SITE_HEADER, TIMESTAMP_HEADER } from '../../lib/signing';
import { rangeQuery, statsQuery, visitorsQuery } from '../routes/analytics';
import { idParams, listQuery } from '../routes/mailbox';
import { eraseBody, exportQuery } from '../routes/privacy';
import { requestSchema } from '../routes/testWorkflow';
import { settingsQuery } from '../routes/tracker';
import {
	batchAcceptedSchema,
	campaignsReportSchema,
	conversionReportSchema,
	healthSchema,
	leadAcceptedSchema,
	leadsReportSchema,
	mailboxListSchema,
	mailboxMessageSchema,
	privacyErasureSchema,
	privacyExportSchema,
	receiverIdentitySchema,
	reportAnswer,
	statsSchema,
	testDeliverySchema,
	trackerSettingsSchema,
	triggerRefusalSchema,
	visitorsReportSchema,
} from './answers';
import type { FieldNotes, JsonSchema } from './schemas';

/**
 * Every operation of the receiver's API: what it is for, who may call it, what it takes and what
 * it answers. The schemas are the zod schemas the routes validate with; the words are for the
 * people who call them.
 */

/** Who may call an operation. */
export type Access =
	/** Anyone: browsers on the site's pages, email clients. */
	| 'public'
	/** Anyone; a site's admin key adds to what it answers (or vouches for the request). */
	| 'public-admin'
	/** A read or admin key of the site. */
	| 'read'
	/** An admin key of the site. */
	| 'admin'
	/** A delivery signed with the site's webhook secret. */
	| 'signed'
	/** Requests from the receiver's own machine only. */
	| 'local';

export type Method = 'get' | 'post' | 'head' | 'options';

export interface HeaderParameter {
	name: string;
	description: string;
	required?: boolean;
	schema?: JsonSchema;
}

export interface Answer {
	description: string;
	/** A JSON body, by its zod schema. */
	json?: z.ZodType;
	/** Bodies of other media types (a schema, or none when the body is not structured data). */
	media?: Record<string, JsonSchema | undefined>;
	headers?: Record<string, string>;
}

export interface Body {
	schema: z.ZodType;
	/** Media types the route reads the body from, all as the same JSON. */
	media: string[];
	description: string;
	notes?: FieldNotes;
	required?: boolean;
}

export interface OperationSpec {
	id: string;
	method: Method;
	path: string;
	tag: Tag;
	summary: string;
	description: string;
	access: Access;
	/** Query parameters: the route's zod schema, and what each parameter means. */
	query?: { schema: z.ZodType; notes: Record<string, string> };
	/** Path parameters: a zod schema where the route validates them, or a plain string otherwise. */
	pathParams?: { schema?: z.ZodType; notes: Record<string, string> };
	headers?: HeaderParameter[];
	body?: Body;
	answers: Record<number, Answer>;
	/** Error answers (server/routes/problems.ts shape) by status, each with the codes it may carry. */
	errors?: Record<number, string[]>;
}

export const TAGS = {
	tracking: { name: 'Tracking', description: 'What the tracker on a site’s pages loads and sends: its script, its settings and the event batches.' },
	leads: { name: 'Leads', description: 'Form submissions and identify() calls that make a visitor a lead.' },
	analytics: { name: 'Analytics', description: 'A site’s figures for dashboards and scripts, read with a read or admin key of that site.' },
	privacy: { name: 'Privacy', description: 'One person’s data on a site, exported or erased on request (GDPR access and erasure), with an admin key.' },
	workflows: { name: 'Workflows', description: 'Deliveries to the n8n workflows: a signed test delivery, and the embedded engine’s webhook.' },
	email: { name: 'Email links', description: 'The links in the emails the CRM sends: the open pixel, tracked clicks and one-click unsubscribe. Their tokens are signed with EMAIL_TOKEN_SECRET.' },
	receiver: { name: 'Receiver', description: 'Whether the receiver is up, what it is, and this reference.' },
	mailbox: { name: 'Mailbox', description: 'The mail the built-in catcher received instead of delivering it (without SMTP_URL), as JSON for scripts and tests. Answers requests from the receiver’s own machine only; any other gets a 404.' },
} as const;

export type Tag = keyof typeof TAGS;

/** What each error code means, wherever it is answered. */
export const ERROR_CODES: Record<string, string> = {
	api_key_required: 'No API key was sent: send `Authorization: Bearer <key>` (or `X-API-Key: <key>`).',
	unsupported_auth_scheme: 'The `Authorization` header uses a scheme other than Bearer (e.g. Basic); send `Authorization: Bearer <key>`.',
	invalid_api_key: 'The key is malformed, unknown or revoked.',
	admin_key_required: 'A read key was sent where an admin key is needed.',
	site_not_allowed: 'The `site` parameter names another site than the key’s.',
	site_not_served: 'The key’s site has no config file on this receiver.',
	key_for_other_site: 'The admin key belongs to another site than the lead names.',
	invalid_parameter: 'A query parameter is missing, repeated, unknown or out of range (or holds a value the database cannot store); `issues` names it.',
	invalid_payload: 'The body does not match its schema; `issues` names each bad field.',
	invalid_request: 'The query or body does not match its schema; `issues` names each bad field.',
	invalid_json: 'The body is not valid JSON.',
	invalid_body: 'The body could not be read: not UTF-8 or larger than the route takes.',
	empty_body: 'The body is empty.',
	unknown_site: 'No site has this key.',
	origin_not_allowed: 'The request’s Origin is not in the site’s `tracking.allowedOrigins`.',
	unstorable_value: 'A value cannot be stored (e.g. a NUL byte); nothing of the request was stored. Sent unchanged it fails again.',
	rate_limited: 'Too many requests from this network, or this site is over its limit and this network sends the most; retry after the `Retry-After` header’s seconds (the `RateLimit` header’s reset).',
	'entity.too.large': 'The body is larger than the route takes.',
	'charset.unsupported': 'The body is not UTF-8.',
	'encoding.unsupported': 'The body is compressed; send it uncompressed.',
	'entity.parse.failed': 'The body is not valid JSON.',
	not_found: 'Nothing is stored under this name.',
	workflow_not_configured: 'The site has no webhook for this workflow in `integrations.webhookEndpoints`.',
	site_mismatch: 'The payload names another site than the key’s.',
	secret_missing: 'The site’s webhook secret is not set, so nothing can be signed.',
	n8n_unreachable: 'n8n did not answer; the answer also carries `workflow` and `durationMs`.',
	engine_not_running: 'The site’s workflows run in the embedded engine, which is not running (DISPATCHER=off); nothing was sent.',
	engine_failed: 'The embedded engine did not answer in time (DISPATCH_TIMEOUT_MS); the answer also carries `workflow` and `durationMs`.',
	unsupported_media_type: 'The body was not sent as `Content-Type: application/json`.',
	no_workflow: 'No bundled workflow listens on this webhook path; `issues` names the paths there are.',
	workflows_run_in_n8n: 'Every site of this receiver names an n8n, which runs the workflows: post to that n8n’s `/webhook/<path>`. The message names it to a delivery signed with the site’s secret. Not worth a retry.',
	engine_starting: 'The embedded engine is starting; retry after `Retry-After` seconds.',
	engine_stopping: 'The embedded engine is stopping; the sender retries the delivery.',
	workflow_failed: 'The workflow ran and failed; the sender retries the delivery.',
	email_tracking_disabled: 'EMAIL_TOKEN_SECRET is not set, so no email link can be checked.',
	tracker_not_built: 'The tracker script is not built on this receiver.',
	internal: 'A fault of the receiver; nothing was stored.',
	storage_unavailable: 'The database cannot be used right now; nothing changed. Retry after `Retry-After` seconds.',
};

const RATE_LIMIT_HEADERS = {
	RateLimit: 'The limit, what is left of it and the seconds until it resets, e.g. `limit=600, remaining=599, reset=42` (IETF draft 7).',
	'RateLimit-Policy': 'The limit per window, e.g. `600;w=60`: 600 requests a minute.',
};

/** Cross-origin browsers: the tracker posts from the site's pages to the receiver. */
const ORIGIN: HeaderParameter = {
	name: 'Origin',
	description: 'Sent by browsers. When present it must be one of the site’s `tracking.allowedOrigins`; servers send none.',
};

const SERVER_ERRORS = { 500: ['internal'], 503: ['storage_unavailable'] };
const KEY_ERRORS = { 401: ['api_key_required', 'unsupported_auth_scheme', 'invalid_api_key'] };

const RANGE_NOTES = {
	site: 'The site you expect: the key decides which site is answered, and naming another is refused (403). May be left out.',
	from: 'The start of the range, inclusive: an ISO 8601 date or date-time with a zone (e.g. `2026-11-01` or `2026-11-01T09:30:00Z`), from 2000-01-01 to 2099-12-31. Default: 30 days before `to`.',
	to: 'The end of the range, exclusive; a date without a time includes that whole day (UTC). Default: now. At most 366 days after `from`.',
	interval: 'The buckets of the series: `day` (UTC days), `hour` (for ranges of at most 31 days) or `week` (ISO weeks from Monday, UTC).',
};

const FILTER_NOTES = {
	channel: 'Only the sessions of this channel (a GA4 default channel group, e.g. `Organic Search`), and what they led to.',
	campaign: 'Only the sessions of this UTM campaign.',
	page: 'Only the sessions that viewed this path (starting with `/`).',
};

const REPORTS = [
	{ name: 'visitors', schema: visitorsReportSchema, query: visitorsQuery, notes: { ...RANGE_NOTES, ...FILTER_NOTES }, summary: 'Visitor analytics', description: 'Sessions, visitors, page views, bounces and durations over the range; engagement levels; top and entry pages; the breakdowns by channel, page, referrer, campaign parameters, device, browser, system, country and scroll depth; and a series per interval.' },
	{ name: 'leads', query: rangeQuery, notes: RANGE_NOTES, schema: leadsReportSchema, summary: 'Lead analytics', description: 'New leads and their scores, the score distribution, lead sources, the pipeline by lifecycle stage, stage changes, and new leads per interval.' },
	{ name: 'campaigns', query: rangeQuery, notes: RANGE_NOTES, schema: campaignsReportSchema, summary: 'Email and campaign analytics', description: 'Emails sent, opened, clicked, converted, unsubscribed and bounced, overall and per campaign, with their rates; conversions per channel; and a series per interval.' },
	{ name: 'conversion', query: rangeQuery, notes: RANGE_NOTES, schema: conversionReportSchema, summary: 'Conversion funnel', description: 'The funnel from visitors to engaged visitors, leads, qualified leads and customers; conversions per goal; and conversions per interval.' },
] as const;

const BATCH_NOTES: FieldNotes = {
	site: 'The site’s public key: the `data-site` of the script tag.',
	sentAt: 'The client’s clock when the batch was sent (ms since the epoch): where it is more than a minute from the receiver’s, the events’ times are corrected by the difference.',
	consent: 'The visitor’s consent as the page knows it. `denied` drops the batch; a site that requires consent drops any batch without `granted`.',
	automation: 'The tracker’s finding that the browser is automated (navigator.webdriver): the events are stored as a bot’s and not forwarded.',
	events: `1 to ${TRACK_LIMITS.maxEventsPerBatch} events; the whole body at most ${TRACK_LIMITS.maxBatchBytes / 1024} KB.`,
	'events[].id': 'A UUIDv7 made by the client: an event sent twice (a retried batch) is stored once.',
	'events[].name': 'A custom event’s name, or a label of the type (e.g. a form’s id). Longer text is cut to 100 characters.',
	'events[].ts': 'When it happened, client clock, ms since the epoch.',
	'events[].anonymousId': 'The browser’s anonymous id.',
	'events[].sessionId': 'The tracker’s session id.',
	'events[].url': `The page’s absolute http(s) URL; cut to ${TRACK_LIMITS.maxUrlLength} characters.`,
	'events[].title': 'The page title; cut to 512 characters.',
	'events[].referrer': 'The referrer; one that is no http(s) URL is stored as none.',
	'events[].relevance': 'How much the event says about intent, 1 to 10 (the site’s relevance rules).',
	'events[].props': `Properties of the event: at most ${TRACK_LIMITS.maxPropertyKeys} keys; text values cut to ${TRACK_LIMITS.maxPropertyValueLength} characters.`,
	'events[].context': 'Campaign parameters, click ids and device hints captured when the visitor landed.',
};

const LEAD_NOTES: FieldNotes = {
	site: 'The site’s public key.',
	email: 'The lead’s address.',
	eventId: 'A UUID of the submission made by the client: a retried post creates nothing twice.',
	anonymousId: 'The tracker’s anonymous id, to join the browser’s history to the lead. It is joined only with proof (same network and browser as the history’s first event, or an admin key); the answer’s `history` says which.',
	country: 'ISO 3166-1 alpha-2, e.g. `DE`.',
	timezone: 'The lead’s IANA time zone, e.g. `Europe/Berlin` (`Etc/Unknown` counts as none): emails are sent in the lead’s hours.',
	source: 'Where the lead came from, e.g. `contact-form`.',
	formId: 'The form’s id; cut to 100 characters.',
	consent: 'Marketing consent as given on the form.',
	properties: 'Further facts about the lead.',
	fields: 'A form’s fields as [name, input type, value]: the receiver maps them to the fields above and drops them; they are never stored. At most 200.',
};

const DELIVERY_NOTES: FieldNotes = {
	'': 'A delivery: at least one of `events`, `leads`, `emailEvents` or `items`. Objects may carry fields not named here.',
	site: 'Must be the site the delivery is signed for (header `x-crm-site`).',
	events: 'Tracking events as stored.',
	leads: 'Leads as posted to /api/lead.',
	emailEvents: 'Opens, clicks and unsubscribes of emails.',
	items: 'Items handed on by a CRM Hand Off node of another workflow.',
};

/** The tracker's script (one path per distinct `tracking.scriptPath` of the sites). */
function scriptOperation(path: string, index: number): OperationSpec {
	return {
		id: index === 0 ? 'getTrackerScript' : `getTrackerScript${index + 1}`,
		method: 'get',
		path,
		tag: 'tracking',
		summary: 'The tracker script',
		description: `The tracker: the \`src\` of the script tag a site puts on its pages (with \`data-site\` naming the site), served first-party by the receiver at the sites’ \`tracking.scriptPath\`. Cached for a day, then revalidated with its ETag; browsers that accept brotli or gzip get a compressed copy.`,
		access: 'public',
		answers: {
			200: { description: 'The script.', media: { 'text/javascript': { type: 'string' } }, headers: { ETag: 'The build’s tag, for If-None-Match.' } },
			304: { description: 'Not modified: the copy the browser holds (If-None-Match) is current.' },
		},
		errors: { 404: ['tracker_not_built'] },
	};
}

export function operations(scriptPaths: readonly string[]): OperationSpec[] {
	return [
		...scriptPaths.map(scriptOperation),
		{
			id: 'getTrackerSettings',
			method: 'get',
			path: '/api/track',
			tag: 'tracking',
			summary: 'The tracker’s settings for a site',
			description:
				'What the tracker needs of its site’s config: relevance rules, the threshold, session timing, routing, cookieless mode and whether it waits for consent. Browsers cache it for five minutes. A browser whose Global Privacy Control or Do Not Track signal the site honours gets 204 and tracks nothing. Other query parameters (a cache buster) are ignored.',
			access: 'public',
			query: { schema: settingsQuery, notes: { site: 'The site’s public key: the `data-site` of the script tag.' } },
			headers: [ORIGIN, { name: 'Sec-GPC', description: '`1`: the browser’s Global Privacy Control signal.' }, { name: 'DNT', description: '`1`: the browser’s Do Not Track signal.' }],
			answers: {
				200: { description: 'The settings.', json: trackerSettingsSchema },
				204: { description: 'The browser asks not to be tracked and the site honours it: no settings, nothing to send.' },
				304: { description: 'Not modified: the browser’s copy (If-None-Match) is current.' },
			},
			errors: { 400: ['invalid_parameter'], 403: ['origin_not_allowed'], 404: ['unknown_site'] },
		},
		{
			id: 'trackEvents',
			method: 'post',
			path: '/api/track',
			tag: 'tracking',
			summary: 'Send a batch of events',
			description: `What the tracker sends: up to ${TRACK_LIMITS.maxEventsPerBatch} events of one browser, as JSON, from a page (\`text/plain\`, so no CORS preflight, or a beacon) or a server (\`application/json\`). The answer comes once the events are committed to the database together with their deliveries to the workflows. A batch the site must not store (a privacy signal, consent) is answered 202 with \`ignored\` and the reason. Requests are limited per network (RATE_LIMIT_PER_IP a minute) and per site.`,
			access: 'public',
			headers: [ORIGIN],
			body: { schema: trackBatchSchema, media: ['text/plain', 'application/json'], description: 'The batch, as JSON text.', notes: BATCH_NOTES, required: true },
			answers: { 202: { description: 'Accepted: stored, recognised as already stored, or dropped with a reason.', json: batchAcceptedSchema, headers: RATE_LIMIT_HEADERS } },
			errors: {
				400: ['empty_body', 'invalid_json', 'invalid_payload', 'unknown_site', 'unstorable_value'],
				403: ['origin_not_allowed'],
				413: ['entity.too.large'],
				415: ['charset.unsupported', 'encoding.unsupported'],
				429: ['rate_limited'],
				...SERVER_ERRORS,
			},
		},
		{
			id: 'trackPreflight',
			method: 'options',
			path: '/api/track',
			tag: 'tracking',
			summary: 'CORS preflight for event batches',
			description: 'Browsers ask before posting JSON from a page. An Origin of any configured site is allowed to POST with a Content-Type header, for a day.',
			access: 'public',
			headers: [ORIGIN],
			answers: { 204: { description: 'No body; the Access-Control-Allow-* headers when the Origin belongs to a configured site.' } },
		},
		{
			id: 'submitLead',
			method: 'post',
			path: '/api/lead',
			tag: 'leads',
			summary: 'Submit a lead',
			description:
				'A form submission or identify() call. The answer comes once the lead is committed together with its delivery to the Lead Processor workflow. A retried submission (same `eventId`) is stored once. An address erased on request is never stored again. A server that knows its users may send an admin key of the site: it vouches for `anonymousId`, so the browser’s history joins the lead. Requests are limited per network.',
			access: 'public-admin',
			headers: [ORIGIN],
			body: { schema: leadPayloadSchema, media: ['application/json', 'text/plain'], description: `The lead, as JSON text (at most ${TRACK_LIMITS.maxBatchBytes / 1024} KB).`, notes: LEAD_NOTES, required: true },
			answers: { 202: { description: 'Accepted: stored, a retry of a stored one, or not stored with a reason.', json: leadAcceptedSchema, headers: RATE_LIMIT_HEADERS } },
			errors: {
				400: ['empty_body', 'invalid_json', 'invalid_payload', 'unknown_site', 'unstorable_value'],
				...KEY_ERRORS,
				403: ['origin_not_allowed', 'admin_key_required', 'key_for_other_site'],
				413: ['entity.too.large'],
				415: ['charset.unsupported', 'encoding.unsupported'],
				429: ['rate_limited'],
				...SERVER_ERRORS,
			},
		},
		{
			id: 'leadPreflight',
			method: 'options',
			path: '/api/lead',
			tag: 'leads',
			summary: 'CORS preflight for leads',
			description: 'Browsers ask before posting a lead as JSON from a page; an Origin of any configured site is allowed.',
			access: 'public',
			headers: [ORIGIN],
			answers: { 204: { description: 'No body; the Access-Control-Allow-* headers when the Origin belongs to a configured site.' } },
		},
		{
			id: 'getStats',
			method: 'get',
			path: '/api/stats',
			tag: 'analytics',
			summary: 'A site’s totals',
			description:
				'Events stored in all and today (UTC), visitors, sessions and leads, and the deliveries waiting or failed: all-time totals, never narrowed by a range. The range parameters a dashboard sends with every report are accepted and checked as the reports check them, but change no figure. Unknown parameters are refused.',
			access: 'read',
			query: {
				schema: statsQuery,
				notes: {
					site: RANGE_NOTES.site,
					from: `Accepted so a dashboard may send every request the same range; checked as the reports check it, but the totals are not narrowed by it. ${RANGE_NOTES.from}`,
					to: `Accepted and checked as \`from\` is; the totals are not narrowed by it. ${RANGE_NOTES.to}`,
					interval: `Accepted and checked as \`from\` is; the answer has no series. ${RANGE_NOTES.interval}`,
				},
			},
			answers: { 200: { description: 'The totals.', json: statsSchema } },
			errors: { 400: ['invalid_parameter'], ...KEY_ERRORS, 403: ['site_not_allowed'], 404: ['site_not_served'], ...SERVER_ERRORS },
		},
		...REPORTS.map(
			(report): OperationSpec => ({
				id: `get${report.name[0].toUpperCase()}${report.name.slice(1)}Report`,
				method: 'get',
				path: `/api/analytics/${report.name}`,
				tag: 'analytics',
				summary: report.summary,
				description: `${report.description} Unknown parameters are refused.`,
				access: 'read',
				query: { schema: report.query, notes: report.notes },
				answers: { 200: { description: 'The report for the range, with the range it covers.', json: reportAnswer(report.schema) } },
				errors: { 400: ['invalid_parameter'], ...KEY_ERRORS, 403: ['site_not_allowed'], 404: ['site_not_served'], ...SERVER_ERRORS },
			}),
		),
		{
			id: 'exportPerson',
			method: 'get',
			path: '/api/privacy/export',
			tag: 'privacy',
			summary: 'Export everything stored about one person',
			description:
				'Every row of the key’s site about the person with this address, read in one consistent snapshot: leads, contacts, their browsers’ visitors, sessions and events, activities, conversions, scores, tags, stages, subscriptions, emails and suppressions, and form posts still waiting for delivery. The export is logged with the key’s name.',
			access: 'admin',
			query: { schema: exportQuery, notes: { email: 'The person’s address (matched without regard to case or surrounding spaces).' } },
			answers: { 200: { description: 'The person’s data.', json: privacyExportSchema } },
			errors: { 400: ['invalid_request', 'invalid_parameter'], ...KEY_ERRORS, 403: ['admin_key_required'], 404: ['not_found'], ...SERVER_ERRORS },
		},
		{
			id: 'erasePerson',
			method: 'post',
			path: '/api/privacy/erase',
			tag: 'privacy',
			summary: 'Erase one person',
			description:
				'Deletes every row of the key’s site about the person in one transaction and suppresses the address for good: no lead of it is stored and no email goes to it again. An unknown address is still suppressed (erasure is a promise about the future too), so repeating the call is safe. Logged with the key’s name.',
			access: 'admin',
			body: { schema: eraseBody, media: ['application/json'], description: 'The address to erase, as JSON (at most 16 KB).', notes: { email: 'The person’s address.' }, required: true },
			answers: { 200: { description: 'Erased: the rows removed per table.', json: privacyErasureSchema } },
			errors: { 400: ['invalid_body', 'invalid_json', 'invalid_request', 'invalid_parameter'], ...KEY_ERRORS, 403: ['admin_key_required'], 413: ['invalid_body'], 415: ['invalid_body'], ...SERVER_ERRORS },
		},
		{
			id: 'testWorkflow',
			method: 'post',
			path: '/api/test-microworkflow',
			tag: 'workflows',
			summary: 'Send a signed test delivery to one workflow',
			description:
				'Posts one delivery, signed as the receiver signs its deliveries, to the webhook of one workflow of the key’s site (its n8n, or the embedded engine), and answers with what the workflow answered: a way to check a workflow without a browser. Without a payload it sends a sample in the shape the workflow receives. A payload naming another site is refused.',
			access: 'admin',
			body: {
				schema: requestSchema,
				media: ['application/json'],
				description: 'The workflow and, optionally, what to send (at most 256 KB).',
				notes: { workflow: 'The workflow, as in the site’s `integrations.webhookEndpoints`.', payload: 'The delivery to send; envelope fields left out are filled in, and `site` is always the key’s.' },
				required: true,
			},
			answers: { 200: { description: 'n8n answered (whatever its status: see `status` and `ok`).', json: testDeliverySchema } },
			errors: {
				400: ['empty_body', 'invalid_json', 'invalid_payload', 'workflow_not_configured', 'site_mismatch'],
				...KEY_ERRORS,
				403: ['admin_key_required'],
				409: ['secret_missing'],
				413: ['entity.too.large'],
				415: ['charset.unsupported', 'encoding.unsupported', 'unsupported_media_type'],
				502: ['n8n_unreachable', 'engine_failed'],
				...SERVER_ERRORS,
				503: ['storage_unavailable', 'engine_not_running'],
			},
		},
		{
			id: 'deliverToWorkflow',
			method: 'post',
			path: '/webhook/{path}',
			tag: 'workflows',
			summary: 'Deliver to a bundled workflow (embedded engine)',
			description:
				'Where deliveries enter the bundled workflows when a site runs on the embedded engine, as they would enter n8n’s own `/webhook/<path>`: the CRM Hand Off nodes and the receiver’s dispatcher post here. The workflow’s CRM Tracker Trigger checks the signature, its time and its site, then runs the workflow. On a receiver whose sites all name an n8n no workflow runs here: the answer is a 404 `workflows_run_in_n8n`.',
			access: 'signed',
			pathParams: { notes: { path: 'The webhook path of the workflow’s CRM Tracker Trigger, e.g. `visitor`.' } },
			headers: [
				{ name: TIMESTAMP_HEADER, required: true, description: 'When the delivery was signed, in unix seconds; older than the trigger’s tolerance (5 minutes) is refused.', schema: { type: 'string', pattern: '^\\d{1,12}$' } },
				{ name: SITE_HEADER, required: true, description: 'The site key the delivery is signed for.', schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
				{ name: DELIVERY_HEADER, description: 'The delivery’s id; a retry carries the same one.' },
			],
			body: { schema: deliverySchema.out, media: ['application/json'], description: 'The delivery, as JSON (at most 16 MB).', notes: DELIVERY_NOTES, required: true },
			answers: {
				200: { description: 'The workflow ran: its answer (by default its last node’s items).', json: z.unknown() },
				400: { description: 'No delivery (`invalid_delivery`), or it names another site than the signed one (`site_mismatch`).', json: triggerRefusalSchema },
				401: { description: 'The signature is missing, wrong or too old (`invalid_signature`).', json: triggerRefusalSchema },
				403: { description: 'The workflow does not accept deliveries of this site (`site_not_allowed`).', json: triggerRefusalSchema },
			},
			errors: {
				400: ['empty_body', 'invalid_json'],
				404: ['no_workflow', 'workflows_run_in_n8n'],
				413: ['entity.too.large'],
				415: ['charset.unsupported', 'encoding.unsupported'],
				500: ['internal', 'workflow_failed'],
				503: ['storage_unavailable', 'engine_stopping', 'engine_starting', 'engine_not_running'],
			},
		},
		{
			id: 'emailOpen',
			method: 'get',
			path: '/e/o/{token}',
			tag: 'email',
			summary: 'Open pixel',
			description: 'The 1×1 image in each email: loading it records an open and tells the Email Orchestrator. It always answers the image; a bad token records nothing.',
			access: 'public',
			pathParams: { notes: { token: 'The signed token of the email message.' } },
			answers: { 200: { description: 'A transparent 1×1 GIF, never cached.', media: { 'image/gif': { type: 'string', contentMediaType: 'image/gif' } } } },
			errors: { 503: ['email_tracking_disabled'] },
		},
		{
			id: 'emailOpenProbe',
			method: 'head',
			path: '/e/o/{token}',
			tag: 'email',
			summary: 'Probe of the open pixel',
			description: 'Link scanners and prefetchers probe with HEAD: a probe is not a person opening the email, so nothing is recorded.',
			access: 'public',
			pathParams: { notes: { token: 'The signed token of the email message.' } },
			answers: { 204: { description: 'Nothing recorded.' } },
		},
		{
			id: 'emailClick',
			method: 'get',
			path: '/e/c/{token}',
			tag: 'email',
			summary: 'Tracked link',
			description: 'A link in an email: records the click, tells the Email Orchestrator, and redirects to the link’s URL, which must be an http(s) link the message really contained. People see the error pages.',
			access: 'public',
			pathParams: { notes: { token: 'The signed token of the email message and the link’s index in it.' } },
			answers: {
				302: { description: 'To the link’s URL.', headers: { Location: 'The link’s URL.' } },
				400: { description: 'A page: the token is not valid, or the link is no web link of the email.', media: { 'text/html': { type: 'string' } } },
				404: { description: 'A page: the email is not known here any more.', media: { 'text/html': { type: 'string' } } },
				503: { description: 'A page: the click could not be recorded right now; try again.', media: { 'text/html': { type: 'string' } } },
			},
			errors: { 503: ['email_tracking_disabled'] },
		},
		{
			id: 'emailClickProbe',
			method: 'head',
			path: '/e/c/{token}',
			tag: 'email',
			summary: 'Probe of a tracked link',
			description: 'Link scanners and prefetchers probe with HEAD: nothing is recorded and nobody is redirected.',
			access: 'public',
			pathParams: { notes: { token: 'The signed token of the email message and the link’s index in it.' } },
			answers: { 204: { description: 'Nothing recorded.' } },
		},
		{
			id: 'unsubscribePage',
			method: 'get',
			path: '/e/u/{token}',
			tag: 'email',
			summary: 'Unsubscribe page',
			description: 'The unsubscribe link of an email: a page asking the person to confirm. Following the link changes nothing, since mail scanners follow links.',
			access: 'public',
			pathParams: { notes: { token: 'The signed unsubscribe token of the email message.' } },
			answers: {
				200: { description: 'A page with the confirmation button.', media: { 'text/html': { type: 'string' } } },
				400: { description: 'A page: the token is not valid.', media: { 'text/html': { type: 'string' } } },
				404: { description: 'A page: the email is not known here any more.', media: { 'text/html': { type: 'string' } } },
				503: { description: 'A page: the message could not be read right now; try again.', media: { 'text/html': { type: 'string' } } },
			},
			errors: { 503: ['email_tracking_disabled'] },
		},
		{
			id: 'unsubscribe',
			method: 'post',
			path: '/e/u/{token}',
			tag: 'email',
			summary: 'One-click unsubscribe (RFC 8058)',
			description:
				'What mailbox providers post for the List-Unsubscribe-Post header, and what the confirmation page’s button sends: unsubscribes the recipient from the site’s emails and suppresses the address. Repeating it changes nothing.',
			access: 'public',
			pathParams: { notes: { token: 'The signed unsubscribe token of the email message.' } },
			body: {
				schema: z.object({ 'List-Unsubscribe': z.literal('One-Click') }),
				media: ['application/x-www-form-urlencoded', 'multipart/form-data'],
				description: '`List-Unsubscribe=One-Click` (RFC 8058), UTF-8, at most 4 KB; an empty body is taken as the same.',
			},
			answers: {
				200: { description: 'A page: unsubscribed.', media: { 'text/html': { type: 'string' } } },
				400: { description: 'A page: the token is not valid, or the body is not `List-Unsubscribe=One-Click`.', media: { 'text/html': { type: 'string' } } },
				404: { description: 'A page: the email is not known here any more.', media: { 'text/html': { type: 'string' } } },
				413: { description: 'A page: the body is larger than 4 KB.', media: { 'text/html': { type: 'string' } } },
				415: { description: 'A page: the body is not UTF-8.', media: { 'text/html': { type: 'string' } } },
				503: { description: 'A page: the unsubscribe could not be recorded right now; try again.', media: { 'text/html': { type: 'string' } } },
			},
			errors: { 503: ['email_tracking_disabled'] },
		},
		{
			id: 'confirmationPage',
			method: 'get',
			path: '/e/v/{token}',
			tag: 'email',
			summary: 'Double opt-in confirmation page',
			description:
				'The link of a double opt-in confirmation email (privacy.doubleOptIn): a page asking the person to confirm, or saying it is confirmed already. Following the link records nothing, since mail scanners follow links.',
			access: 'public',
			pathParams: { notes: { token: 'The signed confirm token of the confirmation email.' } },
			answers: {
				200: { description: 'A page with the confirmation button, or saying the confirmation was given.', media: { 'text/html': { type: 'string' } } },
				400: { description: 'A page: the token is not valid.', media: { 'text/html': { type: 'string' } } },
				404: { description: 'A page: the confirmation email is not known here any more.', media: { 'text/html': { type: 'string' } } },
				503: { description: 'A page: the email could not be read right now; try again.', media: { 'text/html': { type: 'string' } } },
			},
			errors: { 503: ['email_tracking_disabled'] },
		},
		{
			id: 'confirmSubscription',
			method: 'post',
			path: '/e/v/{token}',
			tag: 'email',
			summary: 'Confirm a double opt-in',
			description:
				'What the confirmation page’s button sends: records the marketing consent as confirmed (a consent record with source `confirmation`) and tells the Email Orchestrator, which starts the sequences that waited for it. Repeating it changes nothing.',
			access: 'public',
			pathParams: { notes: { token: 'The signed confirm token of the confirmation email.' } },
			body: { schema: z.object({}), media: ['application/x-www-form-urlencoded'], description: 'The page’s form, UTF-8, at most 4 KB; its fields are not read.' },
			answers: {
				200: { description: 'A page: confirmed.', media: { 'text/html': { type: 'string' } } },
				400: { description: 'A page: the token is not valid.', media: { 'text/html': { type: 'string' } } },
				404: { description: 'A page: the confirmation email is not known here any more.', media: { 'text/html': { type: 'string' } } },
				413: { description: 'A page: the body is larger than 4 KB.', media: { 'text/html': { type: 'string' } } },
				415: { description: 'A page: the body is not UTF-8.', media: { 'text/html': { type: 'string' } } },
				503: { description: 'A page: the confirmation could not be recorded right now; try again.', media: { 'text/html': { type: 'string' } } },
			},
			errors: { 503: ['email_tracking_disabled'] },
		},
		{
			id: 'getHealth',
			method: 'get',
			path: '/health',
			tag: 'receiver',
			summary: 'Health check',
			description:
				'Whether the receiver, its database, its deliveries and its n8n are well: `ok` (200) or `degraded` (503). Anyone may ask; with an admin key of a site the answer adds that site’s database, outbox, dispatcher and n8n details, and nothing of other sites. While the database does not answer, a key cannot be checked: the answer then carries the database’s state and a message instead of the site’s details.',
			access: 'public-admin',
			answers: {
				200: { description: 'Healthy.', json: healthSchema },
				503: { description: 'Degraded: the database is unreachable, deliveries lag more than 5 minutes, dead-lettered deliveries wait for a decision (scripts/dead-letters), or an n8n does not answer.', json: healthSchema },
			},
			errors: { ...KEY_ERRORS, 403: ['admin_key_required'], 503: ['storage_unavailable'] },
		},
		{
			id: 'identifyReceiver',
			method: 'get',
			path: '/tracking-crm',
			tag: 'receiver',
			summary: 'Identify the receiver',
			description: 'Says “this is a Tracking CRM receiver”, whatever its health: the Tracking CRM API credential’s test in n8n asks here.',
			access: 'public',
			answers: { 200: { description: 'The receiver’s version.', json: receiverIdentitySchema } },
		},
		{
			id: 'getOpenApiDocument',
			method: 'get',
			path: '/api/openapi.json',
			tag: 'receiver',
			summary: 'This API reference, as OpenAPI 3.1',
			description: 'The OpenAPI 3.1 document of the receiver’s API, generated from the schemas its routes validate with. Its page for people is /docs/api.',
			access: 'public',
			answers: { 200: { description: 'The OpenAPI document.', media: { 'application/json': { type: 'object', properties: { openapi: { const: '3.1.0' }, info: { type: 'object' }, paths: { type: 'object' } }, required: ['openapi', 'info', 'paths'] } } } },
		},
		{
			id: 'listCaughtMail',
			method: 'get',
			path: '/mailbox/api/messages',
			tag: 'mailbox',
			summary: 'Caught mail',
			description: 'The messages the built-in mail catcher received, newest first.',
			access: 'local',
			query: {
				schema: listQuery,
				notes: { to: 'Only messages to this address.', site: 'Only messages of this site (its key).', limit: 'How many, 1 to 1000.' },
			},
			answers: { 200: { description: 'The messages.', json: mailboxListSchema } },
			errors: { 400: ['invalid_parameter'], ...SERVER_ERRORS },
		},
		{
			id: 'getCaughtMail',
			method: 'get',
			path: '/mailbox/api/messages/{id}',
			tag: 'mailbox',
			summary: 'One caught message',
			description: 'A caught message with its headers, text and HTML.',
			access: 'local',
			pathParams: { schema: idParams, notes: { id: 'The message’s id, from the list.' } },
			answers: { 200: { description: 'The message.', json: mailboxMessageSchema } },
			errors: { 400: ['invalid_parameter'], 404: ['not_found'], ...SERVER_ERRORS },
		},
	];
}
