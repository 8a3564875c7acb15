import { parse } from 'tldts';

import type { ClickIdParam } from '../../lib/contracts/tracking';
import { boundedMemo } from '../../lib/memo';

/**
 * GA4's default channel group, so reports here and in Google Analytics agree on what
 * "Paid Search" or "Organic Social" means. Rules follow Google's published definitions
 * (Analytics Help, "[GA4] Default channel group") and are evaluated in GA4's order; the first
 * rule that matches names the channel. Matching is case-insensitive, as in GA4.
 */
export const CHANNELS = [
	'Direct',
	'Cross-network',
	'Paid Shopping',
	'Paid Search',
	'Paid Social',
	'Paid Video',
	'Display',
	'Paid Other',
	'Organic Shopping',
	'Organic Social',
	'Organic Video',
	'Organic Search',
	'Referral',
	'Email',
	'Affiliates',
	'Audio',
	'SMS',
	'Mobile Push Notifications',
	'Unassigned',
] as const;

export type Channel = (typeof CHANNELS)[number];
export type SourceCategory = 'search' | 'social' | 'shopping' | 'video';

/**
 * GA4 classifies a source by looking it up in Google's source-category lists. These are the
 * well-known entries of those lists. A source that is a host name is also looked up by its
 * registrable domain and by that domain's name without the public suffix (see
 * `sourceCategory`), so country and mobile variants (google.co.uk, m.facebook.com,
 * de.search.yahoo.com) need no entries of their own. A consequence: every host of a listed
 * site counts as that site (docs.google.com is Google, hence search). Each source is in one
 * list only.
 */
export const SOURCE_CATEGORIES: Readonly<Record<SourceCategory, readonly string[]>> = {
	search: [
		'google', 'bing', 'yahoo', 'duckduckgo', 'baidu', 'yandex', 'ecosia', 'ask', 'ask.com', 'aol', 'aol.com', 'naver',
		'daum', 'seznam', 'qwant', 'startpage', 'search.brave.com', 'sogou', 'so.com', '360.cn', 'msn', 'msn.com', 'lycos', 'dogpile',
		'excite', 'onet', 'rambler', 'go.mail.ru', 'yahoo.co.jp', 'google-play', 'googlemybusiness',
	],
	social: [
		'facebook', 'fb', 'fb.me', 'instagram', 'ig', 'linkedin', 'lnkd.in', 'twitter', 't.co', 'x.com', 'pinterest',
		'reddit', 'tiktok', 'snapchat', 'whatsapp', 'wa.me', 'telegram', 't.me', 'messenger', 'threads.net', 'tumblr',
		'vk', 'vk.com', 'weibo', 'line', 'quora', 'medium.com', 'discord', 'slack', 'wechat', 'xing', 'meetup', 'flickr', 'yelp',
		'mastodon.social', 'bsky.app', 'nextdoor', 'stackoverflow', 'news.ycombinator.com', 'groups.google.com',
		'answers.yahoo.com',
	],
	shopping: [
		'amazon', 'ebay', 'etsy', 'alibaba', 'aliexpress', 'walmart', 'mercadolibre', 'rakuten', 'shopify',
		'checkout.stripe.com', 'google shopping', 'igshopping', 'shopping.naver.com', 'shopzilla', 'zalando', 'temu',
	],
	video: [
		'youtube', 'youtu.be', 'vimeo', 'twitch', 'dailymotion', 'netflix', 'hulu', 'disneyplus', 'wistia',
		'fast.wistia.net', 'iqiyi', 'crackle', 'curiositystream', 'ted', 'ted.com',
	],
};

const CATEGORY_OF = new Map<string, SourceCategory>(
	(Object.keys(SOURCE_CATEGORIES) as SourceCategory[]).flatMap((category) => SOURCE_CATEGORIES[category].map((source) => [source, category] as const)),
);

type Field = 'source' | 'medium' | 'campaign';

/** One test of a channel rule: a value in a list, a regular expression, or a source category. */
export type ChannelCondition =
	| { field: Field; is: readonly string[] }
	| { field: Field; matches: RegExp }
	| { field: 'source'; category: SourceCategory };

/** A channel applies when every `all` condition holds and, if `any` is given, one of them does. */
export interface ChannelRule {
	channel: Exclude<Channel, 'Unassigned'>;
	all?: readonly ChannelCondition[];
	any?: readonly ChannelCondition[];
}

const PAID_MEDIUM: ChannelCondition = { field: 'medium', matches: /^(.*cp.*|ppc|retargeting|paid.*)$/ };
const SHOP_CAMPAIGN: ChannelCondition = { field: 'campaign', matches: /^(.*(([^a-df-z]|^)shop|shopping).*)$/ };
const EMAIL = ['email', 'e-mail', 'e_mail', 'e mail'];

/** GA4's default channel group, in GA4's evaluation order. Anything left over is Unassigned. */
export const CHANNEL_RULES: readonly ChannelRule[] = [
	{ channel: 'Direct', all: [{ field: 'source', is: ['(direct)'] }, { field: 'medium', is: ['(not set)', '(none)'] }] },
	{ channel: 'Cross-network', all: [{ field: 'campaign', matches: /cross-network/ }] },
	{ channel: 'Paid Shopping', all: [PAID_MEDIUM], any: [{ field: 'source', category: 'shopping' }, SHOP_CAMPAIGN] },
	{ channel: 'Paid Search', all: [PAID_MEDIUM, { field: 'source', category: 'search' }] },
	{ channel: 'Paid Social', all: [PAID_MEDIUM, { field: 'source', category: 'social' }] },
	{ channel: 'Paid Video', all: [PAID_MEDIUM, { field: 'source', category: 'video' }] },
	{ channel: 'Display', all: [{ field: 'medium', is: ['display', 'banner', 'expandable', 'interstitial', 'cpm'] }] },
	{ channel: 'Paid Other', all: [PAID_MEDIUM] },
	{ channel: 'Organic Shopping', any: [{ field: 'source', category: 'shopping' }, SHOP_CAMPAIGN] },
	{
		channel: 'Organic Social',
		any: [{ field: 'source', category: 'social' }, { field: 'medium', is: ['social', 'social-network', 'social-media', 'sm', 'social network', 'social media'] }],
	},
	{ channel: 'Organic Video', any: [{ field: 'source', category: 'video' }, { field: 'medium', matches: /^(.*video.*)$/ }] },
	{ channel: 'Organic Search', any: [{ field: 'source', category: 'search' }, { field: 'medium', is: ['organic'] }] },
	{ channel: 'Referral', all: [{ field: 'medium', is: ['referral', 'app', 'link'] }] },
	{ channel: 'Email', any: [{ field: 'source', is: EMAIL }, { field: 'medium', is: EMAIL }] },
	{ channel: 'Affiliates', all: [{ field: 'medium', is: ['affiliate'] }] },
	{ channel: 'Audio', all: [{ field: 'medium', is: ['audio'] }] },
	{ channel: 'SMS', any: [{ field: 'source', is: ['sms'] }, { field: 'medium', is: ['sms'] }] },
	{ channel: 'Mobile Push Notifications', any: [{ field: 'medium', matches: /(push$|mobile|notification)/ }, { field: 'source', is: ['firebase'] }] },
];

/**
 * Host names are parsed once: tldts walks the public suffix list, which costs more than the
 * whole rest of an attribution. The cache is cleared rather than evicted entry by entry
 * because a flood of distinct referrers is rare and a rebuild is cheap.
 */
const HOST_CACHE_LIMIT = 10_000;

const hostParts = boundedMemo(HOST_CACHE_LIMIT, (host): { domain: string; name: string | null } => {
	const parsed = parse(host);
	// IP addresses and single-label hosts (localhost) have no registrable domain; they stand for themselves.
	return { domain: parsed.domain ?? host, name: parsed.domainWithoutSuffix };
});

const MIN_NAME_LENGTH = 4;

/** The GA4 source category of a source name or host name, if it has one. */
export function sourceCategory(source: string): SourceCategory | undefined {
	const value = source.trim().toLowerCase();
	const exact = CATEGORY_OF.get(value);
	if (exact || !value.includes('.') || value.includes(' ')) return exact;
	const { domain, name } = hostParts(value);
	// Short names are also other sites' names (ig.com.br is a news portal, ask.fm a Q&A site),
	// so they only count with the domains listed for them.
	return CATEGORY_OF.get(domain) ?? (name !== null && name.length >= MIN_NAME_LENGTH ? CATEGORY_OF.get(name) : undefined);
}

function holds(condition: ChannelCondition, values: Record<Field, string>, category: () => SourceCategory | undefined): boolean {
	if ('category' in condition) return category() === condition.category;
	const value = values[condition.field];
	return 'is' in condition ? condition.is.includes(value) : condition.matches.test(value);
}

/** The GA4 default channel of a session's source, medium and campaign. */
export function channelFor(source: string, medium: string, campaign = ''): Channel {
	const values = { source: source.trim().toLowerCase(), medium: medium.trim().toLowerCase(), campaign: campaign.trim().toLowerCase() };
	let looked = false;
	let cached: SourceCategory | undefined;
	// Most sessions are decided by medium alone; the category lookup runs only when a rule asks.
	const category = () => {
		if (!looked) {
			cached = sourceCategory(values.source);
			looked = true;
		}
		return cached;
	};
	for (const rule of CHANNEL_RULES) {
		if (rule.all && !rule.all.every((condition) => holds(condition, values, category))) continue;
		if (rule.any && !rule.any.some((condition) => holds(condition, values, category))) continue;
		return rule.channel;
	}
	return 'Unassigned';
}

/** Where a visit came from, as the tracker saw it on landing. Empty strings count as absent. */
export interface TouchInput {
	source?: string;
	medium?: string;
	campaign?: string;
	term?: string;
	content?: string;
	/** utm_source_platform, e.g. "Google Ads", "Search Ads 360", "Shopify". */
	sourcePlatform?: string;
	referrer?: string;
	clickIds?: Partial<Record<ClickIdParam, string>>;
	/** Read for utm_* parameters and click ids when the input carries none of its own. */
	landingUrl?: string;
}

/** The attribution of one touch: GA4-style source / medium / campaign and its channel. */
export interface Touch {
	channel: Channel;
	source: string;
	medium: string;
	campaign: string;
	term?: string;
	content?: string;
	sourcePlatform?: string;
	/** Registrable domain of an external referrer, also when UTM parameters decided the source. */
	referrerDomain?: string;
	/** The ad click id the touch carried (the most specific one when there are several). */
	clickIdType?: ClickIdParam;
}

interface ClickIdSource {
	source: string;
	medium: string;
	platform: string;
}

/**
 * Ad click ids name the network that served the ad, even without UTM tags (Google Ads
 * auto-tagging sends only gclid). The order decides which id wins when a landing URL carries
 * several, e.g. a Google ad whose link already had an fbclid appended. Choices that are not
 * plain "network / cpc":
 * - dclid comes from Campaign Manager 360 / Display & Video 360 clicks. GA4 reports them as
 *   display traffic, so it maps to dv360 / cpm (Display). Mapped to google / cpc it would land
 *   in Paid Search, which display ads are not.
 * - fbclid is appended by Facebook and Instagram to every outbound link, paid or not, so alone
 *   it only says "came from Facebook": GA4 then shows a social referral (Organic Social). A
 *   paid Meta click is known only from its UTM tags (utm_medium=paid_social or cpc).
 */
const CLICK_ID_SOURCES: readonly (readonly [ClickIdParam, ClickIdSource | null])[] = [
	['gclid', { source: 'google', medium: 'cpc', platform: 'Google Ads' }],
	['gbraid', { source: 'google', medium: 'cpc', platform: 'Google Ads' }],
	['wbraid', { source: 'google', medium: 'cpc', platform: 'Google Ads' }],
	['dclid', { source: 'dv360', medium: 'cpm', platform: 'Display & Video 360' }],
	['msclkid', { source: 'bing', medium: 'cpc', platform: 'Microsoft Advertising' }],
	['yclid', { source: 'yandex', medium: 'cpc', platform: 'Yandex Direct' }],
	['ttclid', { source: 'tiktok', medium: 'cpc', platform: 'TikTok Ads' }],
	['twclid', { source: 'twitter', medium: 'cpc', platform: 'X Ads' }],
	['li_fat_id', { source: 'linkedin', medium: 'cpc', platform: 'LinkedIn Ads' }],
	['fbclid', null],
];

const UTM_FIELDS = [
	['utm_source', 'source'],
	['utm_medium', 'medium'],
	['utm_campaign', 'campaign'],
	['utm_term', 'term'],
	['utm_content', 'content'],
	['utm_source_platform', 'sourcePlatform'],
] as const;

const present = (value: string | undefined): string | undefined => {
	const trimmed = value?.trim();
	return trimmed ? trimmed : undefined;
};

/** Fills in campaign parameters from the landing URL for callers that only kept the URL. */
function withLandingParameters(input: TouchInput): TouchInput {
	const own = UTM_FIELDS.some(([, field]) => present(input[field])) || Object.values(input.clickIds ?? {}).some((id) => present(id));
	const url = input.landingUrl;
	if (own || !url || !url.includes('?')) return input;
	let params: URLSearchParams;
	try {
		params = new URL(url).searchParams;
	} catch {
		return input;
	}
	const clickIds: Partial<Record<ClickIdParam, string>> = {};
	for (const [param] of CLICK_ID_SOURCES) {
		const id = params.get(param);
		if (id) clickIds[param] = id;
	}
	const filled: TouchInput = { ...input, clickIds };
	for (const [param, field] of UTM_FIELDS) filled[field] = params.get(param) ?? undefined;
	return filled;
}

/** Lowercased host of a referrer URL, without port or credentials; cheaper than `new URL`. */
export function referrerHost(referrer: string | undefined): string | undefined {
	if (!referrer) return undefined;
	const start = referrer.indexOf('//');
	if (start < 0) return undefined;
	let end = start + 2;
	while (end < referrer.length) {
		const char = referrer.charCodeAt(end);
		// "/", "?" and "#" end the authority (credentials, host and port).
		if (char === 47 || char === 63 || char === 35) break;
		end++;
	}
	const at = referrer.lastIndexOf('@', end);
	const authority = referrer.slice(at > start ? at + 1 : start + 2, end);
	// An IPv6 host is bracketed and full of colons; any other host ends at the port's colon.
	const hostEnd = authority.startsWith('[') ? authority.indexOf(']') + 1 : authority.indexOf(':');
	const host = (hostEnd > 0 ? authority.slice(0, hostEnd) : authority).toLowerCase();
	return host || undefined;
}

function registrableDomain(host: string): string {
	return hostParts(host).domain;
}

/**
 * Attributes a touch the way GA4 does for a session, in this order of evidence:
 * 1. UTM tags (utm_source or utm_medium present): they are taken as given; a missing half is
 *    "(not set)", as in GA4. They win over a click id, as when GA4's "manual tagging overrides
 *    auto-tagging" setting is on: a team that tags its links means what the tags say.
 * 2. An ad click id (see CLICK_ID_SOURCES): the network's source / cpc.
 * 3. fbclid alone: a social referral from the referring Meta site, else facebook.com.
 * 4. An external referrer: search engines give "<engine> / organic" (google, bing, …), any
 *    other site "<registrable domain> / referral" (so l.facebook.com and m.facebook.com are one
 *    source, facebook.com), which the source lists then classify as Organic Social, Organic
 *    Video, Organic Shopping or Referral.
 * 5. Nothing, or a referrer on the site's own registrable domain (internal navigation, a
 *    subdomain of the site, a payment return page on the site): "(direct) / (none)".
 *
 * Source and medium are lowercased so "Facebook" and "facebook" are one source; campaign,
 * term and content keep their case. Without utm_campaign the campaign is GA4's placeholder:
 * (direct), (organic), (referral) or (not set).
 */
export function attributeTouch(input: TouchInput, options: { siteDomain: string }): Touch {
	const touch = withLandingParameters(input);
	const clickIds = touch.clickIds ?? {};
	const clickIdType = CLICK_ID_SOURCES.find(([param]) => present(clickIds[param]))?.[0];
	const host = referrerHost(touch.referrer);
	const external = host !== undefined && registrableDomain(host) !== registrableDomain(options.siteDomain.trim().toLowerCase()) ? host : undefined;

	const utmSource = present(touch.source)?.toLowerCase();
	const utmMedium = present(touch.medium)?.toLowerCase();
	const tagged = utmSource !== undefined || utmMedium !== undefined;
	const paidClick = tagged ? undefined : CLICK_ID_SOURCES.find(([param, paid]) => paid && present(clickIds[param]))?.[1];
	const origin = tagged
		? { source: utmSource ?? '(not set)', medium: utmMedium ?? '(not set)', campaign: '(not set)' }
		: paidClick
			? { source: paidClick.source, medium: paidClick.medium, campaign: '(not set)' }
			: untaggedOrigin(external, clickIdType === 'fbclid');

	const campaign = present(touch.campaign) ?? origin.campaign;
	const result: Touch = { channel: channelFor(origin.source, origin.medium, campaign), source: origin.source, medium: origin.medium, campaign };
	const term = present(touch.term);
	const content = present(touch.content);
	const sourcePlatform = present(touch.sourcePlatform) ?? paidClick?.platform;
	if (term !== undefined) result.term = term;
	if (content !== undefined) result.content = content;
	if (sourcePlatform !== undefined) result.sourcePlatform = sourcePlatform;
	if (external !== undefined) result.referrerDomain = registrableDomain(external);
	if (clickIdType !== undefined) result.clickIdType = clickIdType;
	return result;
}

/** Source and medium of a visit without UTM tags or an ad click id, with GA4's campaign placeholder. */
function untaggedOrigin(externalHost: string | undefined, fbclid: boolean): { source: string; medium: string; campaign: string } {
	const category = externalHost === undefined ? undefined : sourceCategory(externalHost);
	if (fbclid) {
		const source = externalHost !== undefined && category === 'social' ? registrableDomain(externalHost) : 'facebook.com';
		return { source, medium: 'referral', campaign: '(referral)' };
	}
	if (externalHost === undefined) return { source: '(direct)', medium: '(none)', campaign: '(direct)' };
	const { domain, name } = hostParts(externalHost);
	if (category === 'search') return { source: name ?? domain, medium: 'organic', campaign: '(organic)' };
	// A host the source lists name on its own (news.ycombinator.com, checkout.stripe.com) keeps its
	// subdomain, or the channel rules would no longer recognise it.
	return { source: CATEGORY_OF.has(externalHost) ? externalHost : domain, medium: 'referral', campaign: '(referral)' };
}
