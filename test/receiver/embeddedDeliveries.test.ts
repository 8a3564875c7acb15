/**
 * How many deliveries the dispatcher hands the embedded engine at once. Its nodes write through the
 * receiver's own database: on the embedded PGlite (one connection, on the receiver's thread) one
 * delivery at a time, each taking what arrived meanwhile; on Postgres up to DISPATCH_CONCURRENCY.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { EngineAnswer } from '../../server/engine/engine';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { batch, pageview, post } from '../helpers/events';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

jest.setTimeout(120_000);

const VISITORS = 12;
const CONCURRENCY = 3;

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

/**
 * Starts a receiver running the bundled workflows itself, holds its first delivery until every
 * visitor's events are stored (so the dispatcher has many deliveries to choose from), and returns
 * the most deliveries the engine ran at once and the sessions the chain built.
 */
async function deliveriesAtOnce(database: { url: string } | { url: null; dataDir: string }): Promise<{ maxInFlight: number; sessions: number }> {
	const key = `deliveries-${Math.random().toString(36).slice(2, 8)}`;
	const site = parseSiteConfig({
		site: { key, name: 'Deliveries', domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false },
	});
	const receiver: Receiver = await startReceiver({
		sites: [site],
		database,
		// Deliveries of two events: each visitor's pair is a delivery of its own.
		settings: { PORT: 0, DISPATCH_INTERVAL_MS: 20, DISPATCH_BATCH_SIZE: 2, DISPATCH_CONCURRENCY: CONCURRENCY, RATE_LIMIT_PER_IP: 100_000 },
		env: {},
		logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
	});
	try {
		const engine = receiver.engine!;
		const deliver = engine.deliver.bind(engine);
		let inFlight = 0;
		let maxInFlight = 0;
		let deliveries = 0;
		let release!: () => void;
		const stored = new Promise<void>((resolve) => (release = resolve));
		engine.deliver = async (...args: Parameters<typeof deliver>): Promise<EngineAnswer> => {
			// Workflow 01's hand-offs enter the engine too, inside a delivery: only the dispatcher's own count.
			if (args[0] !== 'crm-visitor-processor') return await deliver(...args);
			inFlight += 1;
			deliveries += 1;
			maxInFlight = Math.max(maxInFlight, inFlight);
			try {
				if (deliveries === 1) await stored;
				return await deliver(...args);
			} finally {
				inFlight -= 1;
			}
		};
		const first = batch(key, [pageview(key, 'visitor-0', '/'), pageview(key, 'visitor-0', '/pricing')]);
		expect((await post(`${receiver.url}/api/track`, first)).status).toBe(202);
		await until(async () => deliveries > 0, 20_000, 'the first delivery');
		for (let visitor = 1; visitor < VISITORS; visitor++) {
			const events = [pageview(key, `visitor-${visitor}`, '/'), pageview(key, `visitor-${visitor}`, '/pricing')];
			expect((await post(`${receiver.url}/api/track`, batch(key, events))).status).toBe(202);
		}
		// Room for the dispatcher's next rounds while the first delivery is held.
		await new Promise((resolve) => setTimeout(resolve, 300));
		release();
		const { prisma } = receiver.db;
		const siteId = receiver.sites.byPublicKey(key)!.id;
		await until(async () => (await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } })) === 0, 60_000, 'every delivery answered');
		return { maxInFlight, sessions: await prisma.visitorSession.count({ where: { siteId } }) };
	} finally {
		await receiver.close();
	}
}

describe('deliveries to the embedded engine', () => {
	it('on the embedded PGlite: one at a time', async () => {
		const dataDir = mkdtempSync(path.join(os.tmpdir(), 'embedded-deliveries-'));
		try {
			const { maxInFlight, sessions } = await deliveriesAtOnce({ url: null, dataDir });
			expect(maxInFlight).toBe(1);
			expect(sessions).toBe(VISITORS);
		} finally {
			rmSync(dataDir, { recursive: true, force: true });
		}
	});

	it('on Postgres: up to DISPATCH_CONCURRENCY at once', async () => {
		const database = await createTestDatabase('tcrm_embedded_deliveries');
		try {
			const { maxInFlight, sessions } = await deliveriesAtOnce({ url: database.url });
			expect(maxInFlight).toBe(CONCURRENCY);
			expect(sessions).toBe(VISITORS);
		} finally {
			await dropTestDatabase(database.name);
		}
	});
});
