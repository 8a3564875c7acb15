import { eventCountSince, factRows, foldRollups, visitorCounts, visitorSeries, type RollupDatabase } from './rollup';

/**
 * The read side of the receiver: the seed's dashboard metrics, aggregated in Postgres so a
 * request moves a handful of rows, never the site's events. Every statement takes the site id
 * as $1 and filters on it first, so each one is served by a per-site index (see schema.prisma)
 * and no statement can read another site's rows. Counts are cast to int (float8 for raw events,
 * the one table a site can fill past 2^31 rows) so no bigint reaches JSON.
 *
 * Visitor figures (visitors, sessions, page views, top pages, entry pages, channels, the funnel's
 * visitors) all come from one source: the sessions the Visitor Processor built and the page views
 * it attached to them, dated by the session's start, read from the rollups of ./rollup.ts (which
 * are folded for the site before each report, so they are exact as of the request). Lead, email
 * and conversion figures come from their own tables, which are small beside the events.
 */

/** Raw queries, and the fold's transaction; a test can wrap $queryRawUnsafe to capture and EXPLAIN every statement. */
export type Queryable = RollupDatabase;

export type Interval = 'day' | 'hour';

/** Half-open [from, to): a row at exactly `to` belongs to the next range. */
export interface TimeRange {
	from: Date;
	to: Date;
	interval: Interval;
}

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

/**
 * Events are the raw events stored (bots and events no session holds yet included), counted by
 * hour; visitors and sessions are those the Visitor Processor made, from the rollups: every session
 * is in one hour row, every visitor has one first session.
 */
const stats = (todayStartsAt: Date) => `SELECT
	${eventCountSince(null)}::float8 AS "eventsTotal",
	${eventCountSince(todayStartsAt)}::float8 AS "eventsToday",
	(SELECT max(occurred_at) FROM visitor_events WHERE site_id = $1::uuid) AS "lastEventAt",
	(SELECT coalesce(sum(sessions), 0) FROM analytics_visitor_pairs WHERE site_id = $1::uuid AND kind = 'visitor' AND grain = 'hour' AND prev_hour = '-infinity')::int AS visitors,
	(SELECT coalesce(sum(sessions), 0) FROM analytics_session_facts WHERE site_id = $1::uuid AND grain = 'hour' AND dimension = '')::int AS sessions,
	(SELECT count(*) FROM leads WHERE site_id = $1::uuid)::int AS leads,
	(SELECT count(*) FROM outbox WHERE site_id = $1::uuid AND status = 'pending')::int AS "outboxPending",
	(SELECT count(*) FROM outbox WHERE site_id = $1::uuid AND status = 'dead')::int AS "outboxDead"`;

export interface SiteStats {
	eventsTotal: number;
	eventsToday: number;
	lastEventAt: Date | null;
	visitors: number;
	sessions: number;
	leads: number;
	outboxPending: number;
	outboxDead: number;
}

export async function siteStats(prisma: Queryable, siteId: string, todayStartsAt: Date): Promise<SiteStats> {
	await foldRollups(prisma, siteId);
	const [row] = await prisma.$queryRawUnsafe<SiteStats[]>(stats(todayStartsAt), siteId);
	return row;
}

/**
 * One site's share of the outbox, for its admin's /health: what waits, what died, how old the
 * oldest waiting row is and the last delivery error of a row still undelivered. Only the site's
 * own rows, so the error names only the site's own webhooks.
 */
const SITE_OUTBOX = `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
	count(*) FILTER (WHERE status = 'dead')::int AS dead,
	extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8 AS "oldestPendingAgeSeconds",
	(SELECT last_error FROM outbox WHERE site_id = $1::uuid AND status IN ('pending', 'dead') AND last_error IS NOT NULL
		ORDER BY next_attempt_at DESC LIMIT 1) AS "lastError"
	FROM outbox WHERE site_id = $1::uuid AND status IN ('pending', 'dead')`;

export interface SiteOutbox {
	pending: number;
	dead: number;
	oldestPendingAgeSeconds: number | null;
	lastError: string | null;
}

export async function siteOutbox(prisma: Queryable, siteId: string): Promise<SiteOutbox> {
	const [row] = await prisma.$queryRawUnsafe<SiteOutbox[]>(SITE_OUTBOX, siteId);
	return { ...row, oldestPendingAgeSeconds: row.oldestPendingAgeSeconds === null ? null : Math.round(row.oldestPendingAgeSeconds) };
}

// ---------------------------------------------------------------------------------------------
// Visitor analytics: active sessions, top pages, time on site, bounce rate

/** The seed's "sesiones activas": sessions with an event in the last 30 minutes. */
const ACTIVE_SESSIONS = `SELECT count(*)::int AS active FROM visitor_sessions
	WHERE site_id = $1::uuid AND last_activity_at >= now() - interval '30 minutes'`;

/**
 * Totals of the range's sessions, and the median duration from the per-duration counts (as
 * percentile_cont(0.5) over the sessions would: the mean of the two middle values when their
 * number is even).
 */
const sessionSummary = (range: TimeRange) => `WITH r AS (${factRows(range.from, range.to, ['', 'duration'])}),
	totals AS (SELECT coalesce(sum(sessions), 0)::int AS sessions, coalesce(sum(pageviews), 0)::int AS pageviews, coalesce(sum(bounces), 0)::int AS bounces,
		(sum(duration_seconds)::float8 / nullif(sum(sessions), 0)) AS "avgDurationSeconds",
		coalesce(sum(low), 0)::int AS low, coalesce(sum(medium), 0)::int AS medium, coalesce(sum(high), 0)::int AS high FROM r WHERE dimension = ''),
	durations AS (SELECT value::int AS seconds, sum(sessions) AS n FROM r WHERE dimension = 'duration' GROUP BY 1),
	ranked AS (SELECT seconds, sum(n) OVER (ORDER BY seconds) AS upto, sum(n) OVER () AS total FROM durations),
	middle AS (SELECT min(seconds) FILTER (WHERE upto > floor((total - 1) / 2)) AS lower, min(seconds) FILTER (WHERE upto > ceil((total - 1) / 2)) AS upper FROM ranked)
	SELECT totals.*, ((middle.lower + middle.upper) / 2.0)::float8 AS "medianDurationSeconds",
		coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'visitor')}) v), 0)::int AS visitors
	FROM totals, middle`;

/** The ten paths with the most page views, and for each its distinct visitors over the range. */
const topPages = (range: TimeRange) => `WITH top AS (
		SELECT value AS path, sum(pageviews)::int AS pageviews FROM (${factRows(range.from, range.to, ['page'])}) r
		GROUP BY value ORDER BY pageviews DESC, path LIMIT 10)
	SELECT top.path, top.pageviews, coalesce(v.visitors, 0)::int AS visitors
	FROM top LEFT JOIN (${visitorCounts(range.from, range.to, { pages: 'SELECT path FROM top' })}) v ON v.kind = 'page:' || top.path
	ORDER BY top.pageviews DESC, top.path`;

const entryPages = (range: TimeRange) => `SELECT value AS path, sum(sessions)::int AS sessions, sum(bounces)::int AS bounces
	FROM (${factRows(range.from, range.to, ['entry_page'])}) r WHERE value <> ''
	GROUP BY value ORDER BY sessions DESC, path LIMIT 10`;

/** Needs $2, $3 and $4 for the buckets (see BUCKETS). */
const sessionSeries = (range: TimeRange) => `WITH ${BUCKETS},
	data AS (SELECT date_trunc($4::text, bucket AT TIME ZONE 'UTC') AS bucket, sum(sessions)::int AS sessions, sum(pageviews)::int AS pageviews, sum(bounces)::int AS bounces
		FROM (${factRows(range.from, range.to, [''], range.interval)}) r GROUP BY 1),
	seen AS (SELECT at AT TIME ZONE 'UTC' AS bucket, visitors FROM (${visitorSeries(range.from, range.to, range.interval)}) v)
	SELECT bucket AT TIME ZONE 'UTC' AS "at", coalesce(data.sessions, 0) AS sessions, coalesce(seen.visitors, 0) AS visitors,
		coalesce(data.pageviews, 0) AS pageviews, coalesce(data.bounces, 0) AS bounces
	FROM buckets LEFT JOIN data USING (bucket) LEFT JOIN seen USING (bucket) ORDER BY bucket`;

export interface VisitorAnalytics {
	activeSessions: number;
	summary: {
		sessions: number;
		visitors: number;
		pageviews: number;
		pageviewsPerSession: number | null;
		avgDurationSeconds: number | null;
		medianDurationSeconds: number | null;
		bounces: number;
		bounceRate: number | null;
	};
	engagement: { low: number; medium: number; high: number };
	topPages: Array<{ path: string; pageviews: number; visitors: number }>;
	entryPages: Array<{ path: string; sessions: number; bounceRate: number | null }>;
	series: Array<{ at: Date; sessions: number; visitors: number; pageviews: number; bounces: number }>;
}

export async function visitorAnalytics(prisma: Queryable, siteId: string, range: TimeRange): Promise<VisitorAnalytics> {
	await foldRollups(prisma, siteId);
	const [[active], [summary], pages, entries, points] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ active: number }>>(ACTIVE_SESSIONS, siteId),
		prisma.$queryRawUnsafe<Array<VisitorAnalytics['summary'] & VisitorAnalytics['engagement']>>(sessionSummary(range), siteId),
		prisma.$queryRawUnsafe<VisitorAnalytics['topPages']>(topPages(range), siteId),
		prisma.$queryRawUnsafe<Array<{ path: string; sessions: number; bounces: number }>>(entryPages(range), siteId),
		timeSeries<Omit<VisitorAnalytics['series'][number], 'at'>>(prisma, sessionSeries(range), siteId, range),
	]);
	const { low, medium, high, ...totals } = summary;
	return {
		activeSessions: active.active,
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
		topPages: pages,
		entryPages: entries.map((page) => ({ path: page.path, sessions: page.sessions, bounceRate: ratio(page.bounces, page.sessions) })),
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
const visitorToLead = (range: TimeRange) => `SELECT
	coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'visitor')}) v), 0)::int AS visitors,
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

export interface ScoreBucket {
	/** Inclusive lower bound; null for the negative bucket. */
	min: number | null;
	/** Exclusive upper bound; null for the open top bucket. */
	max: number | null;
	leads: number;
}

export interface LeadAnalytics {
	summary: { newLeads: number; avgScore: number | null; medianScore: number | null; visitors: number; convertedVisitors: number; visitorToLeadRate: number | null };
	scoreDistribution: ScoreBucket[];
	sources: Array<{ source: string | null; leads: number; share: number | null }>;
	pipeline: Array<{ stage: string; leads: number }>;
	stageChanges: Array<{ from: string; to: string; leads: number }>;
	series: Array<{ at: Date; leads: number }>;
}

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

export async function leadAnalytics(prisma: Queryable, siteId: string, range: TimeRange, stages: readonly string[]): Promise<LeadAnalytics> {
	await foldRollups(prisma, siteId);
	const [[summary], [conversion], buckets, sources, pipeline, stageChanges, points] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ newLeads: number; avgScore: number | null; medianScore: number | null }>>(LEAD_SUMMARY, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ visitors: number; convertedVisitors: number }>>(visitorToLead(range), ...bounds(siteId, range)),
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
 * Sessions started in the range per channel (from the rollups) and the conversions they produced.
 * A conversion happens inside its session, so at most the longest session after the range ends:
 * that bound keeps the conversions side on the per-site occurred_at index.
 */
const channelsSql = (range: TimeRange) => `WITH started AS (
		SELECT value AS channel, sum(sessions)::int AS sessions FROM (${factRows(range.from, range.to, ['channel'])}) r GROUP BY value),
	converted AS (
		SELECT coalesce(s.channel, '') AS channel, count(*)::int AS conversions, count(DISTINCT c.session_id)::int AS "convertingSessions"
		FROM conversions c JOIN visitor_sessions s ON s.id = c.session_id
		WHERE c.site_id = $1::uuid AND c.occurred_at >= $2::timestamptz AND c.occurred_at < $3::timestamptz + ${LONGEST_SESSION}
			AND s.site_id = $1::uuid AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz
		GROUP BY 1)
	SELECT nullif(started.channel, '') AS channel, started.sessions, coalesce(converted.conversions, 0)::int AS conversions,
		coalesce(converted."convertingSessions", 0)::int AS "convertingSessions"
	FROM started LEFT JOIN converted USING (channel)
	ORDER BY sessions DESC, nullif(started.channel, '') NULLS LAST`;

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

export interface EmailRates {
	openRate: number | null;
	clickRate: number | null;
	clickToOpenRate: number | null;
	conversionRate: number | null;
}

export interface CampaignAnalytics {
	email: EmailCounts & EmailRates & { conversionWindowDays: number };
	campaigns: Array<{ campaignId: string | null; name: string | null } & EmailCounts & EmailRates>;
	channels: Array<{ channel: string | null; sessions: number; conversions: number; convertingSessions: number; conversionRate: number | null }>;
	series: Array<{ at: Date; sent: number; opened: number; clicked: number }>;
}

function emailRates(counts: EmailCounts): EmailRates {
	return {
		openRate: ratio(counts.opened, counts.sent),
		clickRate: ratio(counts.clicked, counts.sent),
		clickToOpenRate: ratio(counts.clicked, counts.opened),
		conversionRate: ratio(counts.converted, counts.sent),
	};
}

export async function campaignAnalytics(prisma: Queryable, siteId: string, range: TimeRange): Promise<CampaignAnalytics> {
	await foldRollups(prisma, siteId);
	type Row = EmailCounts & { isTotal: boolean; campaignId: string | null; name: string | null };
	const [performance, channels, points] = await Promise.all([
		prisma.$queryRawUnsafe<Row[]>(EMAIL_PERFORMANCE, ...bounds(siteId, range), EMAIL_CONVERSION_WINDOW_DAYS),
		prisma.$queryRawUnsafe<Array<{ channel: string | null; sessions: number; conversions: number; convertingSessions: number }>>(channelsSql(range), ...bounds(siteId, range)),
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
	await foldRollups(prisma, siteId);
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
		funnel: { steps, qualifiedStages: qualified, customerStage: customer },
		summary: { ...summary, visitors: funnel.visitors, conversionRate: ratio(summary.convertingVisitors, funnel.visitors) },
		goals,
		series: points,
	};
}
