import type { ReportFilter } from './filters';
import {
	eventCountSince,
	factRows,
	foldedSessionCondition,
	rollupsForRead,
	readsKeptPageRows,
	SCROLL_DEPTHS,
	topPagesOf,
	visitorCounts,
	visitorSeries,
	type RollupDatabase,
	type SessionDimension,
} from './rollup';

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

/** Series buckets: UTC hours, UTC days, or ISO weeks (starting Monday, UTC). */
export type Interval = 'day' | 'hour' | 'week';

/** Half-open [from, to): a row at exactly `to` belongs to the next range. */
export interface TimeRange {
	from: Date;
	to: Date;
	interval: Interval;
}

/** Ratio of two counts; null rather than NaN when nothing was counted. */
export function ratio(part: number, whole: number): number | null {
	return whole === 0 ? null : part / whole;
}

export function bounds(siteId: string, range: TimeRange): [string, string, string] {
	return [siteId, range.from.toISOString(), range.to.toISOString()];
}

/**
 * A session's events all fall within tracking.maxSessionDuration of its start, which the config
 * schema caps at 48 hours. Bounding by it keeps statements that look at a session from its other
 * end ("active now", conversions of the range's sessions) on a per-site time index.
 */
export const LONGEST_SESSION = `interval '48 hours'`;

export const IN_RANGE = (column: string) => `site_id = $1::uuid AND ${column} >= $2::timestamptz AND ${column} < $3::timestamptz`;

/**
 * Buckets are UTC wall-clock hours, days or ISO weeks (date_trunc starts a week on Monday),
 * generated as timestamps without time zone so the session's TimeZone setting cannot shift them
 * or make a day 23 hours long. Empty buckets are kept (as zeros) so a chart needs no gap filling.
 * Needs $2, $3 and $4 (the interval).
 */
export const BUCKETS = `buckets AS (
	SELECT generate_series(
		date_trunc($4::text, $2::timestamptz AT TIME ZONE 'UTC'),
		$3::timestamptz AT TIME ZONE 'UTC' - interval '1 millisecond',
		('1 ' || $4::text)::interval) AS bucket)`;

const bucketOf = (column: string) => `date_trunc($4::text, ${column} AT TIME ZONE 'UTC')`;

export function series(source: string, column: string, aggregates: Record<string, string>): string {
	const names = Object.keys(aggregates);
	return `WITH ${BUCKETS},
	data AS (
		SELECT ${bucketOf(column)} AS bucket, ${names.map((name) => `${aggregates[name]} AS "${name}"`).join(', ')}
		FROM ${source} WHERE ${IN_RANGE(column)} GROUP BY 1)
	SELECT bucket AT TIME ZONE 'UTC' AS "at", ${names.map((name) => `coalesce(data."${name}", 0) AS "${name}"`).join(', ')}
	FROM buckets LEFT JOIN data USING (bucket) ORDER BY bucket`;
}

export async function timeSeries<T>(prisma: Queryable, sql: string, siteId: string, range: TimeRange): Promise<Array<{ at: Date } & T>> {
	return prisma.$queryRawUnsafe(sql, ...bounds(siteId, range), range.interval);
}

// ---------------------------------------------------------------------------------------------
// Site-wide counters

/**
 * Events are the raw events stored (events no session holds yet included, bots' left out, as
 * they make no session), counted by hour; visitors and sessions are those the Visitor Processor made, from the rollups: every session
 * is in one week row, every visitor has one first session.
 */
const stats = (todayStartsAt: Date) => `SELECT
	${eventCountSince(null)}::float8 AS "eventsTotal",
	${eventCountSince(todayStartsAt)}::float8 AS "eventsToday",
	(SELECT max(occurred_at) FROM visitor_events WHERE site_id = $1::uuid AND NOT is_bot) AS "lastEventAt",
	(SELECT coalesce(sum(sessions), 0) FROM analytics_visitor_pairs WHERE site_id = $1::uuid AND segment = '' AND kind = 'visitor' AND grain = 'week' AND prev_hour = '-infinity')::int AS visitors,
	(SELECT coalesce(sum(sessions), 0) FROM analytics_session_facts WHERE site_id = $1::uuid AND segment = '' AND grain = 'week' AND dimension = '')::int AS sessions,
	(SELECT count(*) FROM leads WHERE site_id = $1::uuid)::int AS leads,
	(SELECT count(*) FROM outbox WHERE site_id = $1::uuid AND status = 'pending')::int AS "outboxPending",
	(SELECT count(*) FROM outbox WHERE site_id = $1::uuid AND status = 'dead')::int AS "outboxDead"`;

export interface SiteStats {
	/** Every change to the site's sessions noted before this instant is counted (see rollupsForRead). */
	asOf: Date;
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
	const asOf = await rollupsForRead(prisma, siteId);
	const [row] = await prisma.$queryRawUnsafe<Array<Omit<SiteStats, 'asOf'>>>(stats(todayStartsAt), siteId);
	return { asOf, ...row };
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
// Visitor analytics: active sessions, top pages, time on site, bounce rate, breakdowns

/**
 * The seed's "sesiones activas": sessions with an event in the last 30 minutes; and the distinct
 * visitors of those with one in the last 5.
 */
const activeNow = (filter: ReportFilter | undefined) => `SELECT count(*)::int AS active,
		count(DISTINCT s.visitor_id) FILTER (WHERE s.last_activity_at >= now() - interval '5 minutes')::int AS "visitorsNow"
	FROM visitor_sessions s WHERE s.site_id = $1::uuid AND s.last_activity_at >= now() - interval '30 minutes' AND ${foldedSessionCondition(filter)}`;

/**
 * Totals of the range's sessions, and the median duration from the per-duration counts (as
 * percentile_cont(0.5) over the sessions would: the mean of the two middle values when their
 * number is even).
 */
const sessionSummary = (range: TimeRange, filter: ReportFilter | undefined) => `WITH r AS (${factRows(range.from, range.to, ['', 'duration'], 'week', filter, true)}),
	totals AS (SELECT coalesce(sum(sessions), 0)::int AS sessions, coalesce(sum(pageviews), 0)::int AS pageviews, coalesce(sum(bounces), 0)::int AS bounces,
		(sum(duration_seconds)::float8 / nullif(sum(sessions), 0)) AS "avgDurationSeconds",
		coalesce(sum(low), 0)::int AS low, coalesce(sum(medium), 0)::int AS medium, coalesce(sum(high), 0)::int AS high FROM r WHERE dimension = ''),
	durations AS (SELECT value::int AS seconds, sum(sessions) AS n FROM r WHERE dimension = 'duration' GROUP BY 1 HAVING sum(sessions) > 0),
	ranked AS (SELECT seconds, sum(n) OVER (ORDER BY seconds) AS upto, sum(n) OVER () AS total FROM durations),
	middle AS (SELECT min(seconds) FILTER (WHERE upto > floor((total - 1) / 2)) AS lower, min(seconds) FILTER (WHERE upto > ceil((total - 1) / 2)) AS upper FROM ranked)
	SELECT totals.*, ((middle.lower + middle.upper) / 2.0)::float8 AS "medianDurationSeconds",
		coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'visitor', filter)}) v), 0)::int AS visitors
	FROM totals, middle`;

/** The ten paths with the most page views, and for each its distinct visitors over the range (an estimate where topPagesOf says so). */
const topPages = (range: TimeRange, filter: ReportFilter | undefined) => topPagesOf(range.from, range.to, filter);

/** The breakdowns of the report, each a dimension of the rollups, and the one that names them in it. */
const BREAKDOWNS = {
	channels: 'channel',
	exitPages: 'exit_page',
	referrers: 'referrer',
	sources: 'source',
	mediums: 'medium',
	campaigns: 'campaign',
	devices: 'device',
	browsers: 'browser',
	os: 'os',
	countries: 'country',
} as const satisfies Record<string, SessionDimension>;

const BREAKDOWN_ROWS = 10;

/**
 * The ten values with the most sessions of each breakdown, entry pages (those a session has) and the
 * scroll-depth buckets, in one pass over the rollup rows. Ties go to the value first in order, a
 * missing value last.
 */
const breakdownsSql = (range: TimeRange, filter: ReportFilter | undefined) => `WITH r AS (
		${factRows(range.from, range.to, ['entry_page', 'scroll', ...Object.values(BREAKDOWNS)], 'week', filter, true)}),
	sums AS (SELECT dimension, value, sum(sessions)::int AS sessions, sum(bounces)::int AS bounces, sum(pageviews)::int AS pageviews,
			(sum(duration_seconds)::float8 / sum(sessions)) AS "avgDurationSeconds", sum(conversions)::int AS conversions,
			sum(converting_sessions)::int AS "convertingSessions"
		FROM r WHERE NOT (dimension = 'entry_page' AND value = '') GROUP BY dimension, value HAVING sum(sessions) > 0),
	ranked AS (SELECT sums.*, row_number() OVER (PARTITION BY dimension ORDER BY sessions DESC, nullif(value, '') NULLS LAST) AS rank FROM sums)
	SELECT dimension, nullif(value, '') AS value, sessions, bounces, pageviews, "avgDurationSeconds", conversions, "convertingSessions"
	FROM ranked WHERE rank <= ${BREAKDOWN_ROWS} ORDER BY dimension, rank`;

/** Needs $2, $3 and $4 for the buckets (see BUCKETS). */
const sessionSeries = (range: TimeRange, filter: ReportFilter | undefined) => `WITH ${BUCKETS},
	data AS (SELECT date_trunc($4::text, bucket AT TIME ZONE 'UTC') AS bucket, sum(sessions)::int AS sessions, sum(pageviews)::int AS pageviews, sum(bounces)::int AS bounces
		FROM (${factRows(range.from, range.to, [''], range.interval, filter, true)}) r GROUP BY 1),
	seen AS (SELECT at AT TIME ZONE 'UTC' AS bucket, visitors FROM (${visitorSeries(range.from, range.to, range.interval, filter)}) v)
	SELECT bucket AT TIME ZONE 'UTC' AS "at", coalesce(data.sessions, 0) AS sessions, coalesce(seen.visitors, 0) AS visitors,
		coalesce(data.pageviews, 0) AS pageviews, coalesce(data.bounces, 0) AS bounces
	FROM buckets LEFT JOIN data USING (bucket) LEFT JOIN seen USING (bucket) ORDER BY bucket`;

/** A row of a breakdown: the sessions with one value of a dimension (null: sessions without one). */
export interface BreakdownRow {
	value: string | null;
	sessions: number;
	bounces: number;
	pageviews: number;
	avgDurationSeconds: number | null;
}

/** A channel's row also counts the conversions made in its sessions, and the sessions with one. */
export interface ChannelRow extends BreakdownRow {
	conversions: number;
	convertingSessions: number;
}

export type ScrollDepth = (typeof SCROLL_DEPTHS)[number];

/** The figures a Visitor Analytics report may give as estimates rather than counts (see topPagesOf in ./rollup.ts). */
export const ESTIMABLE_FIGURES = ['topPages.visitors'] as const;
export type EstimableFigure = (typeof ESTIMABLE_FIGURES)[number];

export interface VisitorAnalytics {
	/** Every change to the site's sessions noted before this instant is counted (see rollupsForRead). */
	asOf: Date;
	activeSessions: number;
	/** Distinct visitors with an event in the last 5 minutes. */
	visitorsNow: number;
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
	/** The ten values with the most sessions of each, ties in the values' order, a missing value last. */
	breakdowns: { channels: ChannelRow[] } & Record<Exclude<keyof typeof BREAKDOWNS, 'channels'>, BreakdownRow[]> & {
			/** Every bucket of the sessions' deepest scroll, in order, empty ones included. */
			scrollDepth: Array<BreakdownRow & { value: ScrollDepth }>;
		};
	series: Array<{ at: Date; sessions: number; visitors: number; pageviews: number; bounces: number }>;
}

type DimensionRow = BreakdownRow & { dimension: string; conversions: number; convertingSessions: number };

function breakdownsOf(rows: DimensionRow[]): VisitorAnalytics['breakdowns'] {
	const of = (dimension: string) => rows.filter((row) => row.dimension === dimension);
	const plain = ({ value, sessions, bounces, pageviews, avgDurationSeconds }: DimensionRow): BreakdownRow => ({ value, sessions, bounces, pageviews, avgDurationSeconds });
	const scroll = new Map(of('scroll').map((row) => [row.value, plain(row)]));
	return {
		channels: of('channel').map((row) => ({ ...plain(row), conversions: row.conversions, convertingSessions: row.convertingSessions })),
		exitPages: of(BREAKDOWNS.exitPages).map(plain),
		referrers: of(BREAKDOWNS.referrers).map(plain),
		sources: of(BREAKDOWNS.sources).map(plain),
		mediums: of(BREAKDOWNS.mediums).map(plain),
		campaigns: of(BREAKDOWNS.campaigns).map(plain),
		devices: of(BREAKDOWNS.devices).map(plain),
		browsers: of(BREAKDOWNS.browsers).map(plain),
		os: of(BREAKDOWNS.os).map(plain),
		countries: of(BREAKDOWNS.countries).map(plain),
		scrollDepth: SCROLL_DEPTHS.map((value) => ({ ...(scroll.get(value) ?? { sessions: 0, bounces: 0, pageviews: 0, avgDurationSeconds: null }), value })),
	};
}

/**
 * Which figures of the Visitor Analytics report over a range (with a filter) are estimates: a page
 * filter's top pages' visitors where the range reads kept page rows, as topPagesOf estimates them.
 * Empty when every figure is counted.
 */
export async function estimatedFigures(prisma: Queryable, siteId: string, range: TimeRange, filter?: ReportFilter): Promise<EstimableFigure[]> {
	if (!filter?.page) return [];
	const [{ kept }] = await prisma.$queryRawUnsafe<Array<{ kept: boolean }>>(`SELECT ${readsKeptPageRows(range.from, range.to, filter)} AS kept`, siteId);
	return kept ? ['topPages.visitors'] : [];
}

/**
 * The Visitor Analytics report over a range; with a filter, every figure is that of the sessions the
 * filter keeps (see ReportFilter).
 */
export async function visitorAnalytics(prisma: Queryable, siteId: string, range: TimeRange, filter?: ReportFilter): Promise<VisitorAnalytics> {
	const asOf = await rollupsForRead(prisma, siteId);
	const [[active], [summary], pages, dimensions, points] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ active: number; visitorsNow: number }>>(activeNow(filter), siteId),
		prisma.$queryRawUnsafe<Array<VisitorAnalytics['summary'] & VisitorAnalytics['engagement']>>(sessionSummary(range, filter), siteId),
		prisma.$queryRawUnsafe<Array<VisitorAnalytics['topPages'][number] & { estimated: boolean }>>(topPages(range, filter), siteId),
		prisma.$queryRawUnsafe<DimensionRow[]>(breakdownsSql(range, filter), siteId),
		timeSeries<Omit<VisitorAnalytics['series'][number], 'at'>>(prisma, sessionSeries(range, filter), siteId, range),
	]);
	const { low, medium, high, ...totals } = summary;
	return {
		asOf,
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
		topPages: pages.map(({ path, pageviews, visitors }) => ({ path, pageviews, visitors })),
		entryPages: dimensions
			.filter((row) => row.dimension === 'entry_page')
			.map((page) => ({ path: page.value ?? '', sessions: page.sessions, bounceRate: ratio(page.bounces, page.sessions) })),
		breakdowns: breakdownsOf(dimensions),
		series: points,
	};
}
