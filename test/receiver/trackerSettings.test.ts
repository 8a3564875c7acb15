import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig, SiteConfigInput } from '../../lib/contracts';
import type { Receiver } from '../../server/receiver';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

/** A test site with these tracking and privacy settings over the defaults. */
function siteWith(tracking: Partial<SiteConfigInput['tracking']>, privacy: Partial<NonNullable<SiteConfigInput['privacy']>> = {}): SiteConfig {
	const base = testSiteConfig();
	return parseSiteConfig({ ...base, tracking: { ...base.tracking, ...tracking }, privacy: { ...base.privacy, ...privacy } });
}

/** The default relevance of each event type, which the receiver appends to every site's own rules. */
const DEFAULT_RULES = [
	{ type: 'form_submit', relevance: 8 },
	{ type: 'download', relevance: 7 },
	{ type: 'scroll', relevance: 2 },
	{ type: 'engagement', relevance: 2 },
	{ relevance: 5 },
];

describe("receiver: the tracker's settings (GET /api/track?site=KEY)", () => {
	const plain = testSiteConfig();
	const ruled = siteWith(
		{
			relevanceThreshold: 4,
			eventRelevance: [
				{ type: 'pageview', urlPattern: '/pricing/**', relevance: 9 },
				{ name: 'signup', relevance: 10 },
				{ type: 'custom', urlPattern: '/Docs/*.html', relevance: 3 },
			],
			sessionTimeout: 600,
			maxSessionDuration: 7200,
			hashRouting: true,
			cookieless: true,
			downloadExtensions: ['pdf', 'epub'],
		},
		{ cookieConsent: true, respectDoNotTrack: false },
	);
	const unscored = siteWith({ enableSmartEvents: false, relevanceThreshold: 7 });
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([plain, ruled, unscored], { DISPATCHER: 'off' });
	});
	afterAll(async () => {
		await receiver.close();
	});

	const settingsOf = (key: string, headers: Record<string, string> = {}) => fetch(`${receiver.url}/api/track?site=${encodeURIComponent(key)}`, { headers });

	it('answers a site with the defaults: threshold 1, 30 minutes of inactivity, 12 hours at most, the default relevance of each type', async () => {
		const response = await settingsOf(plain.site.key);
		expect(response.status).toBe(200);
		expect(response.headers.get('content-type')).toMatch(/^application\/json/);
		const settings = await response.json();
		expect(settings).toEqual({
			rules: DEFAULT_RULES,
			threshold: 1,
			timeout: 1_800_000,
			maxLength: 43_200_000,
			hashRouting: false,
			cookieless: false,
			consent: false,
			downloads: expect.any(String),
		});
		// The last rule matches any event: the tracker always finds one.
		expect(settings.rules.at(-1)).toEqual({ relevance: 5 });
		const downloads = RegExp(settings.downloads, 'i');
		for (const file of ['/files/prices.pdf', '/a/b/Report.XLSX', '/setup.exe', '/x.tar.gz', '/song.mp3']) expect(downloads.test(file)).toBe(true);
		for (const page of ['/pricing', '/pdf', '/files/pdf/', '/notes.pdf.html', '/a.pdfx']) expect(downloads.test(page)).toBe(false);
	});

	it("answers a site's own rules first, in its order, with path globs compiled to regular expressions, and its settings in milliseconds", async () => {
		const settings = await (await settingsOf(ruled.site.key)).json();
		expect(settings).toEqual({
			rules: [
				{ type: 'pageview', path: expect.any(String), relevance: 9 },
				{ name: 'signup', relevance: 10 },
				{ type: 'custom', path: expect.any(String), relevance: 3 },
				...DEFAULT_RULES,
			],
			threshold: 4,
			timeout: 600_000,
			maxLength: 7_200_000,
			hashRouting: true,
			cookieless: true,
			consent: true,
			downloads: expect.any(String),
		});
		const [pricing, , docs] = settings.rules.map((rule: { path?: string }) => rule.path && RegExp(rule.path, 'i'));
		for (const path of ['/pricing', '/pricing/', '/Pricing/team', '/pricing/a/b']) expect(pricing.test(path)).toBe(true);
		for (const path of ['/pricing-old', '/en/pricing', '/']) expect(pricing.test(path)).toBe(false);
		for (const path of ['/docs/intro.html', '/DOCS/a.html/']) expect(docs.test(path)).toBe(true);
		for (const path of ['/docs/a/b.html', '/docs/introXhtml', '/docs/intro.html5']) expect(docs.test(path)).toBe(false);
		const downloads = RegExp(settings.downloads, 'i');
		expect(['/b/book.EPUB', '/prices.pdf', '/setup.exe'].map((file) => downloads.test(file))).toEqual([true, true, false]);
	});

	it('sends every event of a site without smart events, whatever its relevance threshold', async () => {
		expect(await (await settingsOf(unscored.site.key)).json()).toMatchObject({ threshold: 1, rules: DEFAULT_RULES });
	});

	it('gives no settings (204) to a browser whose Sec-GPC or DNT header the site honours', async () => {
		expect((await settingsOf(plain.site.key, { 'Sec-GPC': '1' })).status).toBe(204);
		expect((await settingsOf(plain.site.key, { DNT: '1' })).status).toBe(204);
		expect((await settingsOf(plain.site.key, { 'Sec-GPC': '0', DNT: '0' })).status).toBe(200);
		// This site honours Global Privacy Control but not Do Not Track.
		expect((await settingsOf(ruled.site.key, { 'Sec-GPC': '1' })).status).toBe(204);
		expect((await settingsOf(ruled.site.key, { DNT: '1' })).status).toBe(200);
		const vary = (await settingsOf(plain.site.key)).headers.get('vary')?.split(/\s*,\s*/);
		expect(vary).toEqual(expect.arrayContaining(['Sec-GPC', 'DNT']));
	});

	it('answers 404 with a problem for an unknown site key', async () => {
		for (const query of ['?site=no-such-site', `?site=${plain.site.key.toUpperCase()}`]) {
			const response = await fetch(`${receiver.url}/api/track${query}`);
			expect(response.status).toBe(404);
			expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
			expect(await response.json()).toEqual({
				type: 'about:blank',
				title: 'Not Found',
				status: 404,
				detail: expect.stringMatching(/data-site/),
				error: 'unknown_site',
				message: expect.stringMatching(/data-site/),
				issues: [{ field: 'site', message: 'is not a known site key' }],
			});
		}
	});

	it.each([
		['no site', '', 'is required (a string)'],
		['two sites', '?site=a&site=b', 'must be given once, as a single value'],
		['a site key past 64 characters', `?site=${'a'.repeat(65)}`, 'must be at most 64 characters'],
		['a NUL byte in the site key', '?site=a%00', 'must not contain control characters (such as NUL, tab or line breaks)'],
	])('answers 400 naming the site parameter for %s', async (_what, query, message) => {
		const response = await fetch(`${receiver.url}/api/track${query}`);
		expect(response.status).toBe(400);
		expect(await response.json()).toMatchObject({ error: 'invalid_parameter', issues: [{ field: 'site', message }] });
	});

	it('answers 403 to an origin the site does not allow, readable by that page so the console shows why', async () => {
		const response = await settingsOf(plain.site.key, { origin: 'https://evil.example' });
		expect(response.status).toBe(403);
		expect(response.headers.get('access-control-allow-origin')).toBe('https://evil.example');
		expect(response.headers.get('cache-control') ?? '').not.toMatch(/\bpublic\b/);
		expect(await response.json()).toEqual({
			type: 'about:blank',
			title: 'Forbidden',
			status: 403,
			detail: expect.stringMatching(/https:\/\/evil\.example.*tracking\.allowedOrigins/),
			error: 'origin_not_allowed',
			message: expect.stringMatching(/https:\/\/evil\.example.*tracking\.allowedOrigins/),
			issues: [{ field: 'Origin', message: 'is not in the tracking.allowedOrigins of this site' }],
		});
		// Another site's origin is no better.
		expect((await settingsOf(plain.site.key, { origin: ruled.tracking.allowedOrigins[0] })).status).toBe(403);
	});

	it('lets an allowed origin read them (CORS), cached by the browser for minutes and revalidated', async () => {
		const origin = plain.tracking.allowedOrigins[0];
		const response = await settingsOf(plain.site.key, { origin });
		expect(response.status).toBe(200);
		expect(response.headers.get('access-control-allow-origin')).toBe(origin);
		expect(response.headers.get('vary')?.split(/\s*,\s*/)).toContain('Origin');
		const cacheControl = response.headers.get('cache-control') ?? '';
		expect(cacheControl).toMatch(/\bpublic\b/);
		expect(Number(cacheControl.match(/\bmax-age=(\d+)/)?.[1])).toBeGreaterThan(0);
		expect(await response.json()).toMatchObject({ threshold: 1, consent: false });
		// Without an Origin (same origin, or no browser) no CORS header is needed.
		expect((await settingsOf(plain.site.key)).headers.get('access-control-allow-origin')).toBeNull();
		// As a browser revalidates (fetch() would add no-cache, which forbids a 304).
		const etag = response.headers.get('etag');
		expect(etag).toBeTruthy();
		expect((await settingsOf(plain.site.key, { origin, 'if-none-match': etag!, 'cache-control': 'max-age=0' })).status).toBe(304);
	});
});
