import type { TrackerRelevanceRule, TrackerSettings } from '../../lib/contracts/trackerSettings';
import type { TrackEvent, TrackEventType } from '../../lib/contracts/tracking';

/**
 * The tracker's rules as plain functions: options, ids, relevance, sessions. No DOM is touched
 * at import, so they are tested directly; the glue in tracker.ts applies them to the page.
 * Every byte here is downloaded by every visitor (tracker/README.md, "Size"): the code is
 * written for the minifier and gzip, and the comments say what it means.
 */

export type Props = NonNullable<TrackEvent['props']>;

/**
 * Options of init() and of the script tag's data-* attributes (data-debug-mode is debugMode).
 * Everything else about the site's tracking is its site config on the receiver, which the
 * tracker reads from the endpoint (TrackerSettings).
 */
export type TrackerOptions = { site: string; endpoint?: string; debugMode?: boolean };

/** Where the running tracker sends, with the site's settings: undefined until the receiver gave them. */
export type Config = TrackerSettings & { site: string; endpoint: string };

/**
 * Checks the options: unknown ones, a missing site key, an endpoint that is no http(s) URL are
 * named in ONE console warning, in debug mode; the last two leave the tracker off (so the
 * warning need not say it), since it could only send what the receiver refuses. A relative
 * endpoint resolves against `base`: the script's own URL for the script tag, so the receiver that
 * served the script is the one that receives. Returns the site and the absolute endpoint, or
 * nothing. Nothing else is ever logged: the tracker runs inside other people's pages.
 */
export function configure({ site, endpoint, debugMode, ...unknown }: Record<string, unknown>, base: string): Pick<Config, 'site' | 'endpoint'> | undefined {
	const mistakes = Object.keys(unknown).map((key) => key + ' (unknown)');
	if (!site) mistakes.push('site (missing)');
	try {
		endpoint = new URL((endpoint as string) || '/api/track', base).href;
	} catch {
		// Not a URL at all: refused below with the other non-http(s) endpoints.
	}
	if (!/^http/.test(endpoint as string)) {
		site = '';
		mistakes.push('endpoint (not http)');
	}
	// true from init(), "true" from a data attribute.
	if (mistakes[0] && debugMode + '' == 'true') console.warn('[tracking-crm] check the options:', mistakes.join(', '));
	return site ? ({ site, endpoint } as Pick<Config, 'site' | 'endpoint'>) : undefined;
}

/**
 * RFC 9562 UUIDv7: 48 bits of milliseconds, version 7, then randomUUID's random bits and
 * variant. Generated in the browser because the id is the receiver's idempotency key: a retried
 * batch carries the same ids and is stored once. Time order keeps the receiver's index
 * append-mostly. randomUUID needs a secure context (https, or localhost), as sites have now.
 */
export const uuidv7 = (now = Date.now()) => (now + 2 ** 48).toString(16).replace(/1(.{8})/, '$1-') + '-7' + crypto.randomUUID().slice(15);

/**
 * The campaign parameters of a query string (location.search) as one key, which starts a new
 * session when it changes: the contract's utm_* fields and CLICK_ID_PARAMS (a test keeps them
 * matched; importing the lists would bundle zod), and whatever else looks like them (utm_foo,
 * xclid), as the key only compares one landing with another. The receiver takes the contract's
 * own into the page view's context, from its URL. `[matches] + ''` joins the parameters with
 * commas, and is '' where there are none ([null]).
 */
export const campaignOf = (search: string) => [search.match(/[?&](utm_|\w*(clk?id|braid)=|li_fat_id=)[^&]*/g)] + '';

/**
 * The first rule that matches decides, so a site orders its rules from specific to general; the
 * receiver ends the list with the default relevance of each event type and a rule that matches
 * any event. Paths are matched on their first 200 characters: a pattern with several stars can
 * backtrack polynomially, and must not freeze the visitor's page.
 */
export const relevanceOf = (rules: TrackerRelevanceRule[], type: TrackEventType, name: string | undefined, path: string) =>
	rules.find((rule) => (rule.type || type) == type && (rule.name || name) == name && (!rule.path || RegExp(rule.path, 'i').test(path.slice(0, 200))))!.relevance;

/**
 * A visit, kept in storage so that every page of it (and every tab) adds to the same session.
 * It is the session_end event's properties as it is, under short keys, since every byte here is
 * downloaded by every visitor: the receiver names them (SESSION_KEYS in lib/contracts/tracking.ts),
 * counts the pages and events from the counts per event type, and adds the length, the engagement
 * score and its level (withSessionSummary in server/ingest/normalize.ts). Times in milliseconds
 * since the epoch. Like everything the page shows (URLs, titles, names), its strings are sent as
 * they are: the receiver takes them at the contract's length, without control characters.
 */
export type Session = {
	/** UUIDv7, sent as every event's sessionId. */
	id: string;
	/** start */
	s: number;
	/** last: the latest event */
	l: number;
	/** campaign: the campaign parameters the session began with (none: undefined or '') */
	c?: string;
	/** maxScrollDepth, in percent */
	d: number;
	/** engagedMs */
	g: number;
	/** relevanceSum: of the session's events */
	r: number;
	/** entry: URL of the first event */
	n?: string;
	/** exit: URL of the latest event */
	x?: string;
} & Partial<Record<TrackEventType, number>>;

/**
 * Whether an event at `now` belongs to a new session: after `timeoutMs` of inactivity, once the
 * session is longer than `maxMs`, or when the visitor arrives from a different campaign (a new
 * campaign is a new visit to attribute, as in GA4). An event without campaign parameters
 * continues the session it falls into.
 */
export const sessionOver = (session: Session | null | undefined, now: number, campaign: string | undefined, timeoutMs: number, maxMs: number) =>
	!session || now - session.l > timeoutMs || now - session.s > maxMs || (!!campaign && campaign != session.c);

/** A session before its first event, which updateSession() adds. */
export const startSession = (now: number, campaign?: string): Session => ({ id: uuidv7(now), s: now, l: now, c: campaign, d: 0, g: 0, r: 0 });

/**
 * Adds an event to the session's counters: every scored event, whether or not it is sent, counted
 * by its type. The entry and exit pages are those of its first and last events (page views, as a
 * rule; as on the server, of another event where the session has no page view before it).
 */
export function updateSession(session: Session, type: TrackEventType, now: number, url: string, relevance: number, props: Props = {}): void {
	session.l = now;
	session[type] = -~session[type]!;
	session.r += relevance;
	session.x = url;
	session.n ||= url;
	if ((props.depth as number) > session.d) session.d = props.depth as number;
	session.g += (props.engagedMs as number) || 0;
}
