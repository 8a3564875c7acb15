import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

import { isbot } from 'isbot';

import {
	CLICK_ID_PARAMS,
	COUNTRY_CODE,
	EARLIEST_EVENT_TIME,
	EVENT_TYPES,
	EVERY_CONTROL_CHAR,
	eventContextSchema,
	SESSION_KEYS,
	LEAD_CONTROL_CHARS,
	storablePath,
	storableText,
	TRUSTED_CLOCK_SKEW_MS,
	type EventContext,
	type LeadPayload,
	type SiteConfig,
	type TrackBatch,
	type TrackEvent,
} from '../../lib/contracts';
import { sessionEngagement, summaryMetrics } from '../../lib/engagement';
import { boundedMemo } from '../../lib/memo';

/**
 * The address without what a proxy may add around it: the port of IPv4 `a.b.c.d:port` (Azure
 * Application Gateway's X-Forwarded-For) and the brackets and port of `[v6]:port`.
 */
function withoutPort(address: string): string {
	const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(address);
	if (bracketed) return bracketed[1];
	const ipv4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(address);
	return ipv4 ? ipv4[1] : address;
}

/** The eight 16-bit groups of a valid IPv6 address; a dotted IPv4 ending (::ffff:1.2.3.4) is its last two. */
function ipv6Groups(address: string): number[] {
	const group = (high: string, low: string) => ((Number(high) << 8) | Number(low)).toString(16);
	// Without a zone (fe80::1%eth0), which names the interface, not the address.
	const text = address.replace(/%.*$/, '').replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a: string, b: string, c: string, d: string) => `${group(a, b)}:${group(c, d)}`);
	const parse = (part: string) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
	const [head, tail] = text.split('::');
	if (tail === undefined) return parse(head);
	const [headGroups, tailGroups] = [parse(head), parse(tail)];
	return [...headGroups, ...Array<number>(8 - headGroups.length - tailGroups.length).fill(0), ...tailGroups];
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d, also written ::ffff:cb00:714f)
 * stands for, which a dual-stack socket reports IPv4 clients as; undefined for any other.
 */
function mappedIpv4(groups: number[]): string | undefined {
	if (groups.slice(0, 5).some((group) => group !== 0) || groups[5] !== 0xffff) return undefined;
	return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
}

/** An IPv4 address's /24, as stored. */
const ipv4Network = (address: string) => address.replace(/\.\d+$/, '.0');

/**
 * Zeroes the host part of an address before anything is stored: the last octet of IPv4, the
 * last 80 bits of IPv6 (what Google Analytics and Matomo do), so no visitor can be singled out.
 * An IPv4-mapped address is its IPv4 address: as IPv6 every such client would share 0:0:0::.
 * Null for what is no address.
 */
export function anonymizeIp(address: string | undefined): string | null {
	if (!address) return null;
	const host = withoutPort(address);
	if (isIPv4(host)) return ipv4Network(host);
	if (!isIPv6(host)) return null;
	const groups = ipv6Groups(host);
	const ipv4 = mappedIpv4(groups);
	return ipv4 ? ipv4Network(ipv4) : `${groups.slice(0, 3).map((group) => group.toString(16)).join(':')}::`;
}

/**
 * A client's network as stored (anonymizeIp), and the key the limits count it by: that network.
 * An address that is no IP (a proxy's "unknown", garbage in X-Forwarded-For) has no network, yet
 * one bucket for all of them would let one client get every such visitor refused: it counts
 * alone, under a hash of its text, so the raw text is not kept, even in memory, and a long one
 * costs no more than any key. A request without an address has lost its connection.
 */
export function clientOf(address: string | undefined): { network: string | null; limitKey: string } {
	const network = anonymizeIp(address);
	if (network !== null || !address) return { network, limitKey: network ?? '' };
	return { network, limitKey: `unparsed ${createHash('sha256').update(address).digest('base64url')}` };
}

/**
 * Event times come from the client's clock. When the batch says when it was sent and that is
 * more than TRUSTED_CLOCK_SKEW_MS from our receive time, the client's clock is wrong and the
 * offset is removed. Events never end up in the future, nor before EARLIEST_EVENT_TIME: a sentAt
 * far ahead of its events' times (a broken or hostile clock) would otherwise put them before any
 * time Postgres holds.
 */
export function correctedEventTime(eventTs: number, sentAt: number | undefined, receivedAt: number): number {
	const skewed = sentAt !== undefined && Math.abs(receivedAt - sentAt) > TRUSTED_CLOCK_SKEW_MS;
	const corrected = skewed ? receivedAt - (sentAt - eventTs) : eventTs;
	return Math.max(EARLIEST_EVENT_TIME, Math.min(corrected, receivedAt));
}

export type DropReason = 'global-privacy-control' | 'do-not-track' | 'consent-denied' | 'consent-missing' | 'prefetch';

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
	const value = headers[name];
	return Array.isArray(value) ? value[0] : value;
}

/**
 * The browser's request not to be tracked (Sec-GPC: 1, DNT: 1), where the site honours it. The
 * tracker then gets no settings (GET /api/track) and sends nothing; a batch that comes anyway is dropped.
 */
export function privacySignal(headers: Headers, privacy: SiteConfig['privacy']): 'global-privacy-control' | 'do-not-track' | null {
	if (privacy.respectGlobalPrivacyControl && header(headers, 'sec-gpc') === '1') return 'global-privacy-control';
	if (privacy.respectDoNotTrack && header(headers, 'dnt') === '1') return 'do-not-track';
	return null;
}

/** Why a batch must not be stored at all, or null when it may be. */
export function dropReason(headers: Headers, batch: Pick<TrackBatch, 'consent'>, privacy: SiteConfig['privacy']): DropReason | null {
	const purpose = `${header(headers, 'sec-purpose') ?? ''} ${header(headers, 'purpose') ?? ''} ${header(headers, 'x-moz') ?? ''}`;
	if (/prefetch|prerender/i.test(purpose)) return 'prefetch';
	const signal = privacySignal(headers, privacy);
	if (signal) return signal;
	if (batch.consent === 'denied') return 'consent-denied';
	if (privacy.cookieConsent && batch.consent !== 'granted') return 'consent-missing';
	return null;
}

const HEADLESS = /headless|phantomjs|slimerjs|puppeteer|playwright|selenium|webdriver/i;

/**
 * The verdict on each user agent seen lately: isbot's pattern is long, and a site's traffic
 * comes from a few thousand distinct agents. Bounded, so odd agents cannot grow it.
 */
const MAX_AGENT_VERDICTS = 5000;
const automatedAgent = boundedMemo(MAX_AGENT_VERDICTS, (userAgent) => isbot(userAgent) || HEADLESS.test(userAgent));

/** isbot's crawler list, plus automation the tracker itself noticed (navigator.webdriver, headless browsers), for the batch or an event. */
export function isAutomated(userAgent: string | undefined, batch: Pick<TrackBatch, 'automation' | 'events'>): boolean {
	if (!userAgent) return true;
	if (automatedAgent(userAgent)) return true;
	return batch.automation === true || batch.events.some((event) => event.context?.automation === true);
}

const UTM_FIELDS = Object.keys(eventContextSchema.shape).filter((field): field is `utm_${string}` & keyof EventContext => field.startsWith('utm_'));
const CLICK_IDS = new Set<string>(CLICK_ID_PARAMS);
const CAMPAIGN_IN_QUERY = new RegExp(`[?&](?:utm_|${CLICK_ID_PARAMS.join('|')})`);
const contextValue = (value: string, max: number) => storableText(value.replace(EVERY_CONTROL_CHAR, ''), max);

/**
 * A page view's context with the campaign parameters and click ids of its URL. The tracker sends
 * the landing URL as it is and leaves the parsing here, since every byte of the tracker is
 * downloaded by every visitor of every site; what a client put in the context itself wins.
 * Values are held to the contract's lengths, without the control characters it refuses.
 */
export function withCampaign(event: Pick<TrackEvent, 'type' | 'url' | 'context'>): EventContext | undefined {
	const { context, url } = event;
	const query = url.indexOf('?');
	if (event.type !== 'pageview' || query < 0 || !CAMPAIGN_IN_QUERY.test(url)) return context;
	const hash = url.indexOf('#', query);
	const found: EventContext = {};
	new URLSearchParams(url.slice(query + 1, hash < 0 ? undefined : hash)).forEach((value, name) => {
		if (!value) return;
		if ((UTM_FIELDS as string[]).includes(name)) found[name as (typeof UTM_FIELDS)[number]] ??= contextValue(value, 200);
		else if (CLICK_IDS.has(name)) (found.clickIds ??= {})[name as keyof NonNullable<EventContext['clickIds']>] ??= contextValue(value, 500);
	});
	if (Object.keys(found).length === 0) return context;
	return { ...found, ...context, ...(found.clickIds && { clickIds: { ...found.clickIds, ...context?.clickIds } }) };
}

/**
 * The first language of an Accept-Language header ("de-CH,de;q=0.9,en;q=0.8" gives "de-CH"), as
 * a page view's language: the browser sends navigator.language first, and the tracker leaves it
 * to the header rather than spend bytes on it. Undefined for a wildcard or a malformed tag.
 */
export function firstLanguage(header: string | undefined): string | undefined {
	const tag = header?.split(/[,;]/)[0].trim();
	return tag && /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(tag) ? tag.slice(0, 35) : undefined;
}

const counter = (props: TrackEvent['props'], name: string) => {
	const value = props?.[name];
	return typeof value === 'number' && value > 0 ? value : 0;
};

const SESSION_NAMES = new Map<string, string>(Object.entries(SESSION_KEYS));
const EVENT_TYPE_NAMES = new Set<string>(EVENT_TYPES);

/**
 * The tracker's session record under the names it is stored with (SESSION_KEYS), with its pages
 * (its page views) and its events (the sum of its counts per type). Names a client sent itself win.
 */
export function namedSessionProps(props: NonNullable<TrackEvent['props']>): NonNullable<TrackEvent['props']> {
	const named: NonNullable<TrackEvent['props']> = {};
	let events = 0;
	for (const [key, value] of Object.entries(props)) {
		named[SESSION_NAMES.get(key) ?? key] = value;
		if (EVENT_TYPE_NAMES.has(key) && typeof value === 'number') events += value;
	}
	return { pages: counter(props, 'pageview'), events, ...named };
}

/**
 * A session summary as stored: the counters the tracker sends in its session_end event (named by
 * namedSessionProps), with the session's length (from its start and last event) and its
 * engagement, scored as the Visitor Processor scores the session's row (lib/engagement.ts) and
 * leveled by the site's thresholds. Computed here, not in the tracker, since every byte of the
 * tracker is downloaded by every visitor. What a client put in the summary itself wins, except
 * the engagement: a client's own score would make the event disagree with its session.
 */
export function withSessionSummary(sent: TrackEvent['props'], thresholds: SiteConfig['tracking']['engagementThresholds']): TrackEvent['props'] {
	const props = namedSessionProps(sent ?? {});
	const { score, level } = sessionEngagement(summaryMetrics(props), thresholds);
	const durationMs = counter(props, 'last') - counter(props, 'start');
	return { ...(durationMs > 0 && { durationMs }), ...props, engagementScore: score, engagement: level };
}

/** What the receiver adds to a batch's events: from the site config and from the request. */
export interface BatchFacts {
	engagementThresholds: SiteConfig['tracking']['engagementThresholds'];
	acceptLanguage?: string;
}

/** A page view's context: its campaign parameters, and the request's language where the client sent none. */
function pageviewContext(event: TrackEvent, language: string | undefined): EventContext | undefined {
	const context = withCampaign(event);
	if (event.type !== 'pageview' || !language || context?.language) return context;
	return { language, ...context };
}

/** A form field's text held to a lead field's length in the lead contract. */
const upTo = (max: number) => (value: string) => storableText(value, max);

/**
 * The lead field a form field fills, by its name or input type, and the value it takes of the
 * field's text: text held to the field's length in the lead contract; a country only as the ISO
 * code the contract accepts (a form's "Germany" or "+49" is no country of a lead, so it is left
 * out rather than cost the lead its 400). A field named just "title" is left out too: on many
 * forms it is the salutation (Mr, Ms, Dr), not the job title.
 */
const LEAD_FIELDS: Array<[keyof LeadPayload, RegExp, (value: string) => string | undefined]> = [
	['email', /mail/i, upTo(254)],
	['phone', /phone|tel/i, upTo(40)],
	['lastName', /last|surname/i, upTo(100)],
	// Before company, which "organization-title" (the HTML autocomplete name of a job title) would match too.
	['jobTitle', /job|position|role$|organi[sz]ation.?title/i, upTo(200)],
	['company', /company|organi/i, upTo(200)],
	['firstName', /first|^name$|full.?name/i, upTo(100)],
	['country', /country/i, (value) => (COUNTRY_CODE.test(value) ? value : undefined)],
];
const MARKETING_CONSENT = /consent|opt.?in|newsletter|gdpr|marketing/i;
const EVERY_LEAD_CONTROL_CHAR = new RegExp(LEAD_CONTROL_CHARS.source, 'g');

/**
 * A lead with its form's fields mapped to the lead fields: email, name, phone, company, job title
 * and country by the field's name or input type (the first field of each that holds a value the
 * lead takes wins; what the client set itself wins over any field), and a ticked box named like
 * consent or a newsletter as marketing consent. The raw fields are dropped, mapped or not: only
 * the lead fields are stored and forwarded.
 */
export function withFormFields(lead: LeadPayload): LeadPayload {
	const { fields, ...mapped } = lead;
	for (const [name, type, value] of fields ?? []) {
		if (/^(checkbox|radio)$/.test(type)) {
			if (MARKETING_CONSENT.test(name)) mapped.consent = true;
			continue;
		}
		const text = value.replace(EVERY_LEAD_CONTROL_CHAR, '').trim();
		const target = LEAD_FIELDS.find(([, pattern]) => pattern.test(name) || pattern.test(type));
		if (!text || !target) continue;
		const taken = target[2](text);
		if (taken) (mapped as Record<string, unknown>)[target[0]] ??= taken;
	}
	return mapped;
}

export interface EventRow {
	event_id: string;
	anonymous_id: string;
	session_key: string;
	type: string;
	name: string | null;
	url: string;
	path: string;
	title: string | null;
	referrer: string | null;
	relevance: number | null;
	properties: TrackEvent['props'] | null;
	context: TrackEvent['context'] | null;
	occurred_at: string;
}

/** The batch as rows of visitor_events, deduplicated by event id within the batch. */
export function toEventRows(batch: TrackBatch, receivedAt: number, facts: BatchFacts): EventRow[] {
	const language = firstLanguage(facts.acceptLanguage);
	const seen = new Set<string>();
	const rows: EventRow[] = [];
	for (const event of batch.events) {
		const id = event.id.toLowerCase();
		if (seen.has(id)) continue;
		seen.add(id);
		rows.push({
			event_id: id,
			anonymous_id: event.anonymousId,
			session_key: event.sessionId,
			type: event.type,
			name: event.name ?? null,
			url: event.url,
			path: storablePath(new URL(event.url).pathname),
			title: event.title ?? null,
			referrer: event.referrer || null,
			relevance: event.relevance ?? null,
			properties: (event.type === 'session_end' ? withSessionSummary(event.props, facts.engagementThresholds) : event.props) ?? null,
			context: pageviewContext(event, language) ?? null,
			occurred_at: new Date(correctedEventTime(event.ts, batch.sentAt, receivedAt)).toISOString(),
		});
	}
	return rows;
}
