import type { PrismaClient } from '../../lib/db';
import type { Logger } from '../logger';

/**
 * The dashboards' rollups and their one writer.
 *
 * Source of every visitor figure: the sessions the Visitor Processor built (visitor_sessions) and the
 * events it attached to them (visitor_events.session_id), each dated by its session's start. So the
 * visitors, sessions and page views of a range are those of the sessions that started in it, top pages
 * add up to the page views, and nothing counts raw events that no session holds yet (bots, or events
 * still waiting in the outbox for workflow 01).
 *
 * Tables (see prisma/schema.prisma):
 * - analytics_session_facts: additive figures per (hour or UTC day, dimension, value).
 * - analytics_visitor_pairs: distinct visitors are not additive, so each session is counted with the
 *   hour of the same visitor's previous session of the same kind ("visitor": any session, "engaged":
 *   medium or high engagement, "page:<path>": a session that viewed the path). A visitor is in a range
 *   exactly once: at its first session in the range, the one whose previous session started before the
 *   range. Visitors over whole hours [H1, H2) are then the sum of the rows of those hours (or of their
 *   whole days) whose previous hour is before H1, a few thousand rows for any range.
 * - analytics_event_counts: raw events per hour, for the site-wide totals.
 *
 * Keeping them current: statement triggers on visitor_sessions append the hours a change touches (its
 * own and those of the visitor's later sessions, whose "previous session" it may be) to
 * analytics_dirty_hours, and triggers on visitor_events append event counts. `foldRollups` is the only
 * code that writes the rollups: under a per-site advisory lock it takes the dirty hours (committed rows
 * only, so a change still in flight stays noted for the next fold) and recomputes those hours and their
 * days from the raw rows, so a fold is idempotent and late or re-sessionized events are handled like
 * new ones. The receiver folds every few seconds (`startRollupJob`) and every read folds its site
 * first, so an answer is exact as of the request, on Postgres and the embedded PGlite alike.
 *
 * Hours and days are UTC; partial hours at either end of a range are read from the raw sessions.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const floorTo = (ms: number, unit: number) => Math.floor(ms / unit) * unit;
const ceilTo = (ms: number, unit: number) => Math.ceil(ms / unit) * unit;

/** The rollups' writer needs transactions; a read only needs raw queries (and the fold through this type). */
export type RollupDatabase = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe' | '$transaction'>;

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
} as const;

export type SessionDimension = keyof typeof SESSION_DIMENSIONS | 'page';

const ENGAGED = `s.engagement_level IN ('medium', 'high')`;

/**
 * The facts of the sessions `sessions` (a subquery of visitor_sessions rows named s with a `bucket`
 * column), one row per (bucket, dimension, value). Both the fold (per hour) and a read (for the partial
 * hours of its range) use it, so the rollups and the raw edges count alike.
 */
function factsOf(sessions: string, dimensions: readonly SessionDimension[]): string {
	const columns = dimensions.filter((dimension): dimension is keyof typeof SESSION_DIMENSIONS => dimension !== 'page');
	const parts: string[] = [];
	if (columns.length > 0) {
		parts.push(`SELECT s.bucket, d.dimension, coalesce(d.value, '') AS value, count(*)::int AS sessions, count(*) FILTER (WHERE s.is_bounce)::int AS bounces,
			sum(s.pageviews)::int AS pageviews, sum(s.duration_seconds)::bigint AS duration_seconds,
			count(*) FILTER (WHERE s.engagement_level = 'low')::int AS low, count(*) FILTER (WHERE s.engagement_level = 'medium')::int AS medium,
			count(*) FILTER (WHERE s.engagement_level = 'high')::int AS high
		FROM (${sessions}) s CROSS JOIN LATERAL (VALUES ${columns.map((dimension) => `('${dimension}', ${SESSION_DIMENSIONS[dimension]})`).join(', ')}) d(dimension, value)
		GROUP BY 1, 2, 3`);
	}
	if (dimensions.includes('page')) {
		// Per path: the page views, and the sessions that viewed it (bounces and engagement of those).
		parts.push(`SELECT s.bucket, 'page', e.path, count(DISTINCT s.id)::int, count(DISTINCT s.id) FILTER (WHERE s.is_bounce)::int, count(*)::int, 0::bigint,
			count(DISTINCT s.id) FILTER (WHERE s.engagement_level = 'low')::int, count(DISTINCT s.id) FILTER (WHERE s.engagement_level = 'medium')::int,
			count(DISTINCT s.id) FILTER (WHERE s.engagement_level = 'high')::int
		FROM (${sessions}) s JOIN visitor_events e ON e.session_id = s.id
		WHERE e.type = 'pageview' AND e.path IS NOT NULL
		GROUP BY 1, 3`);
	}
	return parts.join('\nUNION ALL\n');
}

/** Sessions of the site ($1) that started in the given hours ($2, an array of hour starts), with their hour as `bucket`. */
const SESSIONS_OF_HOURS = `SELECT s.*, h.hour AS bucket FROM unnest($2::timestamptz[]) h(hour)
	JOIN visitor_sessions s ON s.site_id = $1::uuid AND s.started_at >= h.hour AND s.started_at < h.hour + interval '1 hour'`;

/**
 * Presence rows (kind, visitor, session start, session id) of the sessions `sessions` (named s): one
 * per session of kind "visitor", per engaged session, and per (session, path viewed).
 */
function presenceOf(sessions: string, kinds: 'all' | 'visitor' | 'engaged' | 'pages'): string {
	const parts: string[] = [];
	if (kinds === 'all' || kinds === 'visitor') parts.push(`SELECT 'visitor' AS kind, s.visitor_id, s.started_at, s.id FROM (${sessions}) s`);
	if (kinds === 'all' || kinds === 'engaged') parts.push(`SELECT 'engaged' AS kind, s.visitor_id, s.started_at, s.id FROM (${sessions}) s WHERE ${ENGAGED}`);
	if (kinds === 'all' || kinds === 'pages') {
		parts.push(`SELECT DISTINCT 'page:' || e.path AS kind, s.visitor_id, s.started_at, s.id FROM (${sessions}) s
			JOIN visitor_events e ON e.session_id = s.id WHERE e.type = 'pageview' AND e.path IS NOT NULL`);
	}
	return parts.join('\nUNION ALL\n');
}

/**
 * Hour rows of analytics_visitor_pairs for the hours $2: every visitor with a session in them is
 * replayed from its first session (a visitor holds a handful), so each presence finds the previous
 * one of its kind with lag().
 */
const PAIRS_OF_HOURS = `WITH touched AS (SELECT DISTINCT s.visitor_id FROM (${SESSIONS_OF_HOURS}) s),
	history AS (SELECT s.id, s.visitor_id, s.started_at, s.engagement_level FROM visitor_sessions s WHERE s.visitor_id IN (SELECT visitor_id FROM touched)),
	presence AS (${presenceOf('SELECT * FROM history', 'all')}),
	ordered AS (SELECT kind, started_at, lag(started_at) OVER (PARTITION BY kind, visitor_id ORDER BY started_at, id) AS prev FROM presence)
	SELECT $1::uuid, kind, 'hour', date_trunc('hour', started_at, 'UTC'), coalesce(date_trunc('hour', prev, 'UTC'), '-infinity'), count(*)::int
	FROM ordered WHERE date_trunc('hour', started_at, 'UTC') = ANY($2::timestamptz[])
	GROUP BY 2, 4, 5
	ORDER BY 2, 4`;

const FACT_COLUMNS = 'sessions, bounces, pageviews, duration_seconds, low, medium, high';
const FACT_SUMS = 'sum(sessions)::int, sum(bounces)::int, sum(pageviews)::int, sum(duration_seconds)::bigint, sum(low)::int, sum(medium)::int, sum(high)::int';

/**
 * Day rows rebuilt from the hour rows of the days $2 (an array of UTC day starts). Rows are written in
 * (dimension, bucket) order so a range of one dimension reads few pages.
 */
const FACT_DAYS = `INSERT INTO analytics_session_facts (site_id, grain, dimension, bucket, value, ${FACT_COLUMNS})
	SELECT $1::uuid, 'day', f.dimension, d.day, f.value, ${FACT_SUMS}
	FROM unnest($2::timestamptz[]) d(day)
	JOIN analytics_session_facts f ON f.site_id = $1::uuid AND f.grain = 'hour' AND f.bucket >= d.day AND f.bucket < d.day + interval '1 day'
	GROUP BY f.dimension, d.day, f.value
	ORDER BY f.dimension, d.day`;

const PAIR_DAYS = `INSERT INTO analytics_visitor_pairs (site_id, kind, grain, bucket, prev_hour, sessions)
	SELECT $1::uuid, p.kind, 'day', d.day, p.prev_hour, sum(p.sessions)::int
	FROM unnest($2::timestamptz[]) d(day)
	JOIN analytics_visitor_pairs p ON p.site_id = $1::uuid AND p.grain = 'hour' AND p.bucket >= d.day AND p.bucket < d.day + interval '1 day'
	GROUP BY p.kind, d.day, p.prev_hour
	ORDER BY p.kind, d.day`;

const ALL_DIMENSIONS: SessionDimension[] = [...(Object.keys(SESSION_DIMENSIONS) as Array<keyof typeof SESSION_DIMENSIONS>), 'page'];

const lockKey = (siteId: string) => `analytics-rollup:${siteId}`;

export interface FoldResult {
	hours: number;
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
			const claimed = await tx.$queryRawUnsafe<Array<{ hour: Date }>>(
				`WITH claimed AS (DELETE FROM analytics_dirty_hours WHERE site_id = $1::uuid RETURNING hour) SELECT DISTINCT hour FROM claimed`,
				siteId,
			);
			if (claimed.length === 0) return { hours: 0 };
			const hours = claimed.map((row) => row.hour.toISOString());
			const days = [...new Set(claimed.map((row) => new Date(floorTo(row.hour.getTime(), DAY_MS)).toISOString()))];
			for (const table of ['analytics_session_facts', 'analytics_visitor_pairs']) {
				await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid AND grain = 'hour' AND bucket = ANY($2::timestamptz[])`, siteId, hours);
				await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid AND grain = 'day' AND bucket = ANY($2::timestamptz[])`, siteId, days);
			}
			await tx.$executeRawUnsafe(
				`INSERT INTO analytics_session_facts (site_id, grain, bucket, dimension, value, ${FACT_COLUMNS})
				SELECT $1::uuid, 'hour', f.* FROM (${factsOf(SESSIONS_OF_HOURS, ALL_DIMENSIONS)}) f ORDER BY f.dimension, f.bucket`,
				siteId,
				hours,
			);
			await tx.$executeRawUnsafe(`INSERT INTO analytics_visitor_pairs (site_id, kind, grain, bucket, prev_hour, sessions) ${PAIRS_OF_HOURS}`, siteId, hours);
			await tx.$executeRawUnsafe(FACT_DAYS, siteId, days);
			await tx.$executeRawUnsafe(PAIR_DAYS, siteId, days);
			return { hours: hours.length };
		},
		{ timeout: 600_000, maxWait: 60_000 },
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

/** [from, to) as partial hours read raw, whole hours read from hour rows and whole UTC days from day rows. */
export interface RangePieces {
	edges: Array<[number, number]>;
	hours: Array<[number, number]>;
	days: [number, number] | null;
	/** The whole hours [H1, H2) between the edges (H1 >= H2 when there are none). */
	inner: [number, number];
}

export function rangePieces(from: Date, to: Date, grain: 'hour' | 'day' = 'day'): RangePieces {
	const start = from.getTime();
	const end = to.getTime();
	const h1 = ceilTo(start, HOUR_MS);
	const h2 = floorTo(end, HOUR_MS);
	if (h1 >= h2) return { edges: start < end ? [[start, end]] : [], hours: [], days: null, inner: [h1, h1] };
	const edges: Array<[number, number]> = [];
	if (start < h1) edges.push([start, h1]);
	if (h2 < end) edges.push([h2, end]);
	const d1 = ceilTo(h1, DAY_MS);
	const d2 = floorTo(h2, DAY_MS);
	if (grain === 'hour' || d1 >= d2) return { edges, hours: [[h1, h2]], days: null, inner: [h1, h2] };
	const hours: Array<[number, number]> = [];
	if (h1 < d1) hours.push([h1, d1]);
	if (d2 < h2) hours.push([d2, h2]);
	return { edges, hours, days: [d1, d2], inner: [h1, h2] };
}

const within = (column: string, [from, to]: [number, number]) => `(${column} >= ${iso(from)} AND ${column} < ${iso(to)})`;

/** The rollup rows of `table` (aliased r) that a range's whole hours and days cover, as a condition. */
function rollupRows(pieces: RangePieces): string {
	const parts = pieces.hours.map((range) => `(r.grain = 'hour' AND ${within('r.bucket', range)})`);
	if (pieces.days) parts.push(`(r.grain = 'day' AND ${within('r.bucket', pieces.days)})`);
	return parts.length === 0 ? 'false' : `(${parts.join(' OR ')})`;
}

/** The site's ($1) sessions that started in the raw edges of a range, with their hour as bucket. */
function edgeSessions(pieces: RangePieces): string {
	const ranges = pieces.edges.map((range) => within('s.started_at', range));
	return `SELECT s.*, date_trunc('hour', s.started_at, 'UTC') AS bucket FROM visitor_sessions s
		WHERE s.site_id = $1::uuid AND ${ranges.length === 0 ? 'false' : `(${ranges.join(' OR ')})`}`;
}

/**
 * Rows (bucket, dimension, value, sessions, bounces, pageviews, duration_seconds, low, medium, high)
 * that add up to the figures of the sessions started in [from, to), for the given dimensions.
 * `bucket` is the start of the hour or day the row stands for; a series by hour asks for hour rows only.
 */
export function factRows(from: Date, to: Date, dimensions: readonly SessionDimension[], grain: 'hour' | 'day' = 'day'): string {
	const pieces = rangePieces(from, to, grain);
	const names = dimensions.map((dimension) => `'${dimension}'`).join(', ');
	return `SELECT r.bucket, r.dimension, r.value, ${FACT_COLUMNS.split(', ').map((column) => `r.${column}`).join(', ')}
		FROM analytics_session_facts r WHERE r.site_id = $1::uuid AND r.dimension IN (${names}) AND ${rollupRows(pieces)}
		${pieces.edges.length === 0 ? '' : `UNION ALL ${factsOf(edgeSessions(pieces), dimensions)}`}`;
}

export type PresenceKind = 'visitor' | 'engaged';

/**
 * Distinct visitors of the site ($1) with a presence of `kind` (or of each page in `pages`, as
 * kind 'page:<path>') in [from, to), as rows (kind, visitors). Whole hours: rollup rows whose
 * previous hour lies before the range. Raw edges: their visitors that have no presence in the whole
 * hours (those are already counted).
 */
export function visitorCounts(from: Date, to: Date, kind: PresenceKind | { pages: string }): string {
	const pieces = rangePieces(from, to);
	const [h1, h2] = pieces.inner;
	const kinds = typeof kind === 'string' ? `r.kind = '${kind}'` : `r.kind IN (SELECT 'page:' || path FROM (${kind.pages}) pages)`;
	const presence = (sessions: string) =>
		typeof kind === 'string'
			? presenceOf(sessions, kind)
			: `SELECT * FROM (${presenceOf(sessions, 'pages')}) p WHERE p.kind IN (SELECT 'page:' || path FROM (${kind.pages}) pages)`;
	const inner = `SELECT s.* FROM visitor_sessions s WHERE s.visitor_id = edge.visitor_id AND ${within('s.started_at', [h1, h2])}`;
	const edges =
		pieces.edges.length === 0
			? ''
			: `UNION ALL SELECT edge.kind, count(DISTINCT edge.visitor_id) FROM (${presence(edgeSessions(pieces))}) edge
			WHERE ${h1 < h2 ? `NOT EXISTS (SELECT 1 FROM (${presence(inner)}) seen WHERE seen.kind = edge.kind)` : 'true'}
			GROUP BY edge.kind`;
	return `SELECT kind, sum(visitors)::int AS visitors FROM (
		SELECT r.kind, r.sessions AS visitors FROM analytics_visitor_pairs r
			WHERE r.site_id = $1::uuid AND ${kinds} AND ${rollupRows(pieces)} AND r.prev_hour < ${iso(h1)}
		${edges}) counted
		GROUP BY kind`;
}

/**
 * Visitors per bucket of a series: whole buckets from the rows of their own grain (a visitor counts
 * in a bucket when its previous session started before it), partial first and last buckets through
 * visitorCounts. Needs $1 only; rows (at, visitors).
 */
export function visitorSeries(from: Date, to: Date, interval: 'hour' | 'day'): string {
	const unit = interval === 'hour' ? HOUR_MS : DAY_MS;
	const start = from.getTime();
	const end = to.getTime();
	const wholeFrom = ceilTo(start, unit);
	const wholeTo = floorTo(end, unit);
	const parts: string[] = [];
	if (wholeFrom < wholeTo) {
		parts.push(`SELECT r.bucket AS at, r.sessions AS visitors FROM analytics_visitor_pairs r
			WHERE r.site_id = $1::uuid AND r.kind = 'visitor' AND r.grain = '${interval}' AND ${within('r.bucket', [wholeFrom, wholeTo])} AND r.prev_hour < r.bucket`);
	}
	const partial: Array<[number, number]> = [];
	if (start < Math.min(wholeFrom, end)) partial.push([start, Math.min(wholeFrom, end)]);
	if (Math.max(wholeTo, start) < end && wholeFrom <= wholeTo) partial.push([Math.max(wholeTo, start), end]);
	for (const [a, b] of partial) {
		parts.push(`SELECT ${iso(floorTo(a, unit))} AS at, counted.visitors FROM (${visitorCounts(new Date(a), new Date(b), 'visitor')}) counted`);
	}
	return parts.length === 0 ? `SELECT now() AS at, 0 AS visitors WHERE false` : `SELECT at, sum(visitors)::int AS visitors FROM (${parts.join('\nUNION ALL\n')}) v GROUP BY at`;
}

/** Raw events of the site ($1) from `from` on: merged hourly counts, plus the raw events of a partial first hour. */
export function eventCountSince(from: Date | null): string {
	if (!from) return `(SELECT coalesce(sum(events), 0) FROM analytics_event_counts WHERE site_id = $1::uuid)`;
	const h1 = ceilTo(from.getTime(), HOUR_MS);
	const partial = h1 > from.getTime() ? ` + (SELECT count(*) FROM visitor_events WHERE site_id = $1::uuid AND ${within('occurred_at', [from.getTime(), h1])})` : '';
	return `((SELECT coalesce(sum(events), 0) FROM analytics_event_counts WHERE site_id = $1::uuid AND hour >= ${iso(h1)})${partial})`;
}
