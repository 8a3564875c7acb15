import type { TrackEvent, TrackEventType } from '../../lib/contracts/tracking';
import { clip } from './text';
import { uuidv7 } from './uuid';

/**
 * A visit, kept in storage so that every page of it (and every tab) adds to the same session.
 * Its fields are the session summary's properties as they are. Times in milliseconds since the
 * epoch; URLs within the 1,000 characters of a property value.
 */
export interface Session {
	/** UUIDv7, sent as every event's sessionId. */
	id: string;
	start: number;
	last: number;
	/** The campaign parameters the session began with ('' for none). */
	campaign: string;
	pages: number;
	events: number;
	/** Deepest scroll, in percent. */
	maxScrollDepth: number;
	engagedMs: number;
	/** Sum of the relevance of the session's events. */
	relevanceSum: number;
	entry?: string;
	exit: string;
}

/**
 * Whether an event at `now` belongs to a new session: after `timeoutMs` of inactivity, once the
 * session is longer than `maxMs`, or when the visitor arrives from a different campaign (a new
 * campaign is a new visit to attribute, as in GA4). An event without campaign parameters
 * continues the session it falls into.
 */
export const sessionOver = (session: Session | undefined, now: number, campaign: string, timeoutMs: number, maxMs: number) =>
	!session || now - session.last > timeoutMs || now - session.start > maxMs || (!!campaign && campaign != session.campaign);

export const startSession = (now: number, campaign: string, url: string): Session => ({
	id: uuidv7(now),
	start: now,
	last: now,
	campaign,
	pages: 0,
	events: 0,
	maxScrollDepth: 0,
	engagedMs: 0,
	relevanceSum: 0,
	exit: clip(url, 1000),
});

/** Adds an event to the session's counters: every scored event, whether or not it is sent. */
export function updateSession(session: Session, type: TrackEventType, now: number, url: string, relevance: number, props: TrackEvent['props'] = {}): void {
	session.last = now;
	session.events++;
	session.relevanceSum += relevance;
	if (type == 'pageview') {
		session.entry ??= clip(url, 1000);
		session.exit = clip(url, 1000);
		session.pages++;
	}
	session.maxScrollDepth = Math.max(session.maxScrollDepth, +props.depth! || 0);
	session.engagedMs += +props.engagedMs! || 0;
}
