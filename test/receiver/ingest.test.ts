import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { batch, BROWSER_UA, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

describe('receiver ingest', () => {
	const prisma = testPrisma();
	const site = testSiteConfig();
	const consentSite = testSiteConfig({ consent: true });
	const quietSite = testSiteConfig({ endpoints: false });
	let receiver: Receiver;
	let siteId: string;

	beforeAll(async () => {
		receiver = await startTestReceiver([site, consentSite, quietSite], { DISPATCHER: 'off' });
		siteId = receiver.sites.byPublicKey(site.site.key)!.id;
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	const counts = async (id: string) => ({
		events: await prisma.visitorEvent.count({ where: { siteId: id } }),
		outbox: await prisma.outboxMessage.count({ where: { siteId: id } }),
	});

	it('stores a batch with its outbox rows and answers 202 only after the commit', async () => {
		const key = site.site.key;
		const events = [pageview(key, 'anon-a', '/'), pageview(key, 'anon-a', '/pricing'), pageview(key, 'anon-b', '/blog')];
		const response = await post(`${receiver.url}/api/track`, batch(key, events), { origin: `https://${key}.example`, 'x-forwarded-for': '203.0.113.77' });
		expect(response).toEqual({ status: 202, json: { stored: 3, duplicates: 0 } });
		const stored = await prisma.visitorEvent.findMany({ where: { siteId }, orderBy: { occurredAt: 'asc' } });
		expect(stored.map((row) => row.path)).toEqual(['/', '/pricing', '/blog']);
		expect(stored.every((row) => row.ipAnonymized === '127.0.0.0' && row.userAgent === BROWSER_UA && !row.isBot)).toBe(true);
		const outbox = await prisma.outboxMessage.findMany({ where: { siteId }, orderBy: { partitionKey: 'asc' } });
		expect(outbox.map((row) => [row.destination, row.partitionKey, (row.payload as { eventIds: string[] }).eventIds.length])).toEqual([
			['visitor-processor', 'anon-a', 2],
			['visitor-processor', 'anon-b', 1],
		]);
	});

	it('stores the campaign parameters of a landing URL in the page view context', async () => {
		const key = quietSite.site.key;
		const landing = pageview(key, 'anon-utm', '/offer?utm_source=news&utm_campaign=spring&gclid=g-1', { context: { language: 'de' } });
		expect((await post(`${receiver.url}/api/track`, batch(key, [landing]))).status).toBe(202);
		const row = await prisma.visitorEvent.findFirstOrThrow({ where: { eventId: landing.id } });
		expect(row.context).toEqual({ language: 'de', utm_source: 'news', utm_campaign: 'spring', clickIds: { gclid: 'g-1' } });
		expect(row.path).toBe('/offer');
	});

	it('adds the length and engagement of a session summary and the language of a page view, which the tracker leaves to the receiver', async () => {
		const key = quietSite.site.key;
		const view = pageview(key, 'anon-lang', '/');
		const spoken = pageview(key, 'anon-lang', '/de', { context: { language: 'de' } });
		const counters = { start: view.ts, last: view.ts + 300_000, pages: 3, engagedMs: 120_000, maxScrollDepth: 100, relevanceSum: 30, events: 6 };
		const end = pageview(key, 'anon-lang', '/', { type: 'session_end', props: counters });
		expect((await post(`${receiver.url}/api/track`, batch(key, [view, spoken, end]), { 'accept-language': 'pt-BR,pt;q=0.9,en;q=0.8' })).status).toBe(202);
		const row = (id: string) => prisma.visitorEvent.findFirstOrThrow({ where: { eventId: id } });
		expect((await row(view.id)).context).toEqual({ language: 'pt-BR' });
		expect((await row(spoken.id)).context).toEqual({ language: 'de' });
		// 12 (pages) + 19 (two minutes) + 15 (scroll) + 6 (relevance), by lib/engagement.ts against the default thresholds 30 and 60
		expect((await row(end.id)).properties).toEqual({ ...counters, durationMs: 300_000, engagementScore: 52, engagement: 'medium' });
		expect((await row(end.id)).context).toBeNull();
	});

	it('replaying every batch three times leaves row counts unchanged', async () => {
		const key = site.site.key;
		const batches = Array.from({ length: 20 }, (_, i) => batch(key, [pageview(key, `anon-r${i % 5}`, `/p${i}`), pageview(key, `anon-r${i % 5}`, `/q${i}`)]));
		for (const body of batches) expect((await post(`${receiver.url}/api/track`, body)).json).toEqual({ stored: 2, duplicates: 0 });
		const before = await counts(siteId);
		for (let round = 0; round < 3; round++) {
			for (const body of batches) expect(await post(`${receiver.url}/api/track`, body)).toEqual({ status: 202, json: { stored: 0, duplicates: 2 } });
		}
		expect(await counts(siteId)).toEqual(before);
	});

	it('stores nothing under Global Privacy Control, Do Not Track, denied or missing consent, or prefetch', async () => {
		const key = consentSite.site.key;
		const id = receiver.sites.byPublicKey(key)!.id;
		const cases: Array<[Record<string, string>, 'granted' | 'denied' | undefined, string]> = [
			[{ 'sec-gpc': '1' }, 'granted', 'global-privacy-control'],
			[{ dnt: '1' }, 'granted', 'do-not-track'],
			[{}, 'denied', 'consent-denied'],
			[{}, undefined, 'consent-missing'],
			[{ 'sec-purpose': 'prefetch' }, 'granted', 'prefetch'],
		];
		for (const [headers, consent, reason] of cases) {
			const response = await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-c')], consent ? { consent } : {}), headers);
			expect(response).toEqual({ status: 202, json: { stored: 0, duplicates: 0, ignored: 1, reason } });
		}
		expect(await counts(id)).toEqual({ events: 0, outbox: 0 });
		expect((await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-c')], { consent: 'granted' }))).json).toEqual({ stored: 1, duplicates: 0 });
	});

	it('flags bots and headless browsers and forwards nothing of theirs', async () => {
		const key = quietSite.site.key;
		const id = receiver.sites.byPublicKey(key)!.id;
		const bots = ['Googlebot/2.1 (+http://www.google.com/bot.html)', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36'];
		for (const ua of bots) {
			expect((await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-bot')]), { 'user-agent': ua })).json).toEqual({ stored: 1, duplicates: 0, bot: true });
		}
		const automated = pageview(key, 'anon-bot2', '/', { context: { automation: true } });
		expect((await post(`${receiver.url}/api/track`, batch(key, [automated]))).json).toMatchObject({ bot: true });
		expect(await prisma.visitorEvent.count({ where: { siteId: id, isBot: true } })).toBe(3);
		expect(await prisma.outboxMessage.count({ where: { siteId: id } })).toBe(0);
		expect((await post(`${receiver.url}/api/lead`, { site: key, email: 'bot@x.example' }, { 'user-agent': bots[0] })).json).toEqual({ stored: false, reason: 'automated-client' });
	});

	it('refuses origins outside the site allowlist and unknown site keys', async () => {
		const key = site.site.key;
		const before = await counts(siteId);
		const foreign = await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-x')]), { origin: 'https://evil.example' });
		expect(foreign.status).toBe(403);
		expect(foreign.json.message).toMatch(/Origin https:\/\/evil\.example may not send events for this site; add it to tracking\.allowedOrigins/);
		const unknown = await post(`${receiver.url}/api/track`, batch('no-such-site', [pageview(key, 'anon-x')]));
		expect(unknown.status).toBe(400);
		expect(unknown.json.issues).toEqual([{ field: 'site', message: 'is not a known site key' }]);
		expect(await counts(siteId)).toEqual(before);
	});

	it('answers a CORS preflight only for known origins', async () => {
		const key = site.site.key;
		const allowed = await fetch(`${receiver.url}/api/track`, { method: 'OPTIONS', headers: { origin: `https://${key}.example` } });
		expect(allowed.status).toBe(204);
		expect(allowed.headers.get('access-control-allow-origin')).toBe(`https://${key}.example`);
		const denied = await fetch(`${receiver.url}/api/track`, { method: 'OPTIONS', headers: { origin: 'https://evil.example' } });
		expect(denied.headers.get('access-control-allow-origin')).toBeNull();
	});

	it('accepts a lead once per submission id and forwards it to the lead processor', async () => {
		const key = site.site.key;
		const submission = { site: key, email: 'Jane@Example.com', eventId: '019a8b6e-0000-7000-8000-000000000001', anonymousId: 'anon-a', firstName: 'Jane', consent: true };
		expect(await post(`${receiver.url}/api/lead`, submission)).toEqual({ status: 202, json: { stored: true, duplicate: false, history: 'joined' } });
		expect(await post(`${receiver.url}/api/lead`, submission)).toEqual({ status: 202, json: { stored: false, duplicate: true, history: 'joined' } });
		const rows = await prisma.outboxMessage.findMany({ where: { siteId, destination: 'lead-processor' } });
		expect(rows).toHaveLength(1);
		expect(rows[0].payload).toMatchObject({ kind: 'lead', lead: { email: 'Jane@Example.com', firstName: 'Jane' }, eventId: submission.eventId });
		const identify = await prisma.visitorEvent.findFirst({ where: { siteId, eventId: submission.eventId } });
		expect(identify).toMatchObject({ type: 'identify', anonymousId: 'anon-a' });
		expect(JSON.stringify(identify)).not.toMatch(/jane@example\.com/i);
	});

	it('maps a submitted form to the lead fields and stores none of its raw fields', async () => {
		const key = site.site.key;
		const submission = {
			site: key,
			email: 'ana@example.com',
			eventId: '019a8b6e-0000-7000-8000-000000000002',
			anonymousId: 'anon-form',
			formId: 'signup',
			fields: [
				['email', 'email', 'ana@example.com'],
				['first_name', 'text', 'Ana'],
				['company', 'text', 'Acme'],
				['message', 'textarea', 'not a lead field'],
				['newsletter', 'checkbox', 'on'],
			],
		};
		expect(await post(`${receiver.url}/api/lead`, submission)).toEqual({ status: 202, json: { stored: true, duplicate: false, history: 'joined' } });
		const [row] = await prisma.outboxMessage.findMany({ where: { siteId, destination: 'lead-processor', partitionKey: 'anon-form' } });
		expect((row.payload as { lead: unknown }).lead).toEqual({ site: key, email: 'ana@example.com', eventId: submission.eventId, anonymousId: 'anon-form', formId: 'signup', firstName: 'Ana', company: 'Acme', consent: true });
		expect(JSON.stringify(await prisma.visitorEvent.findMany({ where: { siteId, anonymousId: 'anon-form' } }))).not.toMatch(/not a lead field/);
	});

	it.each([
		['an empty body', '', 400, 'empty_body'],
		['broken JSON', '{"site":', 400, 'invalid_json'],
		['a batch without events', '{"site":"x","events":[]}', 400, 'invalid_payload'],
		['a body over 64 KB', JSON.stringify({ site: 'x', events: [], pad: 'x'.repeat(70_000) }), 413, 'entity.too.large'],
	])('answers %s with a 4xx that says what is wrong', async (_what, body, status, code) => {
		const response = await post(`${receiver.url}/api/track`, body);
		expect(response.status).toBe(status);
		expect(response.json.error).toBe(code);
		expect(typeof response.json.message).toBe('string');
	});

	it('names the fields of an invalid event', async () => {
		const key = site.site.key;
		const event = { ...pageview(key, 'anon-v'), id: 'not-a-uuid', url: 'javascript:alert(1)' };
		const response = await post(`${receiver.url}/api/track`, { site: key, events: [event] });
		expect(response.status).toBe(400);
		expect(response.json.issues).toEqual(
			expect.arrayContaining([
				{ field: 'events[0].id', message: 'must be a UUIDv7 (version nibble 7, RFC 9562 variant)' },
				{ field: 'events[0].url', message: 'must be an absolute http(s) URL' },
			]),
		);
	});

	it('reports itself degraded, without details to an anonymous caller, while n8n cannot be reached', async () => {
		const response = await fetch(`${receiver.url}/health`);
		expect(response.status).toBe(503);
		expect(Object.keys(await response.json()).sort()).toEqual(['engine', 'status', 'version']);
	});

	it('stores nothing for HEAD requests', async () => {
		const before = await counts(siteId);
		const head = await fetch(`${receiver.url}/api/track`, { method: 'HEAD' });
		expect(head.status).toBeGreaterThanOrEqual(400);
		expect(head.status).toBeLessThan(500);
		expect(await counts(siteId)).toEqual(before);
	});
});

describe('receiver behind a trusted proxy', () => {
	const prisma = testPrisma();
	const site = testSiteConfig({ endpoints: false });
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', TRUST_PROXY: 'loopback' });
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	it('takes the client address from X-Forwarded-For and stores it anonymized', async () => {
		const key = site.site.key;
		const v4 = pageview(key, 'anon-proxy', '/v4');
		const v6 = pageview(key, 'anon-proxy', '/v6');
		expect((await post(`${receiver.url}/api/track`, batch(key, [v4]), { 'x-forwarded-for': '203.0.113.77' })).status).toBe(202);
		expect((await post(`${receiver.url}/api/track`, batch(key, [v6]), { 'x-forwarded-for': '2001:db8:85a3:1234:5678:8a2e:370:7334' })).status).toBe(202);
		const rows = await prisma.visitorEvent.findMany({ where: { eventId: { in: [v4.id, v6.id] } }, orderBy: { path: 'asc' } });
		expect(rows.map((row) => [row.path, row.ipAnonymized])).toEqual([
			['/v4', '203.0.113.0'],
			['/v6', '2001:db8:85a3::'],
		]);
		expect(JSON.stringify(rows)).not.toMatch(/203\.0\.113\.77|7334/);
	});
});

describe('receiver rate limits', () => {
	const site = testSiteConfig({ endpoints: false });
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', RATE_LIMIT_PER_IP: 3, RATE_LIMIT_PER_SITE: 1_000 });
	});
	afterAll(() => receiver.close());

	it('counts requests per address, tells the client its budget, and answers 429 past it', async () => {
		const key = site.site.key;
		const send = () =>
			fetch(`${receiver.url}/api/track`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify(batch(key, [pageview(key, 'anon-limit')])) });
		const first = await send();
		expect(first.status).toBe(202);
		expect(first.headers.get('ratelimit-policy')).toBe('3;w=60');
		expect(first.headers.get('ratelimit')).toMatch(/^limit=3, remaining=2, reset=\d+$/);
		expect([(await send()).status, (await send()).status]).toEqual([202, 202]);
		const limited = await send();
		expect(limited.status).toBe(429);
		expect(await limited.json()).toMatchObject({ error: 'rate_limited' });
	});
});
