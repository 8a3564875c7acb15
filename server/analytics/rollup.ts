import type { PrismaClient } from '../../lib/db';
import type { Logger } from '../logger';
import { retentionCutoffOf } from '../retention/retention';
import { baseCondition, isFiltered, reportScope, segmentKeySql, sessionCondition, sqlText, type ReportFilter, type ReportScope } from './filters';

/**
 * The dashboards' rollups and their one writer.
 *
 * Source of every visitor figure: the sessions the Visitor Processor built (visitor_sessions), the
 * events it attached to them (visitor_event_links.session_id) and the conversions made in them
 * (conversions.session_id), each dated by its session's start. So the visitors, sessions and page
 * views of a range are those of the sessions that started in it, top pages add up to the page views,
 * and nothing counts raw events that no session holds yet (bots, or events still waiting in the
 * outbox for workflow 01).
 *
 * Tables (see prisma/schema.prisma):
 * - analytics_page_sessions: one row per (session, path it viewed) with the session's figures as
 *   folded. It is how a page filter finds its sessions (by path and start), and the exact before and
 *   after of a changed session for the page rows below.
 * - analytics_session_facts: additive figures per (hour, UTC day or ISO week, dimension, value) in
 *   segments: "" (every session of the site), the sessions of one channel, of one UTM campaign and
 *   of one (channel, campaign) pair (keys in ./filters.ts), so a report filtered by those reads
 *   rollups like an unfiltered one. Dimension "page" counts the sessions that viewed each path (their
 *   page views, bounces, durations… and `path_views`, the views of that path): a page filter's totals
 *   and series are the row of its page. Total rows, and the page rows of hours, hold their bucket's
 *   distinct visitors.
 * - analytics_page_facts: every dimension of the sessions of a segment that viewed one path, kept
 *   only for the days and weeks holding at least ROLL_PAGE_BUCKETS_AT such sessions (and until they
 *   hold none). Kept for every page, day and week, these would be 33 million rows at ten million
 *   events, where the other rollups are 13 million (most pages see a few sessions a day, and each of
 *   those is a row in almost every dimension); the days and weeks left out are read from
 *   analytics_page_sessions, a few thousand rows at most.
 * - analytics_visitor_pairs: distinct visitors are not additive, so each session is counted with the
 *   hour of the same visitor's previous session of the same kind ("visitor": any session, "engaged":
 *   medium or high engagement, "page:<path>": a session that viewed the path). A visitor is in a range
 *   exactly once: at its first session in the range, the one whose previous session started before the
 *   range. Visitors over whole hours [H1, H2) are then the sum of the rows of those hours (or of their
 *   whole days and weeks) whose previous hour is before H1. In a day or week row a previous session
 *   inside the bucket is noted at the bucket's start: for any range that holds the whole bucket that
 *   is "not before the range" all the same, and it keeps those rows few.
 * - analytics_event_counts: raw events per hour, for the site-wide totals.
 * The one figure not kept exactly is the visitors of each top page under a page filter (visitors who
 * viewed both pages in one session): exact when the range reads analytics_page_sessions only,
 * estimated (and said so) where it reads kept page rows; see topPageVisitors.
 *
 * Keeping them current: statement triggers on visitor_sessions append the hours a change touches (its
 * own and those of the visitor's later sessions, whose "previous session" it may be) to
 * analytics_dirty_hours, triggers on conversions the hour of the conversion's session, and triggers
 * on visitor_events append event counts. `foldRollups` is the only code that writes the rollups: under
 * a per-site advisory lock it takes the dirty hours (committed rows only, so a change still in flight
 * stays noted for the next fold), recomputes those hours from the raw rows and moves their days and
 * weeks by the difference between the hours' old and new rows; the kept page rows move by the old
 * and new analytics_page_sessions rows of the sessions that changed. So a fold costs what its hours
 * hold, is idempotent, and late or re-sessionized events are handled like new ones. The receiver folds
 * every few seconds (`startRollupJob`), and a read of a quiet site folds it first (a single index
 * probe when nothing is dirty), so its answer is exact as of the request; a read of a busy site
 * answers at once from the rollups as they are and says as of when (rollupsForRead). The same on
 * Postgres and the embedded PGlite.
 *
 * Retention and erasure: the fold recomputes no hour before the site's retention cutoff (see
 * server/retention), whose raw rows are gone or going, so an event dated then that arrives late
 * changes none of its figures. The retention job deletes the analytics_page_sessions rows of those
 * hours with the raw rows (they hold visitor ids); a page filter's totals and series there are still
 * its page's rollup rows, its breakdowns those of the kept days and weeks only. A person's erasure
 * takes their analytics_page_sessions rows out at once (forgetVisitors).
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
/** A grain's length as an SQL interval that no TimeZone setting stretches. */
const LENGTH = (grain: Grain) => `interval '${GRAINS[grain].ms / HOUR_MS} hours'`;

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

const ALL_DIMENSIONS: SessionDimension[] = [...(Object.keys(SESSION_DIMENSIONS) as Array<keyof typeof SESSION_DIMENSIONS>), 'page'];

const ENGAGED = `s.engagement_level IN ('medium', 'high')`;

/**
 * The segments a session (s) counts in, as rows of g(segment): the site, its channel, its UTM
 * campaign and the pair of both. The same for a row of analytics_page_sessions, which holds its
 * session's channel and campaign.
 */
const SEGMENTS = `CROSS JOIN LATERAL (SELECT segment FROM (VALUES (''), (${segmentKeySql({ channel: 's.channel' })}), (${segmentKeySql({ campaign: 's.campaign' })}),
	(${segmentKeySql({ channel: 's.channel', campaign: 's.campaign' })})) all_segments(segment) WHERE segment IS NOT NULL) g`;
/**
 * The segments of an analytics_page_sessions row (s) whose page has its week kept: the only ones a
 * changed session moves (a kept day lies in a kept week).
 */
const KEPT_SEGMENTS = SEGMENTS.replace(
	'WHERE segment IS NOT NULL',
	`WHERE segment IS NOT NULL AND EXISTS (SELECT 1 FROM analytics_page_facts k WHERE k.site_id = s.site_id AND k.segment = all_segments.segment AND k.path = s.path
		AND k.grain = 'week' AND k.dimension = '' AND k.bucket = date_trunc('week', s.started_at, 'UTC') AND k.value = '')`,
);
/** A read's sessions are already those of one filter: one segment. */
const ONE_SEGMENT = `CROSS JOIN (VALUES ('')) g(segment)`;

const FACT_COUNTERS = ['sessions', 'bounces', 'pageviews', 'path_views', 'duration_seconds', 'low', 'medium', 'high', 'conversions', 'converting_sessions'] as const;

/** The counters of a group of (session, …) rows: each row is one session (its `conversions` are the conversions made in it). */
const sessionCounters = (pathViews: string) => `count(*)::int AS sessions, count(*) FILTER (WHERE s.is_bounce)::int AS bounces,
	sum(s.pageviews)::int AS pageviews, sum(${pathViews})::int AS path_views, sum(s.duration_seconds)::bigint AS duration_seconds,
	count(*) FILTER (WHERE s.engagement_level = 'low')::int AS low, count(*) FILTER (WHERE s.engagement_level = 'medium')::int AS medium,
	count(*) FILTER (WHERE s.engagement_level = 'high')::int AS high, sum(s.conversions)::int AS conversions,
	count(*) FILTER (WHERE s.conversions > 0)::int AS converting_sessions`;

const PAGE_SESSIONS = 'analytics_page_sessions';

/**
 * Where facts are counted from: `sessions`, a subquery of session rows named s (visitor_sessions
 * columns, or analytics_page_sessions rows, one per session and path) with `session_id`, `bucket` and
 * `conversions`; `segments`, the lateral that gives each its segments; `paths`, what each session
 * viewed: analytics_page_sessions (looked up by key, session by session) or a relation of such rows
 * that a fold holds (joined); with `byPath`, the rows are grouped by the session row's own path as
 * well (analytics_page_facts); `where` keeps only some (segment, session) rows.
 */
interface FactSource {
	sessions: string;
	segments: string;
	paths: typeof PAGE_SESSIONS | { relation: string };
	byPath?: boolean;
	where?: string;
}

const SAME_SESSION = (row: string) => `${row}.site_id = s.site_id AND ${row}.started_at = s.started_at AND ${row}.session_id = s.session_id`;
/**
 * The analytics_page_sessions rows of one session s, by key. OFFSET 0 keeps the planner from
 * flattening the lookup into a join it may then run from the other side: every row of a path.
 */
const PATHS_OF_SESSION = (columns: string) => `CROSS JOIN LATERAL (SELECT ${columns} FROM ${PAGE_SESSIONS} v WHERE ${SAME_SESSION('v')} OFFSET 0) v`;

/**
 * The facts of a source, one row per (segment, [path,] bucket, dimension, value). The fold (per hour,
 * in every segment) and a read (its raw pieces, in one) both use it, so the rollups and the raw edges
 * count alike.
 */
function factsOf({ sessions, segments, paths, byPath = false, where = 'true' }: FactSource, dimensions: readonly SessionDimension[]): string {
	const columns = dimensions.filter((dimension): dimension is keyof typeof SESSION_DIMENSIONS => dimension !== 'page');
	const path = byPath ? 's.path, ' : '';
	const parts: string[] = [];
	if (columns.length > 0) {
		// One grouping set per dimension: each session row is hashed once per dimension, not copied into a
		// row per dimension first. The total's set groups by no value (Postgres groups by no constant).
		const expression = (dimension: keyof typeof SESSION_DIMENSIONS) => `(${SESSION_DIMENSIONS[dimension]})`;
		const valued = columns.filter((dimension) => dimension !== '');
		const which = (pick: (dimension: keyof typeof SESSION_DIMENSIONS) => string, otherwise: string) =>
			valued.length === 0 ? otherwise : `CASE ${valued.map((dimension) => `WHEN GROUPING(${expression(dimension)}) = 0 THEN ${pick(dimension)}`).join(' ')} ELSE ${otherwise} END`;
		const sets = columns.map((dimension) => `(g.segment, ${path}s.bucket${dimension === '' ? '' : `, ${expression(dimension)}`})`);
		parts.push(`SELECT g.segment, ${path}s.bucket, ${which((dimension) => `'${dimension}'`, `''`)} AS dimension, coalesce(${which(expression, 'NULL')}::text, '') AS value,
			${sessionCounters('0')}
		FROM (${sessions}) s ${segments}
		WHERE ${where}
		GROUP BY GROUPING SETS (${sets.join(', ')})`);
	}
	if (dimensions.includes('page')) {
		// Per path: the sessions that viewed it (their bounces, durations, engagement and conversions) and its views.
		const viewed = typeof paths === 'string' ? PATHS_OF_SESSION('v.path, v.views') : `JOIN ${paths.relation} v ON ${SAME_SESSION('v')}`;
		parts.push(`SELECT g.segment, ${path}s.bucket, 'page' AS dimension, v.path AS value, ${sessionCounters('v.views')}
		FROM (${sessions}) s ${segments}
		${viewed}
		WHERE ${where}
		GROUP BY g.segment, ${path}s.bucket, v.path`);
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
const SESSIONS_OF_HOURS = `SELECT s.*, s.id AS session_id, h.hour AS bucket, coalesce(cv.conversions, 0) AS conversions
	FROM unnest($2::timestamptz[]) h(hour)
	JOIN visitor_sessions s ON s.site_id = $1::uuid AND s.started_at >= h.hour AND s.started_at < h.hour + interval '1 hour'
	LEFT JOIN (SELECT c.session_id, count(DISTINCT c.id)::int AS conversions FROM unnest($2::timestamptz[]) w(hour)
		JOIN conversions c ON c.site_id = $1::uuid AND c.occurred_at >= w.hour AND c.occurred_at < w.hour + interval '1 hour' + ${LONGEST_SESSION}
		WHERE c.session_id IS NOT NULL GROUP BY c.session_id) cv ON cv.session_id = s.id`;

/** The columns of analytics_page_sessions, its key first. */
const PAGE_KEY = ['site_id', 'started_at', 'session_id', 'path'] as const;
const PAGE_COLUMNS = [
	...PAGE_KEY,
	...['visitor_id', 'views', 'channel', 'campaign', 'entry_page', 'exit_page', 'referrer_domain', 'source', 'medium', 'device_type', 'browser', 'os', 'country'],
	...['duration_seconds', 'max_scroll_depth', 'engagement_level', 'is_bounce', 'pageviews', 'conversions'],
];

/** analytics_page_sessions rows of the sessions that started in the hours $2: one per path each viewed. */
const PAGES_OF_HOURS = `SELECT ${PAGE_COLUMNS.map((column) => (column === 'path' || column === 'views' ? `v.${column}` : `s.${column}`)).join(', ')}
	FROM (${SESSIONS_OF_HOURS}) s
	CROSS JOIN LATERAL (SELECT e.path, count(*)::int AS views FROM visitor_event_links l JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id
		WHERE l.session_id = s.id AND e.type = 'pageview' AND e.path IS NOT NULL GROUP BY e.path) v`;

/** The stored analytics_page_sessions rows of the hours $2. */
const STORED_PAGES_OF_HOURS = `SELECT ${PAGE_COLUMNS.map((column) => `m.${column}`).join(', ')} FROM unnest($2::timestamptz[]) h(hour)
	JOIN ${PAGE_SESSIONS} m ON m.site_id = $1::uuid AND m.started_at >= h.hour AND m.started_at < h.hour + interval '1 hour'`;

/**
 * Presence rows (segment, kind, visitor, session start, session id) of the sessions `sessions`
 * (named s): one per session of kind "visitor", per engaged session (site-wide only: the funnel
 * reads them, unfiltered), and per (session, path viewed).
 */
function presenceOf(sessions: string, kinds: 'all' | 'visitor' | 'engaged' | 'pages', segments: string): string {
	const parts: string[] = [];
	if (kinds === 'all' || kinds === 'visitor') parts.push(`SELECT g.segment, 'visitor' AS kind, s.visitor_id, s.started_at, s.session_id AS id FROM (${sessions}) s ${segments}`);
	if (kinds === 'all' || kinds === 'engaged') parts.push(`SELECT '' AS segment, 'engaged' AS kind, s.visitor_id, s.started_at, s.session_id AS id FROM (${sessions}) s WHERE ${ENGAGED}`);
	if (kinds === 'all' || kinds === 'pages') {
		parts.push(`SELECT g.segment, 'page:' || v.path AS kind, s.visitor_id, s.started_at, s.session_id AS id FROM (${sessions}) s
			${PATHS_OF_SESSION('v.path')} ${segments}`);
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
	history AS (SELECT s.site_id, s.id AS session_id, s.visitor_id, s.started_at, s.engagement_level, s.channel, s.campaign FROM visitor_sessions s
		WHERE s.visitor_id IN (SELECT visitor_id FROM touched)),
	presence AS (${presenceOf('SELECT * FROM history', 'all', SEGMENTS)}),
	ordered AS (SELECT segment, kind, started_at, lag(started_at) OVER (PARTITION BY segment, kind, visitor_id ORDER BY started_at, id) AS prev FROM presence)
	SELECT $1::uuid, segment, kind, 'hour', date_trunc('hour', started_at, 'UTC'), coalesce(date_trunc('hour', prev, 'UTC'), '-infinity'), count(*)::int
	FROM ordered WHERE date_trunc('hour', started_at, 'UTC') = ANY($2::timestamptz[])
	GROUP BY 2, 3, 5, 6
	ORDER BY 2, 3, 5`;

/** The visitors of the pair rows p of a bucket: their sessions whose previous one started before it. */
const PAIR_VISITORS = `coalesce(sum(p.sessions) FILTER (WHERE p.prev_hour < p.bucket), 0)::int`;

const COARSER = `CROSS JOIN (VALUES ('day'), ('week')) g(grain)`;
const COARSER_BUCKET = (bucket: string) => `date_trunc(g.grain, ${bucket}, 'UTC')`;

/** Each rollup table's key after its site, for the rows a fold leaves without sessions (see deleteEmptied). */
const ROW_KEYS = {
	analytics_session_facts: ['segment', 'grain', 'dimension', 'bucket', 'value'],
	analytics_visitor_pairs: ['segment', 'kind', 'grain', 'bucket', 'prev_hour'],
	analytics_page_facts: ['segment', 'path', 'grain', 'dimension', 'bucket', 'value'],
} as const;
type RollupTable = keyof typeof ROW_KEYS;
type RowKey = Record<string, string>;

/** The keys (as text) of the rows an upsert named `upsert` left without sessions. */
const EMPTIED = (table: RollupTable, upsert: string) => `SELECT ${ROW_KEYS[table].map((column) => `${column}::text`).join(', ')} FROM ${upsert} WHERE sessions = 0`;
const RETURNING = (table: RollupTable) => `RETURNING ${ROW_KEYS[table].map((column) => `t.${column}`).join(', ')}, t.sessions`;

/**
 * A fold of a few hours moves the day and week rows by the hour rows of the hours $2, times $3: -1
 * before those hour rows are recomputed, +1 after; the rows of a day or week that this leaves without
 * sessions are returned, and deleted afterwards. Its cost is that of the hours' rows, whatever the
 * days and weeks hold.
 */
const FACTS_TO_COARSER = `WITH moved AS (INSERT INTO analytics_session_facts AS t (site_id, segment, grain, dimension, bucket, value, ${FACT_COUNTERS.join(', ')})
	SELECT $1::uuid, f.segment, g.grain, f.dimension, ${COARSER_BUCKET('f.bucket')}, f.value,
		${FACT_COUNTERS.map((column) => `$3::int * sum(f.${column})`).join(', ')}
	FROM analytics_session_facts f ${COARSER}
	WHERE f.site_id = $1::uuid AND f.grain = 'hour' AND f.bucket = ANY($2::timestamptz[])
	GROUP BY f.segment, g.grain, f.dimension, ${COARSER_BUCKET('f.bucket')}, f.value
	ON CONFLICT (site_id, segment, grain, dimension, bucket, value) DO UPDATE SET ${FACT_COUNTERS.map((column) => `${column} = t.${column} + excluded.${column}`).join(', ')}
	${RETURNING('analytics_session_facts')})
	${EMPTIED('analytics_session_facts', 'moved')}`;

const PAIRS_TO_COARSER = `WITH moved AS (INSERT INTO analytics_visitor_pairs AS t (site_id, segment, kind, grain, bucket, prev_hour, sessions)
	SELECT $1::uuid, p.segment, p.kind, g.grain, ${COARSER_BUCKET('p.bucket')}, least(p.prev_hour, ${COARSER_BUCKET('p.bucket')}), $3::int * sum(p.sessions)
	FROM analytics_visitor_pairs p ${COARSER}
	WHERE p.site_id = $1::uuid AND p.grain = 'hour' AND p.bucket = ANY($2::timestamptz[])
	GROUP BY p.segment, p.kind, g.grain, ${COARSER_BUCKET('p.bucket')}, least(p.prev_hour, ${COARSER_BUCKET('p.bucket')})
	ON CONFLICT (site_id, segment, kind, grain, bucket, prev_hour) DO UPDATE SET sessions = t.sessions + excluded.sessions
	${RETURNING('analytics_visitor_pairs')})
	${EMPTIED('analytics_visitor_pairs', 'moved')}`;

/** Deletes the rows of `keys` that still have no sessions. */
async function deleteEmptied(tx: Transaction, table: RollupTable, siteId: string, keys: RowKey[]): Promise<void> {
	if (keys.length === 0) return;
	const columns = ROW_KEYS[table];
	const typed = (column: string) => (column === 'bucket' || column === 'prev_hour' ? `e.${column}::timestamptz` : `e.${column}`);
	await tx.$executeRawUnsafe(
		`DELETE FROM ${table} t USING jsonb_to_recordset($2::jsonb) AS e(${columns.map((column) => `${column} text`).join(', ')})
		WHERE t.site_id = $1::uuid AND ${columns.map((column) => `t.${column} = ${typed(column)}`).join(' AND ')} AND t.sessions = 0`,
		siteId,
		JSON.stringify(keys),
	);
}

/**
 * A fold of many hours (a first fold, a restore) rebuilds each touched day from its hour rows ($2:
 * the days), then each touched week from its day rows ($2: the weeks): each row once, where moving
 * them hour by hour would update a week's rows once per hour. Rows are written in (segment,
 * dimension or kind, bucket) order, the order a read asks for them in, so a read visits few pages.
 */
const FACTS_FROM_FINER = (grain: 'day' | 'week') => `INSERT INTO analytics_session_facts (site_id, segment, grain, dimension, bucket, value, ${FACT_COUNTERS.join(', ')})
	SELECT $1::uuid, f.segment, '${grain}', f.dimension, b.bucket, f.value, ${FACT_COUNTERS.map((column) => `sum(f.${column})`).join(', ')}
	FROM unnest($2::timestamptz[]) b(bucket)
	JOIN analytics_session_facts f ON f.site_id = $1::uuid AND f.grain = '${grain === 'day' ? 'hour' : 'day'}' AND f.bucket >= b.bucket AND f.bucket < b.bucket + ${LENGTH(grain)}
	GROUP BY f.segment, f.dimension, b.bucket, f.value
	ORDER BY f.segment, f.dimension, b.bucket`;

const PAIRS_FROM_FINER = (grain: 'day' | 'week') => `INSERT INTO analytics_visitor_pairs (site_id, segment, kind, grain, bucket, prev_hour, sessions)
	SELECT $1::uuid, p.segment, p.kind, '${grain}', b.bucket, least(p.prev_hour, b.bucket), sum(p.sessions)
	FROM unnest($2::timestamptz[]) b(bucket)
	JOIN analytics_visitor_pairs p ON p.site_id = $1::uuid AND p.grain = '${grain === 'day' ? 'hour' : 'day'}' AND p.bucket >= b.bucket AND p.bucket < b.bucket + ${LENGTH(grain)}
	GROUP BY p.segment, p.kind, b.bucket, least(p.prev_hour, b.bucket)
	ORDER BY p.segment, p.kind, b.bucket`;

/** The buckets a fold touched: hours $2, days $3, weeks $4. */
const TOUCHED = (table: string) => `${table}.site_id = $1::uuid AND ((${table}.grain = 'hour' AND ${table}.bucket = ANY($2::timestamptz[]))
	OR (${table}.grain = 'day' AND ${table}.bucket = ANY($3::timestamptz[])) OR (${table}.grain = 'week' AND ${table}.bucket = ANY($4::timestamptz[])))`;
/** The days ($2) and weeks ($3) a fold touched. */
const TOUCHED_COARSER = (table: string) => `${table}.site_id = $1::uuid AND ((${table}.grain = 'day' AND ${table}.bucket = ANY($2::timestamptz[]))
	OR (${table}.grain = 'week' AND ${table}.bucket = ANY($3::timestamptz[])))`;

/** Each touched bucket's distinct visitors, on its total row: its sessions whose previous one started before the bucket. */
const BUCKET_VISITORS = `UPDATE analytics_session_facts f SET visitors = v.visitors
	FROM (SELECT p.segment, p.grain, p.bucket, ${PAIR_VISITORS} AS visitors
		FROM analytics_visitor_pairs p WHERE ${TOUCHED('p')} AND p.kind = 'visitor' GROUP BY 1, 2, 3) v
	WHERE f.site_id = $1::uuid AND f.segment = v.segment AND f.grain = v.grain AND f.bucket = v.bucket AND f.dimension = '' AND f.value = ''`;

/**
 * A page filter's day or week is kept in analytics_page_facts once it holds this many sessions (read
 * from analytics_page_sessions below it). Reading a session there costs about forty times reading a
 * kept row (every dimension of it, and each path it viewed), so a range of a page that keeps nothing
 * costs what a few thousand sessions do; at ten million events a month, about 630 days and 670 weeks
 * of pages (and as many of a page and a channel) reach it.
 */
export const ROLL_PAGE_BUCKETS_AT = 1000;

const PAGE_FACT_COLUMNS = `site_id, segment, path, grain, dimension, bucket, value, ${FACT_COUNTERS.join(', ')}`;

/**
 * The kept days and weeks moved by the analytics_page_sessions rows of whole sessions: those of the
 * relation `gone` out, those of `come` in (each session's rows count what its other rows viewed, so
 * a session is taken whole); then the keys of the kept rows this leaves without sessions. The CTEs
 * of a statement that defines gone and come.
 */
const MOVE_KEPT_PAGES = (gone: string, come: string) => `delta AS MATERIALIZED (
		SELECT f.segment, f.path, g.grain, f.dimension, ${COARSER_BUCKET('f.bucket')} AS bucket, f.value, ${FACT_COUNTERS.map((column) => `sum(f.sign * f.${column}) AS ${column}`).join(', ')}
		FROM (SELECT -1 AS sign, * FROM (${factsOf({ sessions: `SELECT *, date_trunc('hour', started_at, 'UTC') AS bucket FROM ${gone}`, segments: KEPT_SEGMENTS, paths: { relation: gone }, byPath: true }, ALL_DIMENSIONS)}) before_rows
			UNION ALL SELECT 1, * FROM (${factsOf({ sessions: `SELECT *, date_trunc('hour', started_at, 'UTC') AS bucket FROM ${come}`, segments: KEPT_SEGMENTS, paths: { relation: come }, byPath: true }, ALL_DIMENSIONS)}) after_rows) f
		${COARSER}
		GROUP BY f.segment, f.path, g.grain, f.dimension, ${COARSER_BUCKET('f.bucket')}, f.value),
	kept AS MATERIALIZED (
		SELECT d.* FROM (SELECT DISTINCT segment, path, grain, bucket FROM delta) d
		CROSS JOIN LATERAL (SELECT 1 FROM analytics_page_facts k WHERE k.site_id = $1::uuid AND k.segment = d.segment AND k.path = d.path AND k.grain = d.grain
			AND k.dimension = '' AND k.bucket = d.bucket AND k.value = '' LIMIT 1) k),
	moved AS (INSERT INTO analytics_page_facts AS t (${PAGE_FACT_COLUMNS})
		SELECT $1::uuid, d.segment, d.path, d.grain, d.dimension, d.bucket, d.value, ${FACT_COUNTERS.map((column) => `d.${column}`).join(', ')}
		FROM delta d JOIN kept USING (segment, path, grain, bucket)
		ON CONFLICT (site_id, segment, path, grain, dimension, bucket, value) DO UPDATE SET ${FACT_COUNTERS.map((column) => `${column} = t.${column} + excluded.${column}`).join(', ')}
		${RETURNING('analytics_page_facts')})
	${EMPTIED('analytics_page_facts', 'moved')}`;

/**
 * The page rows of the sessions that changed in the hours $2: their old analytics_page_sessions rows
 * out of the kept days and weeks, their new ones in, and the table rewritten with the new ones. One
 * statement, as its parts read the same rows: rows gone and rows come have different keys or are
 * written by one upsert.
 */
const MOVE_PAGES = `WITH fresh AS MATERIALIZED (${PAGES_OF_HOURS}),
	stale AS MATERIALIZED (${STORED_PAGES_OF_HOURS}),
	changed AS MATERIALIZED (SELECT session_id FROM (SELECT * FROM stale EXCEPT ALL SELECT * FROM fresh) d
		UNION SELECT session_id FROM (SELECT * FROM fresh EXCEPT ALL SELECT * FROM stale) d),
	gone AS MATERIALIZED (SELECT * FROM stale WHERE session_id IN (SELECT session_id FROM changed)),
	come AS MATERIALIZED (SELECT * FROM fresh WHERE session_id IN (SELECT session_id FROM changed)),
	removed AS (DELETE FROM ${PAGE_SESSIONS} m USING unnest($2::timestamptz[]) h(hour)
		WHERE m.site_id = $1::uuid AND m.started_at >= h.hour AND m.started_at < h.hour + interval '1 hour'
			AND (m.started_at, m.session_id, m.path) IN (SELECT started_at, session_id, path FROM gone EXCEPT SELECT started_at, session_id, path FROM come)),
	written AS (INSERT INTO ${PAGE_SESSIONS} (${PAGE_COLUMNS.join(', ')}) SELECT * FROM come
		ON CONFLICT (${PAGE_KEY.join(', ')}) DO UPDATE SET ${PAGE_COLUMNS.filter((column) => !(PAGE_KEY as readonly string[]).includes(column))
			.map((column) => `${column} = excluded.${column}`)
			.join(', ')}),
	${MOVE_KEPT_PAGES('gone', 'come')}`;

/**
 * A person's erasure ($2: their visitors): the analytics_page_sessions rows of their sessions go, and
 * those of sessions started from the retention cutoff on ($3; -infinity for none) leave the kept days
 * and weeks, as the fold that follows the erasure takes the sessions out of the other rollups. Hours
 * before the cutoff are not folded again (see foldRollups): their rollups keep counting the sessions
 * anonymously, as they do those the retention job deleted.
 */
const FORGET_PAGES = `WITH erased AS MATERIALIZED (SELECT ${PAGE_COLUMNS.map((column) => `m.${column}`).join(', ')} FROM visitor_sessions s
		JOIN ${PAGE_SESSIONS} m ON m.site_id = s.site_id AND m.started_at = s.started_at AND m.session_id = s.id
		WHERE s.site_id = $1::uuid AND s.visitor_id = ANY($2::uuid[])),
	removed AS (DELETE FROM ${PAGE_SESSIONS} m USING erased e
		WHERE m.site_id = e.site_id AND m.started_at = e.started_at AND m.session_id = e.session_id AND m.path = e.path),
	gone AS MATERIALIZED (SELECT * FROM erased WHERE started_at >= $3::timestamptz),
	come AS MATERIALIZED (SELECT * FROM erased WHERE false),
	${MOVE_KEPT_PAGES('gone', 'come')}`;

/**
 * Keeps the days or weeks ($2) of a page in a segment that hold at least $3 sessions and are not kept
 * yet (their page row in analytics_session_facts says how many): every dimension, from
 * analytics_page_sessions.
 */
const KEEP_PAGE_BUCKETS = (grain: 'day' | 'week') => `INSERT INTO analytics_page_facts (${PAGE_FACT_COLUMNS})
	WITH heavy AS MATERIALIZED (
		SELECT r.segment, r.value AS path, r.bucket FROM analytics_session_facts r
		WHERE r.site_id = $1::uuid AND r.grain = '${grain}' AND r.dimension = 'page' AND r.bucket = ANY($2::timestamptz[]) AND r.sessions >= $3::int
			AND NOT EXISTS (SELECT 1 FROM analytics_page_facts k WHERE k.site_id = $1::uuid AND k.segment = r.segment AND k.path = r.value AND k.grain = '${grain}'
				AND k.dimension = '' AND k.bucket = r.bucket AND k.value = '')),
	pages AS MATERIALIZED (
		SELECT m.*, date_trunc('${grain}', m.started_at, 'UTC') AS bucket FROM (SELECT DISTINCT path, bucket FROM heavy) h
		JOIN ${PAGE_SESSIONS} m ON m.site_id = $1::uuid AND m.path = h.path AND m.started_at >= h.bucket AND m.started_at < h.bucket + ${LENGTH(grain)})
	SELECT $1::uuid, f.segment, f.path, '${grain}', f.dimension, f.bucket, f.value, ${FACT_COUNTERS.map((column) => `f.${column}`).join(', ')}
	FROM (${factsOf(
		{ sessions: 'SELECT * FROM pages', segments: SEGMENTS, paths: PAGE_SESSIONS, byPath: true, where: '(g.segment, s.path, s.bucket) IN (SELECT segment, path, bucket FROM heavy)' },
		ALL_DIMENSIONS,
	)}) f
	ORDER BY f.segment, f.path, f.dimension, f.bucket`;

/** Up to this many dirty hours, a fold moves the days and weeks by the hours' differences; beyond, it rebuilds them. */
const MOVE_AT_MOST_HOURS = 24;

const ROLLUP_TABLES = ['analytics_session_facts', 'analytics_visitor_pairs'] as const;

const lockKey = (siteId: string) => `analytics-rollup:${siteId}`;

/**
 * Waits for the site's fold in progress and keeps its next folds waiting until the caller's
 * transaction ends: a fold, an erasure and a site's removal (server/sites.ts) never interleave.
 */
export async function lockSiteRollups(tx: Pick<RollupDatabase, '$executeRawUnsafe'>, siteId: string): Promise<void> {
	await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', lockKey(siteId));
}

export interface FoldResult {
	hours: number;
}

export interface FoldOptions {
	/** Sessions from which a page's day or week is kept in analytics_page_facts (ROLL_PAGE_BUCKETS_AT). */
	keepPageBucketsAt?: number;
}

type Transaction = Pick<RollupDatabase, '$executeRawUnsafe' | '$queryRawUnsafe'>;

/**
 * The hours' rows: pairs first, since a page row of an hour takes its distinct visitors from them (a
 * page filter's series by hour reads them there; by day or week, from the pairs).
 */
async function recomputeHours(tx: Transaction, siteId: string, hours: string[]): Promise<void> {
	for (const table of ROLLUP_TABLES) {
		await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid AND grain = 'hour' AND bucket = ANY($2::timestamptz[])`, siteId, hours);
	}
	await tx.$executeRawUnsafe(`INSERT INTO analytics_visitor_pairs (site_id, segment, kind, grain, bucket, prev_hour, sessions) ${PAIRS_OF_HOURS}`, siteId, hours);
	await tx.$executeRawUnsafe(
		`INSERT INTO analytics_session_facts (site_id, segment, grain, bucket, dimension, value, ${FACT_COUNTERS.join(', ')}, visitors)
		WITH hour_sessions AS MATERIALIZED (${SESSIONS_OF_HOURS}),
			seen AS (SELECT p.segment, p.kind, p.bucket, ${PAIR_VISITORS} AS visitors FROM analytics_visitor_pairs p
				WHERE p.site_id = $1::uuid AND p.grain = 'hour' AND p.bucket = ANY($2::timestamptz[]) AND p.kind LIKE 'page:%' GROUP BY 1, 2, 3)
		SELECT $1::uuid, f.segment, 'hour', f.bucket, f.dimension, f.value, ${FACT_COUNTERS.map((column) => `f.${column}`).join(', ')}, coalesce(seen.visitors, 0)
		FROM (${factsOf({ sessions: 'SELECT * FROM hour_sessions', segments: SEGMENTS, paths: PAGE_SESSIONS }, ALL_DIMENSIONS)}) f
		LEFT JOIN seen ON f.dimension = 'page' AND seen.segment = f.segment AND seen.bucket = f.bucket AND seen.kind = 'page:' || f.value
		ORDER BY f.segment, f.dimension, f.bucket`,
		siteId,
		hours,
	);
}

/** A few hours: their old rows out of the days and weeks, their new rows in; the kept page rows by the sessions that changed. */
async function moveHours(tx: Transaction, siteId: string, hours: string[], days: string[], weeks: string[], keepAt: number): Promise<void> {
	await deleteEmptied(tx, 'analytics_page_facts', siteId, await tx.$queryRawUnsafe<RowKey[]>(MOVE_PAGES, siteId, hours));
	const emptiedFacts = await tx.$queryRawUnsafe<RowKey[]>(FACTS_TO_COARSER, siteId, hours, -1);
	const emptiedPairs = await tx.$queryRawUnsafe<RowKey[]>(PAIRS_TO_COARSER, siteId, hours, -1);
	await recomputeHours(tx, siteId, hours);
	// A row the old hours emptied may be filled again by the new ones: deleted only if it is still empty.
	await deleteEmptied(tx, 'analytics_session_facts', siteId, [...emptiedFacts, ...(await tx.$queryRawUnsafe<RowKey[]>(FACTS_TO_COARSER, siteId, hours, 1))]);
	await deleteEmptied(tx, 'analytics_visitor_pairs', siteId, [...emptiedPairs, ...(await tx.$queryRawUnsafe<RowKey[]>(PAIRS_TO_COARSER, siteId, hours, 1))]);
	await tx.$executeRawUnsafe(BUCKET_VISITORS, siteId, hours, days, weeks);
	await tx.$executeRawUnsafe(KEEP_PAGE_BUCKETS('week'), siteId, weeks, keepAt);
	await tx.$executeRawUnsafe(KEEP_PAGE_BUCKETS('day'), siteId, days, keepAt);
}

/** Many hours: recomputed, then their days and weeks rebuilt. */
async function rebuildHours(tx: Transaction, siteId: string, hours: string[], days: string[], weeks: string[], keepAt: number): Promise<void> {
	await tx.$executeRawUnsafe(`DELETE FROM ${PAGE_SESSIONS} m USING unnest($2::timestamptz[]) h(hour)
		WHERE m.site_id = $1::uuid AND m.started_at >= h.hour AND m.started_at < h.hour + interval '1 hour'`, siteId, hours);
	await tx.$executeRawUnsafe(`INSERT INTO ${PAGE_SESSIONS} (${PAGE_COLUMNS.join(', ')}) ${PAGES_OF_HOURS}`, siteId, hours);
	// The statements below join these tables by key: planned on the statistics of the rows just written, not of an empty table.
	await tx.$executeRawUnsafe(`ANALYZE ${PAGE_SESSIONS}`);
	await recomputeHours(tx, siteId, hours);
	await tx.$executeRawUnsafe(`ANALYZE ${ROLLUP_TABLES.join(', ')}`);
	for (const [grain, buckets] of [['day', days], ['week', weeks]] as const) {
		for (const table of ROLLUP_TABLES) {
			await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid AND grain = '${grain}' AND bucket = ANY($2::timestamptz[])`, siteId, buckets);
		}
		await tx.$executeRawUnsafe(FACTS_FROM_FINER(grain), siteId, buckets);
		await tx.$executeRawUnsafe(PAIRS_FROM_FINER(grain), siteId, buckets);
	}
	await tx.$executeRawUnsafe(BUCKET_VISITORS, siteId, hours, days, weeks);
	await tx.$executeRawUnsafe(`DELETE FROM analytics_page_facts t WHERE ${TOUCHED_COARSER('t')}`, siteId, days, weeks);
	await tx.$executeRawUnsafe(KEEP_PAGE_BUCKETS('week'), siteId, weeks, keepAt);
	await tx.$executeRawUnsafe(KEEP_PAGE_BUCKETS('day'), siteId, days, keepAt);
	await tx.$executeRawUnsafe('ANALYZE analytics_page_facts');
}

/**
 * Folds the site's dirty hours into its rollups (see the header). Safe to run from several receivers
 * at once: folds of one site wait for each other.
 */
export async function foldRollups(db: RollupDatabase, siteId: string, { keepPageBucketsAt = ROLL_PAGE_BUCKETS_AT }: FoldOptions = {}): Promise<FoldResult> {
	const [pending] = await db.$queryRawUnsafe<Array<{ pending: boolean }>>(`SELECT EXISTS (SELECT 1 FROM analytics_dirty_hours WHERE site_id = $1::uuid) AS pending`, siteId);
	if (!pending.pending) return { hours: 0 };
	return db.$transaction(
		async (tx) => {
			await lockSiteRollups(tx, siteId);
			// A first fold's sorts and hashes fit in memory this way.
			await tx.$executeRawUnsafe(`SET LOCAL work_mem = '256MB'`);
			const claimed = await tx.$queryRawUnsafe<Array<{ hour: Date }>>(
				`WITH claimed AS (DELETE FROM analytics_dirty_hours WHERE site_id = $1::uuid RETURNING hour) SELECT DISTINCT hour FROM claimed`,
				siteId,
			);
			// Hours before the retention cutoff are left as folded: their raw rows are gone or going, and a late
			// event dated then would otherwise recompute them from what is left.
			const cutoff = await retentionCutoffOf(tx, siteId);
			const kept = cutoff ? claimed.filter((row) => row.hour >= cutoff) : claimed;
			if (kept.length === 0) return { hours: 0 };
			const hours = kept.map((row) => row.hour.toISOString());
			const coarser = (grain: Grain) => [...new Set(kept.map((row) => new Date(floorTo(row.hour.getTime(), grain)).toISOString()))];
			const [days, weeks] = [coarser('day'), coarser('week')];
			await (hours.length <= MOVE_AT_MOST_HOURS ? moveHours : rebuildHours)(tx, siteId, hours, days, weeks, keepPageBucketsAt);
			return { hours: hours.length };
		},
		{ timeout: 3_600_000, maxWait: 60_000 },
	);
}

/**
 * A read folds the site's changes itself, so that its answer is exact as of the request, while the
 * sessions of the day around the changed hours number fewer than this: such a fold costs tens of
 * milliseconds. A busier site's fold costs what its hours, days and weeks hold (half a second and
 * more at ten million events a month), which a read does not wait for: it answers from the rollups
 * as they are, and says as of when (see rollupsForRead).
 */
export const READ_FOLDS_BELOW_SESSIONS_A_DAY = 1000;

const PENDING_CHANGES = `WITH pending AS (SELECT hour, noted_at FROM analytics_dirty_hours WHERE site_id = $1::uuid)
	SELECT (SELECT min(noted_at) FROM pending) AS "notedSince",
		(SELECT count(*) FROM (SELECT 1 FROM visitor_sessions s WHERE s.site_id = $1::uuid
			AND s.started_at >= (SELECT min(hour) FROM pending) - interval '23 hours' AND s.started_at < (SELECT max(hour) FROM pending) + interval '1 hour'
			LIMIT $2::int) around)::int AS sessions`;

/**
 * Makes the site's rollups ready for a read, and says as of when they count: every change to the
 * site's sessions and conversions noted before the instant returned is in them. A quiet site's
 * pending changes are folded first (the instant is then the read's own); a busy site's are left to
 * the receiver's job (startRollupJob, every few seconds), and the instant is when the oldest of them
 * was noted.
 */
export async function rollupsForRead(db: RollupDatabase, siteId: string): Promise<Date> {
	const readAt = new Date();
	const [pending] = await db.$queryRawUnsafe<Array<{ notedSince: Date | null; sessions: number }>>(PENDING_CHANGES, siteId, READ_FOLDS_BELOW_SESSIONS_A_DAY);
	if (pending.notedSince === null) return readAt;
	if (pending.sessions < READ_FOLDS_BELOW_SESSIONS_A_DAY) {
		await foldRollups(db, siteId);
		return readAt;
	}
	return pending.notedSince;
}

/**
 * Takes a person's visitors out of the rollups' per-session rows, in the transaction of their erasure
 * and before their sessions are deleted (see FORGET_PAGES); the fold that the deleted sessions note
 * does the rest. Waits for a fold of the site in progress, and holds the next one off until the
 * erasure commits.
 */
export async function forgetVisitors(tx: Transaction, siteId: string, visitorIds: readonly string[]): Promise<void> {
	if (visitorIds.length === 0) return;
	await lockSiteRollups(tx, siteId);
	const cutoff = await retentionCutoffOf(tx, siteId);
	const emptied = await tx.$queryRawUnsafe<RowKey[]>(FORGET_PAGES, siteId, visitorIds, cutoff?.toISOString() ?? '-infinity');
	await deleteEmptied(tx, 'analytics_page_facts', siteId, emptied);
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
export async function foldAllRollups(db: RollupDatabase, options: FoldOptions = {}): Promise<FoldResult> {
	const sites = await db.$queryRawUnsafe<Array<{ siteId: string }>>(`SELECT DISTINCT site_id AS "siteId" FROM analytics_dirty_hours`);
	let hours = 0;
	for (const { siteId } of sites) hours += (await foldRollups(db, siteId, options)).hours;
	await db.$executeRawUnsafe(MERGE_EVENT_COUNTS);
	return { hours };
}

export interface RollupJob {
	stop(): Promise<void>;
}

/**
 * After a fold, the next waits this many times as long as it took: a fold that grows with the data
 * (a live hour of a big site refolds in seconds) keeps Postgres busy a quarter of the time at most,
 * and the figures lag by what that costs instead of the job holding a connection without pause.
 */
const FOLD_PAUSE_FACTOR = 3;

/** How long the job waits after a fold that took `tookMs` before it starts the next. */
export function nextFoldDelay(intervalMs: number, tookMs: number): number {
	return Math.max(intervalMs - tookMs, FOLD_PAUSE_FACTOR * tookMs);
}

/**
 * Folds every few seconds (`intervalMs` from the start of one fold to the next, longer when folds
 * take long: nextFoldDelay), so a busy site's figures, which its reads do not fold (rollupsForRead),
 * are seconds behind at most, and a quiet site's read rarely has anything left to fold. One fold at
 * a time; a failed fold is logged and retried on the next (its dirty hours stay noted).
 */
export function startRollupJob({ prisma, logger, intervalMs = 5000 }: { prisma: RollupDatabase; logger: Logger; intervalMs?: number }): RollupJob {
	let running: Promise<void> | undefined;
	let timer: NodeJS.Timeout | undefined;
	let stopped = false;
	const schedule = (delayMs: number) => {
		if (stopped) return;
		timer = setTimeout(tick, delayMs);
		timer.unref();
	};
	const tick = () => {
		const started = performance.now();
		running = foldAllRollups(prisma)
			.then(({ hours }) => {
				if (hours > 0) logger.debug({ hours, ms: Math.round(performance.now() - started) }, 'analytics rollups folded');
			})
			.catch((error: unknown) => logger.warn({ err: error }, 'analytics rollups could not be folded; retrying on the next tick'))
			.finally(() => {
				running = undefined;
				schedule(nextFoldDelay(intervalMs, performance.now() - started));
			});
	};
	schedule(intervalMs);
	return {
		async stop() {
			stopped = true;
			clearTimeout(timer);
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
function readPieces(from: Date, to: Date, grain: Grain, raw: boolean): RangePieces {
	if (!raw) return rangePieces(from, to, grain);
	const [start, end] = [from.getTime(), to.getTime()];
	return { edges: start < end ? [[start, end]] : [], hours: [], days: [], weeks: null, inner: [end, end] };
}

const within = (column: string, [from, to]: Span) => `(${column} >= ${iso(from)} AND ${column} < ${iso(to)})`;

/** The rollup rows (aliased r) of `table` that a range's whole hours, days and weeks cover and that meet `condition`: one index range per piece. */
function rollupRows(table: string, columns: string, condition: string, pieces: RangePieces): string {
	const spans: Array<[Grain, Span]> = [
		...pieces.hours.map((span): [Grain, Span] => ['hour', span]),
		...pieces.days.map((span): [Grain, Span] => ['day', span]),
		...(pieces.weeks ? [['week', pieces.weeks] as [Grain, Span]] : []),
	];
	const rows = (where: string) => `SELECT ${columns} FROM ${table} r WHERE ${where}`;
	if (spans.length === 0) return rows('false');
	return spans.map(([grain, span]) => rows(`r.site_id = $1::uuid AND r.grain = '${grain}' AND ${within('r.bucket', span)} AND ${condition}`)).join('\nUNION ALL\n');
}

/**
 * The site's ($1) sessions that started in `spans` and match the filter, with their hour as bucket,
 * their id as session_id and their conversions.
 */
function sessionsIn(spans: Span[], filter: ReportFilter | undefined): string {
	if (spans.length === 0) return `SELECT s.*, s.id AS session_id, s.started_at AS bucket, 0 AS conversions FROM visitor_sessions s WHERE false`;
	const started = spans.map((span) => within('s.started_at', span)).join(' OR ');
	const converted = spans.map(([from, to]) => `(c.occurred_at >= ${iso(from)} AND c.occurred_at < ${iso(to)} + ${LONGEST_SESSION})`).join(' OR ');
	const [first, last] = [Math.min(...spans.map(([from]) => from)), Math.max(...spans.map(([, to]) => to))];
	return `SELECT s.*, s.id AS session_id, date_trunc('hour', s.started_at, 'UTC') AS bucket, coalesce(cv.conversions, 0) AS conversions
		FROM visitor_sessions s
		LEFT JOIN (SELECT c.session_id, count(*)::int AS conversions FROM conversions c
			WHERE c.site_id = $1::uuid AND c.session_id IS NOT NULL AND (${converted}) GROUP BY c.session_id) cv ON cv.session_id = s.id
		WHERE s.site_id = $1::uuid AND (${started}) AND ${sessionCondition(filter, iso(first), `${iso(last)} + ${LONGEST_SESSION}`)}`;
}

/**
 * The analytics_page_sessions rows (one per session) of a page scope's sessions that started in the
 * spans (a relation of (from_at, to_at) rows), with the start of their `grain` bucket as bucket: one
 * index range per span. OFFSET 0 keeps the planner from flattening the lookup into a join it runs
 * the other way round: every row of the page, each tested against the spans.
 */
function pageSessionsIn(spans: string, scope: ReportScope & { page: string }, filter: ReportFilter | undefined, grain: Grain = 'hour'): string {
	return `SELECT m.*, date_trunc('${grain}', m.started_at, 'UTC') AS bucket FROM (${spans}) sp
		CROSS JOIN LATERAL (SELECT * FROM ${PAGE_SESSIONS} m WHERE m.site_id = $1::uuid AND m.path = ${sqlText(scope.page)}
			AND m.started_at >= sp.from_at AND m.started_at < sp.to_at AND ${baseCondition(filter, 'm')} OFFSET 0) m`;
}

const spanRows = (spans: Span[]) =>
	spans.length === 0 ? `SELECT now() AS from_at, now() AS to_at WHERE false` : `SELECT * FROM (VALUES ${spans.map(([from, to]) => `(${iso(from)}, ${iso(to)})`).join(', ')}) sp(from_at, to_at)`;

/** The buckets of a grain that make up a whole span of it. */
function bucketsOf(grain: Grain, [from, to]: Span): Span[] {
	const buckets: Span[] = [];
	for (let at = from; at < to; at += GRAINS[grain].ms) buckets.push([at, at + GRAINS[grain].ms]);
	return buckets;
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
 * [start, end) as signed pieces of the fewest rollup rows: whole buckets of each grain (from
 * `coarsest` down to `finest`), and a bucket less what lies outside the range where that reads fewer
 * rows than the part inside it: the current week less the hours still to come rather than each day
 * and hour so far, a day less its first hours rather than its last twenty. What no grain covers is
 * read raw.
 */
export function netPieces(from: Date, to: Date, coarsest: Grain = 'week', now = Date.now(), finest: Grain = 'hour'): SignedPiece[] {
	const grains = GRAIN_ORDER.slice(GRAIN_ORDER.indexOf(coarsest), GRAIN_ORDER.indexOf(finest) + 1);
	const cheaper = (...options: SignedPiece[][]) => options.reduce((best, option) => (readCost(option, now) < readCost(best, now) ? option : best));
	const part = (a: number, b: number, level: number, sign: 1 | -1): SignedPiece[] => {
		if (a >= b) return [];
		if (level >= grains.length) return [{ sign, grain: 'raw', span: [a, b] }];
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

/** The pieces of a read: signed (net) or whole buckets up to `coarsest`, with no grain finer than `finest` (what is left is raw). */
function piecesOf(from: Date, to: Date, coarsest: Grain, net: boolean, finest: Grain): SignedPiece[] {
	if (net) return netPieces(from, to, coarsest, Date.now(), finest);
	const { edges, hours, days, weeks } = rangePieces(from, to, coarsest);
	const covered = (grain: Grain): Grain | 'raw' => (GRAIN_ORDER.indexOf(grain) <= GRAIN_ORDER.indexOf(finest) ? grain : 'raw');
	return [
		...edges.map((span): SignedPiece => ({ sign: 1, grain: 'raw', span })),
		...hours.map((span): SignedPiece => ({ sign: 1, grain: covered('hour'), span })),
		...days.map((span): SignedPiece => ({ sign: 1, grain: covered('day'), span })),
		...(weeks ? [{ sign: 1, grain: covered('week'), span: weeks } as SignedPiece] : []),
	];
}

const rawSpans = (pieces: SignedPiece[], sign: 1 | -1) => pieces.filter((piece) => piece.grain === 'raw' && piece.sign === sign).map((piece) => piece.span);

/** A fact row of `row` times `sign`; `total` reads a page row as the total of the sessions that viewed the page. */
const FACT_ROW = (sign: number, row: string, total = false) =>
	[
		`${row}.bucket`,
		total ? `'' AS dimension, '' AS value` : `${row}.dimension, ${row}.value`,
		...FACT_COUNTERS.map((column) => (total && column === 'path_views' ? `0 AS path_views` : `${sign} * ${row}.${column} AS ${column}`)),
	].join(', ');

const NO_FACTS = `SELECT ${FACT_ROW(1, 'r')} FROM analytics_session_facts r WHERE false`;

/** The facts of the raw sessions of `spans` (those the filter keeps), times `sign`. */
function rawFacts(spans: Span[], dimensions: readonly SessionDimension[], filter: ReportFilter | undefined, sign: number): string {
	return `(WITH raw_sessions AS MATERIALIZED (${sessionsIn(spans, filter)})
		SELECT ${FACT_ROW(sign, 'f')} FROM (${factsOf({ sessions: 'SELECT * FROM raw_sessions', segments: ONE_SEGMENT, paths: PAGE_SESSIONS }, dimensions)}) f)`;
}

/**
 * The facts of a page scope's analytics_page_sessions rows in the spans (a relation of (from_at,
 * to_at) rows), times `sign`, by bucket of `grain`: spans of days hold thousands of sessions, and a
 * row per hour and value would be most of the read.
 */
function pageRawFacts(spans: string, dimensions: readonly SessionDimension[], scope: ReportScope & { page: string }, filter: ReportFilter | undefined, sign: number, grain: Grain): string {
	return `(WITH raw_sessions AS MATERIALIZED (${pageSessionsIn(spans, scope, filter, grain)})
		SELECT ${FACT_ROW(sign, 'f')} FROM (${factsOf({ sessions: 'SELECT * FROM raw_sessions', segments: ONE_SEGMENT, paths: PAGE_SESSIONS }, dimensions)}) f)`;
}

/**
 * A page scope's days or weeks of one piece that analytics_page_facts does not keep, as (from_at,
 * to_at) rows: their sessions are read from analytics_page_sessions.
 */
function unkeptBuckets(scope: ReportScope & { page: string }, { grain, span }: SignedPiece): string {
	return `SELECT sp.from_at, sp.to_at FROM (${spanRows(bucketsOf(grain as Grain, span))}) sp
		WHERE NOT EXISTS (SELECT 1 FROM analytics_page_facts k WHERE k.site_id = $1::uuid AND k.segment = ${sqlText(scope.base)} AND k.path = ${sqlText(scope.page)}
			AND k.grain = '${grain}' AND k.dimension = '' AND k.bucket = sp.from_at AND k.value = '')`;
}

/**
 * Rows (bucket, dimension, value, sessions, bounces, pageviews, path_views, duration_seconds, low,
 * medium, high, conversions, converting_sessions) that add up to the figures of the sessions started
 * in [from, to) (of those the filter keeps), for the given dimensions. `bucket` is the start of the
 * hour, day or week the row stands for, no coarser than `grain`: a series by hour asks for hour rows
 * only. With `net`, some rows may be subtracted (negative counters, see netPieces): a reader then sums
 * them by value and leaves out the values whose sessions sum to 0.
 *
 * A page filter's total ('') is the page row of its segment, at every grain. Its other dimensions come
 * from the kept days and weeks of analytics_page_facts and, for the rest, from analytics_page_sessions.
 */
export function factRows(from: Date, to: Date, dimensions: readonly SessionDimension[], grain: Grain = 'week', filter?: ReportFilter, net = false): string {
	const scope = reportScope(filter);
	const names = (list: readonly SessionDimension[]) => list.map((dimension) => `'${dimension}'`).join(', ');
	const parts: string[] = [];
	const rows = (table: string, { sign, grain: pieceGrain, span }: SignedPiece, condition: string, total = false) =>
		`SELECT ${FACT_ROW(sign, 'r', total)} FROM ${table} r WHERE r.site_id = $1::uuid AND r.segment = ${sqlText(scope.base)} AND r.grain = '${pieceGrain}'
			AND ${within('r.bucket', span)} AND ${condition}`;
	if (scope.page === undefined) {
		const pieces = piecesOf(from, to, grain, net, 'hour');
		for (const piece of pieces.filter(({ grain: pieceGrain }) => pieceGrain !== 'raw')) parts.push(rows('analytics_session_facts', piece, `r.dimension IN (${names(dimensions)})`));
		for (const sign of [1, -1] as const) if (rawSpans(pieces, sign).length > 0) parts.push(rawFacts(rawSpans(pieces, sign), dimensions, filter, sign));
		return parts.length === 0 ? NO_FACTS : parts.join('\nUNION ALL\n');
	}
	const pageScope = { ...scope, page: scope.page };
	if (dimensions.includes('')) {
		const pieces = piecesOf(from, to, grain, net, 'hour');
		for (const piece of pieces.filter(({ grain: pieceGrain }) => pieceGrain !== 'raw')) {
			parts.push(rows('analytics_session_facts', piece, `r.dimension = 'page' AND r.value = ${sqlText(scope.page)}`, true));
		}
		for (const sign of [1, -1] as const) if (rawSpans(pieces, sign).length > 0) parts.push(pageRawFacts(spanRows(rawSpans(pieces, sign)), [''], pageScope, filter, sign, grain));
	}
	const detail = dimensions.filter((dimension) => dimension !== '');
	if (detail.length > 0 && from < to) {
		// With no kept week in the range, its sessions are read once; otherwise piece by piece, kept rows where there are.
		const kept = readsKeptPageRows(from, to, filter);
		parts.push(`SELECT * FROM (${pageRawFacts(spanRows([[from.getTime(), to.getTime()]]), detail, pageScope, filter, 1, grain)}) whole WHERE NOT ${kept}`);
		const pieces = piecesOf(from, to, grain, net, 'day');
		const rolled = pieces.filter(({ grain: pieceGrain }) => pieceGrain !== 'raw');
		for (const piece of rolled) parts.push(rows('analytics_page_facts', piece, `r.path = ${sqlText(scope.page)} AND r.dimension IN (${names(detail)}) AND ${kept}`));
		for (const sign of [1, -1] as const) {
			const spans = [...(rawSpans(pieces, sign).length > 0 ? [spanRows(rawSpans(pieces, sign))] : []), ...rolled.filter((piece) => piece.sign === sign).map((piece) => unkeptBuckets(pageScope, piece))];
			if (spans.length > 0) parts.push(`SELECT * FROM (${pageRawFacts(spans.join('\nUNION ALL\n'), detail, pageScope, filter, sign, grain)}) piece WHERE ${kept}`);
		}
	}
	return parts.length === 0 ? NO_FACTS : parts.join('\nUNION ALL\n');
}

export type PresenceKind = 'visitor' | 'engaged';

/**
 * Distinct visitors of the site ($1) with a presence of `kind` (or of each page in `pages`, as
 * kind 'page:<path>') in [from, to), among the sessions the filter keeps, as rows (kind, visitors).
 * Whole hours: rollup rows whose previous hour lies before the range. Raw edges: their visitors that
 * have no presence in the whole hours (those are already counted). Under a page filter a visitor is
 * one with a session that viewed the page: kind "page:<path>" of the filter's segment.
 */
export function visitorCounts(from: Date, to: Date, kind: PresenceKind | { pages: string }, filter?: ReportFilter): string {
	const scope = reportScope(filter);
	if (typeof kind !== 'string' && scope.page !== undefined) throw new Error('visitorCounts counts the pages of a report without a page filter; see topPageVisitors');
	// Engaged presences are kept site-wide only (the funnel's): a filtered count of them is read raw.
	const pieces = readPieces(from, to, 'week', kind === 'engaged' && isFiltered(filter));
	const [h1, h2] = pieces.inner;
	const pageKind = scope.page === undefined || kind === 'engaged' ? null : `'page:' || ${sqlText(scope.page)}`;
	const kinds = typeof kind === 'string' ? `r.kind = ${pageKind ?? `'${kind}'`}` : `r.kind IN (SELECT 'page:' || path FROM (${kind.pages}) pages)`;
	const label = typeof kind === 'string' ? `'${kind}'` : 'r.kind';
	let edges = '';
	if (pieces.edges.length > 0 && scope.page !== undefined && kind !== 'engaged') {
		const page = sqlText(scope.page);
		edges = `UNION ALL SELECT '${kind as string}', count(DISTINCT edge.visitor_id) FROM (${pageSessionsIn(spanRows(pieces.edges), { ...scope, page: scope.page }, filter)}) edge
			WHERE ${h1 < h2
				? `NOT EXISTS (SELECT 1 FROM visitor_sessions s JOIN ${PAGE_SESSIONS} seen ON seen.site_id = s.site_id AND seen.started_at = s.started_at AND seen.session_id = s.id AND seen.path = ${page}
					WHERE s.visitor_id = edge.visitor_id AND ${within('s.started_at', [h1, h2])} AND ${baseCondition(filter, 'seen')} OFFSET 0)`
				: 'true'}`;
	} else if (pieces.edges.length > 0) {
		const presence = (sessions: string) =>
			typeof kind === 'string' ? presenceOf(sessions, kind, ONE_SEGMENT) : `SELECT * FROM (${presenceOf(sessions, 'pages', ONE_SEGMENT)}) p WHERE p.kind IN (SELECT 'page:' || path FROM (${kind.pages}) pages)`;
		const inner = `SELECT s.*, s.id AS session_id FROM visitor_sessions s WHERE s.visitor_id = edge.visitor_id AND ${within('s.started_at', [h1, h2])}
			AND ${sessionCondition(filter, iso(h1), `${iso(h2)} + ${LONGEST_SESSION}`)}`;
		edges = `UNION ALL SELECT edge.kind, count(DISTINCT edge.visitor_id) FROM (${presence(sessionsIn(pieces.edges, filter))}) edge
			WHERE ${h1 < h2 ? `NOT EXISTS (SELECT 1 FROM (${presence(inner)}) seen WHERE seen.kind = edge.kind)` : 'true'}
			GROUP BY edge.kind`;
	}
	return `SELECT kind, sum(visitors)::int AS visitors FROM (
		${rollupRows('analytics_visitor_pairs', `${label} AS kind, r.sessions AS visitors`, `r.segment = ${sqlText(scope.base)} AND ${kinds} AND r.prev_hour < ${iso(h1)}`, pieces)}
		${edges}) counted
		GROUP BY kind`;
}

/**
 * The ten paths with the most page views among the sessions the filter keeps, as rows (path,
 * pageviews, visitors, estimated), ordered. Without a page filter, from the page rows and their
 * visitors counted (visitorCounts). Under a page filter they are the paths viewed in the sessions that
 * viewed its page, and their visitors are those who viewed both pages in one session, which no
 * rollup keeps. When the range reads no kept page rows, all of it is counted in one pass over the
 * page's sessions (a few thousand at most). Otherwise the page views come from the kept rows (and
 * the sessions of the days and weeks not kept), and the visitors are estimated from what is exact:
 * the filter's sessions s and visitors v, and the s_q sessions of the range that viewed the top page
 * too. If each of a visitor's sessions viewed it independently, with the chance s_q / s, and every
 * visitor had the average s / v sessions, v · (1 − (1 − s_q / s)^(s / v)) of them did. That is exact
 * for the filter's own page and for a visitor with one session; at ten million events it was 2 to 4 %
 * above the count for the head pages over 30 days (a visitor's sessions differ).
 */
export function topPagesOf(from: Date, to: Date, filter?: ReportFilter, limit = 10): string {
	const scope = reportScope(filter);
	const ranked = (rows: string) => `SELECT path, sum(path_views)::int AS pageviews, sum(sessions)::int AS sessions FROM (${rows}) r
		GROUP BY path HAVING sum(sessions) > 0 ORDER BY pageviews DESC, path LIMIT ${limit}`;
	if (scope.page === undefined) {
		return `WITH top AS (${ranked(`SELECT value AS path, path_views, sessions FROM (${factRows(from, to, ['page'], 'week', filter, true)}) f`)})
			SELECT top.path, top.pageviews, coalesce(v.visitors, 0)::int AS visitors, false AS estimated
			FROM top LEFT JOIN (${visitorCounts(from, to, { pages: 'SELECT path FROM top' }, filter)}) v ON v.kind = 'page:' || top.path
			ORDER BY top.pageviews DESC, top.path`;
	}
	const pageScope = { ...scope, page: scope.page };
	const kept = readsKeptPageRows(from, to, filter);
	// The filter's own page is viewed in every one of its sessions: its row counts them.
	return `WITH viewed AS MATERIALIZED (
			SELECT v.path, v.views AS path_views, 1 AS sessions, s.visitor_id FROM (${pageSessionsIn(spanRows(from < to ? [[from.getTime(), to.getTime()]] : []), pageScope, filter)}) s
			${PATHS_OF_SESSION('v.path, v.views')}
			WHERE NOT ${kept}),
		counted AS MATERIALIZED (${ranked('SELECT * FROM viewed')}),
		covisited AS MATERIALIZED (SELECT value AS path, path_views, sessions FROM (${factRows(from, to, ['page'], 'week', filter, true)}) f WHERE ${kept}),
		rolled AS MATERIALIZED (${ranked('SELECT * FROM covisited')}),
		whole AS MATERIALIZED (SELECT (SELECT visitors FROM (${visitorCounts(from, to, 'visitor', filter)}) c) AS visitors,
			(SELECT sum(sessions) FROM covisited WHERE path = ${sqlText(scope.page)}) AS sessions)
		SELECT c.path, c.pageviews, coalesce(v.visitors, 0)::int AS visitors, false AS estimated FROM counted c
			LEFT JOIN (SELECT path, count(DISTINCT visitor_id)::int AS visitors FROM viewed WHERE path IN (SELECT path FROM counted) GROUP BY path) v USING (path)
		UNION ALL
		SELECT r.path, r.pageviews, round(whole.visitors * (1 - power(1 - r.sessions::float8 / whole.sessions, whole.sessions::float8 / whole.visitors)))::int, true
		FROM rolled r, whole
		ORDER BY 2 DESC, 1`;
}

/**
 * Whether a page filter's report over [from, to) reads kept page rows (analytics_page_facts), as an
 * SQL condition: any kept week that overlaps the range (a kept day lies in a kept week).
 */
export function readsKeptPageRows(from: Date, to: Date, filter: ReportFilter | undefined): string {
	const scope = reportScope(filter);
	if (scope.page === undefined) return 'false';
	return `EXISTS (SELECT 1 FROM analytics_page_facts k WHERE k.site_id = $1::uuid AND k.segment = ${sqlText(scope.base)} AND k.path = ${sqlText(scope.page)}
		AND k.grain = 'week' AND k.dimension = '' AND k.value = '' AND k.bucket >= ${iso(floorTo(from.getTime(), 'week'))} AND k.bucket < ${iso(to.getTime())})`;
}

/**
 * Visitors per bucket of a series, among the sessions the filter keeps: whole buckets from the
 * total rows of their own grain (a page filter: its page's rows by hour, its pair rows by day or
 * week, a few per bucket and returning visitor), partial first and last buckets through
 * visitorCounts. Needs $1 only; rows (at, visitors).
 */
export function visitorSeries(from: Date, to: Date, interval: Grain, filter?: ReportFilter): string {
	const scope = reportScope(filter);
	const { ends, middle } = split(from.getTime(), to.getTime(), interval);
	const parts: string[] = [];
	if (middle && (scope.page === undefined || interval === 'hour')) {
		const row = scope.page === undefined ? `r.dimension = '' AND r.value = ''` : `r.dimension = 'page' AND r.value = ${sqlText(scope.page)}`;
		parts.push(`SELECT r.bucket AS at, r.visitors FROM analytics_session_facts r
			WHERE r.site_id = $1::uuid AND r.segment = ${sqlText(scope.base)} AND r.grain = '${interval}' AND ${row} AND ${within('r.bucket', middle)}`);
	} else if (middle && scope.page !== undefined) {
		parts.push(`SELECT p.bucket AS at, ${PAIR_VISITORS} AS visitors FROM analytics_visitor_pairs p
			WHERE p.site_id = $1::uuid AND p.segment = ${sqlText(scope.base)} AND p.kind = 'page:' || ${sqlText(scope.page)} AND p.grain = '${interval}' AND ${within('p.bucket', middle)}
			GROUP BY p.bucket`);
	}
	for (const [a, b] of ends) {
		parts.push(`SELECT ${iso(floorTo(a, interval))} AS at, counted.visitors FROM (${visitorCounts(new Date(a), new Date(b), 'visitor', filter)}) counted`);
	}
	return parts.length === 0 ? `SELECT now() AS at, 0 AS visitors WHERE false` : `SELECT at, sum(visitors)::int AS visitors FROM (${parts.join('\nUNION ALL\n')}) v GROUP BY at`;
}

/**
 * The filter as a condition on a visitor_sessions row named s of the site ($1), for the sessions the
 * fold has seen: a page filter through the session's analytics_page_sessions row (one key lookup).
 */
export function foldedSessionCondition(filter: ReportFilter | undefined): string {
	const page = filter?.page
		? ` AND EXISTS (SELECT 1 FROM ${PAGE_SESSIONS} m WHERE m.site_id = s.site_id AND m.started_at = s.started_at AND m.session_id = s.id AND m.path = ${sqlText(filter.page)})`
		: '';
	return `${baseCondition(filter, 's')}${page}`;
}

/** Raw events of the site ($1) from `from` on: merged hourly counts, plus the raw events of a partial first hour. */
export function eventCountSince(from: Date | null): string {
	if (!from) return `(SELECT coalesce(sum(events), 0) FROM analytics_event_counts WHERE site_id = $1::uuid)`;
	const h1 = ceilTo(from.getTime(), 'hour');
	const partial = h1 > from.getTime() ? ` + (SELECT count(*) FROM visitor_events WHERE site_id = $1::uuid AND NOT is_bot AND ${within('occurred_at', [from.getTime(), h1])})` : '';
	return `((SELECT coalesce(sum(events), 0) FROM analytics_event_counts WHERE site_id = $1::uuid AND hour >= ${iso(h1)})${partial})`;
}
