import { PrismaPg } from '@prisma/adapter-pg';

import type { EventItem } from '../../lib/contracts/delivery';
import type { PrismaClient } from '../../lib/db/generated/client';
import { sharedAdapter, type RawDatabase, type RawSql } from '../../lib/db/rawSql';
import { SiteResolver } from '../../nodes/shared/subjects';
import { processEvents, transactionParts, type EventOutcome, type IncomingEvent, type SessionSummary } from '../../nodes/VisitorProcessor/store';
import { createTestSite, linkedEvents, testDbUrl, testPrisma } from '../helpers/db';

const OPTIONS = { sessionTimeout: 1800, maxSessionDuration: 86_400, engagementThresholds: { medium: 30, high: 60 } };
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

const visitorsOf = (events: number[]) => events.map((count, n) => [`v${String(n).padStart(4, '0')}`, Array.from({ length: count }, (_, i) => i)] as const);

describe('transactionParts', () => {
	it('keeps a small batch in one transaction whatever the pool allows', () => {
		expect(transactionParts(visitorsOf([300, 300, 300]), 4)).toHaveLength(1);
	});

	it('splits a large batch into contiguous parts of about equal events, no more than asked', () => {
		const visitors = visitorsOf(Array.from({ length: 200 }, (_, n) => 10 + (n % 7) * 10));
		const parts = transactionParts(visitors, 4);
		expect(parts.flat()).toEqual(visitors);
		expect(parts).toHaveLength(4);
		const events = parts.map((part) => part.reduce((sum, [, list]) => sum + list.length, 0));
		const total = events.reduce((a, b) => a + b, 0);
		for (const count of events.slice(0, -1)) expect(count).toBeGreaterThanOrEqual(total / 4);
		for (const count of events) expect(count).toBeLessThan(total / 4 + 70);
	});

	it('never puts more than 500 visitors in one transaction, even one at a time', () => {
		const parts = transactionParts(visitorsOf(new Array(1_200).fill(1)), 1);
		expect(parts.map((part) => part.length)).toEqual([500, 500, 200]);
	});
});

/** Counts the transactions open at once, and fails the `failOn`-th one to begin. */
function observed(db: RawDatabase, failOn?: number): RawDatabase & { open: number; peak: number } {
	let begun = 0;
	const watcher = {
		open: 0,
		peak: 0,
		concurrency: db.concurrency,
		$queryRawUnsafe: db.$queryRawUnsafe.bind(db),
		$executeRawUnsafe: db.$executeRawUnsafe.bind(db),
		async $transaction<T>(work: (tx: RawSql) => Promise<T>): Promise<T> {
			begun += 1;
			const attempt = begun;
			watcher.open += 1;
			watcher.peak = Math.max(watcher.peak, watcher.open);
			try {
				return await db.$transaction(async (tx) => {
					if (attempt === failOn) {
						await tx.$executeRawUnsafe('SELECT pg_sleep(0.05)');
						throw new Error('connection lost');
					}
					return await work(tx);
				});
			} finally {
				watcher.open -= 1;
			}
		},
	};
	return watcher as RawDatabase & { open: number; peak: number };
}

describe('Visitor Processor store with a pool of connections', () => {
	let prisma: PrismaClient;
	const pools: Array<{ close(): Promise<void> }> = [];
	const database = (concurrency: number) => {
		const shared = sharedAdapter(new PrismaPg({ connectionString: testDbUrl(), max: concurrency }), concurrency);
		pools.push(shared);
		return shared.database;
	};

	beforeAll(() => {
		prisma = testPrisma();
	});
	afterAll(async () => {
		await Promise.all(pools.map((pool) => pool.close()));
		await prisma.$disconnect();
	});

	/** 120 visitors of 25 events each, two or three sessions apiece, mixed across visitors as a delivery mixes them. */
	const journey = (prefix: string): EventItem[] =>
		Array.from({ length: 25 }, (_, n) =>
			Array.from({ length: 120 }, (_, visitor) => ({
				id: `019aa000-${prefix}-7000-8${String(visitor).padStart(3, '0')}-${String(n).padStart(12, '0')}`,
				anonymousId: `anon-${visitor}`,
				sessionId: `anon-${visitor}-tab`,
				type: 'pageview',
				url: `https://shop.example/p${n % 6}`,
				path: `/p${n % 6}`,
				userAgent: BROWSER,
				occurredAt: new Date(T0 + visitor * 1000 + n * (n % 10 === 9 ? 2_400_000 : 240_000)).toISOString(),
			})),
		).flat() as EventItem[];

	/** Event ids, and so session keys, differ between the sites only in the prefix a journey was made with. */
	const unprefixed = (text: string) => text.replace(/019aa000-[0-9a-f]{4}-/g, '019aa000-');

	async function stored(siteId: string) {
		const sessions = await prisma.visitorSession.findMany({ where: { siteId }, orderBy: { startedAt: 'asc' }, include: { visitor: { select: { anonymousId: true, sessionCount: true } } } });
		const keyOf = new Map(sessions.map((session) => [session.id, unprefixed(session.sessionKey)]));
		const events = await linkedEvents(prisma, { siteIds: [siteId] });
		return {
			sessions: sessions
				.map(({ sessionKey, startedAt, lastActivityAt, pageviews, eventCount, entryPage, exitPage, engagementScore, visitor }) => ({
					sessionKey: unprefixed(sessionKey),
					startedAt,
					lastActivityAt,
					pageviews,
					eventCount,
					entryPage,
					exitPage,
					engagementScore,
					visitor,
				}))
				.sort((x, y) => (x.sessionKey < y.sessionKey ? -1 : 1)),
			events: events.map((event) => [unprefixed(event.eventId), event.sessionId ? keyOf.get(event.sessionId) : null]),
		};
	}

	async function processed(prefix: string, db: RawDatabase) {
		const site = await createTestSite(prisma, `vp-store-${prefix}`);
		const resolved = await new SiteResolver(db).siteOf(site.key);
		const outputs = await processEvents(db, resolved, journey(prefix), OPTIONS, T0 + 86_400_000);
		return { site, resolved, outputs };
	}

	it('runs a large delivery as transactions at once and stores what one at a time stores', async () => {
		const pooled = observed(database(10));
		const oneAtATime = observed(database(1));
		const a = await processed('aaaa', pooled);
		const b = await processed('bbbb', oneAtATime);
		expect(pooled.peak).toBeGreaterThan(1);
		expect(oneAtATime.peak).toBe(1);

		const [atOnce, inTurn] = [await stored(a.site.id), await stored(b.site.id)];
		expect(atOnce.sessions.length).toBeGreaterThan(240);
		expect(atOnce.events).toHaveLength(3000);
		expect(atOnce.events.every(([, sessionKey]) => sessionKey)).toBe(true);
		expect(atOnce).toEqual(inTurn);
		// The node's output per event: the same session facts, whatever order the transactions ended in.
		const facts = (outputs: typeof a.outputs) =>
			[...(outputs as Map<IncomingEvent, SessionSummary>)].map(([{ id }, summary]) => ({ ...summary, eventId: unprefixed(id), sessionKey: unprefixed(summary.sessionKey), visitorId: 'of its site', sessionId: 'of its site' })).sort((x, y) => (x.eventId < y.eventId ? -1 : 1));
		expect(a.outputs.size).toBe(3000);
		expect(facts(a.outputs)).toEqual(facts(b.outputs));
	});

	it('rewrites no session on a redelivery, so the rollups have no hour to refold', async () => {
		const db = database(10);
		const site = await createTestSite(prisma, 'vp-store-redelivered');
		const resolved = await new SiteResolver(db).siteOf(site.key);
		await processEvents(db, resolved, journey('eeee'), OPTIONS, T0 + 86_400_000);
		// xmin: the transaction that wrote the row version, which any rewrite replaces.
		const versions = () => prisma.$queryRawUnsafe<Array<{ key: string; version: string }>>('SELECT session_key AS key, xmin::text AS version FROM visitor_sessions WHERE site_id = $1::uuid ORDER BY 1', site.id);
		const before = await versions();
		await prisma.$executeRawUnsafe('DELETE FROM analytics_dirty_hours WHERE site_id = $1::uuid', site.id);

		const again = await processEvents(db, resolved, journey('eeee'), OPTIONS, T0 + 86_400_000);
		expect(again.size).toBe(3000);
		expect([...again.values()].every((outcome: EventOutcome) => 'sessionId' in outcome && outcome.sessionId)).toBe(true);
		expect(await versions()).toEqual(before);
		expect(await prisma.$queryRawUnsafe('SELECT count(*)::int AS dirty FROM analytics_dirty_hours WHERE site_id = $1::uuid', site.id)).toEqual([{ dirty: 0 }]);
	});

	it('answers a failed transaction only when every other has ended, and a retry completes the delivery', async () => {
		const failing = observed(database(10), 2);
		const site = await createTestSite(prisma, 'vp-store-failing');
		const resolved = await new SiteResolver(failing).siteOf(site.key);
		await expect(processEvents(failing, resolved, journey('cccc'), OPTIONS, T0 + 86_400_000)).rejects.toThrow('connection lost');
		expect(failing.open).toBe(0);

		const retry = await processEvents(observed(database(10)), resolved, journey('cccc'), OPTIONS, T0 + 86_400_000);
		expect(retry.size).toBe(3000);
		const b = await createTestSite(prisma, 'vp-store-reference');
		await processEvents(database(1), await new SiteResolver(database(1)).siteOf(b.key), journey('dddd'), OPTIONS, T0 + 86_400_000);
		expect((await stored(site.id)).sessions).toEqual((await stored(b.id)).sessions);
	});
});
