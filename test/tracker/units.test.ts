import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseSiteConfig, SiteConfigError } from '../../lib/config/siteConfig';
import type { SiteConfigInput } from '../../lib/contracts/siteConfig';
import { pathPatternSource, trackerSettings } from '../../lib/contracts/trackerSettings';
import { CLICK_ID_PARAMS, eventContextSchema, trackEventSchema } from '../../lib/contracts/tracking';
import { compilePathPattern } from '../../nodes/shared/paths';
import { campaignOf, configure, relevanceOf, sessionOver, startSession, updateSession, uuidv7 } from '../../tracker/src/rules';
import { sampleSession } from '../helpers/session';

const MINUTE = 60_000;

/** A site config with these tracking settings. */
const siteWith = (tracking: Partial<SiteConfigInput['tracking']>) =>
	parseSiteConfig({ site: { key: 'shop', name: 'Shop', domain: 'shop.example' }, tracking: { allowedOrigins: ['https://shop.example'], ...tracking } });

/** The relevance rules the receiver gives the tracker of a site with these rules of its own. */
const rulesOf = (eventRelevance: NonNullable<SiteConfigInput['tracking']['eventRelevance']>) => trackerSettings(siteWith({ eventRelevance })).rules;

describe('tracker modules', () => {
	it('makes UUIDv7 ids the contract accepts, ordered by time', () => {
		const now = Date.UTC(2026, 10, 24, 12);
		const ids = [now, now + 1, now + 1000, now + MINUTE].map((ms) => uuidv7(ms));
		for (const id of ids) expect(trackEventSchema.shape.id.safeParse(id).success).toBe(true);
		expect([...ids].sort()).toEqual(ids);
		expect(parseInt(ids[0].replace('-', '').slice(0, 12), 16)).toBe(now);
		expect(new Set(Array.from({ length: 1000 }, () => uuidv7(now))).size).toBe(1000);
	});

	it('knows the campaign parameters and click ids of the contract (its lists would bundle zod)', () => {
		const utm = Object.keys(eventContextSchema.shape).filter((key) => key.startsWith('utm_'));
		expect([...utm, ...CLICK_ID_PARAMS].filter((key) => campaignOf(`?ref=1&${key}=v`) != `&${key}=v`)).toEqual([]);
		for (const other of ['ref', 'page', 'q', 'id', 'gclid2', 'gbraids', 'li_fat', 'source', 'xutm_source']) expect(campaignOf(`?${other}=v`)).toBe('');
	});

	it('keys a landing by its campaign parameters only, in their order', () => {
		expect(campaignOf('?utm_source=news&ref=x&utm_campaign=spring&gclid=abc')).toBe('?utm_source=news,&utm_campaign=spring,&gclid=abc');
		expect(campaignOf('?utm_source=news&utm_campaign=spring')).not.toBe(campaignOf('?utm_campaign=spring&utm_source=news'));
		expect(campaignOf('?page=2')).toBe('');
		expect(campaignOf('')).toBe('');
		expect(campaignOf(`?utm_term=${'t'.repeat(2000)}`)).toHaveLength(2010);
	});

	it.each([
		['/pricing', '/pricing', true],
		['/pricing', '/Pricing/', true],
		['/pricing', '/pricing/team', false],
		['/blog/*', '/blog/hello', true],
		['/blog/*', '/blog/a/b', false],
		['/docs/**', '/docs', true],
		['/docs/**', '/docs/a/b', true],
		['/**/checkout', '/checkout', true],
		['/**/checkout', '/shop/cart/checkout', true],
		['/a**z', '/a/b/z', true],
		['/price.html', '/priceXhtml', false],
		['/search', '/search?q=x', false],
	])('compiles path pattern %s to a regular expression that matches %s as the server does (%s)', (pattern, route, expected) => {
		expect(RegExp(pathPatternSource(pattern), 'i').test(route)).toBe(expected);
		if (!route.includes('?')) expect(compilePathPattern(pattern).testPath(route.replace(/\/$/, '').toLowerCase())).toBe(expected);
	});

	it('scores an event by the first matching rule of the site, or by its type', () => {
		const rules = rulesOf([
			{ type: 'custom', name: 'signup', relevance: 10 },
			{ urlPattern: '/pricing/**', relevance: 8 },
			{ type: 'custom', relevance: 3 },
		]);
		expect(relevanceOf(rules, 'custom', 'signup', '/pricing')).toBe(10);
		expect(relevanceOf(rules, 'pageview', undefined, '/pricing/team')).toBe(8);
		expect(relevanceOf(rules, 'download', 'prices.pdf', '/Pricing/team')).toBe(8);
		expect(relevanceOf(rules, 'custom', 'other', '/')).toBe(3);
		expect(relevanceOf(rules, 'click', 'broken', '/')).toBe(5);
		const none = rulesOf([]);
		expect(relevanceOf(none, 'form_submit', undefined, '/')).toBe(8);
		expect(relevanceOf(none, 'download', 'prices.pdf', '/')).toBe(7);
		expect(relevanceOf(none, 'scroll', '25%', '/')).toBe(2);
		expect(relevanceOf(none, 'engagement', undefined, '/')).toBe(2);
		expect(relevanceOf(none, 'pageview', undefined, '/')).toBe(5);
		expect(relevanceOf(none, 'custom', 'anything', '/')).toBe(5);
	});

	it('refuses a relevance outside 1–10 in the site config', () => {
		expect(() => rulesOf([{ name: 'broken', relevance: 42 }])).toThrow(SiteConfigError);
		expect(() => rulesOf([{ name: 'broken', relevance: 0 }])).toThrow(SiteConfigError);
		expect(() => siteWith({ relevanceThreshold: 42 })).toThrow(SiteConfigError);
	});

	it('starts a new session after the timeout, past the longest duration, or for a new campaign', () => {
		const start = Date.UTC(2026, 0, 1);
		const session = startSession(start, 'utm_source=news&');
		const timeout = 30 * MINUTE;
		const max = 12 * 60 * MINUTE;
		expect(sessionOver(undefined, start, '', timeout, max)).toBe(true);
		expect(sessionOver(session, start + 29 * MINUTE, '', timeout, max)).toBe(false);
		expect(sessionOver(session, start + 31 * MINUTE, '', timeout, max)).toBe(true);
		expect(sessionOver(session, start + MINUTE, 'utm_source=news&', timeout, max)).toBe(false);
		expect(sessionOver(session, start + MINUTE, 'gclid=1&', timeout, max)).toBe(true);
		let active = session;
		for (let t = start; t < start + max; t += 20 * MINUTE) updateSession(active, 'custom', t, 'https://shop.example/', 5);
		expect(sessionOver(active, active.l + MINUTE, '', timeout, max)).toBe(false);
		active = { ...active, l: start + max + MINUTE };
		expect(sessionOver(active, active.l + MINUTE, '', timeout, max)).toBe(true);
	});

	it('counts a session for its summary under short keys: events per type, deepest scroll, engaged time, relevance, entry and exit', () => {
		const start = Date.UTC(2026, 0, 1);
		const session = sampleSession('');
		expect(session).toEqual({
			id: session.id,
			s: start,
			l: start + 61_000,
			c: '',
			pageview: 2,
			scroll: 1,
			engagement: 1,
			form_submit: 1,
			d: 75,
			g: 60_000,
			r: 22,
			n: 'https://shop.example/',
			x: 'https://shop.example/pricing',
		});
		expect(trackEventSchema.shape.props.safeParse(session).success).toBe(true);
	});

	it('names every option mistake in one debug warning and stays off without a site or a usable endpoint', () => {
		const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
		try {
			expect(configure({ site: 'shop', endpoint: 'javascript:alert(1)', debugMode: true, colour: 'red' }, 'https://shop.example/')).toBeUndefined();
			expect(configure({ endpoint: '/collect' }, 'https://shop.example/')).toBeUndefined();
			// "true" as a data attribute gives it.
			expect(configure({ endpoint: '/collect', debugMode: 'true' }, 'https://shop.example/')).toBeUndefined();
			expect(warn.mock.calls).toEqual([
				['[tracking-crm] check the options:', 'colour (unknown), endpoint (not http)'],
				['[tracking-crm] check the options:', 'site (missing)'],
			]);
			warn.mockClear();
			// The site's settings are its site config's: an option of the old script tag is named, and tracking goes on.
			expect(configure({ site: 'shop', debugMode: true, sessionTimeout: 600 }, 'https://crm.example/t.js')).toEqual({ site: 'shop', endpoint: 'https://crm.example/api/track' });
			expect(warn.mock.calls).toEqual([['[tracking-crm] check the options:', 'sessionTimeout (unknown)']]);
			warn.mockClear();
			// A relative endpoint resolves against the script's URL (or the page's, for init()).
			expect(configure({ site: 'shop' }, 'https://crm.example/t.js')).toEqual({ site: 'shop', endpoint: 'https://crm.example/api/track' });
			expect(configure({ site: 'shop', endpoint: '/collect' }, 'https://crm.example/assets/t.js')).toEqual({ site: 'shop', endpoint: 'https://crm.example/collect' });
			expect(configure({ site: 'shop', endpoint: 'https://in.shop.example/api/track' }, 'https://crm.example/t.js')).toEqual({ site: 'shop', endpoint: 'https://in.shop.example/api/track' });
			expect(warn).not.toHaveBeenCalled();
		} finally {
			warn.mockRestore();
		}
	});

	it('bundles no zod and nothing but the tracker', () => {
		for (const file of ['t.js', 'tracker.mjs']) {
			const code = readFileSync(path.join(__dirname, '../../tracker/dist', file), 'utf8');
			expect(code).not.toMatch(/zod|ZodError|safeParse/);
		}
	});
});
