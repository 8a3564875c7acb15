import type { EventItem } from '../../lib/contracts/delivery';
import { storablePath } from '../../lib/contracts/tracking';
import type { EngagementLevel } from '../../lib/engagement';
import { detectDevice, type DeviceInfo } from '../shared/device';
import { sessionize, type Session } from '../shared/sessionize';
import { engagementOf, sessionEvents, type StoredEvent } from '../shared/sessionEngagement';

export type { StoredEvent } from '../shared/sessionEngagement';

export { eventsByVisitor } from '../shared/events';

/**
 * The Visitor Processor's decisions, apart from its statements (store.ts): which row an incoming
 * event is stored as, from which event a visitor's rebuild is reckoned, and what the visitor's stored events
 * make of its visitor row, its session rows, each event's session and each incoming event's
 * summary. Pure, so that the store only reads and writes.
 */

export interface VisitOptions {
	sessionTimeout: number;
	maxSessionDuration: number;
	engagementThresholds: { medium: number; high: number };
}

/**
 * An incoming event as a visitor_events row; the event id is its idempotency key, so a stored one
 * is left as it is. A path read from the URL is percent-encoded ASCII, but longer than the URL
 * where it encodes other characters; its time is written out as Postgres reads every one.
 */
export function eventRow(event: EventItem) {
	return {
		event_id: event.id,
		anonymous_id: event.anonymousId,
		session_key: event.sessionId ?? null,
		type: event.type,
		name: event.name ?? null,
		url: event.url ?? null,
		path: event.path ?? (event.url ? storablePath(new URL(event.url).pathname) : null),
		title: event.title ?? null,
		referrer: event.referrer ?? null,
		relevance: event.relevance ?? null,
		properties: event.props ?? null,
		context: event.context ?? null,
		user_agent: event.userAgent ?? null,
		country: event.country ?? null,
		occurred_at: new Date(event.occurredAt).toISOString(),
	};
}

/**
 * The time of the earliest of a visitor's incoming events, epoch milliseconds: its rebuild starts at
 * the latest stored session that began by then (a new event may extend it), else there (store.ts).
 */
export function earliestEvent(events: readonly EventItem[]): number {
	return events.reduce((min, event) => Math.min(min, Date.parse(event.occurredAt)), Number.POSITIVE_INFINITY);
}

/** What a session is summarised as on the incoming events it holds (the node's output). */
export interface SessionFacts {
	sessionKey: string;
	startedAt: string;
	engagementScore: number;
	engagementLevel: EngagementLevel;
	pageviews: number;
	durationSeconds: number;
	isBounce: boolean;
	channel: string;
	source: string;
	medium: string;
	campaign: string;
	entryPage: string;
	exitPage: string;
}

export interface VisitPlan {
	visitor: { firstSeenAt: Date; lastSeenAt: Date; device: DeviceInfo; country: string | null };
	/** visitor_sessions rows, by session key. */
	sessions: Array<ReturnType<typeof sessionRow>>;
	/** The session key of every stored event. */
	eventSessions: Array<{ eventId: string; sessionKey: string }>;
	/** The summary of each incoming event's session, by event id. */
	incoming: Map<string, SessionFacts>;
}

/**
 * What a visitor's stored events (from the rebuild's start, in time order) make: its sessions,
 * scored and leveled by the site's thresholds; the last one is still open (no end) while its
 * timeout has not passed at `now`. Device and bot verdict come from the latest user agent (and
 * any automation the tracker noticed), the country from the latest event that had one.
 */
export function planVisit(anonymousId: string, rows: readonly StoredEvent[], incomingIds: ReadonlySet<string>, siteDomain: string, options: VisitOptions, now: number): VisitPlan {
	const result = sessionize(sessionEvents(anonymousId, rows, siteDomain), { sessionTimeout: options.sessionTimeout, maxSessionDuration: options.maxSessionDuration, siteDomain });
	const last = rows[rows.length - 1];
	const device = detectDevice(last.user_agent, { automation: rows.some((row) => row.context?.automation === true) });
	const country = rows.findLast((row) => row.country)?.country ?? null;

	const facts = result.sessions.map((session, index) => {
		const { score, level } = engagementOf(session, options.engagementThresholds);
		const open = index === result.sessions.length - 1 && now - session.lastActivityAt < options.sessionTimeout * 1000;
		const touch = session.attribution;
		const summary: SessionFacts = {
			sessionKey: session.key,
			startedAt: new Date(session.startedAt).toISOString(),
			engagementScore: score,
			engagementLevel: level,
			pageviews: session.pageviews,
			durationSeconds: session.durationSeconds,
			isBounce: session.isBounce,
			channel: touch.channel,
			source: touch.source,
			medium: touch.medium,
			campaign: touch.campaign,
			entryPage: session.entryPage,
			exitPage: session.exitPage,
		};
		return { row: sessionRow(session, score, level, device, country, open), summary };
	});
	const incoming = new Map<string, SessionFacts>();
	const eventSessions = rows.map((row, index) => {
		const { summary } = facts[result.sessionOf[index]];
		if (incomingIds.has(row.event_id)) incoming.set(row.event_id, summary);
		return { eventId: row.event_id, sessionKey: summary.sessionKey };
	});
	return {
		visitor: { firstSeenAt: rows[0].occurred_at, lastSeenAt: last.occurred_at, device, country },
		sessions: facts.map((entry) => entry.row),
		eventSessions,
		incoming,
	};
}

function sessionRow(session: Session, score: number, level: EngagementLevel, device: DeviceInfo, country: string | null, open: boolean) {
	const touch = session.attribution;
	return {
		session_key: session.key,
		started_at: new Date(session.startedAt).toISOString(),
		last_activity_at: new Date(session.lastActivityAt).toISOString(),
		ended_at: open ? null : new Date(session.lastActivityAt).toISOString(),
		pageviews: session.pageviews,
		event_count: session.eventCount,
		duration_seconds: session.durationSeconds,
		engaged_time_ms: Math.min(session.engagedTimeMs, 2_147_483_647),
		max_scroll_depth: session.maxScrollDepth,
		is_bounce: session.isBounce,
		entry_page: session.entryPage,
		exit_page: session.exitPage,
		engagement_score: score,
		engagement_level: level,
		channel: touch.channel,
		source: touch.source,
		medium: touch.medium,
		campaign: touch.campaign,
		term: touch.term ?? null,
		content: touch.content ?? null,
		referrer: session.referrer,
		referrer_domain: touch.referrerDomain ?? null,
		click_id_type: touch.clickIdType ?? null,
		landing_page: session.landingPage,
		device_type: device.deviceType,
		browser: device.browser,
		os: device.os,
		country,
	};
}
