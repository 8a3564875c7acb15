import type { SiteConfig } from '../../lib/contracts/siteConfig';
import type { TrackEvent, TrackEventType } from '../../lib/contracts/tracking';

/**
 * The tracker's rules as plain functions: options, ids, relevance, sessions. No DOM is touched
 * at import, so they are tested directly; the glue in tracker.ts applies them to the page.
 * Every byte here is downloaded by every visitor (tracker/README.md, "Size"): the code is
 * written for the minifier and gzip, and the comments say what it means.
 */

type Tracking = SiteConfig['tracking'];
export type RelevanceRule = Tracking['eventRelevance'][number];
export type Props = NonNullable<TrackEvent['props']>;

/**
 * Options of init() and of the script tag's data-* attributes (data-session-timeout is
 * sessionTimeout). They carry the names and units of the site config's tracking and privacy
 * sections, so a site copies its values over as they are.
 */
export type TrackerOptions = { site: string; endpoint?: string } & Partial<
	Pick<Tracking, 'sessionTimeout' | 'maxSessionDuration' | 'debugMode' | 'relevanceThreshold' | 'eventRelevance' | 'hashRouting' | 'cookieless'> &
		Pick<SiteConfig['privacy'], 'cookieConsent' | 'respectGlobalPrivacyControl' | 'respectDoNotTrack'>
>;

/** Defaults as in the site config schema: a tracker without options behaves as a site config without them. */
export const DEFAULTS = {
	site: '',
	endpoint: '/api/track',
	sessionTimeout: 1800,
	maxSessionDuration: 43_200,
	debugMode: false,
	relevanceThreshold: 1,
	eventRelevance: [] as RelevanceRule[],
	hashRouting: false,
	cookieless: false,
	cookieConsent: true,
	respectGlobalPrivacyControl: true,
	respectDoNotTrack: true,
};

export type Config = typeof DEFAULTS;

/** The running tracker's configuration; undefined until configure() accepted one. */
export let config: Config | undefined;

/**
 * Takes the options over the defaults, once. Every mistake (unknown options, a missing site
 * key, an endpoint that is no http(s) URL) is named in ONE console warning, in debug mode; the
 * last two leave the tracker off, since it could only send what the receiver refuses. A
 * relative endpoint resolves against `base`: the script's own URL for the script tag, so the
 * receiver that served the script is the one that receives. Nothing else is ever logged: the
 * tracker runs inside other people's pages.
 */
export function configure(options: Record<string, unknown>, base: string): Config | undefined {
	const candidate = { ...DEFAULTS, ...options } as Config;
	const mistakes: string[] = [];
	let endpoint: string | undefined;
	for (const key in options) if (!(key in DEFAULTS)) mistakes.push(key + ' (unknown)');
	if (!candidate.site) mistakes.push('site (data-site is required)');
	try {
		endpoint = new URL(candidate.endpoint, base).href;
	} catch {
		// Not a URL at all: refused below with the other non-http(s) endpoints.
	}
	if (!/^http/.test((candidate.endpoint = endpoint!))) {
		candidate.site = '';
		mistakes.push('endpoint (must be an http(s) URL)');
	}
	if (candidate.site) config ||= candidate;
	// A rejected config is not the running one, yet its debugMode decides whether to tell.
	if (mistakes[0] && candidate.debugMode) console.warn('[tracking-crm]', `check the options: ${mistakes.join(', ')}${config ? '' : '; tracking is off'}`);
	return config;
}

/**
 * A string the receiver accepts: without control characters (the tracking contract refuses all
 * but tab and line breaks, the lead contract those too) and within the contract's length. The
 * receiver refuses a whole batch for one bad field, so none is sent.
 */
// eslint-disable-next-line no-control-regex
export const clip = (value: string, max: number) => value.replace(/[\0-\x1f\x7f]/g, '').slice(0, max);

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
 * own into the page view's context, from its URL.
 */
export const campaignOf = (search: string) => (search.match(/[?&](utm_|\w*(clk?id|braid)=|li_fat_id=)[^&]*/g) || []).join('').slice(0, 1e3);

/** Without trailing slashes, as the server's path patterns compare paths (case aside: pathMatches ignores it). */
const normalize = (path: string) => path.replace(/(.)\/+$/, '$1');

/**
 * The site config's path glob: `*` within a segment, `**` across segments, and a whole `/**`
 * segment also matches no segment (`/docs/**` matches `/docs`), as on the server. As a regular
 * expression with several stars backtracks polynomially, paths are matched on their first 200
 * characters, which keeps a pathological pattern from freezing the visitor's page.
 */
export const pathMatches = (pattern: string, path: string) =>
	RegExp(
		`^${normalize(pattern)
			.replace(/[^\w*/]/g, '\\$&')
			.replace(/\/\*\*(?=\/|$)|\*\*?/g, (star) => (star[2] ? '(/.*)?' : star[1] ? '.*' : '[^/]*'))}$`,
		'i',
	).test(normalize(path).slice(0, 200));

/** Relevance of an event no rule matches, when it is not 5: intent (forms, downloads) above ambient signals. */
const DEFAULT_RELEVANCE: Partial<Record<TrackEventType, number>> = { form_submit: 8, download: 7, scroll: 2, engagement: 2 };

/**
 * The first rule that matches decides, so a site orders its rules from specific to general. A
 * relevance outside 1–10 is brought within: one bad rule must not make every batch invalid.
 */
export function relevanceOf(rules: RelevanceRule[], type: TrackEventType, name: string | undefined, path: string): number {
	const rule = rules.find((rule) => (rule.type || type) == type && (rule.name || name) == name && (!rule.urlPattern || pathMatches(rule.urlPattern, path)));
	return rule ? Math.min(Math.max(rule.relevance | 0, 1), 10) : DEFAULT_RELEVANCE[type] || 5;
}

/**
 * A visit, kept in storage so that every page of it (and every tab) adds to the same session.
 * It is the session_end event's properties as it is: the receiver adds the length, the engagement
 * score and its level (withSessionSummary in server/ingest/normalize.ts). Times in milliseconds
 * since the epoch; URLs within the 1,000 characters of a property value.
 */
export interface Session {
	/** UUIDv7, sent as every event's sessionId. */
	id: string;
	start: number;
	last: number;
	/** The campaign parameters the session began with (none: undefined or ''). */
	campaign?: string;
	pages: number;
	events: number;
	/** Deepest scroll, in percent. */
	maxScrollDepth: number;
	engagedMs: number;
	/** Sum of the relevance of the session's events. */
	relevanceSum: number;
	entry?: string;
	/** URL of the latest event ('' before the first). */
	exit: string;
}

/**
 * Whether an event at `now` belongs to a new session: after `timeoutMs` of inactivity, once the
 * session is longer than `maxMs`, or when the visitor arrives from a different campaign (a new
 * campaign is a new visit to attribute, as in GA4). An event without campaign parameters
 * continues the session it falls into.
 */
export const sessionOver = (session: Session | null | undefined, now: number, campaign: string | undefined, timeoutMs: number, maxMs: number) =>
	!session || now - session.last > timeoutMs || now - session.start > maxMs || (!!campaign && campaign != session.campaign);

/** A session before its first event, which updateSession() adds. */
export const startSession = (now: number, campaign?: string): Session => ({
	id: uuidv7(now),
	start: now,
	last: now,
	campaign,
	pages: 0,
	events: 0,
	maxScrollDepth: 0,
	engagedMs: 0,
	relevanceSum: 0,
	exit: '',
});

/**
 * Adds an event to the session's counters: every scored event, whether or not it is sent. The
 * entry and exit pages are those of its first and last events (page views, as a rule; as on the
 * server, of another event where the session has no page view before it).
 */
export function updateSession(session: Session, type: TrackEventType, now: number, url: string, relevance: number, props: Props = {}): void {
	session.last = now;
	session.events++;
	session.relevanceSum += relevance;
	session.exit = url.slice(0, 1e3);
	session.entry ||= session.exit;
	if (type == 'pageview') session.pages++;
	if ((props.depth as number) > session.maxScrollDepth) session.maxScrollDepth = props.depth as number;
	session.engagedMs += (props.engagedMs as number) || 0;
}
