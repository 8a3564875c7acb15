import type { TrackEvent } from '../../lib/contracts/tracking';
import { sessionEngagement, type EngagementLevel } from '../../lib/engagement';
import { sessionize, type Session, type SessionEvent } from './sessionize';

// A session's engagement from its stored events: the Visitor Processor scores its session rows
// with it, the Conversion Detector a goal's minEngagementScore.

/** A visitor_events row as the store reads a visitor's events back. */
export interface StoredEvent {
	event_id: string;
	type: TrackEvent['type'];
	url: string | null;
	referrer: string | null;
	relevance: number | null;
	properties: TrackEvent['props'] | null;
	context: TrackEvent['context'] | null;
	user_agent: string | null;
	country: string | null;
	occurred_at: Date;
}

export function sessionEvents(anonymousId: string, rows: readonly StoredEvent[], siteDomain: string): SessionEvent[] {
	return rows.map((row) => ({
		id: row.event_id,
		type: row.type,
		ts: row.occurred_at.getTime(),
		anonymousId,
		url: row.url ?? `https://${siteDomain}/`,
		referrer: row.referrer ?? undefined,
		relevance: row.relevance ?? undefined,
		props: row.properties ?? undefined,
		context: row.context ?? undefined,
	}));
}

/** One answer per session: the tracker's summary, where the session has it, else its stored events. */
export function engagementOf(session: Session, thresholds: { medium: number; high: number }): { score: number; level: EngagementLevel } {
	return session.summaryEngagement ?? sessionEngagement(session, thresholds);
}

/** Events the Visitor Processor already grouped into one session are never split again when scored on their own. */
const ONE_SESSION = { sessionTimeout: Number.MAX_SAFE_INTEGER / 1000, maxSessionDuration: Number.MAX_SAFE_INTEGER / 1000 };

/**
 * The engagement score a session had reached at one of its events: the score of its stored events
 * up to and including that one (`rows`, in time order). A goal's minEngagementScore reads this
 * rather than the session's current score, so whether an event reaches the goal does not depend
 * on how many of the session's later events were processed before it.
 */
export function engagementAt(anonymousId: string, rows: readonly StoredEvent[], siteDomain: string): number {
	if (rows.length === 0) return 0;
	const [session] = sessionize(sessionEvents(anonymousId, rows, siteDomain), { ...ONE_SESSION, siteDomain }).sessions;
	// The score does not depend on the thresholds, which only name its level.
	return engagementOf(session, { medium: 0, high: 0 }).score;
}

