import type { EngagementLevel } from '../../lib/engagement';
import { CLICK_ID_PARAMS, type EventContext, type TrackEvent, type TrackEventType } from '../../lib/contracts/tracking';
import { attributeTouch, referrerHost, type Touch } from './channels';

/** The fields of a tracked event that sessions are built from. */
export type SessionEvent = Pick<TrackEvent, 'id' | 'type' | 'ts' | 'anonymousId' | 'url' | 'referrer' | 'relevance' | 'props' | 'context'>;

export interface SessionizeOptions {
	/** Inactivity, in seconds, after which the next event starts a new session (tracking.sessionTimeout). */
	sessionTimeout: number;
	/** Longest session, in seconds; an event that would make it longer starts a new one (tracking.maxSessionDuration). */
	maxSessionDuration: number;
	/** The site's host name (site.domain): referrers on its registrable domain are internal navigation. */
	siteDomain: string;
}

export type EventTypeCounts = Record<TrackEventType, number>;

/** One visit of one visitor, with the metrics the visitor_sessions table keeps. Times are epoch milliseconds. */
export interface Session {
	/** `${anonymousId}:${id of the session's first event}`: the same events always give the same key. */
	key: string;
	anonymousId: string;
	startedAt: number;
	lastActivityAt: number;
	durationSeconds: number;
	pageviews: number;
	eventCount: number;
	/** Sum of the engagedMs of `engagement` events; without any, the time from first to last event. */
	engagedTimeMs: number;
	/** Whether engagedTimeMs was reported by engagement events rather than derived from event times. */
	engagementReported: boolean;
	/**
	 * The engagement the receiver gave the tracker's own summary of the session (its session_end
	 * event), which counts what the browser saw, the events it never sent included.
	 */
	summaryEngagement?: { score: number; level: EngagementLevel };
	/** Deepest scroll, in percent (0–100). */
	maxScrollDepth: number;
	/** Events of interest: form submits, downloads, outbound clicks, identifications and events of relevance 8 or more. */
	keyEvents: number;
	/** Sum of the relevance (1–10) of the events that carried one. */
	relevanceSum: number;
	typeCounts: EventTypeCounts;
	/** GA4's notion: not an engaged session (under 10 s engaged, one pageview, no event of interest). */
	isBounce: boolean;
	/** Path of the first pageview (of the first event when the session has no pageview). */
	entryPage: string;
	/** Path of the last pageview (of the last event when the session has no pageview). */
	exitPage: string;
	/** Full URL of the first pageview, query string included. */
	landingPage: string;
	referrer: string | null;
	/** The campaign parameters (utm_*, click ids) the session was opened with, as a canonical query string; "" for none. */
	campaignKey: string;
	attribution: Touch;
}

export interface SessionizeResult {
	/** Sessions grouped by visitor (in order of the visitor's first event in the input), oldest first. */
	sessions: Session[];
	/** For each input event, the index in `sessions` of its session; a duplicate shares its original's. */
	sessionOf: Int32Array;
	/** Input events skipped because an event with the same id came before them. */
	duplicates: number;
}

/** GA4 counts a session as engaged after 10 seconds of engagement. */
const ENGAGED_SESSION_MS = 10_000;
/** Relevance from which any event counts as an event of interest (site config eventRelevance scores events 1–10). */
const KEY_EVENT_RELEVANCE = 8;

const UTM_PARAMETERS = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content', 'utm_id'] as const;
const CAMPAIGN_IN_QUERY = new RegExp(`[?&](?:${[...UTM_PARAMETERS, ...CLICK_ID_PARAMS].join('|')})=`);

/**
 * The campaign parameters of an event as a canonical query string, so equal parameters give
 * equal keys whichever order they came in. The tracker sends them in the context on landing;
 * an event without them there is checked for them in its URL (events not sent by the tracker),
 * which costs one indexOf for the common URL without a query string.
 */
function campaignKeyOf(event: SessionEvent): string {
	const context = event.context;
	if (context !== undefined) {
		const key = contextCampaignKey(context);
		if (key !== '') return key;
	}
	const url = event.url;
	const query = url.indexOf('?');
	if (query < 0 || !CAMPAIGN_IN_QUERY.test(url)) return '';
	const hash = url.indexOf('#', query);
	const params = new URLSearchParams(url.slice(query + 1, hash < 0 ? undefined : hash));
	let key = '';
	for (const name of UTM_PARAMETERS) key = appendParameter(key, name, params.get(name));
	for (const name of CLICK_ID_PARAMS) key = appendParameter(key, name, params.get(name));
	return key;
}

function contextCampaignKey(context: EventContext): string {
	let key = '';
	for (const name of UTM_PARAMETERS) key = appendParameter(key, name, context[name]);
	const clickIds = context.clickIds;
	if (clickIds !== undefined) for (const name of CLICK_ID_PARAMS) key = appendParameter(key, name, clickIds[name]);
	return key;
}

function appendParameter(key: string, name: string, value: string | null | undefined): string {
	if (value === undefined || value === null || value === '') return key;
	const pair = `${name}=${encodeURIComponent(value)}`;
	return key === '' ? pair : `${key}&${pair}`;
}

/** Path of an absolute URL without query or fragment; slicing is much cheaper than `new URL`. */
function pathOf(url: string): string {
	const scheme = url.indexOf('://');
	const from = scheme < 0 ? 0 : scheme + 3;
	let start = -1;
	let end = url.length;
	for (let i = from; i < url.length; i++) {
		const char = url.charCodeAt(i);
		if (char === 63 || char === 35) {
			end = i;
			break;
		}
		if (char === 47 && start < 0) start = i;
	}
	return start < 0 ? '/' : url.slice(start, end);
}

/** A numeric event property; the tracker sends numbers, other senders may send numeric strings. */
function numberProp(props: SessionEvent['props'], name: string): number {
	const value = props?.[name];
	if (typeof value === 'number') return value;
	return typeof value === 'string' && value !== '' ? Number(value) : Number.NaN;
}

const emptyCounts = (): EventTypeCounts => ({
	pageview: 0,
	click: 0,
	outbound: 0,
	download: 0,
	form_submit: 0,
	scroll: 0,
	engagement: 0,
	session_end: 0,
	identify: 0,
	custom: 0,
});

function isKeyEventType(type: TrackEventType): boolean {
	return type === 'form_submit' || type === 'download' || type === 'outbound' || type === 'identify';
}

function attributionOf(event: SessionEvent, siteDomain: string): Touch {
	const context = event.context;
	return attributeTouch(
		{
			source: context?.utm_source,
			medium: context?.utm_medium,
			campaign: context?.utm_campaign,
			term: context?.utm_term,
			content: context?.utm_content,
			sourcePlatform: context?.utm_source_platform,
			clickIds: context?.clickIds,
			referrer: event.referrer,
			landingUrl: event.url,
		},
		{ siteDomain },
	);
}

/**
 * Accumulates the one session that is open at any time during a walk, and finishes it into a
 * Session. It is reset for each session rather than allocated anew: a million events make
 * over a hundred thousand sessions, and every object that outlives a few of them costs the GC.
 */
class SessionAccumulator {
	key = '';
	anonymousId = '';
	campaignKey = '';
	startedAt = 0;
	lastActivityAt = 0;
	pageviews = 0;
	eventCount = 0;
	reportedMs = 0;
	engagementReported = false;
	summaryEngagement: Session['summaryEngagement'];
	maxScrollDepth = 0;
	keyEvents = 0;
	relevanceSum = 0;
	typeCounts = emptyCounts();
	/** The earliest event added; a new session's attribution comes from it. */
	first: SessionEvent | undefined;
	/** URLs of the first and of the latest pageview, and of the latest event. */
	entryUrl: string | undefined;
	exitUrl: string | undefined;
	exitTs = 0;
	lastUrl = '';

	/** Touches by referrer for sessions without campaign parameters or query string; by every input otherwise. */
	private readonly plainTouches = new Map<string, Touch>();
	private readonly taggedTouches = new Map<string, Touch>();
	private readonly paths = new Map<string, string>();

	constructor(
		private readonly siteDomain: string,
		private readonly maxMs: number,
	) {}

	start(key: string, anonymousId: string, campaignKey: string, startedAt: number): void {
		this.key = key;
		this.anonymousId = anonymousId;
		this.campaignKey = campaignKey;
		this.startedAt = startedAt;
		this.lastActivityAt = startedAt;
		this.pageviews = 0;
		this.eventCount = 0;
		this.reportedMs = 0;
		this.engagementReported = false;
		this.summaryEngagement = undefined;
		this.maxScrollDepth = 0;
		this.keyEvents = 0;
		this.relevanceSum = 0;
		this.typeCounts = emptyCounts();
		this.first = undefined;
		this.entryUrl = undefined;
		this.exitUrl = undefined;
		this.exitTs = Number.NEGATIVE_INFINITY;
	}

	/** Whether an event belongs to a new session rather than to the open one. */
	endsBefore(ts: number, campaignKey: string, timeoutMs: number): boolean {
		const last = this.lastActivityAt;
		if (ts - last > timeoutMs) return true;
		if ((ts > last ? ts : last) - this.startedAt > this.maxMs) return true;
		return campaignKey !== '' && campaignKey !== this.campaignKey;
	}

	add(event: SessionEvent, ts: number): void {
		if (this.first === undefined) {
			this.first = event;
			this.lastUrl = event.url;
		}
		if (ts < this.startedAt) this.startedAt = ts;
		if (ts >= this.lastActivityAt) {
			this.lastActivityAt = ts;
			this.lastUrl = event.url;
		}
		this.eventCount++;
		const counts = this.typeCounts;
		switch (event.type) {
			case 'pageview':
				counts.pageview++;
				this.pageviews++;
				if (this.entryUrl === undefined) this.entryUrl = event.url;
				if (ts >= this.exitTs) {
					this.exitUrl = event.url;
					this.exitTs = ts;
				}
				break;
			case 'scroll': {
				counts.scroll++;
				let depth = numberProp(event.props, 'depth');
				if (Number.isNaN(depth)) depth = numberProp(event.props, 'percent');
				if (depth > this.maxScrollDepth) this.maxScrollDepth = depth > 100 ? 100 : Math.round(depth);
				break;
			}
			case 'engagement': {
				counts.engagement++;
				const ms = numberProp(event.props, 'engagedMs');
				// A report longer than a whole session is a broken clock or a forged event, not engagement.
				if (ms > 0) this.reportedMs += ms > this.maxMs ? this.maxMs : ms;
				this.engagementReported = true;
				break;
			}
			case 'form_submit':
				counts.form_submit++;
				this.keyEvents++;
				break;
			case 'download':
				counts.download++;
				this.keyEvents++;
				break;
			case 'outbound':
				counts.outbound++;
				this.keyEvents++;
				break;
			case 'identify':
				counts.identify++;
				this.keyEvents++;
				break;
			case 'click':
				counts.click++;
				break;
			case 'session_end': {
				counts.session_end++;
				const score = numberProp(event.props, 'engagementScore');
				const level = event.props?.engagement;
				if (!Number.isNaN(score) && (level === 'low' || level === 'medium' || level === 'high')) this.summaryEngagement = { score, level };
				break;
			}
			case 'custom':
				counts.custom++;
				break;
		}
		const relevance = event.relevance;
		if (relevance !== undefined) {
			this.relevanceSum += relevance;
			if (relevance >= KEY_EVENT_RELEVANCE && !isKeyEventType(event.type)) this.keyEvents++;
		}
	}

	finish(): Session {
		// start() is always followed by add(), so the session has a first event.
		const first = this.first as SessionEvent;
		const startedAt = this.startedAt;
		const lastActivityAt = this.lastActivityAt;
		const spanMs = lastActivityAt - startedAt;
		const engagedTimeMs = this.engagementReported ? this.reportedMs : spanMs;
		const landingUrl = this.entryUrl ?? first.url;
		return {
			key: this.key,
			anonymousId: this.anonymousId,
			startedAt,
			lastActivityAt,
			durationSeconds: Math.floor(spanMs / 1000),
			pageviews: this.pageviews,
			eventCount: this.eventCount,
			engagedTimeMs,
			engagementReported: this.engagementReported,
			...(this.summaryEngagement && { summaryEngagement: this.summaryEngagement }),
			maxScrollDepth: this.maxScrollDepth,
			keyEvents: this.keyEvents,
			relevanceSum: this.relevanceSum,
			typeCounts: this.typeCounts,
			isBounce: engagedTimeMs < ENGAGED_SESSION_MS && this.pageviews < 2 && this.keyEvents === 0,
			entryPage: this.path(landingUrl),
			exitPage: this.path(this.exitUrl ?? this.lastUrl),
			landingPage: landingUrl,
			referrer: first.referrer || null,
			campaignKey: this.campaignKey,
			attribution: this.attribution(first, this.campaignKey),
		};
	}

	/** Paths repeat across sessions; caching them keeps one string per page instead of one per session. */
	private path(url: string): string {
		let path = this.paths.get(url);
		if (path === undefined) {
			path = pathOf(url);
			this.paths.set(url, path);
		}
		return path;
	}

	/**
	 * Attribution by the session's first event, memoised: its inputs repeat across most sessions
	 * (direct visits, the same search engine, the same campaign), and attributing costs more than
	 * sessionizing a visit's events. A session without campaign parameters, source platform or
	 * query string is attributed by its referrer alone, so the referrer is the key; any other is
	 * keyed by everything attributeTouch reads. Sessions with equal inputs share one frozen Touch.
	 */
	private attribution(event: SessionEvent, campaignKey: string): Touch {
		const query = event.url.indexOf('?');
		const plain = campaignKey === '' && query < 0 && event.context?.utm_source_platform === undefined;
		const touches = plain ? this.plainTouches : this.taggedTouches;
		const key = plain
			? (event.referrer ?? '')
			: `${campaignKey}\n${referrerHost(event.referrer) ?? ''}\n${event.context?.utm_source_platform ?? ''}\n${query < 0 ? '' : event.url.slice(query)}`;
		let touch = touches.get(key);
		if (touch === undefined) {
			touch = Object.freeze(attributionOf(event, this.siteDomain));
			touches.set(key, touch);
		}
		return touch;
	}
}

/**
 * Splits visitors' events into sessions, like GA and Matomo: a new session starts when the
 * visitor was inactive for longer than the timeout, when the session would grow longer than
 * the maximum duration, or when an event brings campaign parameters (utm_*, click id) other
 * than the session's. Events without campaign parameters never split a session.
 *
 * Events may come in any order, mixed across visitors and with duplicates (same id): each
 * visitor's events are ordered by time, then id, and a duplicate is counted once. The result
 * depends only on the input, so reprocessing the same events (an n8n retry) gives the same
 * sessions with the same keys.
 *
 * The work is linear in the number of events apart from sorting visitors whose events came out
 * of order; URLs are sliced only when a session is finished and attribution (with its host-name
 * parsing) runs once per distinct landing.
 */
export function sessionize(events: readonly SessionEvent[], options: SessionizeOptions): SessionizeResult {
	const timeoutMs = options.sessionTimeout * 1000;
	const maxMs = options.maxSessionDuration * 1000;
	const count = events.length;

	// Counting sort by visitor: one map lookup per event, no per-event arrays.
	const groupOf = new Int32Array(count);
	const groupIndex = new Map<string, number>();
	const groupSizes: number[] = [];
	for (let i = 0; i < count; i++) {
		const anonymousId = events[i].anonymousId;
		let group = groupIndex.get(anonymousId);
		if (group === undefined) {
			group = groupSizes.length;
			groupIndex.set(anonymousId, group);
			groupSizes.push(0);
		}
		groupOf[i] = group;
		groupSizes[group]++;
	}
	const groupCount = groupSizes.length;
	const starts = new Int32Array(groupCount + 1);
	for (let group = 0; group < groupCount; group++) starts[group + 1] = starts[group] + groupSizes[group];
	const fill = starts.slice(0, groupCount);
	const order = new Int32Array(count);
	for (let i = 0; i < count; i++) order[fill[groupOf[i]]++] = i;

	const byTime = (a: number, b: number): number => {
		const ea = events[a];
		const eb = events[b];
		if (ea.ts !== eb.ts) return ea.ts - eb.ts;
		if (ea.id !== eb.id) return ea.id < eb.id ? -1 : 1;
		return a - b;
	};

	const sessions: Session[] = [];
	const sessionOf = new Int32Array(count);
	const seen = new Map<string, number>();
	const session = new SessionAccumulator(options.siteDomain, maxMs);
	let duplicates = 0;

	for (let group = 0; group < groupCount; group++) {
		const from = starts[group];
		const to = starts[group + 1];
		for (let k = from + 1; k < to; k++) {
			const previousTs = events[order[k - 1]].ts;
			const ts = events[order[k]].ts;
			if (ts < previousTs || (ts === previousTs && byTime(order[k - 1], order[k]) > 0)) {
				order.subarray(from, to).sort(byTime);
				break;
			}
		}
		const anonymousId = events[order[from]].anonymousId;
		let started = false;
		seen.clear();
		for (let k = from; k < to; k++) {
			const i = order[k];
			const event = events[i];
			const original = seen.get(event.id);
			if (original !== undefined) {
				sessionOf[i] = original;
				duplicates++;
				continue;
			}
			const ts = event.ts;
			const campaignKey = campaignKeyOf(event);
			if (!started || session.endsBefore(ts, campaignKey, timeoutMs)) {
				if (started) sessions.push(session.finish());
				session.start(`${anonymousId}:${event.id}`, anonymousId, campaignKey, ts);
				started = true;
			}
			session.add(event, ts);
			// Sessions are finished in the order they are started, so the open one gets the next index.
			sessionOf[i] = sessions.length;
			seen.set(event.id, sessions.length);
		}
		if (started) sessions.push(session.finish());
	}

	return { sessions, sessionOf, duplicates };
}
