import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { matchConversionRules, type ConversionEvent, type ConversionRuleCriteria, type ConversionSession } from '../../nodes/ConversionDetector/rules';
import { compilePathPattern, urlPath } from '../../nodes/shared/paths';

describe('compilePathPattern', () => {
	// [pattern, URL or path, matches]
	const cases: Array<[string, string, boolean]> = [
		['/', '/', true],
		['/', 'https://shop.example', true],
		['/', '/pricing', false],
		['/pricing', '/pricing', true],
		['/pricing', '/pricing/', true],
		['/pricing/', '/pricing', true],
		['/pricing', '/pricing//', true],
		['/pricing', '/Pricing', true],
		['/Pricing', '/pricing', true],
		['/pricing', '/pricing?plan=pro', true],
		['/pricing', '/pricing#faq', true],
		['/pricing', 'https://shop.example/pricing?utm_source=news#top', true],
		['/pricing', 'https://shop.example/a/../pricing', true],
		['/pricing', '/pricing/pro', false],
		['/pricing', '/pricings', false],
		['/pricing', '/en/pricing', false],
		['/checkout?step=done', '/checkout?step=other', true],
		['/checkout#done', '/checkout', true],
		// `*` stays within one segment.
		['/blog/*', '/blog/hello', true],
		['/blog/*', '/blog/hello/', true],
		['/blog/*', '/blog', false],
		['/blog/*', '/blog/', false],
		['/blog/*', '/blog/2024/hello', false],
		['/contact*', '/contact', true],
		['/contact*', '/contact-us', true],
		['/contact*', '/contact/thanks', false],
		['/*/pricing', '/en/pricing', true],
		['/*/pricing', '/pricing', false],
		['/*/pricing', '/en/us/pricing', false],
		['/*', '/', true],
		['/*', '/pricing', true],
		['/*', '/a/b', false],
		['/*.pdf', '/guide.pdf', true],
		['/*.pdf', '/docs/guide.pdf', false],
		['/a/*/c', '/a/b/c', true],
		['/a/*-*/c', '/a/x-y-z/c', true],
		['/a/*-*/c', '/a/xyz/c', false],
		// `**` as a whole segment matches zero or more segments.
		['/docs/**', '/docs', true],
		['/docs/**', '/docs/', true],
		['/docs/**', '/docs/a', true],
		['/docs/**', '/docs/a/b/c', true],
		['/docs/**', '/docsx', false],
		['/docs/**', '/doc', false],
		['/**/thank-you', '/thank-you', true],
		['/**/thank-you', '/shop/checkout/thank-you', true],
		['/**/thank-you', '/shop/no-thank-you', false],
		['/**/thank-you', '/thank-you/later', false],
		['/shop/**/done', '/shop/done', true],
		['/shop/**/done', '/shop/a/b/done', true],
		['/shop/**/done', '/shopdone', false],
		['/shop/**/done', '/shop/a/b/undone', false],
		['/files/**/*.pdf', '/files/report.pdf', true],
		['/files/**/*.pdf', '/files/2024/q1/report.pdf', true],
		['/files/**/*.pdf', '/files/2024/report.pdf.html', false],
		['/**', '/', true],
		['/**', '/anything/at/all', true],
		['/**/**/x', '/x', true],
		['/**/**/x', '/a/b/x', true],
		// `**` inside a segment matches anything, slashes included.
		['/docs**', '/docs', true],
		['/docs**', '/docs-v2', true],
		['/docs**', '/docs/a/b', true],
		['/a***b', '/a/x/b', true],
		// Percent-encoding and non-ASCII paths compare decoded.
		['/caf%C3%A9', '/café', true],
		['/café', 'https://shop.example/caf%C3%A9', true],
		['/CAFÉ', '/café', true],
		['/🎉/*', '/%F0%9F%8E%89/party', true],
		['/a%2Fb', 'https://shop.example/a%2Fb', true],
		['/a%2Fb', '/a/b', false],
		['/price-list.(v2)', '/price-list.(v2)', true],
		['/price-list.(v2)', '/price-listx(v2)', false],
	];

	it.each(cases)('%s against %s → %s', (pattern, url, expected) => {
		expect(compilePathPattern(pattern).test(url)).toBe(expected);
	});

	it('keeps the pattern as written in `source`', () => {
		expect(compilePathPattern('/Blog/*/').source).toBe('/Blog/*/');
	});

	it('tests a normalized path directly with testPath', () => {
		const pattern = compilePathPattern('/blog/*');
		expect(pattern.testPath(urlPath('https://shop.example/Blog/Hello/?x=1') as string)).toBe(true);
		expect(pattern.testPath('/blog')).toBe(false);
	});

	it('honours hash routing when asked', () => {
		const pattern = compilePathPattern('/pricing');
		expect(pattern.test('https://app.example/#/pricing', { hashRouting: true })).toBe(true);
		expect(pattern.test('https://app.example/#/pricing')).toBe(false);
	});

	it('gives one compiled pattern the same verdicts as fresh ones, path after path and past its kept verdicts', () => {
		const reused = compilePathPattern('/docs/**/v*');
		// More distinct paths than a pattern keeps verdicts of, visited twice, matches and misses interleaved.
		const paths = Array.from({ length: 12_000 }, (_, n) => (n % 3 === 0 ? `/docs/${n}/v${n}` : n % 3 === 1 ? `/docs/${n}/x` : `/blog/${n}/v`));
		const verdicts = [...paths, ...paths.slice(0, 50)].map((path) => reused.testPath(path));
		const fresh = [...paths, ...paths.slice(0, 50)].map((path) => compilePathPattern('/docs/**/v*').testPath(path));
		expect(verdicts).toEqual(fresh);
		expect(verdicts.filter(Boolean)).toHaveLength(4_000 + 17);
	});

	it('never matches a URL it cannot parse', () => {
		expect(compilePathPattern('/**').test('http://[::1')).toBe(false);
	});

	it.each(['pricing', '*/pricing', '', 'https://shop.example/pricing'])('rejects %j, which does not start with "/"', (pattern) => {
		expect(() => compilePathPattern(pattern)).toThrow(/must start with "\/"/);
	});

	it('matches in time linear in the path, even for patterns that make regular expressions backtrack', () => {
		const pattern = compilePathPattern(`${'/**/a'.repeat(12)}/*a*a*a*a*a*a*b`);
		const path = '/a'.repeat(1000);
		const started = process.hrtime.bigint();
		expect(pattern.test(path)).toBe(false);
		expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(500);
	});
});

describe('urlPath', () => {
	// [URL or path, hash routing, path]
	const cases: Array<[string, boolean, string | null]> = [
		['https://shop.example/Pricing/?a=1#x', false, '/pricing'],
		['https://shop.example', false, '/'],
		['https://shop.example/', false, '/'],
		['/pricing', false, '/pricing'],
		['pricing', false, '/pricing'],
		['', false, '/'],
		['/a/./b/../c', false, '/a/c'],
		['/100%', false, '/100%'],
		['/caf%C3%A9', false, '/café'],
		['https://shop.example/#/pricing', false, '/'],
		['https://shop.example/#/Pricing', true, '/pricing'],
		['https://shop.example/app#/pricing/?x=1', true, '/pricing'],
		['https://shop.example/app#!/pricing', true, '/pricing'],
		['https://shop.example/app#section', true, '/app'],
		['https://shop.example/app', true, '/app'],
		['http://[::1', false, null],
	];

	it.each(cases)('%j (hash routing %s) → %j', (url, hashRouting, expected) => {
		expect(urlPath(url, { hashRouting })).toBe(expected);
	});
});

describe('matchConversionRules', () => {
	const pageview = (url: string): ConversionEvent => ({ type: 'pageview', url });
	const engaged: ConversionSession = { engagementScore: 60 };

	// [description, event, session score, rule, matches]
	const cases: Array<[string, ConversionEvent, number, ConversionRuleCriteria, boolean]> = [
		['event type', { type: 'form_submit', url: 'https://s.example/contact' }, 0, { event: 'form_submit' }, true],
		['custom event name', { type: 'custom', name: 'signup' }, 0, { event: 'signup' }, true],
		['label refining a type', { type: 'form_submit', name: 'newsletter' }, 0, { event: 'newsletter' }, true],
		['another event', { type: 'click', name: 'cta' }, 0, { event: 'signup' }, false],
		['event names are case-sensitive', { type: 'custom', name: 'signup' }, 0, { event: 'Signup' }, false],
		['event without a name', { type: 'custom' }, 0, { event: 'signup' }, false],
		['null name', { type: 'custom', name: null }, 0, { event: 'signup' }, false],
		['destination goal on a page view', pageview('https://s.example/thank-you?order=1'), 0, { urlPattern: '/thank-you' }, true],
		['destination goal ignores clicks on the page', { type: 'click', url: 'https://s.example/thank-you' }, 0, { urlPattern: '/thank-you' }, false],
		['destination goal ignores custom events on the page', { type: 'custom', name: 'x', url: 'https://s.example/thank-you' }, 0, { urlPattern: '/thank-you' }, false],
		['destination goal on another page', pageview('https://s.example/pricing'), 0, { urlPattern: '/thank-you' }, false],
		['URL rule and an event without URL', { type: 'pageview' }, 0, { urlPattern: '/**' }, false],
		['URL rule and an unparsable URL', { type: 'pageview', url: 'http://[::1' }, 0, { urlPattern: '/**' }, false],
		['event and URL', { type: 'form_submit', url: 'https://s.example/contact-us' }, 0, { event: 'form_submit', urlPattern: '/contact*' }, true],
		['event on another URL', { type: 'form_submit', url: 'https://s.example/about' }, 0, { event: 'form_submit', urlPattern: '/contact*' }, false],
		['named event on its URL', { type: 'click', name: 'buy', url: 'https://s.example/shop/item/1' }, 0, { event: 'buy', urlPattern: '/shop/**' }, true],
		['engagement at the threshold', { type: 'scroll' }, 60, { minEngagementScore: 60 }, true],
		['engagement below the threshold', { type: 'scroll' }, 59.9, { minEngagementScore: 60 }, false],
		['engagement threshold 0', { type: 'engagement' }, 0, { minEngagementScore: 0 }, true],
		['engagement score NaN', { type: 'engagement' }, NaN, { minEngagementScore: 0 }, false],
		['engagement rule on any event type', { type: 'session_end' }, 100, { minEngagementScore: 80 }, true],
		['all three criteria', pageview('https://s.example/pricing'), 70, { event: 'pageview', urlPattern: '/pricing', minEngagementScore: 60 }, true],
		['all three, score short', pageview('https://s.example/pricing'), 50, { event: 'pageview', urlPattern: '/pricing', minEngagementScore: 60 }, false],
		['URL and engagement without event', pageview('https://s.example/pricing'), 70, { urlPattern: '/pricing', minEngagementScore: 60 }, true],
		['URL and engagement, not a page view', { type: 'scroll', url: 'https://s.example/pricing' }, 70, { urlPattern: '/pricing', minEngagementScore: 60 }, false],
		['a rule without criteria matches nothing', pageview('https://s.example/'), 100, {}, false],
	];

	it.each(cases)('%s', (_description, event, engagementScore, rule, expected) => {
		expect(matchConversionRules(event, { engagementScore }, [rule])).toEqual(expected ? [rule] : []);
	});

	it('returns every matching rule, in the order given, as the same objects', () => {
		const rules = [
			{ name: 'any-pricing-view', urlPattern: '/pricing', value: 1 },
			{ name: 'signup', event: 'signup', value: 5 },
			{ name: 'engaged', minEngagementScore: 50, value: 2 },
			{ name: 'docs', urlPattern: '/docs/**', value: 0 },
		];
		const matched = matchConversionRules(pageview('https://s.example/pricing/'), engaged, rules);
		expect(matched.map((rule) => rule.name)).toEqual(['any-pricing-view', 'engaged']);
		expect(matched[0]).toBe(rules[0]);
		expect(matchConversionRules({ type: 'custom', name: 'signup' }, { engagementScore: 10 }, rules)).toEqual([rules[1]]);
		expect(matchConversionRules({ type: 'custom', name: 'other' }, { engagementScore: 10 }, rules)).toEqual([]);
		expect(matchConversionRules({ type: 'custom', name: 'other' }, engaged, [])).toEqual([]);
	});

	it('reads the path from the fragment on hash-routed sites', () => {
		const rules = [{ urlPattern: '/checkout/done' }];
		const event = pageview('https://app.example/#/checkout/done');
		expect(matchConversionRules(event, engaged, rules, { hashRouting: true })).toEqual(rules);
		expect(matchConversionRules(event, engaged, rules)).toEqual([]);
	});

	it('recompiles the pattern of a rule edited in place', () => {
		const rule = { urlPattern: '/a' };
		expect(matchConversionRules(pageview('/a'), engaged, [rule])).toEqual([rule]);
		rule.urlPattern = '/b';
		expect(matchConversionRules(pageview('/a'), engaged, [rule])).toEqual([]);
		expect(matchConversionRules(pageview('/b'), engaged, [rule])).toEqual([rule]);
	});

	it('throws on a pattern the site config would have rejected', () => {
		expect(() => matchConversionRules(pageview('/a'), engaged, [{ urlPattern: 'a' }])).toThrow(/must start with "\/"/);
	});

	it('takes the rules of a parsed site config as they are', () => {
		const file = path.join(__dirname, '..', '..', 'config', 'site.example.json');
		const config = parseSiteConfig(JSON.parse(readFileSync(file, 'utf8')), file);
		const rules = config.crm.conversionRules;

		const contact = matchConversionRules({ type: 'form_submit', name: 'contact', url: 'https://nat-pets.com/contact?ref=nav' }, { engagementScore: 5 }, rules);
		expect(contact.map(({ name, value, currency }) => ({ name, value, currency }))).toEqual([{ name: 'contact-request', value: 50, currency: 'EUR' }]);

		const pricing = (engagementScore: number) => matchConversionRules(pageview('https://nat-pets.com/pricing/'), { engagementScore }, rules).map((rule) => rule.name);
		expect(pricing(75)).toEqual(['engaged-pricing-visit']);
		expect(pricing(40)).toEqual([]);
	});
});
