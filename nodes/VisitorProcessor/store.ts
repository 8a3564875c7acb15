import type { EventItem } from '../../lib/contracts/delivery';
import type { PrismaClient } from '../../lib/db/generated/client';
import type { ResolvedSite } from '../shared/subjects';
import { earliestEvent, eventRow, eventsByVisitor, planVisit, rebuildFrom, type SessionFacts, type StoredEvent, type VisitOptions } from './visits';

/** An event as the node takes it: the delivery contract's event item (lib/contracts/delivery.ts). */
export type IncomingEvent = EventItem;

/** An incoming event's session, as the node outputs it on the event. */
export type SessionSummary = { visitorId: string; sessionId: string } & SessionFacts;

/** Events the receiver did not store (the node fed from elsewhere) are stored first, so sessions are always rebuilt from visitor_events. */
const STORE_MISSING_EVENTS = `
INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, name, url, path, title, referrer, relevance,
	properties, context, user_agent, country, occurred_at, received_at)
SELECT gen_random_uuid(), $1::uuid, e.event_id, e.anonymous_id, e.session_key, e.type, e.name, e.url, e.path, e.title, e.referrer,
	e.relevance, e.properties, e.context, e.user_agent, e.country, e.occurred_at, now()
FROM jsonb_to_recordset($2::jsonb) AS e(event_id uuid, anonymous_id text, session_key text, type text, name text, url text, path text,
	title text, referrer text, relevance int, properties jsonb, context jsonb, user_agent text, country text, occurred_at timestamptz)
ON CONFLICT (site_id, event_id) DO NOTHING`;

/** `updated_at` moves only when the row's content does, so a replayed delivery leaves the row as it was. */
const UPSERT_VISITOR = `
INSERT INTO visitors (id, site_id, anonymous_id, first_seen_at, last_seen_at, device_type, browser, os, country, is_bot, created_at, updated_at)
VALUES (gen_random_uuid(), $1::uuid, $2, $3::timestamptz, $4::timestamptz, $5, $6, $7, $8, $9, now(), now())
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
RETURNING id`;

/** Like UPSERT_VISITOR, `updated_at` moves only with the session's content. */
const UPSERT_SESSIONS = `
INSERT INTO visitor_sessions (id, site_id, visitor_id, session_key, started_at, last_activity_at, ended_at, pageviews, event_count,
	duration_seconds, engaged_time_ms, max_scroll_depth, is_bounce, entry_page, exit_page, engagement_score, engagement_level,
	channel, source, medium, campaign, term, content, referrer, referrer_domain, click_id_type, landing_page, device_type, browser, os,
	country, created_at, updated_at)
SELECT gen_random_uuid(), $1::uuid, $2::uuid, s.session_key, s.started_at, s.last_activity_at, s.ended_at, s.pageviews, s.event_count,
	s.duration_seconds, s.engaged_time_ms, s.max_scroll_depth, s.is_bounce, s.entry_page, s.exit_page, s.engagement_score,
	s.engagement_level::engagement_level, s.channel, s.source, s.medium, s.campaign, s.term, s.content, s.referrer, s.referrer_domain,
	s.click_id_type, s.landing_page, s.device_type, s.browser, s.os, s.country, now(), now()
FROM jsonb_to_recordset($3::jsonb) AS s(session_key text, started_at timestamptz, last_activity_at timestamptz, ended_at timestamptz,
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
	device_type = EXCLUDED.device_type, browser = EXCLUDED.browser, os = EXCLUDED.os, country = EXCLUDED.country,
	updated_at = CASE WHEN to_jsonb(visitor_sessions) - ARRAY['id', 'created_at', 'updated_at'] = to_jsonb(EXCLUDED) - ARRAY['id', 'created_at', 'updated_at']
		THEN visitor_sessions.updated_at ELSE now() END
RETURNING id, session_key`;

const LINK_EVENTS = `
UPDATE visitor_events AS e SET visitor_id = $2::uuid, session_id = l.session_id
FROM jsonb_to_recordset($3::jsonb) AS l(event_id uuid, session_id uuid)
WHERE e.site_id = $1::uuid AND e.event_id = l.event_id AND (e.visitor_id IS DISTINCT FROM $2::uuid OR e.session_id IS DISTINCT FROM l.session_id)`;

const VISITOR_CONCURRENCY = 4;

export type VisitorProcessorOptions = VisitOptions;

/**
 * Rebuilds the sessions a batch touches from the stored raw events, so the result depends only
 * on which events exist — never on how often or in which order they were delivered (n8n retries,
 * late offline events). Work starts at the stored session that a new event could extend; older
 * sessions cannot change. Each visitor is processed in its own transaction under an advisory
 * lock, so parallel executions for one visitor cannot interleave.
 */
export async function processEvents(
	prisma: PrismaClient,
	site: ResolvedSite,
	incoming: IncomingEvent[],
	options: VisitorProcessorOptions,
	now: number = Date.now(),
): Promise<Map<string, SessionSummary>> {
	await prisma.$executeRawUnsafe(STORE_MISSING_EVENTS, site.id, JSON.stringify(incoming.map(eventRow)));

	const summaries = new Map<string, SessionSummary>();
	const processVisitor = async (anonymousId: string, events: IncomingEvent[]) => {
		await prisma.$transaction(
			async (tx) => {
				await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', `${site.id}:${anonymousId}`);
				const [boundary] = await tx.$queryRawUnsafe<Array<{ started_at: Date }>>(
					`SELECT s.started_at FROM visitor_sessions s JOIN visitors v ON v.id = s.visitor_id
					WHERE v.site_id = $1::uuid AND v.anonymous_id = $2 AND s.started_at <= $3::timestamptz
					ORDER BY s.started_at DESC LIMIT 1`,
					site.id,
					anonymousId,
					new Date(earliestEvent(events)).toISOString(),
				);
				const from = rebuildFrom(events, boundary?.started_at);
				const rows = await tx.$queryRawUnsafe<StoredEvent[]>(
					`SELECT event_id::text, type, url, referrer, relevance, properties, context, user_agent, country, occurred_at
					FROM visitor_events WHERE site_id = $1::uuid AND anonymous_id = $2 AND occurred_at >= $3::timestamptz
					ORDER BY occurred_at, event_id`,
					site.id,
					anonymousId,
					from.toISOString(),
				);
				if (rows.length === 0) return;
				const plan = planVisit(anonymousId, rows, new Set(events.map((event) => event.id)), site.domain, options, now);

				const { device } = plan.visitor;
				const [visitor] = await tx.$queryRawUnsafe<Array<{ id: string }>>(
					UPSERT_VISITOR,
					site.id,
					anonymousId,
					plan.visitor.firstSeenAt.toISOString(),
					plan.visitor.lastSeenAt.toISOString(),
					device.deviceType,
					device.browser,
					device.os,
					plan.visitor.country,
					device.isBot,
				);
				const stored = await tx.$queryRawUnsafe<Array<{ id: string; session_key: string }>>(UPSERT_SESSIONS, site.id, visitor.id, JSON.stringify(plan.sessions));
				const idOfKey = new Map(stored.map((row) => [row.session_key, row.id]));
				await tx.$executeRawUnsafe(
					`DELETE FROM visitor_sessions WHERE visitor_id = $1::uuid AND started_at >= $2::timestamptz AND NOT (session_key = ANY(SELECT jsonb_array_elements_text($3::jsonb)))`,
					visitor.id,
					from.toISOString(),
					JSON.stringify([...idOfKey.keys()]),
				);
				await tx.$executeRawUnsafe(
					LINK_EVENTS,
					site.id,
					visitor.id,
					JSON.stringify(plan.eventSessions.map(({ eventId, sessionKey }) => ({ event_id: eventId, session_id: idOfKey.get(sessionKey) }))),
				);
				await tx.$executeRawUnsafe(
					`UPDATE visitors SET session_count = (SELECT count(*) FROM visitor_sessions WHERE visitor_id = $1::uuid),
						first_touch = COALESCE((SELECT jsonb_build_object('channel', channel, 'source', source, 'medium', medium, 'campaign', campaign,
							'landingPage', landing_page, 'referrerDomain', referrer_domain, 'clickIdType', click_id_type, 'at', started_at)
							FROM visitor_sessions WHERE visitor_id = $1::uuid ORDER BY started_at LIMIT 1), first_touch)
					WHERE id = $1::uuid`,
					visitor.id,
				);
				for (const [eventId, summary] of plan.incoming) summaries.set(eventId, { visitorId: visitor.id, sessionId: idOfKey.get(summary.sessionKey)!, ...summary });
			},
			{ timeout: 60_000, maxWait: 30_000 },
		);
	};

	// Visitors are independent (each has its own lock), so a few run at once; more would only
	// queue for the connection pool.
	const queue = [...eventsByVisitor(incoming)];
	const workers = Array.from({ length: Math.min(VISITOR_CONCURRENCY, queue.length) }, async () => {
		for (let next = queue.shift(); next; next = queue.shift()) await processVisitor(...next);
	});
	await Promise.all(workers);
	return summaries;
}
