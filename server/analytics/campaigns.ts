import { CONVERSION_BROWSER, CONVERSION_LEAD } from './conversionLeads';
import { isFiltered, sessionCondition, type ReportFilter } from './filters';
import { bounds, IN_RANGE, LONGEST_SESSION, ratio, series, timeSeries, type Queryable, type TimeRange } from './queries';
import { factRows, rollupsForRead, visitorCounts } from './rollup';

/**
 * Campaign performance, conversions and their goals: what /api/analytics/campaigns and
 * /api/analytics/conversion answer and what the Campaign Performance page shows, from the same
 * statements. As in ./queries.ts every statement takes the site id as $1 and filters on it first,
 * so each one runs on a per-site index and none can read another site's rows.
 *
 * Email figures belong to the sends of the range (dated by sent_at); conversion figures to the
 * sessions that started in it (the channel and UTM campaign are the session's), so they divide by
 * the same sessions and visitors the Visitor Analytics page counts.
 */

/**
 * Runs one report statement with JIT compilation off: the planner prices a statement by its
 * per-row lookups as if each read the disk, crosses jit_above_cost, and compiling then took longer
 * (50–100 ms) than the statement itself (as in the rollups' fold).
 */
function withoutJit<T>(prisma: Queryable, sql: string, ...params: unknown[]): Promise<T> {
	return prisma.$transaction(
		async (tx) => {
			await tx.$executeRawUnsafe('SET LOCAL jit = off');
			return tx.$queryRawUnsafe<T>(sql, ...params);
		},
		// A read is never cut short: Prisma's default 5 s would turn a slow answer into an error.
		{ timeout: 600_000, maxWait: 60_000 },
	);
}

// ---------------------------------------------------------------------------------------------
// Email: sent, opened, clicked, unsubscribed, bounced and converted, per campaign, sequence and step

/** A sent email counts as converted when its lead reaches a goal within this many days of the send. */
export const EMAIL_CONVERSION_WINDOW_DAYS = 7;

/**
 * A double opt-in confirmation email (nodes/EmailOrchestrator/confirmation.ts) asks for consent; it
 * is no campaign's send, so it counts in no rate.
 */
const NOT_A_CONFIRMATION = `NOT starts_with(idempotency_key, 'confirm:')`;

/**
 * Per campaign, per sequence, per step and in total (GROUPING SETS: one pass over the range's
 * sends; the few result rows get their names after). What is matched to the sends is small: the
 * conversions of leads in the range and its window after it (most conversions are a visitor's,
 * with no lead; a lead's by conversionLeads.ts), each looking up its lead's sends through the lead_id index, and the bounces and
 * unsubscribes, which come after their send and so after the range's start. Needs $4: the
 * conversion window in days.
 */
const EMAIL_PERFORMANCE = `WITH sent AS (
		SELECT id, campaign_id, sequence_id, step_id, first_opened_at, first_clicked_at
		FROM email_messages WHERE ${IN_RANGE('sent_at')} AND ${NOT_A_CONFIRMATION}),
	converted AS (
		SELECT DISTINCT m.id FROM conversions c ${CONVERSION_BROWSER}
		JOIN email_messages m ON m.lead_id = ${CONVERSION_LEAD} AND m.site_id = $1::uuid AND m.sent_at >= $2::timestamptz AND m.sent_at < $3::timestamptz
			AND c.occurred_at >= m.sent_at AND c.occurred_at < m.sent_at + $4::int * interval '1 day'
		WHERE c.site_id = $1::uuid AND ${CONVERSION_LEAD} IS NOT NULL AND c.occurred_at >= $2::timestamptz AND c.occurred_at < $3::timestamptz + $4::int * interval '1 day'),
	flagged AS (
		SELECT message_id, bool_or(type = 'unsubscribe') AS unsubscribed, bool_or(type = 'bounce') AS bounced
		FROM email_events WHERE site_id = $1::uuid AND type IN ('unsubscribe', 'bounce') AND occurred_at >= $2::timestamptz
		GROUP BY message_id),
	grouped AS (
		SELECT CASE WHEN GROUPING(sent.campaign_id) = 0 THEN 'campaign' WHEN GROUPING(sent.step_id) = 0 THEN 'step' WHEN GROUPING(sent.sequence_id) = 0 THEN 'sequence' ELSE 'total' END AS level,
			sent.campaign_id, sent.sequence_id, sent.step_id,
			count(*)::int AS sent,
			count(sent.first_opened_at)::int AS opened,
			count(sent.first_clicked_at)::int AS clicked,
			count(converted.id)::int AS converted,
			count(*) FILTER (WHERE flagged.unsubscribed)::int AS unsubscribed,
			count(*) FILTER (WHERE flagged.bounced)::int AS bounced
		FROM sent LEFT JOIN converted ON converted.id = sent.id LEFT JOIN flagged ON flagged.message_id = sent.id
		GROUP BY GROUPING SETS ((sent.campaign_id), (sent.sequence_id), (sent.sequence_id, sent.step_id), ()))
	SELECT g.level, g.campaign_id AS "campaignId", ec.name AS "campaignName", g.sequence_id AS "sequenceId", q.name AS "sequenceName",
		g.step_id AS "stepId", st.position, st.subject, g.sent, g.opened, g.clicked, g.converted, g.unsubscribed, g.bounced
	FROM grouped g
	LEFT JOIN email_campaigns ec ON ec.id = g.campaign_id AND ec.site_id = $1::uuid
	LEFT JOIN email_sequences q ON q.id = g.sequence_id AND q.site_id = $1::uuid
	LEFT JOIN email_sequence_steps st ON st.id = g.step_id AND st.site_id = $1::uuid
	ORDER BY g.level, g.sent DESC, ec.name NULLS LAST, q.name NULLS LAST, st.position`;

const EMAIL_SERIES = series(`(SELECT site_id, sent_at, first_opened_at, first_clicked_at FROM email_messages WHERE ${NOT_A_CONFIRMATION}) sends`, 'sent_at', {
	sent: 'count(*)::int',
	opened: 'count(first_opened_at)::int',
	clicked: 'count(first_clicked_at)::int',
});

export interface EmailCounts {
	sent: number;
	opened: number;
	clicked: number;
	converted: number;
	unsubscribed: number;
	bounced: number;
}

export interface EmailRates {
	openRate: number | null;
	clickRate: number | null;
	clickToOpenRate: number | null;
	conversionRate: number | null;
}

/** What a send can end in besides a reply: leaving the list, or not arriving. */
export interface DeliveryRates {
	unsubscribeRate: number | null;
	bounceRate: number | null;
}

export type EmailFigures = EmailCounts & EmailRates & DeliveryRates;

export interface StepPerformance extends EmailFigures {
	/** Null when the step was removed from its sequence after these sends. */
	stepId: string | null;
	position: number | null;
	subject: string | null;
}

export interface SequencePerformance extends EmailFigures {
	/** Null for sends that belong to no sequence. */
	sequenceId: string | null;
	name: string | null;
	/** In the sequence's order; a removed step last. */
	steps: StepPerformance[];
}

export interface EmailPerformance {
	total: EmailFigures;
	campaigns: Array<{ campaignId: string | null; name: string | null } & EmailFigures>;
	sequences: SequencePerformance[];
}

function emailRates(counts: EmailCounts): EmailRates {
	return {
		openRate: ratio(counts.opened, counts.sent),
		clickRate: ratio(counts.clicked, counts.sent),
		clickToOpenRate: ratio(counts.clicked, counts.opened),
		conversionRate: ratio(counts.converted, counts.sent),
	};
}

function emailFigures({ sent, opened, clicked, converted, unsubscribed, bounced }: EmailCounts): EmailFigures {
	const counts = { sent, opened, clicked, converted, unsubscribed, bounced };
	return { ...counts, ...emailRates(counts), unsubscribeRate: ratio(unsubscribed, sent), bounceRate: ratio(bounced, sent) };
}

export async function emailPerformance(prisma: Queryable, siteId: string, range: TimeRange): Promise<EmailPerformance> {
	type Row = EmailCounts & {
		level: 'campaign' | 'sequence' | 'step' | 'total';
		campaignId: string | null;
		campaignName: string | null;
		sequenceId: string | null;
		sequenceName: string | null;
		stepId: string | null;
		position: number | null;
		subject: string | null;
	};
	const rows = await withoutJit<Row[]>(prisma, EMAIL_PERFORMANCE, ...bounds(siteId, range), EMAIL_CONVERSION_WINDOW_DAYS);
	const at = (level: Row['level']) => rows.filter((row) => row.level === level);
	// The grand-total grouping set yields a row even when nothing was sent.
	const [total] = at('total');
	const steps = at('step').sort((a, b) => (a.position ?? Number.MAX_SAFE_INTEGER) - (b.position ?? Number.MAX_SAFE_INTEGER));
	return {
		total: emailFigures(total),
		campaigns: at('campaign').map((row) => ({ campaignId: row.campaignId, name: row.campaignName, ...emailFigures(row) })),
		sequences: at('sequence').map((row) => ({
			sequenceId: row.sequenceId,
			name: row.sequenceName,
			...emailFigures(row),
			steps: row.sequenceId === null ? [] : steps.filter((step) => step.sequenceId === row.sequenceId).map((step) => ({ stepId: step.stepId, position: step.position, subject: step.subject, ...emailFigures(step) })),
		})),
	};
}

export type EmailSeries = Array<{ at: Date; sent: number; opened: number; clicked: number }>;

export function emailSeries(prisma: Queryable, siteId: string, range: TimeRange): Promise<EmailSeries> {
	return timeSeries<{ sent: number; opened: number; clicked: number }>(prisma, EMAIL_SERIES, siteId, range);
}

// ---------------------------------------------------------------------------------------------
// Conversions of the range's sessions: by channel, by UTM campaign, by goal, with their value

/**
 * One row per (dimension, value): '' is the total, then each channel, UTM campaign and goal
 * ('' value: not set), of the sessions the filter keeps. Sessions, visitors, conversions and
 * converting sessions of the channels and campaigns come from the rollups (./rollup.ts reads a
 * filter no rollup segment holds from the sessions themselves).
 *
 * Goals and amounts are read from the conversions, on the per-site occurred_at index: those of the
 * range's sessions happened from the range's start to at most the longest session after its end. A
 * conversion's session is looked up (by key, in key order, through a LATERAL with LIMIT 1 so the
 * planner cannot choose to scan every session of the range instead) only when the answer is not
 * known without it: when a filter applies, when the conversion has a value (its amount goes to its
 * session's channel and campaign), or when it happened within the longest session of either end of
 * the range (its session may have started outside it). Any other conversion, happened between the
 * range's start plus the longest session and its end, is one of a session that started in the range.
 * That lookup is most of the statement's time, so it is worth the condition.
 * Amounts are summed per currency ('' when the goal names none) and never across currencies.
 */
function breakdownSql(range: TimeRange, filter: ReportFilter): string {
	const lookup = isFiltered(filter)
		? 'true'
		: `(c.value <> 0 OR c.occurred_at < $2::timestamptz + ${LONGEST_SESSION} OR c.occurred_at >= $3::timestamptz)`;
	return `WITH started AS (
		SELECT r.dimension, r.value, sum(r.sessions)::int AS sessions, sum(r.conversions)::int AS conversions, sum(r.converting_sessions)::int AS "convertingSessions",
			CASE WHEN r.dimension = '' THEN coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'visitor', filter)}) v), 0) END::int AS visitors
		FROM (${factRows(range.from, range.to, ['', 'channel', 'campaign'], 'week', filter)}) r GROUP BY r.dimension, r.value),
	converted AS MATERIALIZED (
		SELECT c.visitor_id, c.goal, c.value AS amount, coalesce(c.currency, '') AS currency, s.channel, s.campaign
		FROM (SELECT c.session_id, c.visitor_id, c.goal, c.value, c.currency, c.occurred_at FROM conversions c
			WHERE c.site_id = $1::uuid AND c.occurred_at >= $2::timestamptz AND c.occurred_at < $3::timestamptz + ${LONGEST_SESSION} AND c.session_id IS NOT NULL
			ORDER BY c.session_id OFFSET 0) c
		LEFT JOIN LATERAL (
			SELECT coalesce(s.channel, '') AS channel, coalesce(s.campaign, '') AS campaign FROM visitor_sessions s
			WHERE ${lookup} AND s.id = c.session_id AND s.site_id = $1::uuid AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz
				AND ${sessionCondition(filter, '$2::timestamptz', `$3::timestamptz + ${LONGEST_SESSION}`)}
			LIMIT 1) s ON true
		WHERE s.channel IS NOT NULL OR NOT ${lookup}),
	goals AS (
		SELECT 'goal' AS dimension, goal AS value, count(*)::int AS conversions, count(DISTINCT visitor_id)::int AS "convertingVisitors" FROM converted GROUP BY goal),
	amounts AS (
		SELECT dimension, value, jsonb_object_agg(currency, amount) AS amounts
		FROM (SELECT d.dimension, d.value, c.currency, sum(c.amount)::float8 AS amount
			FROM converted c CROSS JOIN LATERAL (VALUES ('', ''), ('channel', c.channel), ('campaign', c.campaign), ('goal', c.goal)) d(dimension, value)
			WHERE c.amount <> 0 GROUP BY 1, 2, 3) a
		GROUP BY dimension, value)
	SELECT dimension, nullif(value, '') AS value, coalesce(started.sessions, 0)::int AS sessions, started.visitors,
		coalesce(started.conversions, goals.conversions, 0)::int AS conversions, coalesce(started."convertingSessions", 0)::int AS "convertingSessions",
		coalesce(goals."convertingVisitors", 0)::int AS "convertingVisitors", coalesce(amounts.amounts, '{}'::jsonb) AS amounts
	FROM started FULL JOIN goals USING (dimension, value) LEFT JOIN amounts USING (dimension, value)
	ORDER BY dimension, sessions DESC, nullif(value, '') NULLS LAST`;
}

/** Conversion value in one currency; currency null when the goal names none. */
export interface Amount {
	currency: string | null;
	value: number;
}

/** The conversions of a set of sessions: all of them, a channel's, a UTM campaign's. */
export interface ConversionRow {
	sessions: number;
	conversions: number;
	convertingSessions: number;
	/** Converting sessions per session. */
	conversionRate: number | null;
	/** The value of its conversions in each currency they have a value in, by currency code. */
	amounts: Amount[];
}

/** The conversions of one goal, in the sessions the filter keeps. */
export interface GoalRow {
	goal: string;
	conversions: number;
	convertingVisitors: number;
	amounts: Amount[];
}

export interface ConversionBreakdown {
	/** Every change to the site's sessions and conversions noted before this instant is counted (see rollupsForRead). */
	asOf: Date;
	total: ConversionRow & { visitors: number };
	/** Most sessions first; channel null for sessions without one. */
	channels: Array<{ channel: string | null } & ConversionRow>;
	campaigns: Array<{ campaign: string | null } & ConversionRow>;
	/** Goals that converted, by name. */
	goals: GoalRow[];
}

/** Amounts by currency code, the amount without a currency ('') last. */
function amountsOf(json: Record<string, number>): Amount[] {
	return Object.keys(json)
		.sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a < b ? -1 : a > b ? 1 : 0))
		.map((currency) => ({ currency: currency || null, value: json[currency] }));
}

export async function conversionBreakdown(prisma: Queryable, siteId: string, range: TimeRange, filter: ReportFilter = {}): Promise<ConversionBreakdown> {
	const asOf = await rollupsForRead(prisma, siteId);
	type Row = {
		dimension: '' | 'channel' | 'campaign' | 'goal';
		value: string | null;
		sessions: number;
		visitors: number | null;
		conversions: number;
		convertingSessions: number;
		convertingVisitors: number;
		amounts: Record<string, number>;
	};
	const rows = await withoutJit<Row[]>(prisma, breakdownSql(range, filter), ...bounds(siteId, range));
	const row = ({ sessions, conversions, convertingSessions, amounts }: Row): ConversionRow => ({
		sessions,
		conversions,
		convertingSessions,
		conversionRate: ratio(convertingSessions, sessions),
		amounts: amountsOf(amounts),
	});
	const at = (dimension: Row['dimension']) => rows.filter((entry) => entry.dimension === dimension);
	// The rollups hold a total row for any range with sessions; a range without any has none.
	const [total] = at('');
	return {
		asOf,
		total: total ? { ...row(total), visitors: total.visitors ?? 0 } : { sessions: 0, conversions: 0, convertingSessions: 0, conversionRate: null, amounts: [], visitors: 0 },
		channels: at('channel').map((entry) => ({ channel: entry.value, ...row(entry) })),
		campaigns: at('campaign').map((entry) => ({ campaign: entry.value, ...row(entry) })),
		goals: at('goal').map((entry) => ({ goal: entry.value ?? '', conversions: entry.conversions, convertingVisitors: entry.convertingVisitors, amounts: amountsOf(entry.amounts) })),
	};
}

/** Each configured goal, in the configured order, as a step after the visitors. */
export interface GoalFunnelStep {
	/** Null for the first step, the visitors. */
	goal: string | null;
	visitors: number;
	/** Share of the first step's visitors. */
	rateFromFirst: number | null;
	conversions: number;
	amounts: Amount[];
}

/**
 * The site's goals as a funnel: the range's visitors, then for each configured goal (a
 * crm.conversionRules name, in the config's order) the visitors who reached it in one of their
 * sessions of the range. A goal that nobody reached is a step of zero.
 */
export function goalFunnel(breakdown: ConversionBreakdown, goals: readonly string[]): GoalFunnelStep[] {
	const visitors = breakdown.total.visitors;
	const reached = new Map(breakdown.goals.map((goal) => [goal.goal, goal]));
	return [
		{ goal: null, visitors, rateFromFirst: ratio(visitors, visitors), conversions: 0, amounts: [] },
		...goals.map((goal) => {
			const row = reached.get(goal);
			return { goal, visitors: row?.convertingVisitors ?? 0, rateFromFirst: ratio(row?.convertingVisitors ?? 0, visitors), conversions: row?.conversions ?? 0, amounts: row?.amounts ?? [] };
		}),
	];
}

// ---------------------------------------------------------------------------------------------
// The JSON route's report: /api/analytics/campaigns

export interface CampaignAnalytics {
	/** Every change to the site's sessions and conversions noted before this instant is counted (see rollupsForRead). */
	asOf: Date;
	email: EmailCounts & EmailRates & { conversionWindowDays: number };
	campaigns: Array<{ campaignId: string | null; name: string | null } & EmailCounts & EmailRates>;
	channels: Array<{ channel: string | null; sessions: number; conversions: number; convertingSessions: number; conversionRate: number | null }>;
	series: EmailSeries;
}

const countsAndRates = ({ sent, opened, clicked, converted, unsubscribed, bounced, openRate, clickRate, clickToOpenRate, conversionRate }: EmailFigures): EmailCounts & EmailRates => ({
	sent,
	opened,
	clicked,
	converted,
	unsubscribed,
	bounced,
	openRate,
	clickRate,
	clickToOpenRate,
	conversionRate,
});

export async function campaignAnalytics(prisma: Queryable, siteId: string, range: TimeRange): Promise<CampaignAnalytics> {
	const [email, conversions, points] = await Promise.all([emailPerformance(prisma, siteId, range), conversionBreakdown(prisma, siteId, range), emailSeries(prisma, siteId, range)]);
	return {
		asOf: conversions.asOf,
		email: { ...countsAndRates(email.total), conversionWindowDays: EMAIL_CONVERSION_WINDOW_DAYS },
		campaigns: email.campaigns.map((row) => ({ campaignId: row.campaignId, name: row.name, ...countsAndRates(row) })),
		channels: conversions.channels.map(({ channel, sessions, conversions: count, convertingSessions, conversionRate }) => ({ channel, sessions, conversions: count, convertingSessions, conversionRate })),
		series: points,
	};
}

// ---------------------------------------------------------------------------------------------
// The JSON route's report: /api/analytics/conversion (visitors → engaged → leads → qualified → customers)

/**
 * Each step is counted on its own in the range: visitors and engaged visitors (at least one
 * medium or high engagement session) from sessions started in it; leads created in it, and of
 * those the ones now at a qualified or the customer stage. Needs $4 (qualified stage names as a
 * JSON array) and $5 (the customer stage).
 */
const funnelSql = (range: TimeRange) => `WITH created AS (
		SELECT lifecycle_stage FROM leads WHERE ${IN_RANGE('created_at')})
	SELECT coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'visitor')}) v), 0)::int AS visitors,
		coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'engaged')}) v), 0)::int AS engaged,
		(SELECT count(*) FROM created)::int AS leads,
		(SELECT count(*) FROM created WHERE lifecycle_stage IN (SELECT jsonb_array_elements_text($4::jsonb)))::int AS qualified,
		(SELECT count(*) FROM created WHERE lifecycle_stage = $5::text)::int AS customers`;

const GOALS = `SELECT goal, currency, count(*)::int AS conversions, count(DISTINCT visitor_id)::int AS visitors, sum(value)::float8 AS value
	FROM conversions WHERE ${IN_RANGE('occurred_at')}
	GROUP BY goal, currency ORDER BY conversions DESC, goal, currency NULLS FIRST`;

const CONVERTING_VISITORS = `SELECT count(*)::int AS conversions, count(DISTINCT visitor_id)::int AS "convertingVisitors"
	FROM conversions WHERE ${IN_RANGE('occurred_at')}`;

const CONVERSION_SERIES = series('conversions', 'occurred_at', { conversions: 'count(*)::int' });

const FUNNEL_STEPS = ['visitors', 'engaged', 'leads', 'qualified', 'customers'] as const;

interface FunnelStages {
	/** Stages that count as qualified: "mql" and every stage after it in the site's order. */
	qualified: string[];
	customer: string;
}

/**
 * Reads the funnel's stages from the site's configured order. Without an "mql" stage,
 * qualified means past the entry stage; without a "customer" stage, the last stage is the
 * customer one. Customers are always qualified, whatever the order.
 */
function funnelStages(stages: readonly string[]): FunnelStages {
	const customer = stages.includes('customer') ? 'customer' : stages[stages.length - 1];
	const mql = stages.indexOf('mql');
	const qualified = stages.slice(mql >= 0 ? mql : 1);
	return { qualified: qualified.includes(customer) ? qualified : [...qualified, customer], customer };
}

export interface ConversionAnalytics {
	/** Every change to the site's sessions and conversions noted before this instant is counted (see rollupsForRead). */
	asOf: Date;
	funnel: {
		steps: Array<{ step: (typeof FUNNEL_STEPS)[number]; count: number; rateFromPrevious: number | null; rateFromFirst: number | null }>;
		qualifiedStages: string[];
		customerStage: string;
	};
	summary: { conversions: number; convertingVisitors: number; visitors: number; conversionRate: number | null };
	goals: Array<{ goal: string; currency: string | null; conversions: number; visitors: number; value: number }>;
	series: Array<{ at: Date; conversions: number }>;
}

export async function conversionAnalytics(prisma: Queryable, siteId: string, range: TimeRange, stages: readonly string[]): Promise<ConversionAnalytics> {
	const { qualified, customer } = funnelStages(stages);
	const asOf = await rollupsForRead(prisma, siteId);
	const [[funnel], [summary], goals, points] = await Promise.all([
		prisma.$queryRawUnsafe<Array<Record<(typeof FUNNEL_STEPS)[number], number>>>(funnelSql(range), ...bounds(siteId, range), JSON.stringify(qualified), customer),
		prisma.$queryRawUnsafe<Array<{ conversions: number; convertingVisitors: number }>>(CONVERTING_VISITORS, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<ConversionAnalytics['goals']>(GOALS, ...bounds(siteId, range)),
		timeSeries<{ conversions: number }>(prisma, CONVERSION_SERIES, siteId, range),
	]);
	const steps = FUNNEL_STEPS.map((step, index) => ({
		step,
		count: funnel[step],
		rateFromPrevious: index === 0 ? null : ratio(funnel[step], funnel[FUNNEL_STEPS[index - 1]]),
		rateFromFirst: ratio(funnel[step], funnel.visitors),
	}));
	return {
		asOf,
		funnel: { steps, qualifiedStages: qualified, customerStage: customer },
		summary: { ...summary, visitors: funnel.visitors, conversionRate: ratio(summary.convertingVisitors, funnel.visitors) },
		goals,
		series: points,
	};
}
