import type { PrismaClient } from '../../lib/db';
import type { ReportFilter } from '../../server/analytics/filters';
import type { CampaignAnalytics, ConversionAnalytics, EmailRates } from '../../server/analytics/campaigns';
import type { LeadAnalytics, ScoreBucket } from '../../server/analytics/leads';
import type { BreakdownRow, ChannelRow, SiteStats, TimeRange, VisitorAnalytics } from '../../server/analytics/queries';
import { SCROLL_DEPTHS } from '../../server/analytics/rollup';

/**
 * The dashboard reports of server/analytics/queries.ts computed the simplest way: a GROUP BY over the
 * raw tables for every figure, no rollups. The analytics tests hold the rollup-backed reports to these
 * numbers, and the dashboards bench times both side by side. It is the read layer as it was before the
 * rollups, with the same definitions: visitor figures are those of the sessions that started in the
 * range, and top pages count the page views attached to those sessions.
 */

type Queryable = Pick<PrismaClient, '$queryRawUnsafe'>;

/** Ratio of two counts; null rather than NaN when nothing was counted. */
function ratio(part: number, whole: number): number | null {
	return whole === 0 ? null : part / whole;
}

function bounds(siteId: string, range: TimeRange): [string, string, string] {
	return [siteId, range.from.toISOString(), range.to.toISOString()];
}

/**
 * A session's events all fall within tracking.maxSessionDuration of its start, which the config
 * schema caps at 48 hours. Bounding by it keeps statements that look at a session from its other
 * end ("active now", conversions of the range's sessions) on a per-site time index.
 */
const LONGEST_SESSION = `interval '48 hours'`;

const IN_RANGE = (column: string) => `site_id = $1::uuid AND ${column} >= $2::timestamptz AND ${column} < $3::timestamptz`;

/**
 * Buckets are UTC wall-clock days or hours, generated as timestamps without time zone so the
 * session's TimeZone setting cannot shift them or make a day 23 hours long. Empty buckets are
 * kept (as zeros) so a chart needs no gap filling. Needs $2, $3 and $4 (the interval).
 */
const BUCKETS = `buckets AS (
	SELECT generate_series(
		date_trunc($4::text, $2::timestamptz AT TIME ZONE 'UTC'),
		$3::timestamptz AT TIME ZONE 'UTC' - interval '1 millisecond',
		('1 ' || $4::text)::interval) AS bucket)`;

const bucketOf = (column: string) => `date_trunc($4::text, ${column} AT TIME ZONE 'UTC')`;

function series(source: string, column: string, aggregates: Record<string, string>): string {
	const names = Object.keys(aggregates);
	return `WITH ${BUCKETS},
	data AS (
		SELECT ${bucketOf(column)} AS bucket, ${names.map((name) => `${aggregates[name]} AS "${name}"`).join(', ')}
		FROM ${source} WHERE ${IN_RANGE(column)} GROUP BY 1)
	SELECT bucket AT TIME ZONE 'UTC' AS "at", ${names.map((name) => `coalesce(data."${name}", 0) AS "${name}"`).join(', ')}
	FROM buckets LEFT JOIN data USING (bucket) ORDER BY bucket`;
}

async function timeSeries<T>(prisma: Queryable, sql: string, siteId: string, range: TimeRange): Promise<Array<{ at: Date } & T>> {
	return prisma.$queryRawUnsafe(sql, ...bounds(siteId, range), range.interval);
}

// ---------------------------------------------------------------------------------------------
// Site-wide counters

const STATS = `SELECT
	(SELECT count(*) FROM visitor_events WHERE site_id = $1::uuid AND NOT is_bot)::float8 AS "eventsTotal",
	(SELECT count(*) FROM visitor_events WHERE site_id = $1::uuid AND NOT is_bot AND occurred_at >= $2::timestamptz)::float8 AS "eventsToday",
	(SELECT max(occurred_at) FROM visitor_events WHERE site_id = $1::uuid AND NOT is_bot) AS "lastEventAt",
	(SELECT count(DISTINCT visitor_id) FROM visitor_sessions WHERE site_id = $1::uuid)::int AS visitors,
	(SELECT count(*) FROM visitor_sessions WHERE site_id = $1::uuid)::int AS sessions,
	(SELECT count(*) FROM leads WHERE site_id = $1::uuid)::int AS leads,
	(SELECT count(*) FROM outbox WHERE site_id = $1::uuid AND status = 'pending')::int AS "outboxPending",
	(SELECT count(*) FROM outbox WHERE site_id = $1::uuid AND status = 'dead')::int AS "outboxDead"`;


export async function siteStats(prisma: Queryable, siteId: string, todayStartsAt: Date): Promise<Omit<SiteStats, 'asOf'>> {
	const [row] = await prisma.$queryRawUnsafe<Array<Omit<SiteStats, 'asOf'>>>(STATS, siteId, todayStartsAt.toISOString());
	return row;
}

// ---------------------------------------------------------------------------------------------
// Visitor analytics: active sessions, top pages, time on site, bounce rate, breakdowns

/**
 * The filter as a condition on a visitor_sessions row named s. A page filter keeps the sessions with
 * any page view of the page: `viewers`, read once per report by {@link pageViewers} rather than by
 * every statement of it.
 */
function filtered(filter: ReportFilter | undefined, viewers: readonly string[] | null): string {
	const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;
	const conditions = ['true'];
	if (filter?.channel) conditions.push(`s.channel = ${quote(filter.channel)}`);
	if (filter?.campaign) conditions.push(`s.campaign = ${quote(filter.campaign)}`);
	if (viewers) conditions.push(`s.id = ANY('{${viewers.join(',')}}'::uuid[])`);
	return conditions.join(' AND ');
}

/** The site's sessions with a page view of `path`. */
async function pageViewers(prisma: Queryable, siteId: string, path: string): Promise<string[]> {
	const rows = await prisma.$queryRawUnsafe<Array<{ id: string }>>(
		`SELECT DISTINCT l.session_id::text AS id FROM visitor_event_links l JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id
		WHERE e.site_id = $1::uuid AND e.type = 'pageview' AND e.path = $2`,
		siteId,
		path,
	);
	return rows.map((row) => row.id);
}

/** The range's sessions that the condition keeps, as a CTE named "started". */
const started = (condition: string) => `started AS (SELECT s.* FROM visitor_sessions s WHERE s.${IN_RANGE('started_at')} AND ${condition})`;

const activeNow = (condition: string) => `SELECT count(*)::int AS active,
		count(DISTINCT visitor_id) FILTER (WHERE last_activity_at >= now() - interval '5 minutes')::int AS "visitorsNow"
	FROM visitor_sessions s WHERE site_id = $1::uuid AND last_activity_at >= now() - interval '30 minutes' AND ${condition}`;

const sessionSummary = (condition: string) => `WITH ${started(condition)} SELECT count(*)::int AS sessions,
	count(DISTINCT visitor_id)::int AS visitors,
	coalesce(sum(pageviews), 0)::int AS pageviews,
	count(*) FILTER (WHERE is_bounce)::int AS bounces,
	avg(duration_seconds)::float8 AS "avgDurationSeconds",
	percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds)::float8 AS "medianDurationSeconds",
	count(*) FILTER (WHERE engagement_level = 'low')::int AS low,
	count(*) FILTER (WHERE engagement_level = 'medium')::int AS medium,
	count(*) FILTER (WHERE engagement_level = 'high')::int AS high
	FROM started`;

const topPages = (condition: string) => `WITH ${started(condition)} SELECT e.path, count(*)::int AS pageviews, count(DISTINCT s.visitor_id)::int AS visitors
	FROM started s JOIN visitor_event_links l ON l.session_id = s.id JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id
	WHERE e.type = 'pageview' AND e.path IS NOT NULL
	GROUP BY e.path ORDER BY pageviews DESC, e.path LIMIT 10`;

const entryPages = (condition: string) => `WITH ${started(condition)} SELECT entry_page AS path, count(*)::int AS sessions, count(*) FILTER (WHERE is_bounce)::int AS bounces
	FROM started WHERE entry_page IS NOT NULL
	GROUP BY entry_page ORDER BY sessions DESC, path LIMIT 10`;

/** Each breakdown's column of visitor_sessions. */
const BREAKDOWN_COLUMNS = {
	channels: 'channel',
	exitPages: 'exit_page',
	referrers: 'referrer_domain',
	sources: 'source',
	mediums: 'medium',
	campaigns: 'campaign',
	devices: 'device_type',
	browsers: 'browser',
	os: 'os',
	countries: 'country',
	scrollDepth: `CASE WHEN max_scroll_depth >= 100 THEN '100%' WHEN max_scroll_depth >= 75 THEN '75–99%' WHEN max_scroll_depth >= 50 THEN '50–74%' WHEN max_scroll_depth >= 25 THEN '25–49%' ELSE '0–24%' END`,
} as const;

/** The ten values of a column with the most sessions, with the conversions made in those sessions. */
const breakdown = (column: string, condition: string) => `WITH ${started(condition)},
	converted AS (SELECT session_id, count(*) AS conversions FROM conversions WHERE site_id = $1::uuid GROUP BY session_id)
	SELECT ${column} AS value, count(*)::int AS sessions, count(*) FILTER (WHERE is_bounce)::int AS bounces, sum(pageviews)::int AS pageviews,
		sum(duration_seconds)::float8 / count(*) AS "avgDurationSeconds", coalesce(sum(converted.conversions), 0)::int AS conversions,
		count(converted.session_id)::int AS "convertingSessions"
	FROM started LEFT JOIN converted ON converted.session_id = started.id
	GROUP BY 1 ORDER BY sessions DESC, value NULLS LAST LIMIT 10`;

const sessionSeries = (condition: string) => `WITH ${BUCKETS}, ${started(condition)},
	data AS (
		SELECT ${bucketOf('started_at')} AS bucket, count(*)::int AS sessions, count(DISTINCT visitor_id)::int AS visitors,
			sum(pageviews)::int AS pageviews, count(*) FILTER (WHERE is_bounce)::int AS bounces
		FROM started GROUP BY 1)
	SELECT bucket AT TIME ZONE 'UTC' AS "at", coalesce(data.sessions, 0) AS sessions, coalesce(data.visitors, 0) AS visitors,
		coalesce(data.pageviews, 0) AS pageviews, coalesce(data.bounces, 0) AS bounces
	FROM buckets LEFT JOIN data USING (bucket) ORDER BY bucket`;

type BreakdownResult = Array<ChannelRow>;

export async function visitorAnalytics(prisma: Queryable, siteId: string, range: TimeRange, filter?: ReportFilter): Promise<Omit<VisitorAnalytics, 'asOf'>> {
	const names = Object.keys(BREAKDOWN_COLUMNS) as Array<keyof typeof BREAKDOWN_COLUMNS>;
	const condition = filtered(filter, filter?.page ? await pageViewers(prisma, siteId, filter.page) : null);
	const [[active], [summary], topPageRows, entryPageRows, points, ...breakdownRows] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ active: number; visitorsNow: number }>>(activeNow(condition), siteId),
		prisma.$queryRawUnsafe<Array<VisitorAnalytics['summary'] & VisitorAnalytics['engagement']>>(sessionSummary(condition), ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<VisitorAnalytics['topPages']>(topPages(condition), ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ path: string; sessions: number; bounces: number }>>(entryPages(condition), ...bounds(siteId, range)),
		timeSeries<Omit<VisitorAnalytics['series'][number], 'at'>>(prisma, sessionSeries(condition), siteId, range),
		...names.map((name) => prisma.$queryRawUnsafe<BreakdownResult>(breakdown(BREAKDOWN_COLUMNS[name], condition), ...bounds(siteId, range))),
	]);
	const rows = new Map(names.map((name, index) => [name, breakdownRows[index]]));
	const plain = (name: keyof typeof BREAKDOWN_COLUMNS): BreakdownRow[] =>
		rows.get(name)!.map(({ value, sessions, bounces, pageviews, avgDurationSeconds }) => ({ value, sessions, bounces, pageviews, avgDurationSeconds }));
	const scroll = new Map(plain('scrollDepth').map((row) => [row.value, row]));
	const { low, medium, high, ...totals } = summary;
	return {
		activeSessions: active.active,
		visitorsNow: active.visitorsNow,
		summary: {
			sessions: totals.sessions,
			visitors: totals.visitors,
			pageviews: totals.pageviews,
			pageviewsPerSession: ratio(totals.pageviews, totals.sessions),
			avgDurationSeconds: totals.avgDurationSeconds,
			medianDurationSeconds: totals.medianDurationSeconds,
			bounces: totals.bounces,
			bounceRate: ratio(totals.bounces, totals.sessions),
		},
		engagement: { low, medium, high },
		topPages: topPageRows,
		entryPages: entryPageRows.map((page) => ({ path: page.path, sessions: page.sessions, bounceRate: ratio(page.bounces, page.sessions) })),
		breakdowns: {
			channels: rows.get('channels')!,
			exitPages: plain('exitPages'),
			referrers: plain('referrers'),
			sources: plain('sources'),
			mediums: plain('mediums'),
			campaigns: plain('campaigns'),
			devices: plain('devices'),
			browsers: plain('browsers'),
			os: plain('os'),
			countries: plain('countries'),
			scrollDepth: SCROLL_DEPTHS.map((value) => ({ ...(scroll.get(value) ?? { sessions: 0, bounces: 0, pageviews: 0, avgDurationSeconds: null }), value })),
		},
		series: points,
	};
}

// ---------------------------------------------------------------------------------------------
// Lead intelligence: visitor→lead conversion, score distribution, sources, pipeline

const LEAD_SUMMARY = `SELECT count(*)::int AS "newLeads", avg(score)::float8 AS "avgScore",
	percentile_cont(0.5) WITHIN GROUP (ORDER BY score)::float8 AS "medianScore"
	FROM leads WHERE ${IN_RANGE('created_at')}`;

/**
 * Visitors seen in the range, and those of them whose lead was created in the range: the ones
 * that converted in this period (a visitor identified long ago is not a new conversion). The
 * second count starts from the range's new leads, the smaller side; the lateral subquery keeps
 * it a lookup per lead through the lead_id and (visitor_id, started_at) indexes, whatever the
 * planner guesses about the visitors table.
 */
const VISITOR_TO_LEAD = `SELECT
	(SELECT count(DISTINCT visitor_id) FROM visitor_sessions WHERE ${IN_RANGE('started_at')})::int AS visitors,
	(SELECT coalesce(sum(seen.visitors), 0) FROM leads l
		CROSS JOIN LATERAL (
			SELECT count(*) AS visitors FROM visitors v
			WHERE v.lead_id = l.id AND v.site_id = $1::uuid
				AND EXISTS (SELECT 1 FROM visitor_sessions s WHERE s.visitor_id = v.id AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz)) seen
		WHERE l.site_id = $1::uuid AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz)::int AS "convertedVisitors"`;

/** Ten-point buckets; bucket -1 holds negative scores (negative rules exist) and 10 holds 100 and over. */
const SCORE_BUCKETS = `SELECT CASE WHEN score < 0 THEN -1 WHEN score >= 100 THEN 10 ELSE floor(score / 10)::int END AS bucket, count(*)::int AS leads
	FROM leads WHERE ${IN_RANGE('created_at')} GROUP BY 1`;

/** Capped because `source` is free text from forms; the long tail is not a dashboard row. */
const LEAD_SOURCES = `SELECT source, count(*)::int AS leads FROM leads WHERE ${IN_RANGE('created_at')}
	GROUP BY source ORDER BY leads DESC, source NULLS LAST LIMIT 25`;

/** A pipeline is a snapshot: every lead of the site at its current stage, whenever it was created. */
const PIPELINE = `SELECT lifecycle_stage AS stage, count(*)::int AS leads FROM leads WHERE site_id = $1::uuid GROUP BY lifecycle_stage`;

const STAGE_CHANGES = `SELECT from_stage AS "from", to_stage AS "to", count(*)::int AS leads
	FROM lead_stage_changes WHERE ${IN_RANGE('occurred_at')}
	GROUP BY from_stage, to_stage ORDER BY leads DESC, from_stage, to_stage`;

const LEAD_SERIES = series('leads', 'created_at', { leads: 'count(*)::int' });



function scoreDistribution(rows: Array<{ bucket: number; leads: number }>): ScoreBucket[] {
	const counts = new Map(rows.map((row) => [row.bucket, row.leads]));
	return Array.from({ length: 12 }, (_, index) => {
		const bucket = index - 1;
		return { min: bucket < 0 ? null : bucket * 10, max: bucket >= 10 ? null : (bucket + 1) * 10, leads: counts.get(bucket) ?? 0 };
	});
}

/** The configured stages in their order (empty ones included), then any stage only the data knows. */
function orderPipeline(stages: readonly string[], rows: Array<{ stage: string; leads: number }>): LeadAnalytics['pipeline'] {
	const counts = new Map(rows.map((row) => [row.stage, row.leads]));
	const unknown = rows.map((row) => row.stage).filter((stage) => !stages.includes(stage)).sort();
	return [...stages, ...unknown].map((stage) => ({ stage, leads: counts.get(stage) ?? 0 }));
}

export async function leadAnalytics(prisma: Queryable, siteId: string, range: TimeRange, stages: readonly string[]): Promise<Omit<LeadAnalytics, 'asOf'>> {
	const [[summary], [conversion], buckets, sources, pipeline, stageChanges, points] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ newLeads: number; avgScore: number | null; medianScore: number | null }>>(LEAD_SUMMARY, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ visitors: number; convertedVisitors: number }>>(VISITOR_TO_LEAD, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ bucket: number; leads: number }>>(SCORE_BUCKETS, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ source: string | null; leads: number }>>(LEAD_SOURCES, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ stage: string; leads: number }>>(PIPELINE, siteId),
		prisma.$queryRawUnsafe<LeadAnalytics['stageChanges']>(STAGE_CHANGES, ...bounds(siteId, range)),
		timeSeries<{ leads: number }>(prisma, LEAD_SERIES, siteId, range),
	]);
	return {
		summary: { ...summary, ...conversion, visitorToLeadRate: ratio(conversion.convertedVisitors, conversion.visitors) },
		scoreDistribution: scoreDistribution(buckets),
		sources: sources.map((row) => ({ ...row, share: ratio(row.leads, summary.newLeads) })),
		pipeline: orderPipeline(stages, pipeline),
		stageChanges,
		series: points,
	};
}

// ---------------------------------------------------------------------------------------------
// Campaign performance: open, click and conversion rates; results per channel

/** A sent email counts as converted when its lead reaches a goal within this many days of the send. */
const EMAIL_CONVERSION_WINDOW_DAYS = 7;

/**
 * Per campaign and in total (GROUPING SETS: one pass). Conversions are found through the
 * per-site occurred_at index, bounded by the window, and matched to messages by lead; bounces
 * and unsubscribes per message through the (message_id, type) index, since a time bound on
 * email events would have to run from the range's start until today.
 * Needs $4: the conversion window in days.
 */
const EMAIL_PERFORMANCE = `WITH sent AS (
		SELECT id, campaign_id, lead_id, sent_at, first_opened_at, first_clicked_at
		FROM email_messages WHERE ${IN_RANGE('sent_at')}),
	converted AS (
		SELECT DISTINCT sent.id FROM sent
		JOIN conversions c ON c.lead_id = sent.lead_id AND c.occurred_at >= sent.sent_at AND c.occurred_at < sent.sent_at + $4::int * interval '1 day'
		WHERE c.site_id = $1::uuid AND c.occurred_at >= $2::timestamptz AND c.occurred_at < $3::timestamptz + $4::int * interval '1 day')
	SELECT GROUPING(sent.campaign_id) = 1 AS "isTotal", sent.campaign_id AS "campaignId", max(ec.name) AS name,
		count(*)::int AS sent,
		count(sent.first_opened_at)::int AS opened,
		count(sent.first_clicked_at)::int AS clicked,
		count(converted.id)::int AS converted,
		count(*) FILTER (WHERE flagged.unsubscribed)::int AS unsubscribed,
		count(*) FILTER (WHERE flagged.bounced)::int AS bounced
	FROM sent
	LEFT JOIN converted ON converted.id = sent.id
	CROSS JOIN LATERAL (
		SELECT bool_or(e.type = 'unsubscribe') AS unsubscribed, bool_or(e.type = 'bounce') AS bounced
		FROM email_events e WHERE e.message_id = sent.id AND e.type IN ('unsubscribe', 'bounce') AND e.site_id = $1::uuid) flagged
	LEFT JOIN email_campaigns ec ON ec.id = sent.campaign_id AND ec.site_id = $1::uuid
	GROUP BY GROUPING SETS ((sent.campaign_id), ())
	ORDER BY "isTotal" DESC, sent DESC, name NULLS LAST`;

/**
 * Sessions started in the range per channel and the conversions they produced. A conversion
 * happens inside its session, so at most the longest session after the range ends: that bound
 * keeps the conversions side on the per-site occurred_at index.
 */
const CHANNELS = `WITH started AS (
		SELECT id, channel FROM visitor_sessions WHERE ${IN_RANGE('started_at')}),
	converted AS (
		SELECT session_id FROM conversions
		WHERE site_id = $1::uuid AND occurred_at >= $2::timestamptz AND occurred_at < $3::timestamptz + ${LONGEST_SESSION} AND session_id IS NOT NULL)
	SELECT started.channel, count(DISTINCT started.id)::int AS sessions, count(converted.session_id)::int AS conversions,
		count(DISTINCT converted.session_id)::int AS "convertingSessions"
	FROM started LEFT JOIN converted ON converted.session_id = started.id
	GROUP BY started.channel ORDER BY sessions DESC, started.channel NULLS LAST`;

const EMAIL_SERIES = series('email_messages', 'sent_at', {
	sent: 'count(*)::int',
	opened: 'count(first_opened_at)::int',
	clicked: 'count(first_clicked_at)::int',
});

interface EmailCounts {
	sent: number;
	opened: number;
	clicked: number;
	converted: number;
	unsubscribed: number;
	bounced: number;
}



function emailRates(counts: EmailCounts): EmailRates {
	return {
		openRate: ratio(counts.opened, counts.sent),
		clickRate: ratio(counts.clicked, counts.sent),
		clickToOpenRate: ratio(counts.clicked, counts.opened),
		conversionRate: ratio(counts.converted, counts.sent),
	};
}

export async function campaignAnalytics(prisma: Queryable, siteId: string, range: TimeRange): Promise<Omit<CampaignAnalytics, 'asOf'>> {
	type Row = EmailCounts & { isTotal: boolean; campaignId: string | null; name: string | null };
	const [performance, channels, points] = await Promise.all([
		prisma.$queryRawUnsafe<Row[]>(EMAIL_PERFORMANCE, ...bounds(siteId, range), EMAIL_CONVERSION_WINDOW_DAYS),
		prisma.$queryRawUnsafe<Array<{ channel: string | null; sessions: number; conversions: number; convertingSessions: number }>>(CHANNELS, ...bounds(siteId, range)),
		timeSeries<{ sent: number; opened: number; clicked: number }>(prisma, EMAIL_SERIES, siteId, range),
	]);
	const counts = ({ sent, opened, clicked, converted, unsubscribed, bounced }: Row): EmailCounts => ({ sent, opened, clicked, converted, unsubscribed, bounced });
	// The grand-total grouping set yields a row even when nothing was sent.
	const [total, ...perCampaign] = performance;
	return {
		email: { ...counts(total), ...emailRates(counts(total)), conversionWindowDays: EMAIL_CONVERSION_WINDOW_DAYS },
		campaigns: perCampaign.map((row) => ({ campaignId: row.campaignId, name: row.name, ...counts(row), ...emailRates(counts(row)) })),
		channels: channels.map((row) => ({ ...row, conversionRate: ratio(row.convertingSessions, row.sessions) })),
		series: points,
	};
}

// ---------------------------------------------------------------------------------------------
// Conversion funnel: visitors → engaged → leads → qualified (MQL and beyond) → customers

/**
 * Each step is counted on its own in the range: visitors and engaged visitors (at least one
 * medium or high engagement session) from sessions started in it; leads created in it, and of
 * those the ones now at a qualified or the customer stage. Needs $4 (qualified stage names as a
 * JSON array) and $5 (the customer stage).
 */
const FUNNEL = `WITH started AS (
		SELECT visitor_id, engagement_level FROM visitor_sessions WHERE ${IN_RANGE('started_at')}),
	created AS (
		SELECT lifecycle_stage FROM leads WHERE ${IN_RANGE('created_at')})
	SELECT (SELECT count(DISTINCT visitor_id) FROM started)::int AS visitors,
		(SELECT count(DISTINCT visitor_id) FROM started WHERE engagement_level IN ('medium', 'high'))::int AS engaged,
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


export async function conversionAnalytics(prisma: Queryable, siteId: string, range: TimeRange, stages: readonly string[]): Promise<Omit<ConversionAnalytics, 'asOf'>> {
	const { qualified, customer } = funnelStages(stages);
	const [[funnel], [summary], goals, points] = await Promise.all([
		prisma.$queryRawUnsafe<Array<Record<(typeof FUNNEL_STEPS)[number], number>>>(FUNNEL, ...bounds(siteId, range), JSON.stringify(qualified), customer),
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
		funnel: { steps, qualifiedStages: qualified, customerStage: customer },
		summary: { ...summary, visitors: funnel.visitors, conversionRate: ratio(summary.convertingVisitors, funnel.visitors) },
		goals,
		series: points,
	};
}
