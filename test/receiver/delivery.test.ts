import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { receiverDeliverySchema, type ReceiverDelivery, type TrackEvent } from '../../lib/contracts';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { FakeN8n } from '../helpers/fakeN8n';
import { startTestReceiver, TEST_SECRET } from '../helpers/receiver';
import { sampleSession } from '../helpers/session';
import { testSiteConfig } from '../helpers/sites';

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

describe('outbox delivery to n8n', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	let receiver: Receiver;

	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		await prisma.$disconnect();
	});

	it('delivers every accepted event exactly once, in order per visitor, through refusal, 500s and slowness', async () => {
		await n8n.start();
		const port = n8n.port;
		await n8n.stop();
		const site = testSiteConfig({ n8nUrl: `http://127.0.0.1:${port}` });
		const key = site.site.key;
		receiver = await startTestReceiver([site], { DISPATCH_TIMEOUT_MS: 3000 });
		const siteId = receiver.sites.byPublicKey(key)!.id;

		const accepted: Record<string, string[]> = {};
		const send = async (round: number) => {
			for (let visitor = 0; visitor < 6; visitor++) {
				const anonymousId = `anon-${visitor}`;
				const events = [pageview(key, anonymousId, `/r${round}/a`), pageview(key, anonymousId, `/r${round}/b`)];
				const response = await post(`${receiver.url}/api/track`, batch(key, events));
				expect(response.status).toBe(202);
				(accepted[anonymousId] ??= []).push(...events.map((event) => event.id));
			}
		};

		await send(1);
		// A claim counts its attempt before the request goes out: wait for the refusal itself.
		await waitFor(async () => (await prisma.outboxMessage.count({ where: { siteId, lastError: { not: null } } })) > 0, 10_000, 'attempts against a refusing endpoint');
		expect(receiver.dispatcher.metrics.lastError).toMatch(/fetch failed|ECONNREFUSED/);

		await n8n.start(port);
		n8n.mode = 'error500';
		await send(2);
		await waitFor(() => n8n.attempts >= 3, 15_000, 'attempts answered with HTTP 500');
		expect(n8n.deliveries).toHaveLength(0);

		n8n.mode = 'slow';
		await send(3);
		await waitFor(() => n8n.deliveries.length > 0, 20_000, 'a slow delivery');

		n8n.mode = 'ok';
		await send(4);
		const total = Object.values(accepted).flat().length;
		await waitFor(() => n8n.eventIds().length >= total, 30_000, 'every event delivered');
		await waitFor(async () => (await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } })) === 0, 10_000, 'the outbox drained');

		const delivered = n8n.eventIds();
		expect(delivered).toHaveLength(total);
		expect(new Set(delivered).size).toBe(total);
		for (const [anonymousId, ids] of Object.entries(accepted)) {
			const arrived = n8n.deliveries.flatMap((delivery) => delivery.body.events.filter((event) => event.anonymousId === anonymousId).map((event) => event.id));
			expect(arrived).toEqual(ids);
		}
		// The header and the body name the same delivery, and no delivery was answered twice.
		expect(n8n.deliveries.every((delivery) => (delivery.body as { deliveryId?: string }).deliveryId === delivery.deliveryId)).toBe(true);
		expect(new Set(n8n.deliveries.map((delivery) => delivery.deliveryId)).size).toBe(n8n.deliveries.length);
		expect(n8n.rejected).toEqual([]);
		expect(await prisma.outboxMessage.count({ where: { siteId, status: 'dead' } })).toBe(0);
	}, 120_000);
});

/**
 * An n8n that takes `answerMs` per delivery and records how many it had in hand at once, and the
 * order deliveries' events arrived in; it answers 500 while `failing`.
 */
class CountingN8n {
	failing = false;
	answerMs = 150;
	inFlight = 0;
	/** The most deliveries in hand at once, per phase: set `phase` to start counting afresh. */
	readonly maxInFlight = new Map<string, number>();
	phase = 'start';
	readonly accepted: ReceiverDelivery[] = [];
	private server: Server | undefined;

	async start(): Promise<string> {
		this.server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				this.inFlight += 1;
				this.maxInFlight.set(this.phase, Math.max(this.maxInFlight.get(this.phase) ?? 0, this.inFlight));
				const failing = this.failing;
				setTimeout(() => {
					this.inFlight -= 1;
					if (!failing) this.accepted.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceiverDelivery);
					res.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' }).end(failing ? '{"message":"overloaded"}' : '{"ok":true}');
				}, this.answerMs);
			});
		});
		await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
		return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
	}

	async stop(): Promise<void> {
		this.server?.closeAllConnections();
		await new Promise((resolve) => this.server?.close(resolve));
	}
}

describe('deliveries side by side', () => {
	const prisma = testPrisma();
	const n8n = new CountingN8n();
	let receiver: Receiver;

	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		await prisma.$disconnect();
	});

	it('sends different visitors’ deliveries at once, never more than the receiver’s bound over all workflows, each visitor’s events in order; sends fewer while n8n fails', async () => {
		const n8nUrl = await n8n.start();
		// Two sites: two workflows to deliver to, each with a window of its own, under one bound.
		const sites = [testSiteConfig({ n8nUrl }), testSiteConfig({ n8nUrl })];
		// Not the default (4), so the bound seen is the setting's.
		const CONCURRENCY = 3;
		// Deliveries of two events: each visitor's rows go in several deliveries, one after the other.
		receiver = await startTestReceiver(sites, { DISPATCHER: 'off', DISPATCH_BATCH_SIZE: 2, DISPATCH_CONCURRENCY: CONCURRENCY, RATE_LIMIT_PER_IP: 100_000 });
		const accepted: Record<string, string[]> = {};
		for (let round = 0; round < 3; round++) {
			for (const { site } of sites) {
				for (let visitor = 0; visitor < 8; visitor++) {
					const anonymousId = `side-${site.key}-${visitor}`;
					const events = [pageview(site.key, anonymousId, `/r${round}/a`), pageview(site.key, anonymousId, `/r${round}/b`)];
					expect((await post(`${receiver.url}/api/track`, batch(site.key, events))).status).toBe(202);
					(accepted[anonymousId] ??= []).push(...events.map((event) => event.id));
				}
			}
		}
		receiver.dispatcher.start();
		await waitFor(() => n8n.accepted.length >= 6, 20_000, 'the first deliveries');
		// n8n fails: the receiver halves what it sends to each workflow with each failure, down to one delivery each.
		n8n.failing = true;
		await waitFor(() => receiver.dispatcher.metrics.failedAttempts >= 12, 20_000, 'failed attempts');
		n8n.phase = 'failing';
		await new Promise((resolve) => setTimeout(resolve, 1_500));
		n8n.failing = false;
		n8n.phase = 'recovered';
		const total = Object.values(accepted).flat().length;
		await waitFor(() => n8n.accepted.flatMap((delivery) => delivery.events).length >= total, 60_000, 'every event delivered');

		expect(n8n.maxInFlight.get('start')).toBe(CONCURRENCY);
		expect(n8n.maxInFlight.get('failing')).toBeLessThanOrEqual(sites.length);
		expect(n8n.maxInFlight.get('recovered')).toBeLessThanOrEqual(CONCURRENCY);
		const delivered = n8n.accepted.flatMap((delivery) => delivery.events.map((event) => event.id));
		expect(new Set(delivered).size).toBe(total);
		for (const [anonymousId, ids] of Object.entries(accepted)) {
			expect(n8n.accepted.flatMap((delivery) => delivery.events.filter((event) => event.anonymousId === anonymousId).map((event) => event.id))).toEqual(ids);
		}
		const siteIds = sites.map(({ site }) => receiver.sites.byPublicKey(site.key)!.id);
		await waitFor(async () => (await prisma.outboxMessage.count({ where: { siteId: { in: siteIds }, status: { not: 'delivered' } } })) === 0, 10_000, 'the outbox drained');
	}, 120_000);
});

describe('the delivery contract', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	let receiver: Receiver;

	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		await prisma.$disconnect();
	});

	it('every body the dispatcher posts parses with it: events of each type, with a session summary, and leads', async () => {
		await n8n.start();
		const site = testSiteConfig({ n8nUrl: n8n.url });
		const key = site.site.key;
		receiver = await startTestReceiver([site]);
		const session = sampleSession('');
		const events = [
			pageview(key, 'anon-contract', '/?utm_source=news&utm_medium=email', { referrer: 'https://news.example/', relevance: 5 }),
			pageview(key, 'anon-contract', '/pricing', { type: 'scroll', props: { depth: 50 } }),
			pageview(key, 'anon-contract', '/pricing', { type: 'custom', name: 'quote', props: { plan: 'pro', seats: 3, annual: true } }),
			pageview(key, 'anon-contract', '/pricing', { type: 'session_end', props: session as unknown as TrackEvent['props'] }),
		];
		expect((await post(`${receiver.url}/api/track`, batch(key, events))).status).toBe(202);
		const lead = await post(`${receiver.url}/api/lead`, { site: key, email: 'jane@example.com', anonymousId: 'anon-contract', firstName: 'Jane', consent: true });
		expect(lead.status).toBeLessThan(300);

		const arrived = () => n8n.deliveries.filter((delivery) => delivery.signedSite === key);
		const deadline = Date.now() + 15_000;
		while (arrived().flatMap((delivery) => [...delivery.body.events, ...delivery.body.leads]).length < events.length + 1) {
			if (Date.now() > deadline) throw new Error('timed out waiting for the deliveries');
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
		const parsed = arrived().map((delivery) => receiverDeliverySchema.safeParse(delivery.body));
		expect(parsed.filter((result) => !result.success).map((result) => result.error)).toEqual([]);
		const bodies = parsed.map((result) => result.data!);
		expect(bodies.flatMap((body) => body.events.map((event) => event.type))).toEqual(['pageview', 'scroll', 'custom', 'session_end']);
		expect(bodies.flatMap((body) => body.leads.map((entry) => entry.lead.email))).toEqual(['jane@example.com']);
		expect(bodies.find((body) => body.events.length)?.events[3].props).toMatchObject({ engagementScore: expect.any(Number), engagement: expect.any(String) });
	}, 60_000);
});

describe('POST /api/test-microworkflow', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	let receiver: Receiver;
	let adminKey: string;
	let readKey: string;

	beforeAll(async () => {
		await n8n.start();
		const site = testSiteConfig({ n8nUrl: n8n.url });
		receiver = await startTestReceiver([site], { DISPATCHER: 'off' });
		const siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		adminKey = await createApiKey(prisma, siteId, 'admin', 'ops');
		readKey = await createApiKey(prisma, siteId, 'read', 'dashboard');
	});
	afterAll(async () => {
		await receiver.close();
		await n8n.stop();
		await prisma.$disconnect();
	});

	const call = (key: string, body: unknown) =>
		fetch(`${receiver.url}/api/test-microworkflow`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

	it('sends a signed sample to the named workflow and returns its answer', async () => {
		const response = await call(adminKey, { workflow: 'visitor-processor' });
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ workflow: 'visitor-processor', status: 200, ok: true, response: { ok: true } });
		expect(n8n.deliveries.at(-1)?.path).toBe('/webhook/visitor');
		expect(n8n.deliveries.at(-1)?.body.events).toHaveLength(1);
	});

	it('refuses, naming the field, a payload that is no delivery the trigger accepts; sends nothing', async () => {
		const sent = n8n.deliveries.length;
		const response = await call(adminKey, { workflow: 'visitor-processor', payload: { events: [{ id: 'not-a-uuid', anonymousId: 'a', type: 'pageview', occurredAt: new Date().toISOString() }] } });
		expect(response.status).toBe(400);
		expect(await response.json()).toMatchObject({ error: 'invalid_payload', issues: [{ field: 'payload.events[0].id', message: 'must be the event’s id (a UUID)' }] });
		expect(n8n.deliveries).toHaveLength(sent);
	});

	it('refuses read keys, unknown workflows and workflows the site does not forward to', async () => {
		expect((await call(readKey, { workflow: 'visitor-processor' })).status).toBe(403);
		const unknown = await call(adminKey, { workflow: 'nope' });
		expect(unknown.status).toBe(400);
		expect((await unknown.json()).issues[0].field).toBe('workflow');
		const missing = await call(adminKey, { workflow: 'email-orchestrator' });
		expect(missing.status).toBe(400);
		expect((await missing.json()).message).toMatch(/no webhook for email-orchestrator; add it to integrations\.webhookEndpoints/);
	});
});
