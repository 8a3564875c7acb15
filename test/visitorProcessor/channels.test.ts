import {
	attributeTouch,
	CHANNEL_RULES,
	CHANNELS,
	channelFor,
	referrerHost,
	SOURCE_CATEGORIES,
	sourceCategory,
	type Channel,
	type TouchInput,
} from '../../nodes/shared/channels';

const SITE = { siteDomain: 'www.acme-shop.com' };

// Shorthands so each row reads as "what the visit carried → channel, source / medium".
const utm = (source?: string, medium?: string, campaign?: string): TouchInput => ({ source, medium, campaign });
const ref = (referrer: string, extra: TouchInput = {}): TouchInput => ({ referrer, ...extra });
const click = (clickIds: TouchInput['clickIds'], extra: TouchInput = {}): TouchInput => ({ clickIds, ...extra });
const landing = (landingUrl: string, extra: TouchInput = {}): TouchInput => ({ landingUrl, ...extra });

/**
 * Expected channels written by hand from GA4's published default channel group definitions
 * (Analytics Help, "[GA4] Default channel group"), including its order quirks: a shopping
 * campaign outranks the network, "cpm" with a search source is Paid Search, video and shopping
 * rules come before Email. Third column: the source / medium the touch must report.
 */
const CASES: [Channel, TouchInput, string?][] = [
	// Direct: no evidence, or the site's own pages as referrer.
	['Direct', {}, '(direct) / (none)'],
	['Direct', ref(''), '(direct) / (none)'],
	['Direct', ref('https://www.acme-shop.com/pricing'), '(direct) / (none)'],
	['Direct', ref('https://acme-shop.com/'), '(direct) / (none)'],
	['Direct', ref('https://blog.acme-shop.com/post/1'), '(direct) / (none)'],
	['Direct', ref('https://user:pw@www.acme-shop.com:8443/a'), '(direct) / (none)'],
	['Direct', utm('(direct)', '(none)'), '(direct) / (none)'],
	['Direct', utm('(direct)'), '(direct) / (not set)'],
	['Direct', landing('https://www.acme-shop.com/list?page=2&sort=price'), '(direct) / (none)'],
	['Direct', { campaign: 'spring' }, '(direct) / (none)'],

	// Cross-network: the campaign name decides before anything else.
	['Cross-network', utm('google', 'cpc', 'pmax_cross-network_q4'), 'google / cpc'],
	['Cross-network', utm('google', 'cpc', 'Cross-Network Brand'), 'google / cpc'],
	['Cross-network', utm('newsletter', 'email', 'cross-network'), 'newsletter / email'],
	['Cross-network', click({ gclid: 'Cj0KCQ' }, { campaign: 'cross-network-perf' }), 'google / cpc'],

	// Paid Shopping: a shopping source or campaign, with a paid medium.
	['Paid Shopping', utm('amazon', 'cpc'), 'amazon / cpc'],
	['Paid Shopping', utm('ebay', 'paid'), 'ebay / paid'],
	['Paid Shopping', utm('etsy', 'retargeting'), 'etsy / retargeting'],
	['Paid Shopping', utm('google', 'cpc', 'summer_shopping'), 'google / cpc'],
	['Paid Shopping', utm('google', 'ppc', 'shop-sale'), 'google / ppc'],
	['Paid Shopping', utm('facebook', 'cpc', 'ig_shop'), 'facebook / cpc'],
	['Paid Shopping', utm('google', 'cpc', 'eshop'), 'google / cpc'],
	['Paid Shopping', utm('igshopping', 'cpc'), 'igshopping / cpc'],
	['Paid Shopping', utm('alibaba.com', 'cpc'), 'alibaba.com / cpc'],
	['Paid Shopping', utm('Google Shopping', 'cpc'), 'google shopping / cpc'],

	// Paid Search: a search source with a paid medium, or a search ad click id.
	['Paid Search', utm('google', 'cpc'), 'google / cpc'],
	['Paid Search', utm('bing', 'cpc'), 'bing / cpc'],
	['Paid Search', utm('duckduckgo', 'ppc'), 'duckduckgo / ppc'],
	['Paid Search', utm('yahoo', 'paidsearch'), 'yahoo / paidsearch'],
	['Paid Search', utm('Google', 'CPC'), 'google / cpc'],
	['Paid Search', utm('baidu', 'cpm'), 'baidu / cpm'],
	['Paid Search', utm('google.com', 'cpc'), 'google.com / cpc'],
	['Paid Search', utm('google', 'cpc', 'workshop-signups'), 'google / cpc'],
	['Paid Search', click({ gclid: 'Cj0KCQ' }), 'google / cpc'],
	['Paid Search', click({ gbraid: '0AAAAA' }), 'google / cpc'],
	['Paid Search', click({ wbraid: 'CkwKCA' }), 'google / cpc'],
	['Paid Search', click({ msclkid: 'a1b2c3' }), 'bing / cpc'],
	['Paid Search', click({ yclid: '1234567' }), 'yandex / cpc'],
	['Paid Search', click({ gclid: 'Cj0KCQ' }, { referrer: 'https://www.google.com/' }), 'google / cpc'],
	['Paid Search', click({ gclid: 'Cj0KCQ', fbclid: 'IwAR' }), 'google / cpc'],

	// Paid Social: a social source with a paid medium, or a social ad click id.
	['Paid Social', utm('facebook', 'cpc'), 'facebook / cpc'],
	['Paid Social', utm('facebook', 'paid_social'), 'facebook / paid_social'],
	['Paid Social', utm('instagram', 'paid'), 'instagram / paid'],
	['Paid Social', utm('linkedin', 'cpc'), 'linkedin / cpc'],
	['Paid Social', utm('reddit', 'cpc'), 'reddit / cpc'],
	['Paid Social', utm('t.co', 'cpc'), 't.co / cpc'],
	['Paid Social', utm('fb', 'retargeting'), 'fb / retargeting'],
	['Paid Social', utm('m.facebook.com', 'cpc'), 'm.facebook.com / cpc'],
	['Paid Social', utm('pinterest', 'cpc'), 'pinterest / cpc'],
	['Paid Social', click({ ttclid: 'E.C.P' }), 'tiktok / cpc'],
	['Paid Social', click({ twclid: '2-abc' }), 'twitter / cpc'],
	['Paid Social', click({ li_fat_id: 'f2b1' }), 'linkedin / cpc'],
	['Paid Social', click({ fbclid: 'IwAR' }, { source: 'facebook', medium: 'paid_social' }), 'facebook / paid_social'],

	// Paid Video: a video source with a paid medium.
	['Paid Video', utm('youtube', 'cpc'), 'youtube / cpc'],
	['Paid Video', utm('vimeo', 'paid'), 'vimeo / paid'],
	['Paid Video', utm('twitch', 'cpv'), 'twitch / cpv'],
	['Paid Video', utm('youtube.com', 'cpc'), 'youtube.com / cpc'],

	// Display: display media, also "cpm" when no rule above claimed the source.
	['Display', utm('google', 'display'), 'google / display'],
	['Display', utm('criteo', 'banner'), 'criteo / banner'],
	['Display', utm('taboola', 'cpm'), 'taboola / cpm'],
	['Display', utm('adroll', 'interstitial'), 'adroll / interstitial'],
	['Display', utm('gumgum', 'expandable'), 'gumgum / expandable'],
	['Display', utm('outbrain', 'Display'), 'outbrain / display'],
	['Display', click({ dclid: 'CJ3x' }), 'dv360 / cpm'],

	// Paid Other: a paid medium from a source in none of the lists.
	['Paid Other', utm('partner', 'cpc'), 'partner / cpc'],
	['Paid Other', utm(undefined, 'ppc'), '(not set) / ppc'],
	['Paid Other', utm('newsletter', 'paid_email'), 'newsletter / paid_email'],
	['Paid Other', utm('criteo', 'retargeting'), 'criteo / retargeting'],
	['Paid Other', utm('capterra', 'cpa'), 'capterra / cpa'],
	['Paid Other', utm('(direct)', 'cpc'), '(direct) / cpc'],

	// Organic Shopping: a shopping source or campaign without a paid medium.
	['Organic Shopping', utm('amazon', 'referral'), 'amazon / referral'],
	['Organic Shopping', utm('amazon', 'organic'), 'amazon / organic'],
	['Organic Shopping', ref('https://www.amazon.com/dp/B0123'), 'amazon.com / referral'],
	['Organic Shopping', ref('https://www.amazon.co.uk/dp/B0123'), 'amazon.co.uk / referral'],
	['Organic Shopping', ref('https://www.etsy.com/shop/acme'), 'etsy.com / referral'],
	['Organic Shopping', ref('https://checkout.stripe.com/c/pay/cs_live_a1'), 'checkout.stripe.com / referral'],
	['Organic Shopping', utm('newsletter', 'email', 'black-friday-shop'), 'newsletter / email'],

	// Organic Social: a social source or medium.
	['Organic Social', ref('https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.acme-shop.com'), 'facebook.com / referral'],
	['Organic Social', ref('https://m.facebook.com/'), 'facebook.com / referral'],
	['Organic Social', ref('https://t.co/x1y2z3'), 't.co / referral'],
	['Organic Social', ref('https://www.linkedin.com/feed/'), 'linkedin.com / referral'],
	['Organic Social', ref('https://lnkd.in/dAbC'), 'lnkd.in / referral'],
	['Organic Social', ref('https://www.reddit.com/r/n8n/'), 'reddit.com / referral'],
	['Organic Social', ref('https://old.reddit.com/r/n8n/'), 'reddit.com / referral'],
	['Organic Social', ref('https://news.ycombinator.com/item?id=1'), 'news.ycombinator.com / referral'],
	['Organic Social', ref('https://www.instagram.com/acme/'), 'instagram.com / referral'],
	['Organic Social', ref('https://x.com/acme/status/1'), 'x.com / referral'],
	['Organic Social', ref('https://www.tiktok.com/@acme'), 'tiktok.com / referral'],
	['Organic Social', click({ fbclid: 'IwAR' }), 'facebook.com / referral'],
	['Organic Social', click({ fbclid: 'IwAR' }, { referrer: 'https://l.instagram.com/' }), 'instagram.com / referral'],
	['Organic Social', click({ fbclid: 'IwAR' }, { referrer: 'https://www.partner.io/' }), 'facebook.com / referral'],
	['Organic Social', utm('newsletter', 'social'), 'newsletter / social'],
	['Organic Social', utm('partner', 'social-network'), 'partner / social-network'],
	['Organic Social', utm('partner', 'sm'), 'partner / sm'],
	['Organic Social', utm('partner', 'social network'), 'partner / social network'],
	['Organic Social', utm('Facebook', 'Social Media'), 'facebook / social media'],
	['Organic Social', utm('whatsapp'), 'whatsapp / (not set)'],
	['Organic Social', utm('facebook', 'referral'), 'facebook / referral'],

	// Organic Video: a video source or a medium mentioning video.
	['Organic Video', ref('https://www.youtube.com/watch?v=abc'), 'youtube.com / referral'],
	['Organic Video', ref('https://m.youtube.com/watch?v=abc'), 'youtube.com / referral'],
	['Organic Video', ref('https://youtu.be/abc'), 'youtu.be / referral'],
	['Organic Video', ref('https://www.twitch.tv/acme'), 'twitch.tv / referral'],
	['Organic Video', utm('vimeo', 'referral'), 'vimeo / referral'],
	['Organic Video', utm('partner', 'video'), 'partner / video'],
	['Organic Video', utm('newsletter', 'email_video'), 'newsletter / email_video'],
	['Organic Video', utm('youtube', 'organic'), 'youtube / organic'],

	// Organic Search: a search engine as referrer or source, or the medium "organic".
	['Organic Search', ref('https://www.google.com/'), 'google / organic'],
	['Organic Search', ref('https://www.google.co.uk/'), 'google / organic'],
	['Organic Search', ref('https://www.bing.com/search?q=n8n+crm'), 'bing / organic'],
	['Organic Search', ref('https://duckduckgo.com/'), 'duckduckgo / organic'],
	['Organic Search', ref('https://search.yahoo.com/search?p=crm'), 'yahoo / organic'],
	['Organic Search', ref('https://yandex.ru/search/?text=crm'), 'yandex / organic'],
	['Organic Search', ref('https://www.ecosia.org/search?q=crm'), 'ecosia / organic'],
	['Organic Search', ref('https://www.baidu.com/s?wd=crm'), 'baidu / organic'],
	['Organic Search', ref('https://search.brave.com/search?q=crm'), 'brave / organic'],
	['Organic Search', ref('https://www.google.de/', { campaign: 'spring' }), 'google / organic'],
	['Organic Search', utm('partner', 'organic'), 'partner / organic'],
	['Organic Search', utm('google', 'referral'), 'google / referral'],
	['Organic Search', utm('bing'), 'bing / (not set)'],

	// Referral: any other site, or a referral medium.
	['Referral', ref('https://blog.partner.io/post'), 'partner.io / referral'],
	['Referral', ref('https://github.com/acme/repo'), 'github.com / referral'],
	['Referral', ref('https://www.producthunt.com/posts/acme'), 'producthunt.com / referral'],
	['Referral', ref('https://chatgpt.com/'), 'chatgpt.com / referral'],
	['Referral', ref('http://192.168.1.10:8080/admin'), '192.168.1.10 / referral'],
	['Referral', ref('https://acme-shop.co.uk/'), 'acme-shop.co.uk / referral'],
	['Referral', utm('partner', 'referral'), 'partner / referral'],
	['Referral', utm('partner', 'app'), 'partner / app'],
	['Referral', utm('partner', 'link'), 'partner / link'],

	// Email: an email source or medium.
	['Email', utm('newsletter', 'email'), 'newsletter / email'],
	['Email', utm('mailchimp', 'e-mail'), 'mailchimp / e-mail'],
	['Email', utm('email', 'newsletter'), 'email / newsletter'],
	['Email', utm('crm', 'e_mail'), 'crm / e_mail'],
	['Email', utm('e mail'), 'e mail / (not set)'],
	['Email', utm('Newsletter', 'EMAIL'), 'newsletter / email'],
	['Email', landing('https://www.acme-shop.com/?utm_source=newsletter&utm_medium=email&utm_campaign=nov'), 'newsletter / email'],
	['Email', landing('https://www.acme-shop.com/?utm_source=newsletter&utm_medium=email', { referrer: 'https://www.google.com/' }), 'newsletter / email'],

	// Affiliates: exactly "affiliate" ("affiliates" is not).
	['Affiliates', utm('awin', 'affiliate'), 'awin / affiliate'],
	['Affiliates', utm('partnerstack', 'Affiliate'), 'partnerstack / affiliate'],

	// Audio.
	['Audio', utm('spotify', 'audio'), 'spotify / audio'],
	['Audio', utm('podcast', 'Audio'), 'podcast / audio'],

	// SMS: source or medium "sms".
	['SMS', utm('sms', 'text'), 'sms / text'],
	['SMS', utm('twilio', 'sms'), 'twilio / sms'],
	['SMS', utm('SMS'), 'sms / (not set)'],

	// Mobile Push Notifications: push media, mobile or notification media, or Firebase.
	['Mobile Push Notifications', utm('app', 'push'), 'app / push'],
	['Mobile Push Notifications', utm('onesignal', 'web-push'), 'onesignal / web-push'],
	['Mobile Push Notifications', utm('app', 'mobile'), 'app / mobile'],
	['Mobile Push Notifications', utm('app', 'notification'), 'app / notification'],
	['Mobile Push Notifications', utm('braze', 'in_app_notification'), 'braze / in_app_notification'],
	['Mobile Push Notifications', utm('firebase'), 'firebase / (not set)'],

	// Unassigned: tagged traffic no rule recognises.
	['Unassigned', utm('partner', 'newsletter'), 'partner / newsletter'],
	['Unassigned', utm('foo', 'bar'), 'foo / bar'],
	['Unassigned', utm(undefined, 'qr'), '(not set) / qr'],
	['Unassigned', utm('print', 'offline'), 'print / offline'],
	['Unassigned', utm('cj', 'affiliates'), 'cj / affiliates'],
	['Unassigned', utm('partner.io'), 'partner.io / (not set)'],
	['Unassigned', utm('  ', 'pushy'), '(not set) / pushy'],
];

describe('GA4 default channel grouping', () => {
	test('the table has at least 120 cases and covers every channel', () => {
		expect(CASES.length).toBeGreaterThanOrEqual(120);
		expect(new Set(CASES.map(([channel]) => channel))).toEqual(new Set(CHANNELS));
	});

	test.each(CASES)('%s ← %j', (channel, input, sourceMedium) => {
		const touch = attributeTouch(input, SITE);
		expect(touch.channel).toBe(channel);
		expect(`${touch.source} / ${touch.medium}`).toBe(sourceMedium);
	});
});

describe('channel rules as data', () => {
	test('rules are listed in GA4 evaluation order, one per channel, Unassigned last', () => {
		expect(CHANNEL_RULES.map((rule) => rule.channel)).toEqual(CHANNELS.filter((channel) => channel !== 'Unassigned'));
	});

	test('each source belongs to one category only', () => {
		const all = Object.values(SOURCE_CATEGORIES).flat();
		expect(new Set(all).size).toBe(all.length);
	});

	test('channelFor works on raw source / medium / campaign, case-insensitively and trimmed', () => {
		expect(channelFor('google', 'cpc')).toBe('Paid Search');
		expect(channelFor(' Google ', ' CPC ', 'Brand')).toBe('Paid Search');
		expect(channelFor('google', 'cpc', 'Shopping-Q4')).toBe('Paid Shopping');
		expect(channelFor('(direct)', '(none)')).toBe('Direct');
		expect(channelFor('', '')).toBe('Unassigned');
	});
});

describe('sourceCategory', () => {
	test.each([
		['google', 'search'],
		['www.google.com.br', 'search'],
		['de.search.yahoo.com', 'search'],
		['answers.yahoo.com', 'social'],
		['l.facebook.com', 'social'],
		['www.youtube.com', 'video'],
		['amazon.de', 'shopping'],
		['google shopping', 'shopping'],
		['vk.com', 'social'],
		['ask.com', 'search'],
		['www.ted.com', 'video'],
		['ig.com.br', undefined],
		['ask.fm', undefined],
		['partner.io', undefined],
		['newsletter', undefined],
		['localhost', undefined],
	])('%s → %s', (source, category) => {
		expect(sourceCategory(source)).toBe(category);
	});
});

describe('attributeTouch details', () => {
	test('campaign, term and content keep their case; GA4 placeholders fill a missing campaign', () => {
		expect(attributeTouch({ source: 'Google', medium: 'CPC', campaign: 'Brand NL', term: 'Crm Tool', content: 'Ad A' }, SITE)).toEqual({
			channel: 'Paid Search',
			source: 'google',
			medium: 'cpc',
			campaign: 'Brand NL',
			term: 'Crm Tool',
			content: 'Ad A',
		});
		expect(attributeTouch({}, SITE).campaign).toBe('(direct)');
		expect(attributeTouch(ref('https://www.google.com/'), SITE).campaign).toBe('(organic)');
		expect(attributeTouch(ref('https://github.com/'), SITE).campaign).toBe('(referral)');
		expect(attributeTouch(utm('partner', 'cpc'), SITE).campaign).toBe('(not set)');
		expect(attributeTouch(click({ gclid: 'x' }), SITE).campaign).toBe('(not set)');
	});

	test('reports the external referrer domain even when UTM tags decide the source', () => {
		const touch = attributeTouch({ source: 'newsletter', medium: 'email', referrer: 'https://mail.partner.io/inbox' }, SITE);
		expect(touch.referrerDomain).toBe('partner.io');
		expect(attributeTouch(ref('https://www.acme-shop.com/'), SITE).referrerDomain).toBeUndefined();
	});

	test('reports the click id type also when UTM tags win, and the ad platform of a click id', () => {
		expect(attributeTouch(click({ gclid: 'x' }, { source: 'partner', medium: 'cpc' }), SITE)).toMatchObject({ source: 'partner', clickIdType: 'gclid' });
		expect(attributeTouch(click({ msclkid: 'x' }), SITE)).toMatchObject({ clickIdType: 'msclkid', sourcePlatform: 'Microsoft Advertising' });
		expect(attributeTouch(click({ fbclid: 'x' }), SITE)).toMatchObject({ clickIdType: 'fbclid' });
		expect(attributeTouch(click({ fbclid: 'x' }), SITE).sourcePlatform).toBeUndefined();
		expect(attributeTouch({ sourcePlatform: 'Shopify', source: 'shop', medium: 'referral' }, SITE).sourcePlatform).toBe('Shopify');
	});

	test('a click id in the landing URL counts when the input carries none', () => {
		expect(attributeTouch(landing('https://www.acme-shop.com/p?gclid=Cj0&x=1#top'), SITE)).toMatchObject({ channel: 'Paid Search', clickIdType: 'gclid' });
		// Own parameters win over the landing URL's.
		expect(attributeTouch(landing('https://www.acme-shop.com/?utm_source=x&utm_medium=email', utm('google', 'cpc')), SITE).channel).toBe('Paid Search');
		expect(attributeTouch(landing('not a url?utm_source=x'), SITE).channel).toBe('Direct');
	});

	test('empty and blank values count as absent', () => {
		expect(attributeTouch({ source: '', medium: ' ', campaign: '', clickIds: { gclid: '' } }, SITE)).toEqual({
			channel: 'Direct',
			source: '(direct)',
			medium: '(none)',
			campaign: '(direct)',
		});
	});

	test('referrerHost takes the host of a URL without credentials or port', () => {
		expect(referrerHost('https://User:pw@WWW.Example.COM:8080/path?q#h')).toBe('www.example.com');
		expect(referrerHost('https://example.com')).toBe('example.com');
		expect(referrerHost('http://[2001:db8::1]:8080/')).toBe('[2001:db8::1]');
		expect(referrerHost('https://example.com/login?next=a@b.com')).toBe('example.com');
		expect(referrerHost('example.com')).toBeUndefined();
		expect(referrerHost('')).toBeUndefined();
		expect(referrerHost(undefined)).toBeUndefined();
	});
});
