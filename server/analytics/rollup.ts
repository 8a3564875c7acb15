import type { PrismaClient } from '../../lib/db';
import type { Logger } from '../logger';
import { isFiltered, rollupSegment, sessionCondition, sqlText, type ReportFilter } from './filters';

/**
 * The dashboards' rollups and their one writer.
 *
 * Source of every visitor figure: the sessions the Visitor Processor built (visitor_sessions), the
 * events it attached to them (visitor_events.session_id) and the conversions made in them
 * (conversions.session_id), each dated by its session's start. So the visitors, sessions and page
 * views of a range are those of the sessions that started in it, top pages add up to the page views,
 * and nothing counts raw events that no session holds yet (bots, or events still waiting in the
 * outbox for workflow 01).
 *
 * Tables (see prisma/schema.prisma), each in segments: "" (every session of the site),
 * "channel:<name>" and "campaign:<name>" (the sessions of one channel or UTM campaign), so a report
 * filtered by one of those reads rollups like an unfiltered one.
 * - analytics_session_facts: additive figures per (hour, UTC day or ISO week, dimension, value), and
 *   on each bucket's total row its distinct visitors.
 * - analytics_visitor_pairs: distinct visitors are not additive, so each session is counted with the
 *   hour of the same visitor's previous session of the same kind ("visitor": any session, "engaged":
 *   medium or high engagement, "page:<path>": a session that viewed the path). A visitor is in a range
 *   exactly once: at its first session in the range, the one whose previous session started before the
 *   range. Visitors over whole hours [H1, H2) are then the sum of the rows of those hours (or of their
 *   whole days and weeks) whose previous hour is before H1. In a day or week row a previous session
 *   inside the bucket is noted at the bucket's start: for any range that holds the whole bucket that
 *   is "not before the range" all the same, and it keeps those rows few.
 * - analytics_event_counts: raw events per hour, for the site-wide totals.
 *
 * Keeping them current: statement triggers on visitor_sessions append the hours a change touches (its
 * own and those of the visitor's later sessions, whose "previous session" it may be) to
 * analytics_dirty_hours, triggers on conversions the hour of the conversion's session, and triggers
 * on visitor_events append event counts. `foldRollups` is the only code that writes the rollups: under
 * a per-site advisory lock it takes the dirty hours (committed rows only, so a change still in flight
 * stays noted for the next fold), recomputes those hours from the raw rows and moves their days and
 * weeks by the difference between the hours' old and new rows. So a fold costs what its hours hold,
 * is idempotent, and late or re-sessionized events are handled like new ones. The receiver folds
 * every few seconds (`startRollupJob`) and every read folds its site first (a single index probe when
 * nothing is dirty), so an answer is exact as of the request, on Postgres and the embedded PGlite
 * alike.
 *
 * Hours, days and weeks are UTC (weeks start on Monday); partial hours at either end of a range are
 * read from the raw sessions.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export type Grain = 'hour' | 'day' | 'week';

/** Each grain's length, and where its buckets start: ISO weeks on Mondays, and 1970-01-05 was one. */
const GRAINS: Record<Grain, { ms: number; offset: number }> = {
	hour: { ms: HOUR_MS, offset: 0 },
	day: { ms: DAY_MS, offset: 0 },
	week: { ms: 7 * DAY_MS, offset: 4 * DAY_MS },
};
const floorTo = (ms: number, grain: Grain) => Math.floor((ms - GRAINS[grain].offset) / GRAINS[grain].ms) * GRAINS[grain].ms + GRAINS[grain].offset;
const ceilTo = (ms: number, grain: Grain) => Math.ceil((ms - GRAINS[grain].offset) / GRAINS[grain].ms) * GRAINS[grain].ms + GRAINS[grain].offset;

/** The rollups' writer needs transactions; a read only needs raw queries (and the fold through this type). */
export type RollupDatabase = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe' | '$transaction'>;

/** Scroll-depth buckets of a session's deepest scroll, in their order. */
export const SCROLL_DEPTHS = ['0–24%', '25–49%', '50–74%', '75–99%', '100%'] as const;

/** Dimensions of analytics_session_facts and the session column each one groups by ('' is the site total). */
export const SESSION_DIMENSIONS = {
	'': `''`,
	channel: 's.channel',
	entry_page: 's.entry_page',
	exit_page: 's.exit_page',
	referrer: 's.referrer_domain',
	source: 's.source',
	medium: 's.medium',
	campaign: 's.campaign',
	device: 's.device_type',
	browser: 's.browser',
	os: 's.os',
	country: 's.country',
	duration: 's.duration_seconds::text',
	scroll: `CASE WHEN s.max_scroll_depth >= 100 THEN '${SCROLL_DEPTHS[4]}' WHEN s.max_scroll_depth >= 75 THEN '${SCROLL_DEPTHS[3]}'
		WHEN s.max_scroll_depth >= 50 THEN '${SCROLL_DEPTHS[2]}' WHEN s.max_scroll_depth >= 25 THEN '${SCROLL_DEPTHS[1]}' ELSE '${SCROLL_DEPTHS[0]}' END`,
} as const;

export type SessionDimension = keyof typeof SESSION_DIMENSIONS | 'page';

const ENGAGED = `s.engagement_level IN ('medium', 'high')`;

/** The segments a session (s) counts in, as rows of g(segment): the site, its channel and its UTM campaign. */
const SEGMENTS = `CROSS JOIN LATERAL (SELECT segment FROM (VALUES (''), ('channel:' || s.channel), ('campaign:' || s.campaign)) all_segments(segment) WHERE segment IS NOT NULL) g`;
/** A read's sessions are already those of one filter: one segment. */
const ONE_SEGMENT = `CROSS JOIN (VALUES ('')) g(segment)`;

const FACT_COUNTERS = ['sessions', 'bounces', 'pageviews', 'duration_seconds', 'low', 'medium', 'high', 'conversions', 'converting_sessions'] as const;

/** The counters of a group of (session, …) rows: each row is one session (its `conversions` are the conversions made in it). */
const sessionCounters = (pageviews: string) => `count(*)::int AS sessions, count(*) FILTER (WHERE s.is_bounce)::int AS bounces,
	sum(${pageviews})::int AS pageviews, sum(s.duration_seconds)::bigint AS duration_seconds,
	count(*) FILTER (WHERE s.engagement_level = 'low')::int AS low, count(*) FILTER (WHERE s.engagement_level = 'medium')::int AS medium,
	count(*) FILTER (WHERE s.engagement_level = 'high')::int AS high, sum(s.conversions)::int AS conversions,
	count(*) FILTER (WHERE s.conversions > 0)::int AS converting_sessions`;

/**
 * The facts of the sessions `sessions` (a subquery of visitor_sessions rows named s with `bucket` and
 * `conversions` columns), one row per (segment, bucket, dimension, value). Both the fold (per hour,
 * in every segment) and a read (its raw pieces, in one) use it, so the rollups and the raw edges
 * count alike.
 */
function factsOf(sessions: string, dimensions: readonly SessionDimension[], segmented: boolean): string {
	const columns = dimensions.filter((dimension): dimension is keyof typeof SESSION_DIMENSIONS => dimension !== 'page');
	const segments = segmented ? SEGMENTS : ONE_SEGMENT;
	const parts: string[] = [];
	if (columns.length > 0) {
		parts.push(`SELECT g.segment, s.bucket, d.dimension, coalesce(d.value, '') AS value, ${sessionCounters('s.pageviews')}
		FROM (${sessions}) s ${segments}
		CROSS JOIN LATERAL (VALUES ${columns.map((dimension) => `('${dimension}', ${SESSION_DIMENSIONS[dimension]})`).join(', ')}) d(dimension, value)
		GROUP BY 1, 2, 3, 4`);
	}
	if (dimensions.includes('page')) {
		// Per path: its page views, and the sessions that viewed it (their bounces, durations, engagement and conversions).
		parts.push(`SELECT g.segment, s.bucket, 'page' AS dimension, v.path AS value, ${sessionCounters('v.views')}
		FROM (${sessions}) s
		CROSS JOIN LATERAL (SELECT e.path, count(*) AS views FROM visitor_events e WHERE e.session_id = s.id AND e.type = 'pageview' AND e.path IS NOT NULL GROUP BY e.path) v
		${segments}
		GROUP BY 1, 2, 4`);
	}
	return parts.join('\nUNION ALL\n');
}

/**
 * A conversion happens inside its session, and a session's events all fall within
 * tracking.maxSessionDuration (capped at 48 hours by the config schema) of its start: so the
 * conversions and page views of sessions that started in [a, b) happened in [a, b + 48 hours).
 */
const LONGEST_SESSION = `interval '48 hours'`;

/** Sessions of the site ($1) that started in the given hours ($2, an array of hour starts), with their hour as `bucket` and their conversions. */
const SESSIONS_OF_HOURS = `SELECT s.*, h.hour AS bucket, coalesce(cv.conversions, 0) AS conversions
	FROM unnest($2::timestamptz[]) h(hour)
	JOIN visitor_sessions s ON s.site_id = $1::uuid AND s.started_at >= h.hour AND s.started_at < h.hour + interval '1 hour'
	LEFT JOIN (SELECT c.session_id, count(DISTINCT c.id)::int AS conversions FROM unnest($2::timestamptz[]) w(hour)
		JOIN conversions c ON c.site_id = $1::uuid AND c.occurred_at >= w.hour AND c.occurred_at < w.hour + interval '1 hour' + ${LONGEST_SESSION}
		WHERE c.session_id IS NOT NULL GROUP BY c.session_id) cv ON cv.session_id = s.id`;

/**
 * Presence rows (segment, kind, visitor, session start, session id) of the sessions `sessions`
 * (named s): one per session of kind "visitor", per engaged session (site-wide only: the funnel
 * reads them, unfiltered), and per (session, path viewed).
 */
function presenceOf(sessions: string, kinds: 'all' | 'visitor' | 'engaged' | 'pages', segmented: boolean): string {
	const segments = segmented ? SEGMENTS : ONE_SEGMENT;
	const parts: string[] = [];
	if (kinds === 'all' || kinds === 'visitor') parts.push(`SELECT g.segment, 'visitor' AS kind, s.visitor_id, s.started_at, s.id FROM (${sessions}) s ${segments}`);
	if (kinds === 'all' || kinds === 'engaged') parts.push(`SELECT '' AS segment, 'engaged' AS kind, s.visitor_id, s.started_at, s.id FROM (${sessions}) s WHERE ${ENGAGED}`);
	if (kinds === 'all' || kinds === 'pages') {
		parts.push(`SELECT g.segment, 'page:' || v.path AS kind, s.visitor_id, s.started_at, s.id FROM (${sessions}) s
			CROSS JOIN LATERAL (SELECT DISTINCT e.path FROM visitor_events e WHERE e.session_id = s.id AND e.type = 'pageview' AND e.path IS NOT NULL) v ${segments}`);
	}
	return parts.join('\nUNION ALL\n');
}

/**
 * Hour rows of analytics_visitor_pairs for the hours $2: every visitor with a session in them is
 * replayed from its first session (a visitor holds a handful), so each presence finds the previous
 * one of its segment and kind with lag().
 */
const PAIRS_OF_HOURS = `WITH touched AS (SELECT DISTINCT s.visitor_id FROM unnest($2::timestamptz[]) h(hour)
		JOIN visitor_sessions s ON s.site_id = $1::uuid AND s.started_at >= h.hour AND s.started_at < h.hour + interval '1 hour'),
	history AS (SELECT s.id, s.visitor_id, s.started_at, s.engagement_level, s.channel, s.campaign FROM visitor_sessions s WHERE s.visitor_id IN (SELECT visitor_id FROM touched)),
	presence AS (${presenceOf('SELECT * FROM history', 'all', true)}),
	ordered AS (SELECT segment, kind, started_at, lag(started_at) OVER (PARTITION BY segment, kind, visitor_id ORDER BY started_at, id) AS prev FROM presence)
	SELECT $1::uuid, segment, kind, 'hour', date_trunc('hour', started_at, 'UTC'), coalesce(date_trunc('hour', prev, 'UTC'), '-infinity'), count(*)::int
	FROM ordered WHERE date_trunc('hour', started_at, 'UTC') = ANY($2::timestamptz[])
	GROUP BY 2, 3, 5, 6
	ORDER BY 2, 3, 5`;

const COARSER = `CROSS JOIN (VALUES ('day'), ('week')) g(grain)`;
const COARSER_BUCKET = (bucket: string) => `date_trunc(g.grain, ${bucket}, 'UTC')`;

/**
 * A fold of a few hours moves the day and week rows by the hour rows of the hours $2, times $3: -1
 * before those hour rows are recomputed, +1 after; rows of a day or week that drop to no session are
 * deleted afterwards. Its cost is that of the hours' rows, whatever the days and weeks hold.
 */
const FACTS_TO_COARSER = `INSERT INTO analytics_session_facts AS t (site_id, segment, grain, dimension, bucket, value, ${FACT_COUNTERS.join(', ')})
	SELECT $1::uuid, f.segment, g.grain, f.dimension, ${COARSER_BUCKET('f.bucket')}, f.value,
		${FACT_COUNTERS.map((column) => `$3::int * sum(f.${column})`).join(', ')}
	FROM analytics_session_facts f ${COARSER}
	WHERE f.site_id = $1::uuid AND f.grain = 'hour' AND f.bucket = ANY($2::timestamptz[])
	GROUP BY f.segment, g.grain, f.dimension, ${COARSER_BUCKET('f.bucket')}, f.value
	ON CONFLICT (site_id, segment, grain, dimension, bucket, value) DO UPDATE SET ${FACT_COUNTERS.map((column) => `${column} = t.${column} + excluded.${column}`).join(', ')}`;

const PAIRS_TO_COARSER = `INSERT INTO analytics_visitor_pairs AS t (site_id, segment, kind, grain, bucket, prev_hour, sessions)
	SELECT $1::uuid, p.segment, p.kind, g.grain, ${COARSER_BUCKET('p.bucket')}, least(p.prev_hour, ${COARSER_BUCKET('p.bucket')}), $3::int * sum(p.sessions)
	FROM analytics_visitor_pairs p ${COARSER}
	WHERE p.site_id = $1::uuid AND p.grain = 'hour' AND p.bucket = ANY($2::timestamptz[])
	GROUP BY p.segment, p.kind, g.grain, ${COARSER_BUCKET('p.bucket')}, least(p.prev_hour, ${COARSER_BUCKET('p.bucket')})
	ON CONFLICT (site_id, segment, kind, grain, bucket, prev_hour) DO UPDATE SET sessions = t.sessions + excluded.sessions`;

/**
 * A fold of many hours (a first fold, a restore) rebuilds each touched day from its hour rows ($2:
 * the days), then each touched week from its day rows ($2: the weeks): each row once, where moving
 * them hour by hour would update a week's rows once per hour. Rows are written in (segment,
 * dimension or kind, bucket) order, the order a read asks for them in, so a read visits few pages.
 */
const FACTS_FROM_FINER = (grain: 'day' | 'week') => `INSERT INTO analytics_session_facts (site_id, segment, grain, dimension, bucket, value, ${FACT_COUNTERS.join(', ')})
	SELECT $1::uuid, f.segment, '${grain}', f.dimension, b.bucket, f.value, ${FACT_COUNTERS.map((column) => `sum(f.${column})`).join(', ')}
	FROM unnest($2::timestamptz[]) b(bucket)
	JOIN analytics_session_facts f ON f.site_id = $1::uuid AND f.grain = '${grain === 'day' ? 'hour' : 'day'}' AND f.bucket >= b.bucket AND f.bucket < b.bucket + interval '1 ${grain}'
	GROUP BY f.segment, f.dimension, b.bucket, f.value
	ORDER BY f.segment, f.dimension, b.bucket`;

const PAIRS_FROM_FINER = (grain: 'day' | 'week') => `INSERT INTO analytics_visitor_pairs (site_id, segment, kind, grain, bucket, prev_hour, sessions)
	SELECT $1::uuid, p.segment, p.kind, '${grain}', b.bucket, least(p.prev_hour, b.bucket), sum(p.sessions)
	FROM unnest($2::timestamptz[]) b(bucket)
	JOIN analytics_visitor_pairs p ON p.site_id = $1::uuid AND p.grain = '${grain === 'day' ? 'hour' : 'day'}' AND p.bucket >= b.bucket AND p.bucket < b.bucket + interval '1 ${grain}'
	GROUP BY p.segment, p.kind, b.bucket, least(p.prev_hour, b.bucket)
	ORDER BY p.segment, p.kind, b.bucket`;

/** The buckets a fold touched: hours $2, days $3, weeks $4. */
const TOUCHED = (table: string) => `${table}.site_id = $1::uuid AND ((${table}.grain = 'hour' AND ${table}.bucket = ANY($2::timestamptz[]))
	OR (${table}.grain = 'day' AND ${table}.bucket = ANY($3::timestamptz[])) OR (${table}.grain = 'week' AND ${table}.bucket = ANY($4::timestamptz[])))`;

/** Each touched bucket's distinct visitors, on its total row: its sessions whose previous one started before the bucket. */
const BUCKET_VISITORS = `UPDATE analytics_session_facts f SET visitors = v.visitors
	FROM (SELECT p.segment, p.grain, p.bucket, coalesce(sum(p.sessions) FILTER (WHERE p.prev_hour < p.bucket), 0)::int AS visitors
		FROM analytics_visitor_pairs p WHERE ${TOUCHED('p')} AND p.kind = 'visitor' GROUP BY 1, 2, 3) v
	WHERE f.site_id = $1::uuid AND f.segment = v.segment AND f.grain = v.grain AND f.bucket = v.bucket AND f.dimension = '' AND f.value = ''`;

const ALL_DIMENSIONS: SessionDimension[] = [...(Object.keys(SESSION_DIMENSIONS) as Array<keyof typeof SESSION_DIMENSIONS>), 'page'];

/** Up to this many dirty hours, a fold moves the days and weeks by the hours' differences; beyond, it rebuilds them. */
const MOVE_AT_MOST_HOURS = 24;

const ROLLUP_TABLES = ['analytics_session_facts', 'analytics_visitor_pairs'] as const;

const lockKey = (siteId: string) => `analytics-rollup:${siteId}`;

export interface FoldResult {
	hours: number;
}

type Transaction = Pick<RollupDatabase, '$executeRawUnsafe'>;

async function recomputeHours(tx: Transaction, siteId: string, hours: string[]): Promise<void> {
	for (const table of ROLLUP_TABLES) {
		await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid AND grain = 'hour' AND bucket = ANY($2::timestamptz[])`, siteId, hours);
	}
	await tx.$executeRawUnsafe(
		`INSERT INTO analytics_session_facts (site_id, segment, grain, bucket, dimension, value, ${FACT_COUNTERS.join(', ')})
		WITH hour_sessions AS MATERIALIZED (${SESSIONS_OF_HOURS})
		SELECT $1::uuid, f.segment, 'hour', f.bucket, f.dimension, f.value, ${FACT_COUNTERS.map((column) => `f.${column}`).join(', ')}
		FROM (${factsOf('SELECT * FROM hour_sessions', ALL_DIMENSIONS, true)}) f
		ORDER BY f.segment, f.dimension, f.bucket`,
		siteId,
		hours,
	);
	await tx.$executeRawUnsafe(`INSERT INTO analytics_visitor_pairs (site_id, segment, kind, grain, bucket, prev_hour, sessions) ${PAIRS_OF_HOURS}`, siteId, hours);
}

/** A few hours: their old rows out of the days and weeks, their new rows in. */
async function moveHours(tx: Transaction, siteId: string, hours: string[], days: string[], weeks: string[]): Promise<void> {
	await tx.$executeRawUnsafe(FACTS_TO_COARSER, siteId, hours, -1);
	await tx.$executeRawUnsafe(PAIRS_TO_COARSER, siteId, hours, -1);
	await recomputeHours(tx, siteId, hours);
	await tx.$executeRawUnsafe(FACTS_TO_COARSER, siteId, hours, 1);
	await tx.$executeRawUnsafe(PAIRS_TO_COARSER, siteId, hours, 1);
	for (const table of ROLLUP_TABLES) await tx.$executeRawUnsafe(`DELETE FROM ${table} t WHERE ${TOUCHED('t')} AND t.sessions = 0`, siteId, hours, days, weeks);
}

/** Many hours: recomputed, then their days and weeks rebuilt. */
async function rebuildHours(tx: Transaction, siteId: string, hours: string[], days: string[], weeks: string[]): Promise<void> {
	await recomputeHours(tx, siteId, hours);
	// The statements below join these tables by key: planned on the statistics of the rows just written, not of an empty table.
	await tx.$executeRawUnsafe(`ANALYZE ${ROLLUP_TABLES.join(', ')}`);
	for (const [grain, buckets] of [['day', days], ['week', weeks]] as const) {
		for (const table of ROLLUP_TABLES) {
			await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid AND grain = '${grain}' AND bucket = ANY($2::timestamptz[])`, siteId, buckets);
		}
		await tx.$executeRawUnsafe(FACTS_FROM_FINER(grain), siteId, buckets);
		await tx.$executeRawUnsafe(PAIRS_FROM_FINER(grain), siteId, buckets);
	}
}

/**
 * Folds the site's dirty hours into its rollups (see the header). Safe to run from several receivers
 * at once: folds of one site wait for each other.
 */
export async function foldRollups(db: RollupDatabase, siteId: string): Promise<FoldResult> {
	const [pending] = await db.$queryRawUnsafe<Array<{ pending: boolean }>>(`SELECT EXISTS (SELECT 1 FROM analytics_dirty_hours WHERE site_id = $1::uuid) AS pending`, siteId);
	if (!pending.pending) return { hours: 0 };
	return db.$transaction(
		async (tx) => {
			await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', lockKey(siteId));
			// A first fold's sorts and hashes fit in memory this way.
			await tx.$executeRawUnsafe(`SET LOCAL work_mem = '256MB'`);
			const claimed = await tx.$queryRawUnsafe<Array<{ hour: Date }>>(
				`WITH claimed AS (DELETE FROM analytics_dirty_hours WHERE site_id = $1::uuid RETURNING hour) SELECT DISTINCT hour FROM claimed`,
				siteId,
			);
			if (claimed.length === 0) return { hours: 0 };
			const hours = claimed.map((row) => row.hour.toISOString());
			const coarser = (grain: Grain) => [...new Set(claimed.map((row) => new Date(floorTo(row.hour.getTime(), grain)).toISOString()))];
			const [days, weeks] = [coarser('day'), coarser('week')];
			await (hours.length <= MOVE_AT_MOST_HOURS ? moveHours : rebuildHours)(tx, siteId, hours, days, weeks);
			await tx.$executeRawUnsafe(BUCKET_VISITORS, siteId, hours, days, weeks);
			return { hours: hours.length };
		},
		{ timeout: 3_600_000, maxWait: 60_000 },
	);
}

/**
 * Merges the event count deltas of committed statements into one row per site and hour. Two merges
 * at once stay exact: each row is deleted, and so summed, by one of them.
 */
const MERGE_EVENT_COUNTS = `WITH merged AS (
		DELETE FROM analytics_event_counts WHERE (site_id, hour) IN (SELECT site_id, hour FROM analytics_event_counts GROUP BY site_id, hour HAVING count(*) > 1)
		RETURNING site_id, hour, events)
	INSERT INTO analytics_event_counts (site_id, hour, events) SELECT site_id, hour, sum(events) FROM merged GROUP BY site_id, hour`;

/** Folds every site that has something to fold, and merges the event counts. */
export async function foldAllRollups(db: RollupDatabase): Promise<FoldResult> {
	const sites = await db.$queryRawUnsafe<Array<{ siteId: string }>>(`SELECT DISTINCT site_id AS "siteId" FROM analytics_dirty_hours`);
	let hours = 0;
	for (const { siteId } of sites) hours += (await foldRollups(db, siteId)).hours;
	await db.$executeRawUnsafe(MERGE_EVENT_COUNTS);
	return { hours };
}

export interface RollupJob {
	stop(): Promise<void>;
}

/**
 * Folds every few seconds, so a dashboard read rarely has anything left to fold. One fold at a time;
 * a failed fold is logged and retried on the next tick (its dirty hours stay noted).
 */
export function startRollupJob({ prisma, logger, intervalMs = 5000 }: { prisma: RollupDatabase; logger: Logger; intervalMs?: number }): RollupJob {
	let running: Promise<void> | undefined;
	const tick = () => {
		running ??= foldAllRollups(prisma)
			.then(({ hours }) => {
				if (hours > 0) logger.debug({ hours }, 'analytics rollups folded');
			})
			.catch((error: unknown) => logger.warn({ err: error }, 'analytics rollups could not be folded; retrying on the next tick'))
			.finally(() => {
				running = undefined;
			});
	};
	const timer = setInterval(tick, intervalMs);
	timer.unref();
	return {
		async stop() {
			clearInterval(timer);
			await running;
		},
	};
}

// ---------------------------------------------------------------------------------------------
// Reading: a range as rollup rows plus raw edges

const iso = (ms: number) => `'${new Date(ms).toISOString()}'::timestamptz`;

type Span = [number, number];

/**
 * [from, to) as partial hours read raw, then whole hours, whole UTC days and whole ISO weeks read
 * from the rows of their grain (the coarsest that fits, up to the grain asked for).
 */
export interface RangePieces {
	edges: Span[];
	hours: Span[];
	days: Span[];
	weeks: Span | null;
	/** The whole hours [H1, H2) between the edges (H1 >= H2 when there are none). */
	inner: Span;
}

/** Splits [start, end) into whole buckets of `grain` in the middle and what is left at either end (on either side of a boundary it holds). */
function split(start: number, end: number, grain: Grain): { ends: Span[]; middle: Span | null } {
	const [first, last] = [ceilTo(start, grain), floorTo(end, grain)];
	if (first > last) return { ends: start < end ? [[start, end]] : [], middle: null };
	const ends: Span[] = [];
	if (start < first) ends.push([start, first]);
	if (last < end) ends.push([last, end]);
	return { ends, middle: first < last ? [first, last] : null };
}

export function rangePieces(from: Date, to: Date, grain: Grain = 'week'): RangePieces {
	const hours = split(from.getTime(), to.getTime(), 'hour');
	const h1 = ceilTo(from.getTime(), 'hour');
	const pieces: RangePieces = { edges: hours.ends, hours: [], days: [], weeks: null, inner: hours.middle ?? [h1, h1] };
	if (!hours.middle) return pieces;
	const days = grain === 'hour' ? { ends: [hours.middle], middle: null } : split(...hours.middle, 'day');
	pieces.hours = days.ends;
	if (!days.middle) return pieces;
	const weeks = grain === 'day' ? { ends: [days.middle], middle: null } : split(...days.middle, 'week');
	pieces.days = weeks.ends;
	pieces.weeks = weeks.middle;
	return pieces;
}

/** A filtered report no segment holds is read raw: the whole range as one edge. */
function readPieces(from: Date, to: Date, grain: Grain, segment: string | null): RangePieces {
	if (segment !== null) return rangePieces(from, to, grain);
	const [start, end] = [from.getTime(), to.getTime()];
	return { edges: start < end ? [[start, end]] : [], hours: [], days: [], weeks: null, inner: [end, end] };
}

const within = (column: string, [from, to]: Span) => `(${column} >= ${iso(from)} AND ${column} < ${iso(to)})`;

/**
 * The rollup rows (aliased r) of `table` in a segment that a range's whole hours, days and weeks
 * cover and that meet `condition`: one index range per piece.
 */
function rollupRows(table: string, columns: string, condition: string, pieces: RangePieces, segment: string | null): string {
	const spans: Array<[Grain, Span]> = [
		...pieces.hours.map((span): [Grain, Span] => ['hour', span]),
		...pieces.days.map((span): [Grain, Span] => ['day', span]),
		...(pieces.weeks ? [['week', pieces.weeks] as [Grain, Span]] : []),
	];
	const rows = (where: string) => `SELECT ${columns} FROM ${table} r WHERE ${where}`;
	if (segment === null || spans.length === 0) return rows('false');
	return spans
		.map(([grain, span]) => rows(`r.site_id = $1::uuid AND r.segment = ${sqlText(segment)} AND r.grain = '${grain}' AND ${within('r.bucket', span)} AND ${condition}`))
		.join('\nUNION ALL\n');
}

/**
 * The site's ($1) sessions that started in `spans` and match the filter, with their hour as bucket
 * and their conversions.
 */
function sessionsIn(spans: Span[], filter: ReportFilter | undefined): string {
	if (spans.length === 0) return `SELECT s.*, s.started_at AS bucket, 0 AS conversions FROM visitor_sessions s WHERE false`;
	const started = spans.map((span) => within('s.started_at', span)).join(' OR ');
	const converted = spans.map(([from, to]) => `(c.occurred_at >= ${iso(from)} AND c.occurred_at < ${iso(to)} + ${LONGEST_SESSION})`).join(' OR ');
	const [first, last] = [Math.min(...spans.map(([from]) => from)), Math.max(...spans.map(([, to]) => to))];
	return `SELECT s.*, date_trunc('hour', s.started_at, 'UTC') AS bucket, coalesce(cv.conversions, 0) AS conversions
		FROM visitor_sessions s
		LEFT JOIN (SELECT c.session_id, count(*)::int AS conversions FROM conversions c
			WHERE c.site_id = $1::uuid AND c.session_id IS NOT NULL AND (${converted}) GROUP BY c.session_id) cv ON cv.session_id = s.id
		WHERE s.site_id = $1::uuid AND (${started}) AND ${sessionCondition(filter, iso(first), `${iso(last)} + ${LONGEST_SESSION}`)}`;
}

/** A span read from the rollup rows of a grain, or from the raw sessions, added or subtracted. */
interface SignedPiece {
	sign: 1 | -1;
	grain: Grain | 'raw';
	span: Span;
}

/**
 * What reading a grain's rows costs, per bucket (raw: per hour of sessions), in the rows a site's
 * bucket holds: a week holds about 1.5 times a day's values, a day 5 times an hour's, and raw
 * sessions cost more per hour than the hour's rows. Only the ratios matter.
 */
const READ_COST: Record<Grain | 'raw', number> = { week: 1.5, day: 1, hour: 0.2, raw: 2 };
const GRAIN_ORDER: Grain[] = ['week', 'day', 'hour'];

function readCost(pieces: SignedPiece[], now: number): number {
	return pieces.reduce((sum, { grain, span: [from, to] }) => {
		// Nothing has started after now: its rows are (nearly) none.
		if (from >= now) return sum;
		return sum + READ_COST[grain] * ((to - from) / (grain === 'raw' ? HOUR_MS : GRAINS[grain].ms));
	}, 0);
}

/**
 * [start, end) as signed pieces of the fewest rollup rows: whole buckets of each grain (up to
 * `coarsest`), and a bucket less what lies outside the range where that reads fewer rows than the
 * part inside it: the current week less the hours still to come rather than each day and hour so
 * far, a day less its first hours rather than its last twenty. Partial hours are read raw.
 */
export function netPieces(from: Date, to: Date, coarsest: Grain = 'week', now = Date.now()): SignedPiece[] {
	const grains = GRAIN_ORDER.slice(GRAIN_ORDER.indexOf(coarsest));
	const cheaper = (...options: SignedPiece[][]) => options.reduce((best, option) => (readCost(option, now) < readCost(best, now) ? option : best));
	const part = (a: number, b: number, level: number, sign: 1 | -1): SignedPiece[] => {
		if (a >= b) return [];
		if (level === grains.length) return [{ sign, grain: 'raw', span: [a, b] }];
		const grain = grains[level];
		const length = GRAINS[grain].ms;
		const finer = (x: number, y: number, pieceSign: 1 | -1) => part(x, y, level + 1, pieceSign);
		const bucketLess = (bucket: number, x: number, y: number): SignedPiece[] => [
			{ sign, grain, span: [bucket, bucket + length] },
			...finer(bucket, x, sign === 1 ? -1 : 1),
			...finer(y, bucket + length, sign === 1 ? -1 : 1),
		];
		const [first, last] = [ceilTo(a, grain), floorTo(b, grain)];
		if (first > last) return cheaper(finer(a, b, sign), bucketLess(last, a, b));
		return [
			...(first < last ? [{ sign, grain, span: [first, last] as Span }] : []),
			...cheaper(finer(a, first, sign), first > a ? bucketLess(first - length, a, first) : []),
			...cheaper(finer(last, b, sign), b > last ? bucketLess(last, last, b) : []),
		];
	};
	return part(from.getTime(), to.getTime(), 0, 1);
}

const FACT_ROW = (sign: number, row: string) => `${row}.bucket, ${row}.dimension, ${row}.value, ${FACT_COUNTERS.map((column) => `${sign} * ${row}.${column} AS ${column}`).join(', ')}`;

/** The facts of the raw sessions of `spans` (those the filter keeps), times `sign`. */
function rawFacts(spans: Span[], dimensions: readonly SessionDimension[], filter: ReportFilter | undefined, sign: number): string {
	return `(WITH raw_sessions AS MATERIALIZED (${sessionsIn(spans, filter)})
		SELECT ${FACT_ROW(sign, 'f')} FROM (${factsOf('SELECT * FROM raw_sessions', dimensions, false)}) f)`;
}

/**
 * Rows (bucket, dimension, value, sessions, bounces, pageviews, duration_seconds, low, medium, high,
 * conversions, converting_sessions) that add up to the figures of the sessions started in [from, to)
 * (of those the filter keeps), for the given dimensions. `bucket` is the start of the hour, day or
 * week the row stands for, no coarser than `grain`: a series by hour asks for hour rows only.
 * With `net`, some rows may be subtracted (negative counters, see netPieces): a reader then sums them
 * by value and leaves out the values whose sessions sum to 0.
 */
export function factRows(from: Date, to: Date, dimensions: readonly SessionDimension[], grain: Grain = 'week', filter?: ReportFilter, net = false): string {
	const segment = rollupSegment(filter);
	const names = dimensions.map((dimension) => `'${dimension}'`).join(', ');
	if (segment === null) return rawFacts(from < to ? [[from.getTime(), to.getTime()]] : [], dimensions, filter, 1);
	const pieces: SignedPiece[] = net
		? netPieces(from, to, grain)
		: (({ edges, hours, days, weeks }) => [
				...edges.map((span): SignedPiece => ({ sign: 1, grain: 'raw', span })),
				...hours.map((span): SignedPiece => ({ sign: 1, grain: 'hour', span })),
				...days.map((span): SignedPiece => ({ sign: 1, grain: 'day', span })),
				...(weeks ? [{ sign: 1, grain: 'week', span: weeks } as SignedPiece] : []),
			])(rangePieces(from, to, grain));
	const parts = pieces
		.filter((piece) => piece.grain !== 'raw')
		.map(({ sign, grain: pieceGrain, span }) => `SELECT ${FACT_ROW(sign, 'r')} FROM analytics_session_facts r
			WHERE r.site_id = $1::uuid AND r.segment = ${sqlText(segment)} AND r.grain = '${pieceGrain}' AND ${within('r.bucket', span)} AND r.dimension IN (${names})`);
	for (const sign of [1, -1]) {
		const spans = pieces.filter((piece) => piece.grain === 'raw' && piece.sign === sign).map((piece) => piece.span);
		if (spans.length > 0) parts.push(rawFacts(spans, dimensions, filter, sign));
	}
	return parts.length === 0 ? `SELECT ${FACT_ROW(1, 'r')} FROM analytics_session_facts r WHERE false` : parts.join('\nUNION ALL\n');
}

export type PresenceKind = 'visitor' | 'engaged';

/**
 * Distinct visitors of the site ($1) with a presence of `kind` (or of each page in `pages`, as
 * kind 'page:<path>') in [from, to), among the sessions the filter keeps, as rows (kind, visitors).
 * Whole hours: rollup rows whose previous hour lies before the range. Raw edges: their visitors that
 * have no presence in the whole hours (those are already counted).
 */
export function visitorCounts(from: Date, to: Date, kind: PresenceKind | { pages: string }, filter?: ReportFilter): string {
	// Engaged presences are kept site-wide only (the funnel's): a filtered count of them is read raw.
	const segment = kind === 'engaged' && isFiltered(filter) ? null : rollupSegment(filter);
	const pieces = readPieces(from, to, 'week', segment);
	const [h1, h2] = pieces.inner;
	const kinds = typeof kind === 'string' ? `r.kind = '${kind}'` : `r.kind IN (SELECT 'page:' || path FROM (${kind.pages}) pages)`;
	const presence = (sessions: string) =>
		typeof kind === 'string'
			? presenceOf(sessions, kind, false)
			: `SELECT * FROM (${presenceOf(sessions, 'pages', false)}) p WHERE p.kind IN (SELECT 'page:' || path FROM (${kind.pages}) pages)`;
	const inner = `SELECT s.* FROM visitor_sessions s WHERE s.visitor_id = edge.visitor_id AND ${within('s.started_at', [h1, h2])}
		AND ${sessionCondition(filter, iso(h1), `${iso(h2)} + ${LONGEST_SESSION}`)}`;
	const edges =
		pieces.edges.length === 0
			? ''
			: `UNION ALL SELECT edge.kind, count(DISTINCT edge.visitor_id) FROM (${presence(sessionsIn(pieces.edges, filter))}) edge
			WHERE ${h1 < h2 ? `NOT EXISTS (SELECT 1 FROM (${presence(inner)}) seen WHERE seen.kind = edge.kind)` : 'true'}
			GROUP BY edge.kind`;
	return `SELECT kind, sum(visitors)::int AS visitors FROM (
		${rollupRows('analytics_visitor_pairs', 'r.kind, r.sessions AS visitors', `${kinds} AND r.prev_hour < ${iso(h1)}`, pieces, segment)}
		${edges}) counted
		GROUP BY kind`;
}

/**
 * Visitors per bucket of a series, among the sessions the filter keeps: whole buckets from the
 * total rows of their own grain, partial first and last buckets through visitorCounts; read raw
 * when no segment holds the filter. Needs $1 only; rows (at, visitors).
 */
export function visitorSeries(from: Date, to: Date, interval: Grain, filter?: ReportFilter): string {
	const segment = rollupSegment(filter);
	if (segment === null) {
		return `SELECT date_trunc('${interval}', s.started_at, 'UTC') AS at, count(DISTINCT s.visitor_id)::int AS visitors
			FROM (${sessionsIn([[from.getTime(), to.getTime()]], filter)}) s GROUP BY 1`;
	}
	const { ends, middle } = split(from.getTime(), to.getTime(), interval);
	const parts: string[] = [];
	if (middle) {
		parts.push(`SELECT r.bucket AS at, r.visitors FROM analytics_session_facts r
			WHERE r.site_id = $1::uuid AND r.segment = ${sqlText(segment)} AND r.grain = '${interval}' AND r.dimension = '' AND r.value = '' AND ${within('r.bucket', middle)}`);
	}
	for (const [a, b] of ends) {
		parts.push(`SELECT ${iso(floorTo(a, interval))} AS at, counted.visitors FROM (${visitorCounts(new Date(a), new Date(b), 'visitor', filter)}) counted`);
	}
	return parts.length === 0 ? `SELECT now() AS at, 0 AS visitors WHERE false` : `SELECT at, sum(visitors)::int AS visitors FROM (${parts.join('\nUNION ALL\n')}) v GROUP BY at`;
}

/** Raw events of the site ($1) from `from` on: merged hourly counts, plus the raw events of a partial first hour. */
export function eventCountSince(from: Date | null): string {
	if (!from) return `(SELECT coalesce(sum(events), 0) FROM analytics_event_counts WHERE site_id = $1::uuid)`;
	const h1 = ceilTo(from.getTime(), 'hour');
	const partial = h1 > from.getTime() ? ` + (SELECT count(*) FROM visitor_events WHERE site_id = $1::uuid AND ${within('occurred_at', [from.getTime(), h1])})` : '';
	return `((SELECT coalesce(sum(events), 0) FROM analytics_event_counts WHERE site_id = $1::uuid AND hour >= ${iso(h1)})${partial})`;
}
