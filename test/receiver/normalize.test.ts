import { eventContextSchema, LATEST_CLIENT_TIME, leadPayloadSchema, storableText, toFieldIssues, trackBatchSchema, trackEventSchema } from '../../lib/contracts';
import { TRUSTED_CLOCK_SKEW_MS } from '../../lib/contracts/tracking';
import { anonymizeIp, correctedEventTime, firstLanguage, isAutomated, namedSessionProps, withCampaign, withSessionSummary, withFormFields } from '../../server/ingest/normalize';
import { BROWSER_UA, pageview } from '../helpers/events';
import { sampleSession } from '../helpers/session';

describe('isAutomated', () => {
	const event = pageview('site', 'anon');
	const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
	const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36';

	it('gives each agent the same verdict every time, also after many distinct agents', () => {
		const verdicts = () => [BROWSER_UA, GOOGLEBOT, HEADLESS, undefined].map((agent) => isAutomated(agent, { events: [event] }));
		expect(verdicts()).toEqual([false, true, true, true]);
		expect(verdicts()).toEqual([false, true, true, true]);
		for (let i = 0; i < 12_000; i++) isAutomated(`${BROWSER_UA} build/${i}`, { events: [event] });
		expect(verdicts()).toEqual([false, true, true, true]);
	});

	it('trusts the tracker when it noticed automation in a browser agent', () => {
		expect(isAutomated(BROWSER_UA, { events: [event, { ...event, context: { automation: true } }] })).toBe(true);
		expect(isAutomated(BROWSER_UA, { automation: true, events: [event] })).toBe(true);
		expect(isAutomated(BROWSER_UA, { automation: false, events: [event] })).toBe(false);
	});
});

describe('withCampaign', () => {
	const view = (url: string, context?: object) => ({ type: 'pageview' as const, url, context });

	it('takes the UTM parameters and click ids of a landing URL into the context', () => {
		expect(withCampaign(view('https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=spring&ref=x#top', { language: 'en' }))).toEqual({
			language: 'en',
			utm_source: 'news',
			utm_medium: 'email',
			utm_campaign: 'spring',
		});
		expect(withCampaign(view('https://shop.example/p?gclid=abc&msclkid=def&utm_source_platform=Google%20Ads'))).toEqual({
			utm_source_platform: 'Google Ads',
			clickIds: { gclid: 'abc', msclkid: 'def' },
		});
	});

	it('keeps what the client sent, and leaves other events and plain URLs alone', () => {
		expect(withCampaign(view('https://shop.example/?utm_source=url&gclid=url', { utm_source: 'client', clickIds: { fbclid: 'client' } }))).toEqual({
			utm_source: 'client',
			clickIds: { gclid: 'url', fbclid: 'client' },
		});
		const context = { language: 'en' };
		expect(withCampaign(view('https://shop.example/?ref=x&utm=1&xgclid=2', context))).toBe(context);
		expect(withCampaign(view('https://shop.example/pricing', context))).toBe(context);
		expect(withCampaign({ type: 'custom', url: 'https://shop.example/?utm_source=news', context: undefined })).toBeUndefined();
	});

	it('gives only values the contract accepts: no control characters, within its lengths', () => {
		const context = withCampaign(view(`https://shop.example/?utm_source=a%00b%1Fc&utm_term=${'t'.repeat(300)}&gclid=${'g'.repeat(600)}&utm_content=`));
		expect(context).toEqual({ utm_source: 'abc', utm_term: 't'.repeat(200), clickIds: { gclid: 'g'.repeat(500) } });
		expect(eventContextSchema.safeParse(context).success).toBe(true);
	});
});

describe('withSessionSummary', () => {
	const thresholds = { medium: 30, high: 60 };
	const start = Date.UTC(2026, 0, 1);
	// The counters of a tracker's session summary: two pages, a minute engaged, 75% scrolled, relevance 22.
	const summary = { start, last: start + 61_000, pages: 2, events: 5, maxScrollDepth: 75, engagedMs: 60_000, relevanceSum: 22, entry: 'https://shop.example/', exit: 'https://shop.example/pricing' };

	it('adds the session length, scores the summary from its counters and levels it by the site thresholds', () => {
		// 8 (pages) + 13.4 (a minute) + 11.25 (scroll) + 4.4 (relevance): the formula the Visitor Processor scores sessions by
		expect(withSessionSummary(summary, thresholds)).toEqual({ ...summary, durationMs: 61_000, engagementScore: 37, engagement: 'medium' });
		expect(withSessionSummary(summary, { medium: 40, high: 60 })!.engagement).toBe('low');
		expect(withSessionSummary(summary, { medium: 10, high: 37 })!.engagement).toBe('high');
	});

	it('caps every part, ignores counters that are no positive numbers, and keeps what the client sent but its engagement', () => {
		expect(withSessionSummary({ pages: 40, engagedMs: 1e9, maxScrollDepth: 1e6, relevanceSum: 500, form_submit: 3 }, thresholds)).toMatchObject({ engagementScore: 100, engagement: 'high' });
		expect(withSessionSummary({ pages: '9', engagedMs: -5, maxScrollDepth: null }, thresholds)).toMatchObject({ engagementScore: 0, engagement: 'low' });
		expect(withSessionSummary(undefined, thresholds)).toEqual({ pages: 0, events: 0, engagementScore: 0, engagement: 'low' });
		expect(withSessionSummary({ ...summary, durationMs: 5, engagementScore: 80, engagement: 'high' }, thresholds)).toMatchObject({ durationMs: 5, engagementScore: 37, engagement: 'medium' });
	});

	it('a session without engagement reports is engaged for its span, as the Visitor Processor counts it', () => {
		const unreported = { start, last: start + 120_000, pageview: 3, click: 2 };
		// 12 (pages) + 19 (two minutes) + 2 (clicks)
		expect(withSessionSummary(unreported, thresholds)).toMatchObject({ pages: 3, engagementScore: 33, engagement: 'medium' });
	});
});

describe('what a page shows', () => {
	it('is taken at the contract length without control characters, and refused only when it is no string or no http(s) URL', () => {
		const event = { ...pageview('site', 'anon'), url: `https://shop.example/${'p'.repeat(3000)}`, title: `Ti\u0001tle${'x'.repeat(600)}`, name: 'n'.repeat(200), referrer: 'android-app://com.example.mail/', props: { note: 'v'.repeat(2000), n: 1 } };
		const parsed = trackEventSchema.parse(event);
		expect([parsed.url.length, parsed.title!.slice(0, 6), parsed.title!.length, parsed.name!.length, parsed.referrer, (parsed.props!.note as string).length, parsed.props!.n]).toEqual([2048, 'Titlex', 512, 100, '', 1000, 1]);
		expect(trackEventSchema.safeParse({ ...event, title: 5 }).success).toBe(false);
		expect(trackEventSchema.safeParse({ ...event, url: 'javascript:alert(1)' }).success).toBe(false);
		expect(leadPayloadSchema.parse({ site: 'site', email: 'ana@example.com', formId: `f\u0000${'f'.repeat(300)}` }).formId).toBe('f'.repeat(100));
	});

	it('refuses a property named as every JavaScript object’s own machinery, or with a control character, naming that property and the fix', () => {
		const issuesOf = (props: string) => {
			const input = { ...pageview('site', 'anon'), props: JSON.parse(props) as unknown };
			const parsed = trackEventSchema.safeParse(input);
			return parsed.success ? parsed.data.props : toFieldIssues(parsed.error, input).map(({ field, message }) => `${field}: ${message}`);
		};
		expect(issuesOf('{"constructor":"y"}')).toEqual(['props.constructor: is a name every JavaScript object reserves ("constructor"): rename the property']);
		// JSON.parse makes "__proto__" a property of its own, which a record check would have dropped with the object it held.
		expect(issuesOf('{"plan":"pro","__proto__":{"a":1}}')).toEqual(['props.__proto__: is a name every JavaScript object reserves ("__proto__"): rename the property']);
		expect(issuesOf('{"k\\u0000ey":"v"}')).toEqual(['props.k\u0000ey: is a property name with a control character: property names must not contain control characters']);
		expect(issuesOf('{"plan":"pro","toString":"x"}')).toEqual({ plan: 'pro', toString: 'x' });
	});

	it('takes a lead’s address with spaces around it, as every other field of a form', () => {
		expect(leadPayloadSchema.parse({ site: 'site', email: ' race@example.com\t' }).email).toBe('race@example.com');
		expect(leadPayloadSchema.safeParse({ site: 'site', email: 'race @example.com' }).success).toBe(false);
	});
});

describe('namedSessionProps', () => {
	it("names the tracker's session record and counts its pages and events from its counts per type", () => {
		const start = Date.UTC(2026, 0, 1);
		const session = sampleSession('?utm_source=news');
		expect(namedSessionProps(session as unknown as Record<string, number>)).toEqual({
			id: session.id,
			start,
			last: start + 61_000,
			campaign: '?utm_source=news',
			pages: 2,
			events: 5,
			pageview: 2,
			scroll: 1,
			engagement: 1,
			form_submit: 1,
			maxScrollDepth: 75,
			engagedMs: 60_000,
			relevanceSum: 22,
			entry: 'https://shop.example/',
			exit: 'https://shop.example/pricing',
		});
		expect(trackEventSchema.shape.props.safeParse(session).success).toBe(true);
	});
});

describe('firstLanguage', () => {
	it('takes the first tag of Accept-Language, and nothing from a wildcard or garbage', () => {
		expect(firstLanguage('de-CH,de;q=0.9,en;q=0.8')).toBe('de-CH');
		expect(firstLanguage('en-US')).toBe('en-US');
		expect(firstLanguage('fr;q=0.9, en')).toBe('fr');
		expect(firstLanguage('zh-Hant-TW')).toBe('zh-Hant-TW');
		for (const header of [undefined, '', '*', '<script>', 'en_US']) expect(firstLanguage(header)).toBeUndefined();
	});
});

describe('withFormFields', () => {
	const lead = { site: 'shop', email: 'ana@example.com', consent: false, formId: 'signup' };

	it('maps form fields to lead fields by name or input type, the first of each, and drops the rest', () => {
		const fields: [string, string, string][] = [
			['work_email', 'email', 'ana@example.com'],
			['first_name', 'text', ' Ana '],
			['surname', 'text', 'Lima'],
			['contact', 'tel', '+49 30 1234'],
			['organisation', 'text', 'Acme'],
			['company', 'text', 'Second Acme'],
			['message', 'textarea', 'call me\nmaybe'],
			['plan', 'select-one', 'pro'],
		];
		expect(withFormFields({ ...lead, fields })).toEqual({ ...lead, firstName: 'Ana', lastName: 'Lima', phone: '+49 30 1234', company: 'Acme' });
		expect(withFormFields({ ...lead, fields: [['name', 'text', 'Ana Lima']] })).toEqual({ ...lead, firstName: 'Ana Lima' });
	});

	it('takes a ticked box named like consent or a newsletter as marketing consent, and other boxes as nothing', () => {
		expect(withFormFields({ ...lead, fields: [['newsletter', 'checkbox', 'on']] }).consent).toBe(true);
		expect(withFormFields({ ...lead, fields: [['gdpr_opt-in', 'radio', 'yes']] }).consent).toBe(true);
		expect(withFormFields({ ...lead, fields: [['first_name', 'checkbox', 'on']] })).toEqual(lead);
	});

	it('keeps what the client set itself, and gives only values the lead contract accepts', () => {
		expect(withFormFields({ ...lead, firstName: 'Set', fields: [['first_name', 'text', 'Form']] }).firstName).toBe('Set');
		expect(withFormFields({ ...lead, fields: [['first_name', 'text', `A\tn\u0000a${'x'.repeat(200)}`], ['phone', 'tel', '   ']] })).toEqual({ ...lead, firstName: `Ana${'x'.repeat(97)}` });
		expect(leadPayloadSchema.safeParse(withFormFields({ ...lead, fields: [['company', 'text', 'c'.repeat(500)]] })).success).toBe(true);
	});

	it('maps a job title and a country, so fit rules on them fire for form leads as for identify calls', () => {
		const fields: [string, string, string][] = [
			['jobTitle', 'text', ' Head of Marketing '],
			['country', 'select-one', 'DE'],
		];
		const mapped = withFormFields({ ...lead, fields });
		expect(mapped).toEqual({ ...lead, jobTitle: 'Head of Marketing', country: 'DE' });
		expect(leadPayloadSchema.parse(mapped)).toMatchObject({ jobTitle: 'Head of Marketing', country: 'DE' });
		for (const name of ['job_title', 'job-title', 'JobTitle', 'organization-title', 'position', 'role']) {
			expect(withFormFields({ ...lead, fields: [[name, 'text', 'Owner']] })).toEqual({ ...lead, jobTitle: 'Owner' });
		}
		for (const name of ['country', 'country_code', 'countryCode', 'billing-country']) {
			expect(withFormFields({ ...lead, fields: [[name, 'select-one', 'es']] })).toEqual({ ...lead, country: 'es' });
		}
		expect(withFormFields({ ...lead, fields: [['organisation', 'text', 'Acme']] })).toEqual({ ...lead, company: 'Acme' });
		expect(withFormFields({ ...lead, fields: [['job_title', 'text', 'j'.repeat(300)]] }).jobTitle).toBe('j'.repeat(200));
	});

	it('takes a country only as the ISO code the lead contract accepts, from the first field holding one', () => {
		for (const value of ['Germany', 'DEU', '+49', 'D']) {
			expect(withFormFields({ ...lead, fields: [['country', 'select-one', value]] })).toEqual(lead);
		}
		expect(withFormFields({ ...lead, fields: [['country', 'text', 'Spain'], ['billing_country', 'select-one', 'ES']] }).country).toBe('ES');
		expect(withFormFields({ ...lead, country: 'PT', fields: [['country', 'select-one', 'ES']] }).country).toBe('PT');
	});

	it('leaves a field named just "title" alone: on many forms it is the salutation', () => {
		expect(withFormFields({ ...lead, fields: [['title', 'select-one', 'Dr']] })).toEqual(lead);
	});
});

describe('anonymizeIp', () => {
	it('zeroes the host part: the last octet of IPv4, the last 80 bits of IPv6', () => {
		expect(anonymizeIp('203.0.113.77')).toBe('203.0.113.0');
		expect(anonymizeIp('2001:db8:85a3:1234:5678:8a2e:370:7334')).toBe('2001:db8:85a3::');
		expect(anonymizeIp('2001:0DB8:0000::1')).toBe('2001:db8:0::');
		expect(anonymizeIp('fe80::1%eth0')).toBe('fe80:0:0::');
	});

	it('takes the address out of a proxy\'s ip:port and [v6]:port (Azure Application Gateway sends 198.51.100.7:4431)', () => {
		expect(anonymizeIp('198.51.100.7:4431')).toBe('198.51.100.0');
		expect(anonymizeIp('[2001:db8:1:2::1]:443')).toBe('2001:db8:1::');
		expect(anonymizeIp('[2001:db8:1:2::1]')).toBe('2001:db8:1::');
	});

	it('anonymizes an IPv4-mapped IPv6 address as its IPv4 address, however it is written', () => {
		for (const address of ['::ffff:203.0.113.9', '::FFFF:203.0.113.9', '::ffff:cb00:7109', '0:0:0:0:0:ffff:cb00:7109', '[::ffff:203.0.113.9]:80']) {
			expect(anonymizeIp(address)).toBe('203.0.113.0');
		}
		expect(anonymizeIp('::ffff:cb00:714f')).toBe('203.0.113.0');
		expect(anonymizeIp('::1')).toBe('0:0:0::');
	});

	it('gives null for what is no address', () => {
		for (const address of [undefined, '', 'garbage', 'unknown', '198.51.100.7:', '1.2.3.4.5', '[garbage]:80', '::ffff:1.2.3.4:80']) {
			expect(anonymizeIp(address)).toBeNull();
		}
	});
});

describe('storableText', () => {
	const EMOJI = '\u{1F642}';

	it('cuts before a character rather than through it, and keeps a whole one that fits', () => {
		expect(storableText(`ab${EMOJI}`, 3)).toBe('ab');
		expect(storableText(`ab${EMOJI}`, 4)).toBe(`ab${EMOJI}`);
		expect(storableText(`ab${EMOJI}cd`, 5)).toBe(`ab${EMOJI}c`);
		expect(storableText('abcdef', 3)).toBe('abc');
	});

	it('replaces every lone surrogate, high or low, anywhere, and leaves pairs alone', () => {
		expect(storableText('a\ud800b\udc00c\ud83d')).toBe('a\ufffdb\ufffdc\ufffd');
		expect(storableText(`\udc00${EMOJI}\ud800`)).toBe(`\ufffd${EMOJI}\ufffd`);
		expect(storableText(`${EMOJI}${EMOJI}`)).toBe(`${EMOJI}${EMOJI}`);
	});

	it('is what the contracts give for every string they store: values, JSON keys, context, lead fields', () => {
		const event = trackEventSchema.parse({ ...pageview('site', 'anon\ud800'), title: `${'t'.repeat(511)}${EMOJI}`, props: { 'k\udc00': 'v\ud800', note: `${'n'.repeat(999)}${EMOJI}` }, context: { utm_source: 's\ud800' } });
		expect([event.anonymousId, event.title!.length, event.props, event.context]).toEqual(['anon\ufffd', 511, { 'k\ufffd': 'v\ufffd', note: 'n'.repeat(999) }, { utm_source: 's\ufffd' }]);
		const lead = leadPayloadSchema.parse({ site: 'site', email: 'ana@example.com', firstName: 'A\ud800na', properties: { 'p\ud800': 'q\udc00' } });
		expect([lead.firstName, lead.properties]).toEqual(['A\ufffdna', { 'p\ufffd': 'q\ufffd' }]);
		expect(withFormFields({ site: 'site', email: 'ana@example.com', consent: false, fields: [['first_name', 'text', `${'f'.repeat(99)}${EMOJI}`]] }).firstName).toBe('f'.repeat(99));
		expect(withCampaign({ type: 'pageview', url: `https://shop.example/?utm_term=${encodeURIComponent(`${'t'.repeat(199)}${EMOJI}`)}`, context: undefined })).toEqual({ utm_term: 't'.repeat(199) });
	});
});

describe('correctedEventTime', () => {
	const receivedAt = Date.UTC(2026, 5, 1, 12);

	it('removes the client clock skew, and keeps every time between 2020 and the moment it was received', () => {
		expect(correctedEventTime(Date.UTC(2030, 0, 1), Date.UTC(2030, 0, 1, 0, 0, 5), receivedAt)).toBe(receivedAt - 5000);
		expect(correctedEventTime(Date.UTC(2026, 5, 1), undefined, receivedAt)).toBe(Date.UTC(2026, 5, 1));
		expect(correctedEventTime(Date.UTC(2020, 0, 2), LATEST_CLIENT_TIME, receivedAt)).toBe(Date.UTC(2020, 0, 1));
		expect(correctedEventTime(LATEST_CLIENT_TIME, 1, receivedAt)).toBe(receivedAt);
		expect(correctedEventTime(LATEST_CLIENT_TIME, undefined, receivedAt)).toBe(receivedAt);
		expect(correctedEventTime(receivedAt - 5 * 60_000 - 2000, receivedAt - 5 * 60_000, receivedAt)).toBe(receivedAt - 2000);
	});

	it('trusts a clock within a minute of ours, so that a batch that took longer to arrive is not moved after a later one', () => {
		const beaconSentAt = receivedAt - 900;
		const nextPageSentAt = receivedAt - 100;
		const landing = correctedEventTime(beaconSentAt - 400, beaconSentAt, receivedAt);
		const nextPage = correctedEventTime(beaconSentAt - 200, nextPageSentAt, receivedAt);
		expect([landing, nextPage]).toEqual([beaconSentAt - 400, beaconSentAt - 200]);
		const lateSentAt = receivedAt - TRUSTED_CLOCK_SKEW_MS;
		expect(correctedEventTime(lateSentAt - 1000, lateSentAt, receivedAt)).toBe(lateSentAt - 1000);
		expect(correctedEventTime(lateSentAt - 1001, lateSentAt - 1, receivedAt)).toBe(receivedAt - 1000);
	});

	it('gets only client times a Date can hold: after the year 9999 they are refused by the contract, naming the field', () => {
		const event = pageview('site', 'anon');
		for (const time of [8.64e15, Number.MAX_SAFE_INTEGER]) {
			expect(trackBatchSchema.safeParse({ site: 'site', sentAt: time, events: [event] }).error?.issues.map((issue) => issue.path.join('.'))).toEqual(['sentAt']);
			expect(trackBatchSchema.safeParse({ site: 'site', events: [{ ...event, ts: time }] }).error?.issues.map((issue) => issue.path.join('.'))).toEqual(['events.0.ts']);
		}
		expect(trackBatchSchema.safeParse({ site: 'site', sentAt: LATEST_CLIENT_TIME, events: [{ ...event, ts: LATEST_CLIENT_TIME }] }).success).toBe(true);
	});
});
