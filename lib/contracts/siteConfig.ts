import safeRegex from 'safe-regex2';
import { z } from 'zod/v4';

import { templateProblem, type TemplateKind } from './emailTemplates';
import { nearestName } from './issues';
import { EVENT_TYPES } from './tracking';

/** The six bundled micro-workflows; outbox rows are addressed to one of them. */
export const WORKFLOW_NAMES = [
	'visitor-processor',
	'conversion-detector',
	'lead-processor',
	'activity-logger',
	'enrichment-engine',
	'email-orchestrator',
] as const;

const SITE_KEY = /^[a-z0-9][a-z0-9_-]{2,63}$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$|^localhost$/i;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

/** `value` as a URL, or null when it is none. */
function urlOf(value: string): URL | null {
	try {
		return new URL(value);
	} catch {
		return null;
	}
}

const isHttp = (url: URL | null): url is URL => url?.protocol === 'http:' || url?.protocol === 'https:';

/**
 * Why `value` is not an origin as a browser sends it in its Origin header, or null. The receiver
 * compares that header with the list as text, so an origin written another way (a host in Unicode
 * or with capitals, the scheme's default port) would match no request: the message names the
 * value the browser sends.
 */
function originProblem(value: string): string | null {
	const url = urlOf(value);
	// Scheme and authority only: a path, a trailing slash, a query or a fragment is no origin at all.
	if (!isHttp(url) || !/^[a-z][a-z0-9+.-]*:\/\/[^/?#@]+$/i.test(value)) {
		return 'must be an origin such as https://www.example.com (scheme and host, no path or trailing slash)';
	}
	if (url.origin === value) return null;
	const hasDefaultPort = /:\d+$/.test(value) && url.port === '';
	const reasons = [...(/\P{ASCII}/u.test(value) ? ['the host in punycode'] : []), ...(/[A-Z]/.test(value) ? ['in lowercase'] : []), ...(hasDefaultPort ? ['without the default port'] : [])];
	return `is not written as a browser sends it, so no request would match it: a browser sends "${url.origin}"${reasons.length ? ` (${reasons.join(', ')})` : ''}; write that instead`;
}

const origin = z.string().superRefine((value, context) => {
	const problem = originProblem(value);
	if (problem) context.addIssue({ code: 'custom', input: value, message: problem });
});

const httpUrl = z.string().refine((value) => isHttp(urlOf(value)), { error: 'must be an absolute http(s) URL' });

/** A glob over URL paths: `*` matches within a segment, `**` across segments. */
const pathPattern = z.string().min(1).max(500).startsWith('/', { error: 'must start with "/" (a path pattern such as /pricing/*)' });

/**
 * A setting of the original system that this product does not need: refused with what does its
 * job instead, rather than accepted and ignored (a setting that does nothing misleads whoever set it).
 */
const retired = (instead: string) => z.never({ error: `is not a setting here: ${instead}; delete it` }).optional();

const positiveInt = (unit: string) => z.number().int({ error: `must be a whole number of ${unit}` }).positive({ error: `must be a positive number of ${unit}` });

const eventRelevanceRule = z.strictObject({
	type: z.enum(EVENT_TYPES).optional(),
	name: z.string().min(1).max(100).optional(),
	urlPattern: pathPattern.optional(),
	relevance: z.number().int().min(1).max(10),
});

const trackingSchema = z.strictObject({
	enableSmartEvents: z.boolean().default(true),
	/** Inactivity, in seconds, after which the next event starts a new session. */
	sessionTimeout: positiveInt('seconds').max(86_400).default(1800),
	/** Longest session, in seconds; a longer visit is split. */
	maxSessionDuration: positiveInt('seconds').max(172_800).default(43_200),
	maxEventsPerSession: retired('a session ends at sessionTimeout or maxSessionDuration, and the receiver limits what one browser may send (RATE_LIMIT_PER_IP)'),
	debugMode: z.boolean().default(false),
	/** Events scored below this relevance (1–10) are not sent by the tracker. */
	relevanceThreshold: z.number().int().min(1).max(10).default(1),
	eventRelevance: z.array(eventRelevanceRule).max(200).default([]),
	/** Engagement score (0–100) at which a session counts as medium or high. */
	engagementThresholds: z
		.strictObject({ medium: z.number().min(0).max(100), high: z.number().min(0).max(100) })
		.refine((t) => t.medium < t.high, { error: 'medium must be lower than high' })
		.default({ medium: 30, high: 60 }),
	/** Origins allowed to send events (CORS allowlist). */
	allowedOrigins: z.array(origin).min(1, { error: 'must list at least one origin allowed to send events' }),
	hashRouting: z.boolean().default(false),
	cookieless: z.boolean().default(false),
	/** File extensions whose links the tracker reports as downloads (a link with a download attribute always is one). */
	downloadExtensions: z
		.array(z.string().regex(/^[a-z0-9]{1,10}$/i, { error: 'must be a file extension without the dot, such as pdf' }))
		.max(100)
		.default(['pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx', 'csv', 'txt', 'zip', 'rar', '7z', 'gz', 'dmg', 'exe', 'msi', 'pkg', 'apk', 'mp3', 'mp4']),
	/** First-party path the receiver serves the tracker script at. */
	scriptPath: z.string().regex(/^\/[A-Za-z0-9._~/-]*\.js$/, { error: 'must be a path ending in .js, such as /t.js' }).default('/t.js'),
});

const eventScoringRule = z.strictObject({
	id: z.string().min(1).max(100).optional(),
	/** Event type or custom event name the rule scores. */
	event: z.string().min(1).max(100),
	urlPattern: pathPattern.optional(),
	score: z.number().min(-1000).max(1000),
	/** Most points this rule may contribute in total. */
	cap: z.number().positive().optional(),
	group: z.string().min(1).max(100).optional(),
	/** Points of an event halve every this many days. */
	halfLifeDays: z.number().positive().max(3650).optional(),
});

/**
 * Scores repeat visits: the visits (sessions) of the lead's merged history, across all its
 * devices. Once the history holds `visits` visits the rule gives `score`; with `perVisit` it gives
 * `score` for that visit and every later one instead (e.g. `{ visits: 2, perVisit: true }` scores
 * each return visit).
 */
const visitScoringRule = z.strictObject({
	id: z.string().min(1).max(100).optional(),
	visits: z.number().int().min(1, { error: 'must be at least 1 visit' }).max(10_000),
	perVisit: z.boolean().default(false),
	score: z.number().min(-1000).max(1000),
	/** Most points this rule may contribute in total. */
	cap: z.number().positive().optional(),
	group: z.string().min(1).max(100).optional(),
	/** Points of a visit halve every this many days, counted from the visit's start (threshold rules: from the latest visit). */
	halfLifeDays: z.number().positive().max(3650).optional(),
});

const FIT_FIELDS = ['emailDomain', 'company', 'jobTitle', 'country', 'source', 'phone', 'freeMail', 'disposableEmail', 'tag'] as const;

const compiles = (pattern: string) => {
	try {
		new RegExp(pattern, 'i');
		return true;
	} catch {
		return false;
	}
};

/**
 * Why testing `pattern` may take exponential time on some value, or null. A `matches` rule is tested
 * against what visitors type into a form (a job title), inside the receiver when it runs the
 * workflows itself, so one crafted value of a few dozen characters against (a+)+ would hang it.
 * safe-regex2 judges the pattern by its nesting of repetitions and their number.
 */
function backtrackingProblem(pattern: string): string | null {
	// ret, the parser safe-regex2 uses, does not know lookbehind and answers "unsafe"; a lookahead holds the same repetitions.
	const checked = pattern.replace(/\(\?<([=!])/g, '(?$1');
	if (!safeRegex(checked, { limit: Infinity })) {
		return 'repeats a group that itself repeats (such as (a+)+ or (\\w+\\s?)*), which can take exponential time on a crafted value and hang the process that scores it; repeat only the innermost part, e.g. ^a+$ instead of ^(a+)+$, or list the words, e.g. \\b(owner|founder)\\b';
	}
	if (!safeRegex(checked)) {
		return 'has more than 25 repetitions (+, *, ?, {n}), which can take too long to test on a crafted value; simplify it, e.g. list the words: \\b(owner|founder)\\b';
	}
	return null;
}

/** Scores a lead field; `matches` takes a case-insensitive JavaScript regular expression. */
const fitScoringRule = z
	.strictObject({
		id: z.string().min(1).max(100).optional(),
		field: z.enum(FIT_FIELDS),
		operator: z.enum(['equals', 'contains', 'in', 'matches', 'exists', 'isTrue']),
		value: z.union([z.string().max(1000), z.array(z.string().max(200)).max(500)]).optional(),
		score: z.number().min(-1000).max(1000),
		group: z.string().min(1).max(100).optional(),
	})
	.check((ctx) => {
		const { operator, value } = ctx.value;
		const needsList = operator === 'in';
		const needsText = operator === 'equals' || operator === 'contains' || operator === 'matches';
		if (needsList && !Array.isArray(value)) {
			ctx.issues.push({ code: 'custom', input: value, path: ['value'], message: 'must be a list of strings for operator "in"' });
		} else if (needsText && typeof value !== 'string') {
			ctx.issues.push({ code: 'custom', input: value, path: ['value'], message: `must be a string for operator "${operator}"` });
		} else if (operator === 'matches' && typeof value === 'string') {
			const problem = compiles(value) ? backtrackingProblem(value) : 'must be a valid JavaScript regular expression';
			if (problem) ctx.issues.push({ code: 'custom', input: value, path: ['value'], message: problem });
		}
	});

const lifecycleStage = z.strictObject({
	name: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, { error: 'must be a lowercase stage name such as mql' }),
	/** Score at which a lead enters the stage; omit for stages set only by events (e.g. customer). */
	minScore: z.number().optional(),
});

/**
 * Why the stage at `index` has the name of an earlier one, or null: a lead's stage is stored and
 * looked up by name, so two stages of one name cannot be told apart.
 */
function repeatedStageProblem(stages: ReadonlyArray<{ name: string }>, index: number): string | null {
	const first = stages.findIndex((stage) => stage.name === stages[index].name);
	if (first === index) return null;
	return `is also the name of crm.lifecycleStages[${first}]: a lead's stage is kept by its name, so the two cannot be told apart; rename or remove one of them`;
}

/**
 * Why the stage at `index` has a minScore no higher than that of the scored stage before it, or
 * null. A score moves a lead to the last stage in the list whose minScore it reaches (nextStage in
 * nodes/LeadScorer/stages.ts), so the earlier stage would never be entered by scoring; an equal
 * minScore is no better than a lower one.
 */
function stageOrderProblem(stages: ReadonlyArray<{ name: string; minScore?: number }>, index: number): string | null {
	const { minScore } = stages[index];
	const before = stages
		.slice(0, index)
		.reverse()
		.find((stage) => stage.minScore !== undefined);
	if (minScore === undefined || before?.minScore === undefined || minScore > before.minScore) return null;
	return `must be higher than ${before.minScore}, the minScore of "${before.name}" before it: a score moves a lead to the last stage whose minScore it reaches, so "${before.name}" would never be entered by scoring; list the stages from the lowest minScore to the highest`;
}

const lifecycleStages = z
	.array(lifecycleStage)
	.min(1)
	.superRefine((stages, context) => {
		stages.forEach((stage, index) => {
			const repeated = repeatedStageProblem(stages, index);
			if (repeated) context.addIssue({ code: 'custom', path: [index, 'name'], input: stage.name, message: repeated });
			const order = stageOrderProblem(stages, index);
			if (order) context.addIssue({ code: 'custom', path: [index, 'minScore'], input: stage.minScore, message: order });
		});
	});

const conversionRule = z.strictObject({
	name: z.string().min(1).max(100),
	event: z.string().min(1).max(100).optional(),
	urlPattern: pathPattern.optional(),
	minEngagementScore: z.number().min(0).max(100).optional(),
	// Conversions store their value as Decimal(14, 4).
	value: z.number().min(0).max(9_999_999_999.9999, { error: 'does not fit Decimal(14, 4): at most 9999999999.9999' }).default(0),
	currency: z.string().regex(/^[A-Z]{3}$/, { error: 'must be an ISO 4217 currency code such as EUR' }).optional(),
});

/** An email's subject, HTML or text: a Handlebars template of its `kind` the Email Orchestrator can render (emailTemplates.ts). */
const template = (kind: TemplateKind, max?: number) =>
	(max === undefined ? z.string().min(1) : z.string().min(1).max(max)).superRefine((source, context) => {
		const problem = templateProblem(source, kind);
		if (problem) context.addIssue({ code: 'custom', input: source, message: problem });
	});

const sequenceStep = z.strictObject({
	delayMinutes: z.number().int().min(0).max(525_600),
	subject: template('step', 300),
	html: template('step'),
	text: template('step').optional(),
});

const emailSequence = z.strictObject({
	name: z.string().min(1).max(100),
	trigger: z.union([z.strictObject({ stage: z.string().min(1) }), z.strictObject({ tag: z.string().min(1) }), z.strictObject({ event: z.string().min(1) })]),
	quietHours: z
		.strictObject({
			start: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'must be a time HH:MM' }),
			end: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, { error: 'must be a time HH:MM' }),
		})
		// The scheduler pauses sending from start until end: one time for both pauses nothing.
		.refine((quiet) => quiet.start !== quiet.end, {
			path: ['end'],
			error: 'is the same time as quietHours.start, which leaves no quiet hours (sending pauses from start until end); set end to when sending may start again, or remove quietHours',
		})
		.optional(),
	/** Days a step may be sent on, 1 = Monday … 7 = Sunday (ISO). */
	weekdays: z.array(z.number().int().min(1).max(7)).min(1).max(7).optional(),
	/**
	 * The `email_campaigns` row the sequence belongs to (created active on first use): its sender
	 * and reply-to replace the site's, and pausing it in the database holds its sends.
	 */
	campaign: z
		.strictObject({
			name: z.string().min(1).max(100),
			fromEmail: z.email({ error: 'must be an email address' }).optional(),
			fromName: z.string().max(100).optional(),
			replyTo: z.email({ error: 'must be an email address' }).optional(),
		})
		.optional(),
	/**
	 * What ends a lead's enrollment early. `conversions`: names of `crm.conversionRules` whose
	 * conversion, reached after the lead was enrolled, ends the sequence. None by default: the form
	 * that makes someone a lead is often a conversion too, and must not end what it started.
	 */
	exitOn: z
		.strictObject({
			conversions: z.array(z.string().min(1).max(100)).max(200).default([]),
		})
		.optional(),
	steps: z.array(sequenceStep).min(1),
});

const crmSchema = z
	.strictObject({
		leadScoringRules: z.array(z.union([eventScoringRule, fitScoringRule, visitScoringRule])).max(500).default([]),
		/** Highest total score; per-group caps limit a group of rules. */
		maxScore: z.number().positive().optional(),
		groupCaps: z.record(z.string(), z.number().positive()).default({}),
		lifecycleStages: lifecycleStages.default([
			{ name: 'subscriber', minScore: 0 },
			{ name: 'lead', minScore: 10 },
			{ name: 'mql', minScore: 40 },
			{ name: 'sql', minScore: 80 },
			{ name: 'customer' },
		]),
		conversionRules: z.array(conversionRule).max(200).default([]),
		autoEnrichment: retired('enrichment is offline (from the lead’s own address and fields, no outside service) and is workflow 05’s; to go without it on your own n8n, remove workflow 03’s hand-off “To 05 Enrichment Engine”'),
		emailSequences: z.array(emailSequence).max(100).default([]),
		/** Most emails one lead may receive per rolling 24 hours across all sequences. */
		maxEmailsPerDay: z.number().int().positive().default(2),
	})
	.superRefine((crm, context) => {
		crm.emailSequences.forEach((sequence, index) => {
			if ('stage' in sequence.trigger) {
				const problem = triggerStageProblem(sequence.trigger.stage, crm.lifecycleStages);
				if (problem) context.addIssue({ code: 'custom', path: ['emailSequences', index, 'trigger', 'stage'], input: sequence.trigger.stage, message: problem });
			}
			sequence.exitOn?.conversions.forEach((name, position) => {
				const problem = exitConversionProblem(name, crm.conversionRules);
				if (problem) context.addIssue({ code: 'custom', path: ['emailSequences', index, 'exitOn', 'conversions', position], input: name, message: problem });
			});
		});
	});

/** Why a sequence's trigger `stage` names no stage of the site's `crm.lifecycleStages` (no lead would ever enter it), or null. */
export function triggerStageProblem(stage: string, stages: ReadonlyArray<{ name: string }>): string | null {
	const names = stages.map((candidate) => candidate.name);
	if (names.includes(stage)) return null;
	const nearest = nearestName(stage, names);
	if (nearest) return `must name a stage of crm.lifecycleStages; did you mean "${nearest}"? (it has: ${names.join(', ')})`;
	return `must name a stage of crm.lifecycleStages (it has: ${names.join(', ')}); add a stage named "${stage}" or correct the name`;
}

/** Why a sequence's exitOn conversion `name` names no rule of the site's `crm.conversionRules`, or null. */
export function exitConversionProblem(name: string, conversionRules: ReadonlyArray<{ name: string }>): string | null {
	const rules = conversionRules.map((rule) => rule.name);
	if (rules.includes(name)) return null;
	return `must name a rule of crm.conversionRules (${rules.length ? `it has: ${rules.join(', ')}` : 'it has none'}); add a conversion rule named "${name}" or correct the name`;
}

const webhookEndpoint = z.strictObject({
	workflow: z.enum(WORKFLOW_NAMES),
	/** Full webhook URL, or a path appended to integrations.n8nUrl (or served by the embedded engine). */
	url: z.union([httpUrl, z.string().startsWith('/', { error: 'must be a full URL or a path starting with "/"' })]),
});

/**
 * Where the receiver hands each kind of data: the entry webhooks of the bundled workflows 01, 03
 * and 06, so that switching between the embedded engine and a real n8n is one setting (n8nUrl).
 */
export const DEFAULT_WEBHOOK_ENDPOINTS = [
	{ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor' },
	{ workflow: 'lead-processor', url: '/webhook/crm-lead-processor' },
	{ workflow: 'email-orchestrator', url: '/webhook/crm-email-orchestrator' },
] as const satisfies ReadonlyArray<z.input<typeof webhookEndpoint>>;

/** n8nUrl as it should be written: scheme, host, port and path, nothing else. */
function bareN8nUrl(url: URL): string {
	return `${url.origin}${url.pathname === '/' ? '' : url.pathname}`;
}

/**
 * Why n8nUrl holds a user name or password, or null. No request is sent to a URL with credentials
 * (fetch refuses it), so no delivery would leave, and the receiver prints n8nUrl when it starts,
 * password included. n8n's webhooks authenticate a delivery by its signature instead.
 */
function n8nCredentialsProblem(url: URL): string | null {
	if (!url.username && !url.password) return null;
	return `must not hold a user name or password (no request is sent to a URL with them, and the receiver prints this URL when it starts; deliveries are signed with the secret integrations.webhookSecretEnv names instead); write "${bareN8nUrl(url)}"`;
}

/** Why n8nUrl has a query or fragment, or null: each webhook path is appended to n8nUrl's path, so neither would reach n8n. */
function n8nSuffixProblem(value: string, url: URL): string | null {
	if (!/[?#]/.test(value)) return null;
	return `must not have a query (?…) or fragment (#…): each webhook path is appended to this URL's path, so they would never reach n8n; write "${bareN8nUrl(url)}"`;
}

const n8nUrl = httpUrl.superRefine((value, context) => {
	const url = urlOf(value);
	// One that is no URL at all already has httpUrl's issue.
	if (!url) return;
	for (const problem of [n8nCredentialsProblem(url), n8nSuffixProblem(value, url)]) {
		if (problem) context.addIssue({ code: 'custom', input: value, message: problem });
	}
});

/**
 * Why the endpoint at `index` names a workflow an earlier entry names too, or null: the receiver
 * keeps one URL per workflow (the last listed), so the other entry would do nothing.
 */
function repeatedWorkflowProblem(endpoints: ReadonlyArray<{ workflow: WorkflowName }>, index: number): string | null {
	const { workflow } = endpoints[index];
	const first = endpoints.findIndex((endpoint) => endpoint.workflow === workflow);
	if (first === index) return null;
	return `names "${workflow}" again, as integrations.webhookEndpoints[${first}] does: a workflow takes one URL, and only the last one listed would be used; keep one entry for it`;
}

const integrationsSchema = z
	.strictObject({
		/**
		 * The n8n that runs the workflows, with the path it is served under behind a reverse proxy
		 * (https://tools.example.com/n8n). Unset: the receiver runs the bundled workflows itself, with n8n's engine embedded.
		 */
		n8nUrl: n8nUrl.optional(),
		webhookEndpoints: z.array(webhookEndpoint).default(() => DEFAULT_WEBHOOK_ENDPOINTS.map((endpoint) => ({ ...endpoint }))),
		/** Name of the environment variable holding the HMAC secret for webhooks to n8n. */
		webhookSecretEnv: z.string().regex(ENV_NAME, { error: 'must be an environment variable name such as CRM_WEBHOOK_SECRET' }).default('CRM_WEBHOOK_SECRET'),
		emailProvider: z
			.strictObject({
				type: z.literal('smtp'),
				fromEmail: z.email({ error: 'must be an email address' }),
				fromName: z.string().max(100).optional(),
			})
			.optional(),
	})
	.superRefine((integrations, context) => {
		integrations.webhookEndpoints.forEach((endpoint, index) => {
			const repeated = repeatedWorkflowProblem(integrations.webhookEndpoints, index);
			if (repeated) context.addIssue({ code: 'custom', path: ['webhookEndpoints', index, 'workflow'], input: endpoint.workflow, message: repeated });
			if (!integrations.n8nUrl && !endpoint.url.startsWith('/webhook/')) {
				context.addIssue({
					code: 'custom',
					path: ['webhookEndpoints', index, 'url'],
					message: 'must be a path /webhook/<path of a bundled workflow’s CRM Tracker Trigger> while integrations.n8nUrl is unset (the embedded engine runs the workflows); set n8nUrl to send to a real n8n',
				});
			}
		});
	});

/** A Handlebars reference to the confirmation link, escaped or not: {{confirmUrl}} or {{{confirmUrl}}}. */
const CONFIRM_URL_REFERENCE = /\{\{\{?\s*confirmUrl\s*\}?\}\}/;

/**
 * The double opt-in email: Handlebars templates with the lead's fields (firstName, lastName,
 * email, company …), `siteName` and `confirmUrl`, the signed link the person confirms with.
 */
const confirmationEmailSchema = z.strictObject({
	subject: template('confirmation', 300).default('Please confirm your subscription to {{siteName}}'),
	html: template('confirmation')
		.refine((html) => CONFIRM_URL_REFERENCE.test(html), { error: 'must contain {{confirmUrl}}, the link the person confirms with' })
		.default(
			'<p>Hello{{#if firstName}} {{firstName}}{{/if}},</p><p>please confirm that you want to receive emails from {{siteName}}:</p>' +
				'<p><a href="{{confirmUrl}}">Yes, send me emails</a></p><p>If you did not ask for them, ignore this email: nothing will be sent to you.</p>',
		),
	/** The plain-text part; made from the HTML when absent. */
	text: template('confirmation')
		.refine((text) => CONFIRM_URL_REFERENCE.test(text), { error: 'must contain {{confirmUrl}}, the link the person confirms with' })
		.optional(),
	/** Days the link may be confirmed in; after them the lead's waiting enrollments end unconfirmed. */
	validForDays: positiveInt('days').max(90).default(7),
});

const privacyFields = z.strictObject({
	gdprCompliant: retired('each part of it is its own setting: cookieConsent, respectGlobalPrivacyControl, respectDoNotTrack, dataRetention, requireMarketingConsent and doubleOptIn'),
	/** Track only after the visitor granted consent. */
	cookieConsent: z.boolean().default(true),
	/** Days raw events and sessions are kept before the retention job deletes them. */
	dataRetention: positiveInt('days').max(3650).default(365),
	anonymizeIPs: z.literal(true, { error: 'must be true: raw IP addresses are never stored' }).default(true),
	allowOptOut: retired('a visitor can always opt out (the tracker’s consent("denied"), an email’s unsubscribe link) and a person can always be erased'),
	respectGlobalPrivacyControl: z.boolean().default(true),
	respectDoNotTrack: z.boolean().default(true),
	/**
	 * Seal the leads' addresses, names, phone numbers, companies and job titles (and what carries
	 * them: lead deliveries in the outbox, sent emails' recipients and subjects, the mail catcher's
	 * copies) with AES-256-GCM under PII_ENCRYPTION_KEYS; a lead is found by its address's keyed hash
	 * (PII_HASH_KEY). The receiver does not start without those keys when a site sets this.
	 */
	encryptPii: z.boolean().default(false),
	/** The Email Orchestrator sends a sequence email only to a lead whose latest marketing consent record is a grant. */
	requireMarketingConsent: z.boolean().default(false),
	/** Before a lead's first sequence email, a confirmation email; no sequence email until its link is confirmed. */
	doubleOptIn: z.boolean().default(false),
	/** The double opt-in email; the default one when absent. */
	confirmationEmail: confirmationEmailSchema.optional(),
});

/** The consent settings of the Email Orchestrator only act together; each alone would be a setting that does nothing. */
const privacySchema = privacyFields.superRefine((privacy, context) => {
	if (privacy.doubleOptIn && !privacy.requireMarketingConsent) {
		context.addIssue({
			code: 'custom',
			path: ['doubleOptIn'],
			input: privacy.doubleOptIn,
			message: 'needs privacy.requireMarketingConsent: true (double opt-in confirms a marketing consent the lead gave); set requireMarketingConsent to true, or doubleOptIn to false',
		});
	}
	if (privacy.confirmationEmail && !privacy.doubleOptIn) {
		context.addIssue({
			code: 'custom',
			path: ['confirmationEmail'],
			input: privacy.confirmationEmail,
			message: 'is only sent with privacy.doubleOptIn: true; set doubleOptIn to true, or remove confirmationEmail',
		});
	}
});

export const siteConfigSchema = z.strictObject({
	site: z.strictObject({
		/** Public key the tracker sends; lowercase letters, digits, "-" and "_". */
		key: z.string().regex(SITE_KEY, { error: 'must be 3–64 lowercase letters, digits, "-" or "_", starting with a letter or digit' }),
		name: z.string().min(1).max(200),
		domain: z.string().regex(HOSTNAME, { error: 'must be a host name such as example.com (no scheme, no path)' }),
		logo: retired('the dashboards and emails show the site’s name'),
	}),
	tracking: trackingSchema,
	crm: crmSchema.default(() => crmSchema.parse({})),
	integrations: integrationsSchema.default(() => integrationsSchema.parse({})),
	privacy: privacySchema.default(() => privacySchema.parse({})),
});

export type SiteConfig = z.infer<typeof siteConfigSchema>;
export type SiteConfigInput = z.input<typeof siteConfigSchema>;
export type WorkflowName = (typeof WORKFLOW_NAMES)[number];
export type EventScoringRule = z.infer<typeof eventScoringRule>;
export type FitScoringRule = z.infer<typeof fitScoringRule>;
export type VisitScoringRule = z.input<typeof visitScoringRule>;
export type LeadScoringRule = EventScoringRule | FitScoringRule | VisitScoringRule;
export type ConversionRule = z.infer<typeof conversionRule>;
export type LifecycleStage = z.infer<typeof lifecycleStage>;
export type EmailSequenceConfig = z.infer<typeof emailSequence>;
export type ConfirmationEmailConfig = z.infer<typeof confirmationEmailSchema>;
/** The confirmation email of a site whose config names none. */
export const DEFAULT_CONFIRMATION_EMAIL: ConfirmationEmailConfig = confirmationEmailSchema.parse({});

/**
 * A sequence given to the Email Orchestrator as a node parameter: the shape of
 * `crm.emailSequences[]`, with the trigger optional (a workflow that enrolls explicitly needs none).
 */
export const emailSequenceDefinitionSchema = emailSequence.extend({ trigger: emailSequence.shape.trigger.optional() });
export type EmailSequenceDefinition = z.infer<typeof emailSequenceDefinitionSchema>;
export type SequenceTrigger = EmailSequenceConfig['trigger'];
