import { z } from 'zod/v4';

import { marketingStanding } from '../../lib/consent';
import type { SiteConfig } from '../../lib/contracts';
import { emailHash } from '../../lib/email';
import { isSealed, MESSAGE_SUBJECT_FIELD, type PiiCipher } from '../../lib/pii';
// The Email Orchestrator's own rules, so the page says what Send Due will do with a step.
import { confirmationKey, consentGate, consentSettingsOf, reservedConfirmation } from '../../nodes/EmailOrchestrator/consent';
import { stepAction } from '../../nodes/EmailOrchestrator/steps';
import { suppressionCause } from '../../nodes/EmailOrchestrator/suppression';
import {
	hundredths,
	LEAD_SORTS,
	leadAnalytics,
	leadChannels,
	leadMailFacts,
	leadProfile,
	leadSequences,
	leadTimeline,
	pipelineSeries,
	reservedMessage,
	scoreExplanation,
	scoreLedger,
	type EnrollmentSteps,
	type LeadAnalytics,
	type LeadChannel,
	type LeadListQuery,
	type LeadListRow,
	type LeadProfile,
	type LeadSort,
	type LedgerRow,
	type PipelineSeries,
	type RuleExplanation,
	type ScoreBucket,
	type TimelineEntry,
} from '../analytics/leads';
import type { Queryable, TimeRange } from '../analytics/queries';
import { cleanText, quoted } from '../routes/inputs';
import { previousRange, type DashboardRange } from './range';
import { formatDuration, formatMoney, formatTime, type Table } from './tables';
import type { Figure } from './visitors';

/**
 * Lead Intelligence as the pages show it: the query layer's reports (../analytics/leads.ts) turned
 * into headline figures and Table objects, each drawn as HTML and downloaded as CSV from the same
 * rows; the lead list's form read and checked; a lead's timeline and sequence steps put in words.
 */

// ---------------------------------------------------------------------------------------------
// The overview

export interface LeadReport {
	range: DashboardRange;
	previous: TimeRange;
	current: LeadAnalytics;
	before: LeadAnalytics;
	channels: LeadChannel[];
	channelsBefore: LeadChannel[];
	pipeline: PipelineSeries;
}

export async function loadLeadReport(prisma: Queryable, siteId: string, range: DashboardRange, stages: readonly string[]): Promise<LeadReport> {
	const previous = previousRange(range);
	const [current, before, channels, channelsBefore, pipeline] = await Promise.all([
		leadAnalytics(prisma, siteId, range, stages),
		leadAnalytics(prisma, siteId, previous, stages),
		leadChannels(prisma, siteId, range),
		leadChannels(prisma, siteId, previous),
		pipelineSeries(prisma, siteId, range, stages),
	]);
	return { range, previous, current, before, channels, channelsBefore, pipeline };
}

/** The headline figures, each with the previous period's value. */
export function leadFigures(report: LeadReport): Figure[] {
	const figure = (name: string, label: string, kind: Figure['kind'], read: (summary: LeadAnalytics['summary']) => number | null): Figure => ({
		name,
		label,
		kind,
		value: read(report.current.summary),
		previous: read(report.before.summary),
	});
	return [
		figure('newLeads', 'New leads', 'count', (summary) => summary.newLeads),
		figure('visitors', 'Visitors', 'count', (summary) => summary.visitors),
		figure('convertedVisitors', 'Visitors who became leads', 'count', (summary) => summary.convertedVisitors),
		figure('visitorToLeadRate', 'Visitor → lead conversion', 'percent', (summary) => summary.visitorToLeadRate),
		figure('avgScore', 'Score of new leads (average)', 'decimal', (summary) => summary.avgScore),
		figure('medianScore', 'Score of new leads (median)', 'decimal', (summary) => summary.medianScore),
	];
}

/** The overview's tables in the order it shows them; each downloads as /dashboard/leads.csv?table=<name>. */
export const LEAD_TABLES = ['new-leads', 'pipeline-over-time', 'pipeline', 'score-distribution', 'channels', 'sources', 'stage-changes'] as const;
export type LeadTableName = (typeof LEAD_TABLES)[number];

/** "0 to under 10", "100 and over", "below 0": a bucket's bounds as a person reads them. */
export function bucketLabel(bucket: ScoreBucket): string {
	if (bucket.min === null) return `below ${bucket.max}`;
	if (bucket.max === null) return `${bucket.min} and over`;
	return `${bucket.min} to under ${bucket.max}`;
}

const NOT_SET = '(not set)';

/** The rows of one period beside the period before, by key; keys only the previous period had come last. */
function withPrevious<T>(current: readonly T[], before: readonly T[], key: (row: T) => string, count: (row: T) => number): Array<[string, T | undefined, number]> {
	const earlier = new Map(before.map((row) => [key(row), count(row)]));
	const rows: Array<[string, T | undefined, number]> = current.map((row) => [key(row), row, earlier.get(key(row)) ?? 0]);
	const seen = new Set(current.map(key));
	for (const row of before) if (!seen.has(key(row))) rows.push([key(row), undefined, count(row)]);
	return rows;
}

const unitWord: Record<PipelineSeries['unit'], string> = { hour: 'hour', day: 'day', week: 'week' };

/** Every table of the overview, by its name in the CSV link. */
export function leadTables(report: LeadReport): Record<LeadTableName, Table> {
	const { current, before, pipeline } = report;
	const unit = unitWord[pipeline.unit];
	const tables: Array<Table & { name: LeadTableName }> = [
		{
			name: 'new-leads',
			title: 'New leads over time',
			columns: [
				{ label: 'Period start (UTC)', kind: 'time' },
				{ label: 'New leads', kind: 'count' },
			],
			rows: current.series.map((point) => [point.at, point.leads]),
			empty: 'No period to show.',
		},
		{
			name: 'pipeline-over-time',
			title: 'Pipeline by lifecycle stage over time',
			columns: [{ label: `${unit[0].toUpperCase()}${unit.slice(1)} (UTC; leads at its end)`, kind: 'time' }, ...pipeline.stages.map((stage) => ({ label: stage, kind: 'count' as const })), { label: 'All leads', kind: 'count' }],
			rows: pipeline.points.map((point) => [point.at, ...pipeline.stages.map((stage) => point.leads[stage]), pipeline.stages.reduce((sum, stage) => sum + point.leads[stage], 0)]),
			empty: 'No period to show.',
		},
		{
			name: 'pipeline',
			title: 'Pipeline now',
			columns: [
				{ label: 'Lifecycle stage', kind: 'text' },
				{ label: 'Leads', kind: 'count' },
			],
			rows: current.pipeline.map((row) => [row.stage, row.leads]),
			empty: 'No lead yet.',
		},
		{
			name: 'score-distribution',
			title: 'Score distribution of new leads',
			columns: [
				{ label: 'Score', kind: 'text' },
				{ label: 'New leads', kind: 'count' },
				{ label: 'Previous period', kind: 'count' },
			],
			rows: current.scoreDistribution.map((bucket, index) => [bucketLabel(bucket), bucket.leads, before.scoreDistribution[index].leads]),
			empty: 'No lead yet.',
		},
		{
			name: 'channels',
			title: 'New leads by first-touch channel',
			columns: [
				{ label: 'Channel', kind: 'text' },
				{ label: 'New leads', kind: 'count' },
				{ label: 'Share', kind: 'percent' },
				{ label: 'Previous period', kind: 'count' },
			],
			rows: withPrevious(
				report.channels,
				report.channelsBefore,
				(row) => row.channel ?? NOT_SET,
				(row) => row.leads,
			).map(([channel, row, previous]) => [channel, row?.leads ?? 0, row?.share ?? null, previous]),
			empty: 'No new lead in this period or the one before.',
		},
		{
			name: 'sources',
			title: 'New leads by source',
			columns: [
				{ label: 'Source', kind: 'text' },
				{ label: 'New leads', kind: 'count' },
				{ label: 'Share', kind: 'percent' },
				{ label: 'Previous period', kind: 'count' },
			],
			rows: withPrevious(
				current.sources,
				before.sources,
				(row) => row.source ?? NOT_SET,
				(row) => row.leads,
			).map(([source, row, previous]) => [source, row?.leads ?? 0, row?.share ?? null, previous]),
			empty: 'No new lead in this period or the one before.',
		},
		{
			name: 'stage-changes',
			title: 'Stage moves in this period',
			columns: [
				{ label: 'From stage', kind: 'text' },
				{ label: 'To stage', kind: 'text' },
				{ label: 'Leads', kind: 'count' },
			],
			rows: current.stageChanges.map((row) => [row.from, row.to, row.leads]),
			empty: 'No lead changed stage in this period.',
		},
	];
	return Object.fromEntries(tables.map((table) => [table.name, table])) as Record<LeadTableName, Table>;
}

// ---------------------------------------------------------------------------------------------
// The lead list: its form, read and checked

export const PAGE_SIZES = [25, 50] as const;
/** Rows of the list's CSV at most: the whole filtered list, up to a spreadsheet's comfortable size. */
export const LIST_CSV_ROWS = 10_000;

/** What the form shows: the parameters as the person gave them ('' = not set). */
export interface ListChoice {
	search: string;
	stage: string;
	minScore: string;
	maxScore: string;
	tag: string;
	sort: string;
	order: string;
	size: string;
	page: string;
}

export type ListParams = Partial<Record<keyof ListChoice, string>>;

const LIST_DEFAULTS = { sort: 'score', order: 'desc', size: '25', page: '1' } as const;

/** Each parameter by the label the form gives it, so a refusal names the field the person sees. */
export const LIST_LABELS: Record<keyof ListChoice, string> = {
	search: 'Search',
	stage: 'Stage',
	minScore: 'Score from',
	maxScore: 'Score to',
	tag: 'Tag',
	sort: 'Sort by',
	order: 'Order',
	size: 'Leads per page',
	page: 'Page',
};

export const SORT_LABELS: Record<LeadSort, string> = { score: 'Score', created: 'Created', activity: 'Last activity' };
export const ORDER_LABELS = { desc: 'Highest or newest first', asc: 'Lowest or oldest first' } as const;

/** Far beyond any score the rules give, within what a float keeps exactly to two decimals. */
const SCORE_LIMIT = 1_000_000;

const score = z
	.string()
	.regex(/^-?\d+(\.\d+)?$/, { error: 'must be a number, such as 40 or 12.5' })
	.transform(Number)
	.refine((value) => Math.abs(value) <= SCORE_LIMIT, { error: `must be between -${SCORE_LIMIT.toLocaleString('en-US')} and ${SCORE_LIMIT.toLocaleString('en-US')}` });

export type ListResult =
	| { ok: true; query: LeadListQuery; page: number; size: number; chosen: ListChoice }
	| { ok: false; field: string; message: string; chosen: ListChoice };

/**
 * Reads the list's parameters; `stages` are those the form offers (the configured ones and any
 * the leads are at). A wrong value is refused by its field's label, with what it must be.
 */
export function resolveListQuery(params: ListParams, stages: readonly string[]): ListResult {
	const chosen: ListChoice = {
		search: params.search?.trim() ?? '',
		stage: params.stage ?? '',
		minScore: params.minScore?.trim() ?? '',
		maxScore: params.maxScore?.trim() ?? '',
		tag: params.tag ?? '',
		sort: params.sort || LIST_DEFAULTS.sort,
		order: params.order || LIST_DEFAULTS.order,
		size: params.size || LIST_DEFAULTS.size,
		page: params.page?.trim() || LIST_DEFAULTS.page,
	};
	const refuse = (field: keyof ListChoice, message: string): ListResult => ({ ok: false, field: LIST_LABELS[field], message, chosen });
	const check = <T>(field: keyof ListChoice, schema: z.ZodType<T>): { value: T } | { refused: ListResult } => {
		const parsed = schema.safeParse(chosen[field]);
		return parsed.success ? { value: parsed.data } : { refused: refuse(field, `${parsed.error.issues[0].message} (got ${quoted(chosen[field])})`) };
	};

	const search = check('search', cleanText(z.string().max(200, { error: 'may be at most 200 characters' })));
	if ('refused' in search) return search.refused;
	if (chosen.stage && !stages.includes(chosen.stage)) return refuse('stage', `must be one of ${stages.join(', ')} (got ${quoted(chosen.stage)})`);
	const minScore = chosen.minScore ? check('minScore', score) : { value: undefined };
	if ('refused' in minScore) return minScore.refused;
	const maxScore = chosen.maxScore ? check('maxScore', score) : { value: undefined };
	if ('refused' in maxScore) return maxScore.refused;
	if (minScore.value !== undefined && maxScore.value !== undefined && minScore.value > maxScore.value) return refuse('minScore', `must not be above Score to (${chosen.minScore} is above ${chosen.maxScore})`);
	const tag = check('tag', cleanText(z.string().max(100, { error: 'may be at most 100 characters' })));
	if ('refused' in tag) return tag.refused;
	if (!(LEAD_SORTS as readonly string[]).includes(chosen.sort)) return refuse('sort', `must be one of ${Object.values(SORT_LABELS).join(', ')} (got ${quoted(chosen.sort)})`);
	if (chosen.order !== 'asc' && chosen.order !== 'desc') return refuse('order', `must be ${Object.values(ORDER_LABELS).join(' or ')} (got ${quoted(chosen.order)})`);
	const size = PAGE_SIZES.find((option) => String(option) === chosen.size);
	if (!size) return refuse('size', `must be ${PAGE_SIZES.join(' or ')} (got ${quoted(chosen.size)})`);
	if (!/^\d{1,6}$/.test(chosen.page) || Number(chosen.page) < 1) return refuse('page', `must be a whole number from 1 (got ${quoted(chosen.page)})`);
	const page = Number(chosen.page);
	return {
		ok: true,
		page,
		size,
		chosen,
		query: {
			search: search.value || undefined,
			stage: chosen.stage || undefined,
			minScore: minScore.value,
			maxScore: maxScore.value,
			tag: tag.value || undefined,
			sort: chosen.sort as LeadSort,
			order: chosen.order,
			limit: size,
			offset: (page - 1) * size,
		},
	};
}

/** The query string of the list with these choices, leaving out what is at its default (`page` replaced when given). */
export function listQuery(chosen: ListChoice, page?: number): string {
	const params = new URLSearchParams();
	for (const [name, value] of Object.entries({ ...chosen, page: String(page ?? chosen.page) }) as Array<[keyof ListChoice, string]>) {
		const fallback = (LIST_DEFAULTS as Partial<Record<keyof ListChoice, string>>)[name];
		if (value && value !== fallback) params.set(name, value);
	}
	return params.toString();
}

/** The list as a table; the page links each row to its lead. */
export function leadListTable(rows: readonly LeadListRow[], empty: string): Table {
	return {
		name: 'leads',
		title: 'Leads',
		columns: [
			{ label: 'Email', kind: 'text' },
			{ label: 'Name', kind: 'text' },
			{ label: 'Company', kind: 'text' },
			{ label: 'Stage', kind: 'text' },
			// Scores carry up to two decimals; count cells show them as they are.
			{ label: 'Score', kind: 'count' },
			{ label: 'Tags', kind: 'text' },
			{ label: 'Created (UTC)', kind: 'time' },
			{ label: 'Last activity (UTC)', kind: 'time' },
		],
		rows: rows.map((row) => [row.email, row.name, row.company, row.stage, hundredths(row.score), row.tags.join(', '), row.createdAt, row.lastActivityAt]),
		empty,
	};
}

// ---------------------------------------------------------------------------------------------
// One lead

/** Timeline entries and ledger rows on the page; their CSVs hold up to LONG_CSV_ROWS. */
export const SHOWN_ROWS = 100;
export const LONG_CSV_ROWS = 10_000;

type EnrollmentStep = EnrollmentSteps['steps'][number];

/** A step with the subject its email went out with, when it made one: the step's own subject is a template ("Welcome, {{firstName}}"). */
export type LeadStep = EnrollmentStep & { sentSubject: string | null };
/**
 * `leaves`: why the Email Orchestrator will take the lead out of the sequence when its next step is
 * due, as the lead stands now; null when it will go on (or the enrollment is over).
 */
export type LeadEnrollment = Omit<EnrollmentSteps, 'steps'> & { steps: LeadStep[]; leaves: string | null };

export interface LeadDetail {
	profile: LeadProfile;
	explanation: RuleExplanation[];
	ledger: { total: number; rows: LedgerRow[] };
	timeline: { total: number; entries: TimelineEntry[] };
	sequences: LeadEnrollment[];
}

type EnrollmentWithSubjects = Omit<LeadEnrollment, 'leaves'>;

/** The lead's enrollments, each step with the subject its email was rendered with, opened on a site that seals them (privacy.encryptPii). */
async function enrollmentsWithSubjects(prisma: Queryable, siteId: string, leadId: string, cipher: PiiCipher | null): Promise<EnrollmentWithSubjects[]> {
	// Without the site's cipher a sealed subject is unreadable: the step then shows its template.
	const open = (subject: string) => (cipher ? cipher.open(subject, MESSAGE_SUBJECT_FIELD) : isSealed(subject) ? null : subject);
	return (await leadSequences(prisma, siteId, leadId)).map((enrollment) => ({
		...enrollment,
		steps: enrollment.steps.map((step) => ({ ...step, sentSubject: step.message ? open(step.message.subject) : null })),
	}));
}

/** A site as a lead's page reads it: its id, and the settings the Email Orchestrator decides a step by. */
export interface LeadSite {
	id: string;
	config: SiteConfig;
}

/**
 * Each active enrollment with why Send Due will take the lead out when its next step is due (see
 * LeadEnrollment): the node's own decision before a step (stepAction, with consentGate and
 * suppressionCause) on the rows it reads, as they are now, at the step's due time. Only whether the
 * lead leaves is taken from it: the send window and the daily cap only ever move a step later, so
 * they are left open here. The settings and the reserved confirmation are read by the functions
 * Send Due reads them with (consentSettingsOf, reservedConfirmation).
 */
async function withLeaving(
	prisma: Queryable,
	site: LeadSite,
	lead: Pick<LeadProfile, 'id' | 'email' | 'timezone'>,
	enrollments: EnrollmentWithSubjects[],
	now: Date,
): Promise<LeadEnrollment[]> {
	if (!enrollments.some((enrollment) => enrollment.status === 'active')) return enrollments.map((enrollment) => ({ ...enrollment, leaves: null }));
	const facts = await leadMailFacts(prisma, site.id, lead.id, emailHash(lead.email));
	const settings = consentSettingsOf(site.config.privacy);
	const standing = marketingStanding(facts.marketing, settings.doubleOptIn);
	const confirmation = reservedConfirmation(standing.status === 'unconfirmed' ? await reservedMessage(prisma, site.id, confirmationKey(lead.id, standing.grantId)) : undefined);
	const suppression = suppressionCause(facts.channelStatus, facts.suppressions);
	return enrollments.map((enrollment) => {
		if (enrollment.status !== 'active') return { ...enrollment, leaves: null };
		const dueAt = new Date(Math.max(now.getTime(), enrollment.nextRunAt?.getTime() ?? 0));
		const action = stepAction({
			step: enrollment.steps.find((step) => step.position === enrollment.nextStep),
			campaignStatus: enrollment.campaignStatus,
			suppression,
			consent: consentGate({ settings, standing, confirmation, now: dueAt }),
			recentSends: [],
			maxPerDay: site.config.crm.maxEmailsPerDay,
			window: {},
			timezone: lead.timezone,
			now: dueAt,
		});
		return { ...enrollment, leaves: action.do === 'unenroll' ? action.unenrollReason : null };
	});
}

/**
 * The lead with this id on this site, or undefined (no such lead here, another site's included);
 * `rows` bounds the ledger and the timeline; `now` is when the page is made; `cipher` opens a
 * site's sealed values (privacy.encryptPii).
 */
export async function loadLead(prisma: Queryable, site: LeadSite, leadId: string, rows: number, now: Date, cipher: PiiCipher | null = null): Promise<LeadDetail | undefined> {
	const [profile, explanation, ledger, timeline, enrollments] = await Promise.all([
		leadProfile(prisma, site.id, leadId, cipher),
		scoreExplanation(prisma, site.id, leadId),
		scoreLedger(prisma, site.id, leadId, rows),
		leadTimeline(prisma, site.id, leadId, rows, cipher),
		enrollmentsWithSubjects(prisma, site.id, leadId, cipher),
	]);
	return profile && { profile, explanation, ledger, timeline, sequences: await withLeaving(prisma, site, profile, enrollments, now) };
}

export const LEAD_PAGE_TABLES = ['score', 'ledger', 'timeline', 'sequences'] as const;
export type LeadPageTableName = (typeof LEAD_PAGE_TABLES)[number];

/**
 * The score's explanation checked against the score: the rules' points add up to `sum`. A
 * difference no larger than half a hundredth per rule can come from rounding alone: the ledger
 * holds each rule's points rounded, the lead its total rounded.
 */
export function scoreCheck(score: number, explanation: readonly RuleExplanation[]): { sum: number; score: number; difference: number; rounding: boolean } {
	const sum = hundredths(explanation.reduce((total, rule) => total + rule.points, 0));
	const difference = hundredths(hundredths(score) - sum);
	return { sum, score: hundredths(score), difference, rounding: difference !== 0 && Math.abs(difference) <= 0.005 * explanation.length };
}

/** Numbers only beside the rule, so it stays readable at phone width; the causes are in the ledger's table. */
export function scoreTable(explanation: readonly RuleExplanation[]): Table {
	return {
		name: 'score',
		title: 'Score explained',
		columns: [
			{ label: 'Rule', kind: 'text' },
			// Points carry up to two decimals; count cells show them as they are.
			{ label: 'Points now', kind: 'count' },
			{ label: 'From evidence', kind: 'count' },
			{ label: 'Decay and recomputation', kind: 'count' },
		],
		rows: explanation.map((rule) => [rule.rule, rule.points, rule.evidence, rule.recomputed]),
		empty: 'No scoring rule has given this lead points yet.',
	};
}

/** The scorer's causes name the latest event or session by its id: a reader has the timeline for those. */
const withoutIds = (cause: string) => cause.replace(/,? latest (session )?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '');

export function ledgerTable(rows: readonly LedgerRow[]): Table {
	return {
		name: 'ledger',
		title: 'Score ledger',
		columns: [
			{ label: 'When (UTC)', kind: 'time' },
			{ label: 'Rule', kind: 'text' },
			{ label: 'Points', kind: 'count' },
			{ label: 'Cause', kind: 'text' },
		],
		rows: rows.map((row) => [row.at, row.rule, hundredths(row.delta), withoutIds(row.cause)]),
		empty: 'No score change recorded.',
	};
}

const text = (value: unknown) => (typeof value === 'string' && value !== '' ? value : null);
const joined = (...parts: Array<string | null | false>) => parts.filter((part): part is string => typeof part === 'string' && part !== '').join(' · ');

const EMAIL_STATUS: Record<string, string> = { sent: 'Email sent', failed: 'Email not delivered', sending: 'Email being sent', suppressed: 'Email suppressed' };
const EMAIL_EVENT: Record<string, string> = { open: 'Email opened', click: 'Email link clicked', unsubscribe: 'Unsubscribed', bounce: 'Email bounced', complaint: 'Marked as spam' };

/**
 * A conversion activity's description with its amounts as the rest of the page writes money. Log
 * CRM Outcome wrote them into the text as the Conversion Detector passed them: the stored
 * Decimal(14, 4), "Converted: contact-request (50.0000 EUR), signup"; older rows and other
 * writers may hold any number form. Only a parenthesised number, with or without a currency code,
 * is rewritten; a goal's own name is left alone.
 */
export function amountsIn(description: string): string {
	return description.replace(/\((-?\d+(?:\.\d+)?)(?: ([^\s()]+))?\)/g, (_match, value: string, currency: string | undefined) => `(${formatMoney(value, currency)})`);
}

/** What a timeline entry says: its kind in words and its details. */
export function describeEntry(entry: TimelineEntry): [string, string] {
	const { data } = entry;
	switch (entry.kind) {
		case 'visit': {
			const pages = Number(data.pages);
			return [
				'Visit',
				joined(
					text(data.channel) ?? 'channel not set',
					`${pages} ${pages === 1 ? 'page' : 'pages'}`,
					formatDuration(Number(data.seconds)),
					text(data.entryPage) && `entered on ${data.entryPage}`,
					text(data.campaign) && `campaign ${data.campaign}`,
					text(data.engagement) && `${data.engagement} engagement`,
				),
			];
		}
		case 'conversion': {
			const value = Number(data.value);
			return ['Conversion', joined(String(data.goal), value > 0 && formatMoney(value, text(data.currency)))];
		}
		case 'activity':
			return [`Activity: ${String(data.type)}`, data.type === 'conversion' ? amountsIn(String(data.description)) : String(data.description)];
		case 'email':
			return [EMAIL_STATUS[String(data.status)] ?? `Email ${String(data.status)}`, joined(String(data.subject), text(data.error))];
		case 'email-event':
			return [EMAIL_EVENT[String(data.type)] ?? `Email ${String(data.type)}`, joined(String(data.subject), text(data.url))];
		case 'stage':
			return ['Stage changed', `${String(data.from)} → ${String(data.to)} (score ${hundredths(Number(data.score))})`];
	}
}

export function timelineTable(entries: readonly TimelineEntry[]): Table {
	return {
		name: 'timeline',
		title: 'Timeline',
		columns: [
			{ label: 'When (UTC)', kind: 'time' },
			{ label: 'What', kind: 'text' },
			{ label: 'Details', kind: 'text' },
		],
		rows: entries.map((entry) => [entry.at, ...describeEntry(entry)]),
		empty: 'Nothing happened with this lead yet.',
	};
}

export type StepStateName = 'sent' | 'scheduled' | 'pending' | 'will be skipped' | 'skipped' | 'failed' | 'sending';

/**
 * Where a step of an enrollment stands, from its message (one per lead, sequence and step) and the
 * enrollment's position, with when in its detail: sent; scheduled (the next step, or a refused send waiting for its retry);
 * pending (a later step); will be skipped (the next step and those after it, when the lead leaves
 * the sequence as the next one is due); skipped (passed without a send, suppressed, or left behind
 * when the lead left the sequence); failed (delivery unknown, not sent again); sending (in flight,
 * or a run died mid-send).
 */
export function stepState(enrollment: Pick<LeadEnrollment, 'status' | 'nextStep' | 'nextRunAt' | 'unenrollReason' | 'leaves'>, step: EnrollmentStep): { state: StepStateName; detail: string } {
	const { message } = step;
	const active = enrollment.status === 'active';
	const isNext = active && step.position === enrollment.nextStep;
	const due = enrollment.nextRunAt ? `due ${formatTime(enrollment.nextRunAt, true)} UTC` : 'waiting for its time';
	if (message?.status === 'sent') {
		return {
			state: 'sent',
			detail: joined(
				message.sentAt && `${formatTime(message.sentAt, true)} UTC`,
				message.openedAt ? `opened ${formatTime(message.openedAt, true)}` : 'not opened',
				message.clickedAt && `clicked ${formatTime(message.clickedAt, true)}`,
			),
		};
	}
	if (message?.status === 'sending') return { state: 'sending', detail: 'being sent, or the run stopped mid-send' };
	if (enrollment.leaves !== null && step.position >= enrollment.nextStep) {
		return {
			state: 'will be skipped',
			detail: isNext ? joined(due, `the lead will leave the sequence then (${enrollment.leaves})`) : `the lead will leave the sequence before it (${enrollment.leaves})`,
		};
	}
	if (message?.status === 'failed') {
		return isNext ? { state: 'scheduled', detail: joined(due, 'the mail server refused it before', message.error) } : { state: 'failed', detail: message.error ?? 'not delivered' };
	}
	if (message?.status === 'suppressed') return { state: 'skipped', detail: 'the address may not be mailed' };
	if (step.position < enrollment.nextStep) return { state: 'skipped', detail: 'passed without an email' };
	if (enrollment.status === 'unenrolled') return { state: 'skipped', detail: `the lead left the sequence${enrollment.unenrollReason ? ` (${enrollment.unenrollReason})` : ''}` };
	if (enrollment.status === 'completed') return { state: 'skipped', detail: 'the sequence had ended for this lead' };
	if (isNext) return { state: 'scheduled', detail: due };
	return { state: 'pending', detail: `${formatDelay(step.delayMinutes)} after the step before` };
}

/** 0 → "right", 90 → "1h 30m", 2880 → "2 days". */
export function formatDelay(minutes: number): string {
	if (minutes === 0) return 'right';
	if (minutes % 1440 === 0) return `${minutes / 1440} ${minutes === 1440 ? 'day' : 'days'}`;
	return formatDuration(minutes * 60);
}

const STEP_COLUMNS: Table['columns'] = [
	{ label: 'Step', kind: 'count' },
	{ label: 'Subject', kind: 'text' },
	{ label: 'State', kind: 'text' },
	{ label: 'Details', kind: 'text' },
];

/** What the email said, or for a step with no email yet, the template it will be rendered from: never a template passed off as sent. */
export const stepSubject = (step: LeadStep) => step.sentSubject ?? `template: ${step.subject}`;

const stepRow = (enrollment: LeadEnrollment, step: LeadStep) => {
	const { state, detail } = stepState(enrollment, step);
	return [step.position + 1, stepSubject(step), state, detail];
};

/** One enrollment's steps, as the page shows it under the sequence's name. */
export function enrollmentTable(enrollment: LeadEnrollment, index: number): Table {
	return {
		name: `sequence-${index + 1}`,
		title: `Sequence ${enrollment.sequence}`,
		columns: STEP_COLUMNS,
		rows: enrollment.steps.map((step) => stepRow(enrollment, step)),
		empty: 'The sequence has no steps.',
	};
}

/** Every enrollment's steps in one table: the CSV of the page's sequences. */
export function sequencesTable(enrollments: readonly LeadEnrollment[]): Table {
	return {
		name: 'sequences',
		title: 'Sequences',
		columns: [{ label: 'Sequence', kind: 'text' }, { label: 'Enrollment', kind: 'text' }, ...STEP_COLUMNS],
		rows: enrollments.flatMap((enrollment) => enrollment.steps.map((step) => [enrollment.sequence, enrollment.status, ...stepRow(enrollment, step)])),
		empty: 'This lead is in no sequence.',
	};
}

/** How an enrollment stands, in a sentence. */
export function enrollmentSummary(enrollment: LeadEnrollment): string {
	const since = `enrolled ${formatTime(enrollment.enrolledAt, true)} UTC`;
	if (enrollment.status === 'completed') return `Completed${enrollment.completedAt ? ` ${formatTime(enrollment.completedAt, true)} UTC` : ''}; ${since}.`;
	if (enrollment.status === 'unenrolled') {
		return `Left the sequence${enrollment.unenrolledAt ? ` ${formatTime(enrollment.unenrolledAt, true)} UTC` : ''}${enrollment.unenrollReason ? ` (${enrollment.unenrollReason})` : ''}; ${since}.`;
	}
	if (enrollment.leaves !== null) return `Active until its next step is due: the lead will leave the sequence then (${enrollment.leaves}); ${since}.`;
	return `Active; ${since}.`;
}
