import type { Receiver } from '../../server/receiver';
import { WindowCounts } from '../../server/routes/ingest';
import { testPrisma } from '../helpers/db';
import { batch, BROWSER_UA, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

/** A refused request's wait: Retry-After, which must agree with the RateLimit header's reset. */
async function retryAfterOf(url: string, body: unknown, address: string): Promise<{ status: number; retryAfter: number; reset: number }> {
	const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, 'x-forwarded-for': address }, body: JSON.stringify(body) });
	await response.arrayBuffer();
	return { status: response.status, retryAfter: Number(response.headers.get('retry-after')), reset: Number(/reset=(\d+)/.exec(response.headers.get('ratelimit') ?? '')?.[1] ?? 60) };
}

/** The limits count in fixed one-minute windows: a test that counts to a limit starts early in one. */
async function freshWindow(): Promise<void> {
	const left = 60_000 - (Date.now() % 60_000);
	if (left < 30_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

describe('the per-site limit', () => {
	const prisma = testPrisma();
	const consentSite = testSiteConfig({ consent: true, endpoints: false });
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([consentSite], { DISPATCHER: 'off', TRUST_PROXY: 'loopback', RATE_LIMIT_PER_SITE: 20, RATE_LIMIT_PER_IP: 1_000 });
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	const key = consentSite.site.key;
	const send = (address: string, consent: 'granted' | 'denied', headers: Record<string, string> = {}) =>
		post(`${receiver.url}/api/track`, batch(key, [pageview(key, `anon-${address}`)], { consent }), { 'x-forwarded-for': address, ...headers });

	it('does not count batches that store nothing or only a bot’s events: 100 addresses sending them do not lock a visitor out', async () => {
		await freshWindow();
		const strangers = Array.from({ length: 100 }, (_, i) => `198.18.${i}.10`);
		const answers = await Promise.all(
			strangers.map(async (address, i) => {
				const headers: Record<string, string> = [{}, { 'sec-gpc': '1' }, { 'sec-purpose': 'prefetch' }][i % 3];
				return [await send(address, 'denied'), await send(address, 'granted', headers), await send(address, 'granted', { 'user-agent': GOOGLEBOT })];
			}),
		);
		expect(answers.flat().map((answer) => answer.status)).toEqual(Array.from({ length: 300 }, () => 202));
		for (let i = 0; i < 5; i++) expect(await send('192.0.2.55', 'granted')).toEqual({ status: 202, json: { stored: 1, duplicates: 0 } });
	});

	it('past its limit refuses only the networks that sent more than their share: strangers flooding from 40 addresses do not lock a visitor out', async () => {
		await freshWindow();
		const flooders = Array.from({ length: 40 }, (_, i) => `198.19.${i}.10`);
		const statuses = await Promise.all(
			flooders.map(async (address) => {
				const seen: number[] = [];
				for (let i = 0; i < 32; i++) seen.push((await send(address, 'granted')).status);
				return seen;
			}),
		);
		const visitor = await Promise.all(Array.from({ length: 5 }, () => send('192.0.2.77', 'granted')));
		expect(visitor.map((answer) => answer.status)).toEqual([202, 202, 202, 202, 202]);
		// Each network may store what a visitor sends at most (30 a minute), even past the site's limit of 20; then it waits.
		for (const seen of statuses) expect(seen).toEqual([...Array.from({ length: 30 }, () => 202), 429, 429]);
		// Until the minute turns, which Retry-After says in seconds.
		const refused = await retryAfterOf(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-late')], { consent: 'granted' }), flooders[0]);
		expect(refused.status).toBe(429);
		expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
		expect(refused.retryAfter).toBeLessThanOrEqual(60);
	});
});

describe('the per-address limit', () => {
	const site = testSiteConfig({ endpoints: false });
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', TRUST_PROXY: 'loopback', RATE_LIMIT_PER_IP: 3, RATE_LIMIT_PER_SITE: 1_000 });
	});
	afterAll(() => receiver.close());

	const key = site.site.key;
	const track = (address: string) => post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-net')]), { 'x-forwarded-for': address });
	const lead = (address: string) => post(`${receiver.url}/api/lead`, { site: key, email: 'ana@example.com' }, { 'x-forwarded-for': address });

	it('counts per network (IPv4 /24, IPv6 /48), so rotating addresses within one does not walk past it, on both ingest routes', async () => {
		await freshWindow();
		expect([(await track('203.0.113.1')).status, (await track('203.0.113.2')).status, (await lead('203.0.113.3')).status]).toEqual([202, 202, 202]);
		expect([(await track('203.0.113.4')).status, (await lead('203.0.113.200')).status]).toEqual([429, 429]);
		expect((await track('203.0.114.1')).status).toBe(202);

		const v6 = ['2001:db8:1:1::1', '2001:db8:1:2::1', '2001:db8:1:ffff:1:2:3:4', '2001:db8:1:abcd::9'];
		expect(await Promise.all(v6.map(async (address) => (await track(address)).status))).toEqual([202, 202, 202, 429]);
		expect((await track('2001:db8:2::1')).status).toBe(202);
	});

	it('says when a refused client may retry in Retry-After, for clients that read only that, as the RateLimit header does', async () => {
		await freshWindow();
		for (let i = 0; i < 3; i++) expect((await track('198.51.100.9')).status).toBe(202);
		for (const [route, body] of [
			['/api/track', batch(key, [pageview(key, 'anon-net')])],
			['/api/lead', { site: key, email: 'ana@example.com' }],
		] as const) {
			const refused = await retryAfterOf(`${receiver.url}${route}`, body, '198.51.100.10');
			expect(refused.status).toBe(429);
			expect(refused.retryAfter).toBeGreaterThanOrEqual(1);
			expect(Math.abs(refused.retryAfter - refused.reset)).toBeLessThanOrEqual(1);
		}
	});
});

describe('the limiters’ memory', () => {
	it('holds at most its cap of keys however many arrive, and forgets the least recently seen, not a busy one', () => {
		const counts = new WindowCounts(1_000);
		const now = Date.now();
		let busy = 0;
		for (let i = 0; i < 50_000; i++) {
			if (i % 100 === 0) busy = counts.add('busy', now);
			counts.add(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, now);
		}
		expect(counts.size).toBe(1_000);
		expect(busy).toBe(500);
		expect(counts.add('10.0.0.0', now)).toBe(1);
	});
});
