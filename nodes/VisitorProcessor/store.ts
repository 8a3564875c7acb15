import type { EventItem } from '../../lib/contracts/delivery';
import type { RawDatabase, RawSql } from '../../lib/db/rawSql';
import { lockBrowsers } from '../shared/events';
import { InputError } from '../shared/inputError';
import { ErasedPerson, erasedBrowsers } from '../shared/leads';
import type { ResolvedSite } from '../shared/subjects';
import { inTurns, transactionsAtOnce } from '../shared/transactions';
import { earliestEvent, eventRow, eventsByVisitor, planVisit, type SessionFacts, type StoredEvent, type VisitOptions } from './visits';

/** An event as the node takes it: the delivery contract's event item (lib/contracts/delivery.ts). */
export type IncomingEvent = EventItem;

/** An incoming event's session, as the node outputs it on the event. */
export type SessionSummary = { visitorId: string; sessionId: string } & SessionFacts;

/** What came of an incoming event: its session, why it was not stored, or that its browser was erased with it. */
export type EventOutcome = SessionSummary | InputError | ErasedPerson;

/** An event under an id another visitor's event has: its own visitor never reads it, and the other's session is not its. */
const usedId = () =>
	new InputError('id', 'is already the id of another visitor’s event (another anonymousId): give every event an id of its own; a redelivered event keeps both its id and its anonymousId');

/** Events the receiver did not store (the node fed from elsewhere) are stored first, so sessions are always rebuilt from visitor_events. */
const STORE_MISSING_EVENTS = `
INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, name, url, path, title, referrer, relevance,
	properties, context, user_agent, country, occurred_at, received_at)
SELECT gen_random_uuid(), $1::uuid, e.event_id, e.anonymous_id, e.session_key, e.type, e.name, e.url, e.path, e.title, e.referrer,
	e.relevance, e.properties, e.context, e.user_agent, e.country, e.occurred_at, now()
FROM jsonb_to_recordset($2::jsonb) AS e(event_id uuid, anonymous_id text, session_key text, type text, name text, url text, path text,
	title text, referrer text, relevance int, properties jsonb, context jsonb, user_agent text, country text, occurred_at timestamptz)
ON CONFLICT (site_id, event_id) DO NOTHING`;


/**
 * Every visitor's stored events from the start of its rebuild (rebuildFrom: the latest stored
 * session that began by its earliest incoming event, else that event), in time order. Each
 * visitor's start is found once and its events read by the (site, anonymous id, time) index: a
 * plain join let the planner, on a table whose statistics lag behind, read and sort every event of
 * the site, or find the start again for every event row.
 */
const READ_VISITS = `
WITH incoming AS (SELECT * FROM unnest($2::text[], $3::timestamptz[]) AS i(anonymous_id, earliest)),
starts AS MATERIALIZED (
	SELECT i.anonymous_id, COALESCE((
		SELECT s.started_at FROM visitor_sessions s JOIN visitors v ON v.id = s.visitor_id
		WHERE v.site_id = $1::uuid AND v.anonymous_id = i.anonymous_id AND s.started_at <= i.earliest
		ORDER BY s.started_at DESC LIMIT 1), i.earliest) AS from_at
	FROM incoming i)
SELECT st.anonymous_id, st.from_at, e.event_id::text, e.type, e.url, e.referrer, e.relevance, e.properties, e.context, e.user_agent, e.country, e.occurred_at,
	l.visitor_id, l.session_id
-- Each OFFSET 0 keeps its subquery a key lookup per visitor and per event: flattened into joins,
-- a planner whose statistics still think the tables small (a new site, a burst before autovacuum
-- analyzes) scanned all of the site's events, and all of its links once per event.
FROM starts st CROSS JOIN LATERAL (
	SELECT * FROM visitor_events e WHERE e.site_id = $1::uuid AND e.anonymous_id = st.anonymous_id AND e.occurred_at >= st.from_at OFFSET 0
) e
LEFT JOIN LATERAL (SELECT l.visitor_id, l.session_id FROM visitor_event_links l WHERE l.site_id = e.site_id AND l.event_id = e.event_id OFFSET 0) l ON true
ORDER BY st.anonymous_id, e.occurred_at, e.event_id`;

/**
 * The visitors of a batch, in anonymous-id order (the order the Lead Scorer claims visitors in, so
 * the two never wait for each other's rows crosswise). `updated_at` moves only when the row's
 * content does, so a replayed delivery leaves the row as it was.
 */
const UPSERT_VISITORS = `
INSERT INTO visitors (id, site_id, anonymous_id, first_seen_at, last_seen_at, device_type, browser, os, country, is_bot, created_at, updated_at)
SELECT gen_random_uuid(), $1::uuid, v.anonymous_id, v.first_seen_at, v.last_seen_at, v.device_type, v.browser, v.os, v.country, v.is_bot, now(), now()
FROM jsonb_to_recordset($2::jsonb) AS v(anonymous_id text, first_seen_at timestamptz, last_seen_at timestamptz, device_type text, browser text, os text,
	country text, is_bot boolean)
ORDER BY v.anonymous_id
ON CONFLICT (site_id, anonymous_id) DO UPDATE SET
	first_seen_at = LEAST(visitors.first_seen_at, EXCLUDED.first_seen_at),
	last_seen_at = GREATEST(visitors.last_seen_at, EXCLUDED.last_seen_at),
	device_type = COALESCE(EXCLUDED.device_type, visitors.device_type),
	browser = COALESCE(EXCLUDED.browser, visitors.browser),
	os = COALESCE(EXCLUDED.os, visitors.os),
	country = COALESCE(EXCLUDED.country, visitors.country),
	is_bot = visitors.is_bot OR EXCLUDED.is_bot,
	updated_at = CASE WHEN (LEAST(visitors.first_seen_at, EXCLUDED.first_seen_at), GREATEST(visitors.last_seen_at, EXCLUDED.last_seen_at),
			COALESCE(EXCLUDED.device_type, visitors.device_type), COALESCE(EXCLUDED.browser, visitors.browser), COALESCE(EXCLUDED.os, visitors.os),
			COALESCE(EXCLUDED.country, visitors.country), visitors.is_bot OR EXCLUDED.is_bot)
		IS NOT DISTINCT FROM (visitors.first_seen_at, visitors.last_seen_at, visitors.device_type, visitors.browser, visitors.os, visitors.country, visitors.is_bot)
		THEN visitors.updated_at ELSE now() END
RETURNING id, anonymous_id`;

/**
 * Only sessions whose content changed are written: a rebuild replans the visitor's last stored
 * session, and a redelivery all of them, and rewriting one unchanged would fire the rollups'
 * triggers, which note its hour and every later hour of the visitor for refolding. The ids of
 * the sessions left as they were are read beside those written.
 */
const UPSERT_SESSIONS = `
WITH written AS (
INSERT INTO visitor_sessions (id, site_id, visitor_id, session_key, started_at, last_activity_at, ended_at, pageviews, event_count,
	duration_seconds, engaged_time_ms, max_scroll_depth, is_bounce, entry_page, exit_page, engagement_score, engagement_level,
	channel, source, medium, campaign, term, content, referrer, referrer_domain, click_id_type, landing_page, device_type, browser, os,
	country, created_at, updated_at)
SELECT gen_random_uuid(), $1::uuid, s.visitor_id, s.session_key, s.started_at, s.last_activity_at, s.ended_at, s.pageviews, s.event_count,
	s.duration_seconds, s.engaged_time_ms, s.max_scroll_depth, s.is_bounce, s.entry_page, s.exit_page, s.engagement_score,
	s.engagement_level::engagement_level, s.channel, s.source, s.medium, s.campaign, s.term, s.content, s.referrer, s.referrer_domain,
	s.click_id_type, s.landing_page, s.device_type, s.browser, s.os, s.country, now(), now()
FROM jsonb_to_recordset($2::jsonb) AS s(visitor_id uuid, session_key text, started_at timestamptz, last_activity_at timestamptz, ended_at timestamptz,
	pageviews int, event_count int, duration_seconds int, engaged_time_ms int, max_scroll_depth int, is_bounce boolean, entry_page text,
	exit_page text, engagement_score float8, engagement_level text, channel text, source text, medium text, campaign text, term text,
	content text, referrer text, referrer_domain text, click_id_type text, landing_page text, device_type text, browser text, os text,
	country text)
ON CONFLICT (site_id, session_key) DO UPDATE SET
	started_at = EXCLUDED.started_at, last_activity_at = EXCLUDED.last_activity_at, ended_at = EXCLUDED.ended_at,
	pageviews = EXCLUDED.pageviews, event_count = EXCLUDED.event_count, duration_seconds = EXCLUDED.duration_seconds,
	engaged_time_ms = EXCLUDED.engaged_time_ms, max_scroll_depth = EXCLUDED.max_scroll_depth, is_bounce = EXCLUDED.is_bounce,
	entry_page = EXCLUDED.entry_page, exit_page = EXCLUDED.exit_page, engagement_score = EXCLUDED.engagement_score,
	engagement_level = EXCLUDED.engagement_level, channel = EXCLUDED.channel, source = EXCLUDED.source, medium = EXCLUDED.medium,
	campaign = EXCLUDED.campaign, term = EXCLUDED.term, content = EXCLUDED.content, referrer = EXCLUDED.referrer,
	referrer_domain = EXCLUDED.referrer_domain, click_id_type = EXCLUDED.click_id_type, landing_page = EXCLUDED.landing_page,
	device_type = EXCLUDED.device_type, browser = EXCLUDED.browser, os = EXCLUDED.os, country = EXCLUDED.country, updated_at = now()
WHERE to_jsonb(visitor_sessions) - ARRAY['id', 'created_at', 'updated_at'] IS DISTINCT FROM to_jsonb(EXCLUDED) - ARRAY['id', 'created_at', 'updated_at']
RETURNING id, session_key)
SELECT id, session_key FROM written
UNION ALL
SELECT id, session_key FROM visitor_sessions WHERE site_id = $1::uuid AND session_key = ANY($3::text[]) AND session_key NOT IN (SELECT session_key FROM written)`;

/** The sessions a rebuild no longer makes: stored from a visitor's rebuild start on, under a key the plan has not. */
const DELETE_UNMADE_SESSIONS = `
DELETE FROM visitor_sessions s USING unnest($1::uuid[], $2::timestamptz[]) AS d(visitor_id, from_at)
WHERE s.visitor_id = d.visitor_id AND s.started_at >= d.from_at AND NOT (s.session_key = ANY($3::text[]))`;

/** Who stored events belong to: incoming events their visitor's read lacks may be another visitor's. */
const EVENT_OWNERS = `
SELECT event_id::text, anonymous_id FROM visitor_events WHERE site_id = $1::uuid AND event_id = ANY($2::uuid[])`;

const LINK_EVENTS = `
INSERT INTO visitor_event_links (site_id, event_id, visitor_id, session_id)
SELECT $1::uuid, l.event_id, l.visitor_id, l.session_id FROM unnest($2::uuid[], $3::uuid[], $4::uuid[]) AS l(event_id, visitor_id, session_id)
ON CONFLICT (site_id, event_id) DO UPDATE SET visitor_id = EXCLUDED.visitor_id, session_id = EXCLUDED.session_id
WHERE (visitor_event_links.visitor_id, visitor_event_links.session_id) IS DISTINCT FROM (EXCLUDED.visitor_id, EXCLUDED.session_id)`;

const COUNT_SESSIONS = `
UPDATE visitors SET session_count = (SELECT count(*) FROM visitor_sessions WHERE visitor_id = visitors.id),
	first_touch = COALESCE((SELECT jsonb_build_object('channel', channel, 'source', source, 'medium', medium, 'campaign', campaign,
		'landingPage', landing_page, 'referrerDomain', referrer_domain, 'clickIdType', click_id_type, 'at', started_at)
		FROM visitor_sessions WHERE visitor_id = visitors.id ORDER BY started_at LIMIT 1), first_touch)
WHERE id = ANY($1::uuid[])`;

/**
 * Visitors per transaction at most: each holds its advisory lock until commit, and Postgres keeps
 * every lock of every connection in one table (max_locks_per_transaction × max_connections).
 */
const VISITORS_PER_TRANSACTION = 500;

/** Events below which a batch is not split further for concurrency: a transaction's round trips cost more than they would save. */
const MIN_EVENTS_PER_TRANSACTION = 1_000;

/**
 * A batch's visitors (sorted by anonymous id) split into contiguous parts of about equal events:
 * `transactions` parts at most when it is large enough, and never a part of more than
 * VISITORS_PER_TRANSACTION visitors. Parts share no visitor, so they can commit in any order.
 */
export function transactionParts<T>(visitors: ReadonlyArray<readonly [string, readonly T[]]>, transactions: number): Array<Array<readonly [string, readonly T[]]>> {
	const events = visitors.reduce((sum, [, list]) => sum + list.length, 0);
	const target = Math.max(MIN_EVENTS_PER_TRANSACTION, Math.ceil(events / Math.max(1, transactions)));
	const parts: Array<Array<readonly [string, readonly T[]]>> = [];
	let part: Array<readonly [string, readonly T[]]> = [];
	let partEvents = 0;
	for (const visitor of visitors) {
		if (part.length > 0 && (partEvents >= target || part.length >= VISITORS_PER_TRANSACTION)) {
			parts.push(part);
			part = [];
			partEvents = 0;
		}
		part.push(visitor);
		partEvents += visitor[1].length;
	}
	if (part.length > 0) parts.push(part);
	return parts;
}

export type VisitorProcessorOptions = VisitOptions;

interface VisitRow extends StoredEvent {
	anonymous_id: string;
	from_at: Date;
	/** The event's visitor and session as stored: only links that change are written. */
	visitor_id: string | null;
	session_id: string | null;
}

/**
 * Rebuilds the sessions a batch touches from the stored raw events, so the result depends only
 * on which events exist — never on how often or in which order they were delivered (n8n retries,
 * late offline events). Work starts at the stored session that a new event could extend; older
 * sessions cannot change. The batch's visitors are processed together under their advisory locks,
 * a fixed number of statements whatever the batch's size, so two executions that share a visitor
 * (n8n's queue mode runs them on different workers) take turns on it. Each incoming event gets its
 * session, or an InputError when its id is already another visitor's.
 */
export async function processEvents(
	db: RawDatabase,
	site: ResolvedSite,
	incoming: IncomingEvent[],
	options: VisitorProcessorOptions,
	now: number = Date.now(),
): Promise<Map<IncomingEvent, EventOutcome>> {
	const outcomes = new Map<IncomingEvent, EventOutcome>();
	const visitors = [...eventsByVisitor(await ownIds(db, site, incoming, outcomes))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
	const atOnce = transactionsAtOnce(db);
	// Every transaction has ended before the node answers: a part that failed stops the ones not
	// begun, and those already committed are rebuilt unchanged by the retry.
	await inTurns(transactionParts(visitors, atOnce), atOnce, (part) => db.$transaction(async (tx) => await processVisitors(tx, site, part, options, now, outcomes)));
	return outcomes;
}

/**
 * The incoming events but those under an id another visitor's event has, which are answered as
 * such: where visitors share an id, it is the stored event's visitor's, else the first one's.
 */
async function ownIds(db: RawDatabase, site: ResolvedSite, incoming: readonly IncomingEvent[], outcomes: Map<IncomingEvent, EventOutcome>): Promise<readonly IncomingEvent[]> {
	const owners = new Map<string, string>();
	const shared = new Set<string>();
	for (const event of incoming) {
		const id = event.id.toLowerCase();
		const owner = owners.get(id);
		if (owner === undefined) owners.set(id, event.anonymousId);
		else if (owner !== event.anonymousId) shared.add(id);
	}
	if (shared.size === 0) return incoming;
	for (const row of await db.$queryRawUnsafe<Array<{ event_id: string; anonymous_id: string }>>(EVENT_OWNERS, site.id, [...shared])) owners.set(row.event_id, row.anonymous_id);
	return incoming.filter((event) => {
		if (owners.get(event.id.toLowerCase()) === event.anonymousId) return true;
		outcomes.set(event, usedId());
		return false;
	});
}

/**
 * The events among `missing` that an erasure deleted with their browser: received (or, from a
 * sender that gives no receipt time, happened) by the browser's erasure. Later ones are a new visit.
 */
async function erasedEvents(tx: RawSql, siteId: string, missing: readonly IncomingEvent[]): Promise<Set<IncomingEvent>> {
	const erasedAt = await erasedBrowsers(tx, siteId, [...new Set(missing.map((event) => event.anonymousId))]);
	return new Set(
		missing.filter((event) => {
			const at = erasedAt.get(event.anonymousId);
			return at !== undefined && Date.parse(event.receivedAt ?? event.occurredAt) <= at;
		}),
	);
}

async function processVisitors(
	tx: RawSql,
	site: ResolvedSite,
	incoming: ReadonlyArray<readonly [string, readonly IncomingEvent[]]>,
	options: VisitorProcessorOptions,
	now: number,
	outcomes: Map<IncomingEvent, EventOutcome>,
): Promise<void> {
	await lockBrowsers(
		tx,
		site.id,
		incoming.map(([anonymousId]) => anonymousId),
	);
	let visitors = incoming;
	const readVisits = () =>
		tx.$queryRawUnsafe<VisitRow[]>(
			READ_VISITS,
			site.id,
			visitors.map(([anonymousId]) => anonymousId),
			visitors.map(([, events]) => new Date(earliestEvent(events)).toISOString()),
		);
	let rows = await readVisits();
	// The read covers every stored incoming event: what it lacks, the receiver did not store, or an
	// erasure deleted while the delivery was on its way (under these locks, so it is seen here).
	const read = new Set(rows.map((row) => row.event_id));
	let missing: readonly IncomingEvent[] = visitors.flatMap(([, events]) => events.filter((event) => !read.has(event.id.toLowerCase())));
	if (missing.length > 0) {
		const erased = await erasedEvents(tx, site.id, missing);
		if (erased.size > 0) {
			for (const event of erased) outcomes.set(event, new ErasedPerson(event.anonymousId, 'visitor'));
			visitors = visitors.map(([anonymousId, events]) => [anonymousId, events.filter((event) => !erased.has(event))] as const).filter(([, events]) => events.length > 0);
			missing = missing.filter((event) => !erased.has(event));
			if (visitors.length === 0) return;
		}
		if (missing.length > 0) await tx.$executeRawUnsafe(STORE_MISSING_EVENTS, site.id, JSON.stringify(missing.map(eventRow)));
		rows = await readVisits();
	}
	const rowsOf = new Map<string, VisitRow[]>();
	for (const row of rows) {
		const list = rowsOf.get(row.anonymous_id);
		if (list) list.push(row);
		else rowsOf.set(row.anonymous_id, [row]);
	}
	const planned = visitors.flatMap(([anonymousId, events]) => {
		const rows = rowsOf.get(anonymousId);
		if (!rows) return [];
		const plan = planVisit(anonymousId, rows, new Set(events.map((event) => event.id)), site.domain, options, now);
		return [{ anonymousId, events, from: rows[0].from_at, plan, rows }];
	});
	const planOf = new Map(planned.map((visit) => [visit.anonymousId, visit.plan]));
	const unread = visitors.flatMap(([anonymousId, events]) => events.filter((event) => !planOf.get(anonymousId)?.incoming.has(event.id.toLowerCase())));
	if (unread.length > 0) {
		const owners = await tx.$queryRawUnsafe<Array<{ event_id: string; anonymous_id: string }>>(EVENT_OWNERS, site.id, unread.map((event) => event.id));
		const ownerOf = new Map(owners.map((row) => [row.event_id, row.anonymous_id]));
		for (const event of unread) {
			const owner = ownerOf.get(event.id.toLowerCase());
			if (owner !== undefined && owner !== event.anonymousId) outcomes.set(event, usedId());
		}
	}
	if (planned.length === 0) return;

	const written = await tx.$queryRawUnsafe<Array<{ id: string; anonymous_id: string }>>(
		UPSERT_VISITORS,
		site.id,
		JSON.stringify(
			planned.map(({ anonymousId, plan: { visitor } }) => ({
				anonymous_id: anonymousId,
				first_seen_at: visitor.firstSeenAt.toISOString(),
				last_seen_at: visitor.lastSeenAt.toISOString(),
				device_type: visitor.device.deviceType,
				browser: visitor.device.browser,
				os: visitor.device.os,
				country: visitor.country,
				is_bot: visitor.device.isBot,
			})),
		),
	);
	const visitorOf = new Map(written.map((row) => [row.anonymous_id, row.id]));
	const sessionRows = planned.flatMap(({ anonymousId, plan }) => plan.sessions.map((session) => ({ visitor_id: visitorOf.get(anonymousId), ...session })));
	const sessions = await tx.$queryRawUnsafe<Array<{ id: string; session_key: string }>>(
		UPSERT_SESSIONS,
		site.id,
		JSON.stringify(sessionRows),
		sessionRows.map((session) => session.session_key),
	);
	const idOfKey = new Map(sessions.map((row) => [row.session_key, row.id]));
	await tx.$executeRawUnsafe(
		DELETE_UNMADE_SESSIONS,
		planned.map(({ anonymousId }) => visitorOf.get(anonymousId)),
		planned.map(({ from }) => from.toISOString()),
		[...idOfKey.keys()],
	);
	const links = planned.flatMap(({ anonymousId, plan, rows }) =>
		plan.eventSessions.flatMap(({ eventId, sessionKey }, index) => {
			const link = { eventId, visitorId: visitorOf.get(anonymousId) as string, sessionId: idOfKey.get(sessionKey) as string };
			return rows[index].visitor_id === link.visitorId && rows[index].session_id === link.sessionId ? [] : [link];
		}),
	);
	if (links.length > 0) {
		await tx.$executeRawUnsafe(
			LINK_EVENTS,
			site.id,
			links.map((link) => link.eventId),
			links.map((link) => link.visitorId),
			links.map((link) => link.sessionId),
		);
	}
	await tx.$executeRawUnsafe(COUNT_SESSIONS, [...visitorOf.values()]);
	for (const { anonymousId, events, plan } of planned) {
		const visitorId = visitorOf.get(anonymousId)!;
		const summaries = new Map([...plan.incoming].map(([eventId, summary]) => [eventId, { visitorId, sessionId: idOfKey.get(summary.sessionKey)!, ...summary }]));
		for (const event of events) {
			const summary = summaries.get(event.id.toLowerCase());
			if (summary) outcomes.set(event, summary);
		}
	}
}
