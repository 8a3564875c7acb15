/**
 * The outbox drains per delivery, not per row: a partition's pending rows (one visitor's, for one
 * workflow) travel together, in order, under a delivery id that a retry keeps. Against the real
 * receiver, Postgres and a local stand-in for n8n's webhook.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { planDeliveries, type PlannableRow } from '../../server/outbox/dispatcher';
import { readSettings } from '../../server/settings';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { FakeN8n, type Delivery } from '../helpers/fakeN8n';
import { startTestReceiver, TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}

/** Each delivery id once, at its first arrival: what n8n acts on when it ignores repeats. */
function firstArrivals(deliveries: Delivery[]): Delivery[] {
	const seen = new Set<string>();
	return deliveries.filter((delivery) => !seen.has(delivery.deliveryId) && seen.add(delivery.deliveryId));
}

const eventIdsOf = (deliveries: Delivery[]) => deliveries.flatMap((delivery) => delivery.body.events.map((event) => event.id));

describe('planDeliveries', () => {
	let nextId = 0n;
	const row = (partitionKey: string, size = 1, extra: Partial<PlannableRow> = {}): PlannableRow => ({
		id: ++nextId,
		siteId: 'site-a',
		destination: 'visitor-processor',
		partitionKey,
		deliveryId: null,
		size,
		...extra,
	});
	const ids = (rows: PlannableRow[]) => rows.map((entry) => Number(entry.id));

	it('sends a retried delivery again with exactly its rows and its id', () => {
		const retried = [row('a', 1, { deliveryId: 'd-1' }), row('b', 1, { deliveryId: 'd-1' })];
		const fresh = row('c');
		const plan = planDeliveries([...retried, fresh], 100);
		expect(plan.map((delivery) => [delivery.deliveryId, ids(delivery.rows)])).toEqual([
			['d-1', ids(retried)],
			[null, ids([fresh])],
		]);
	});

	it('cuts a partition to its oldest rows within the event bound, and never skips a row', () => {
		const rows = [row('a', 40), row('a', 40), row('a', 40), row('a', 1)];
		const plan = planDeliveries(rows, 100);
		// The fourth row would fit, but only after the third: it waits for the next round.
		expect(plan.map((delivery) => ids(delivery.rows))).toEqual([ids(rows.slice(0, 2))]);
	});

	it('sends a partition’s first row even when it alone is over the bound', () => {
		const rows = [row('a', 150), row('a', 1)];
		expect(planDeliveries(rows, 100).map((delivery) => ids(delivery.rows))).toEqual([ids(rows.slice(0, 1))]);
	});

	it('packs whole partitions of one site and workflow into deliveries within the bound', () => {
		const a = [row('a', 30), row('a', 30)];
		const b = [row('b', 30)];
		const c = [row('c', 50)];
		const other = [row('d', 5, { destination: 'lead-processor' })];
		const plan = planDeliveries([...a, ...b, ...c, ...other], 100);
		expect(plan.map((delivery) => ids(delivery.rows))).toEqual([ids([...a, ...b]), ids(c), ids(other)]);
	});
});

describe('outbox drain per partition', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	const receivers: Receiver[] = [];

	beforeAll(() => n8n.start());
	afterAll(async () => {
		for (const receiver of receivers) await receiver.close();
		await n8n.stop();
		await prisma.$disconnect();
	});
	beforeEach(() => {
		n8n.deliveries.length = 0;
		n8n.mode = 'ok';
	});

	const pending = (siteId: string) => prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } });

	it('drains one visitor’s 1,000 pending rows in seconds, in order, in a few deliveries, with two receivers side by side', async () => {
		const site = testSiteConfig({ n8nUrl: n8n.url });
		const settings = { DISPATCHER: 'off' as const, RATE_LIMIT_PER_IP: 100_000, RATE_LIMIT_PER_SITE: 100_000 };
		const first = await startTestReceiver([site], settings);
		const second = await startTestReceiver([site], settings);
		receivers.push(first, second);
		const key = site.site.key;
		const siteId = first.sites.byPublicKey(key)!.id;

		const accepted: string[] = [];
		for (let n = 0; n < 1000; n++) {
			const event = pageview(key, 'busy-visitor', `/page-${n}`);
			const response = await post(`${first.url}/api/track`, batch(key, [event]));
			expect(response.status).toBe(202);
			accepted.push(event.id);
		}
		expect(await prisma.outboxMessage.count({ where: { siteId, destination: 'visitor-processor', partitionKey: 'busy-visitor', status: 'pending' } })).toBe(1000);

		const started = performance.now();
		first.dispatcher.start();
		second.dispatcher.start();
		await waitFor(async () => (await pending(siteId)) === 0, 60_000, 'the visitor’s rows delivered');
		const seconds = (performance.now() - started) / 1000;
		console.log(`drain: 1,000 pending rows of one visitor delivered in ${seconds.toFixed(2)} s, ${n8n.deliveries.length} deliveries, two receivers`);

		// Every event once, in the order it was accepted, although two receivers claimed side by side.
		expect(eventIdsOf(n8n.deliveries)).toEqual(accepted);
		expect(new Set(n8n.deliveries.map((delivery) => delivery.deliveryId)).size).toBe(n8n.deliveries.length);
		expect(n8n.deliveries.length).toBeLessThanOrEqual(20);
		expect(n8n.deliveries.every((delivery) => delivery.body.events.length <= readSettings({}).DISPATCH_BATCH_SIZE)).toBe(true);
		expect(n8n.deliveries.every((delivery) => (delivery.body as { deliveryId?: string }).deliveryId === delivery.deliveryId)).toBe(true);
		expect(await prisma.outboxMessage.count({ where: { siteId, deliveryId: null } })).toBe(0);
		expect(n8n.rejected).toEqual([]);
	}, 120_000);

	it('re-sends a timed-out delivery with the same rows and id; rows that arrive meanwhile wait behind it in a delivery of their own', async () => {
		const site = testSiteConfig({ n8nUrl: n8n.url });
		const receiver = await startTestReceiver([site], { DISPATCHER: 'off', DISPATCH_TIMEOUT_MS: 300 });
		receivers.push(receiver);
		const key = site.site.key;
		const siteId = receiver.sites.byPublicKey(key)!.id;
		const send = async (count: number) => {
			const events = Array.from({ length: count }, (_, n) => pageview(key, 'retried-visitor', `/p${n}`));
			for (const event of events) expect((await post(`${receiver.url}/api/track`, batch(key, [event]))).status).toBe(202);
			return events.map((event) => event.id);
		};

		// n8n takes longer than the receiver waits: each attempt arrives, and the receiver sends it again.
		n8n.mode = 'slow';
		n8n.slowMs = 600;
		const early = await send(3);
		receiver.dispatcher.start();
		await waitFor(() => n8n.deliveries.length >= 1, 20_000, 'a first, timed-out attempt');
		const late = await send(2);
		const seenBefore = n8n.deliveries.length;
		await waitFor(() => n8n.deliveries.length >= seenBefore + 2, 20_000, 'two more attempts after the new rows arrived');
		n8n.mode = 'ok';
		await waitFor(async () => (await pending(siteId)) === 0, 20_000, 'the outbox drained');

		const [retried] = n8n.deliveries;
		const attempts = n8n.deliveries.filter((delivery) => delivery.deliveryId === retried.deliveryId);
		expect(attempts.length).toBeGreaterThanOrEqual(3);
		for (const attempt of attempts) expect(attempt.body.events.map((event) => event.id)).toEqual(early);
		const arrivals = firstArrivals(n8n.deliveries);
		expect(arrivals.map((delivery) => delivery.body.events.map((event) => event.id))).toEqual([early, late]);
		expect(eventIdsOf(arrivals)).toEqual([...early, ...late]);
		expect(await prisma.outboxMessage.count({ where: { siteId, status: 'dead' } })).toBe(0);
	}, 60_000);

	it('holds a partition’s later rows while its first row waits for its retry, and lets other partitions go', async () => {
		const site = testSiteConfig({ n8nUrl: n8n.url });
		const receiver = await startTestReceiver([site], { DISPATCHER: 'off' });
		receivers.push(receiver);
		const key = site.site.key;
		const siteId = receiver.sites.byPublicKey(key)!.id;
		const held = [pageview(key, 'held-visitor', '/1'), pageview(key, 'held-visitor', '/2')];
		const free = pageview(key, 'free-visitor', '/1');
		for (const event of [...held, free]) expect((await post(`${receiver.url}/api/track`, batch(key, [event]))).status).toBe(202);
		const [firstRow] = await prisma.outboxMessage.findMany({ where: { siteId, partitionKey: 'held-visitor' }, orderBy: { id: 'asc' } });
		await prisma.outboxMessage.update({ where: { id: firstRow.id }, data: { nextAttemptAt: new Date(Date.now() + 60_000), attempts: 1 } });

		// This site's deliveries only: the previous test's slow attempts may still be answered meanwhile.
		const ours = () => n8n.deliveries.filter((delivery) => delivery.body.site === key);
		expect(await receiver.dispatcher.tick()).toBe(1);
		expect(eventIdsOf(ours())).toEqual([free.id]);

		await prisma.outboxMessage.update({ where: { id: firstRow.id }, data: { nextAttemptAt: new Date() } });
		expect(await receiver.dispatcher.tick()).toBe(2);
		expect(ours().map((delivery) => delivery.body.events.map((event) => event.id))).toEqual([[free.id], held.map((event) => event.id)]);
	});
});

describe('outbox drain on the embedded database', () => {
	const n8n = new FakeN8n(TEST_SECRET);
	const dataDir = mkdtempSync(path.join(os.tmpdir(), 'embedded-drain-'));
	let receiver: Receiver;

	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		rmSync(dataDir, { recursive: true, force: true });
	});

	it('claims and sends a visitor’s rows together there too', async () => {
		await n8n.start();
		const site = testSiteConfig({ n8nUrl: n8n.url });
		receiver = await startReceiver({
			sites: [site],
			database: { url: null, dataDir },
			settings: { PORT: 0, DISPATCHER: 'off' },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: 'silent' }),
		});
		const key = site.site.key;
		const events = Array.from({ length: 5 }, (_, n) => pageview(key, 'embedded-visitor', `/${n}`));
		for (const event of events) expect((await post(`${receiver.url}/api/track`, batch(key, [event]))).status).toBe(202);

		expect(await receiver.dispatcher.tick()).toBe(5);
		expect(n8n.deliveries.map((delivery) => delivery.body.events.map((event) => event.id))).toEqual([events.map((event) => event.id)]);
		expect(await receiver.db.prisma.outboxMessage.count({ where: { status: 'delivered', deliveryId: n8n.deliveries[0].deliveryId } })).toBe(5);
	}, 120_000);
});
