/**
 * 10,000 tracking events end to end through the EMBEDDED engine: the receiver with a site that
 * names no n8n runs the six bundled workflows itself (n8n-core in its process). The same traffic
 * as n8nWorkflow01 (a real n8n), posted to /api/track, stored, handed by the outbox to workflow
 * 01, which builds sessions and hands each visitor's events on to 02 (conversions), which hands
 * conversions on to 04 (timeline) and 06. Run on the local Postgres and on the embedded PGlite
 * (the `npm start` default). Prints the time until the last event is processed and the chain has
 * answered, and events/s end to end. BENCH_EVENTS and BENCH_DISPATCH_BATCH_SIZE (events per
 * delivery) change the traffic and the receiver's setting.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { parseSiteConfig } from '../lib/config/siteConfig';
import { createLogger } from '../server/logger';
import { startReceiver } from '../server/receiver';
import { readSettings } from '../server/settings';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';
import { CONCURRENT_POSTS, crmDigest, PER_VISITOR, postAll, processedEvents, trackBatches } from './traffic';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
/** Events per delivery (the receiver's DISPATCH_BATCH_SIZE); its default when unset. */
const DISPATCH_BATCH_SIZE = Number(process.env.BENCH_DISPATCH_BATCH_SIZE ?? readSettings({}).DISPATCH_BATCH_SIZE);

async function run(database: { url: string } | { dataDir: string }, label: string): Promise<void> {
	const site = parseSiteConfig({
		site: { key: 'bench', name: 'Bench', domain: 'bench.example' },
		tracking: { allowedOrigins: ['https://bench.example'] },
		privacy: { cookieConsent: false },
		crm: { conversionRules: [{ name: 'contact', event: 'form_submit', value: 10, currency: 'EUR' }] },
	});
	const receiver = await startReceiver({
		sites: [site],
		database: 'url' in database ? { url: database.url } : { url: null, dataDir: database.dataDir },
		// Every simulated browser posts from 127.0.0.1: the per-address limit would stop a BENCH_EVENTS burst past 12,000.
		settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50, DISPATCH_BATCH_SIZE, RATE_LIMIT_PER_IP: 1_000_000 },
		env: {},
		logger: createLogger({ level: 'warn' }),
	});
	const { prisma } = receiver.db;
	try {
		const siteId = (await prisma.site.findUniqueOrThrow({ where: { key: 'bench' } })).id;
		const bodies = trackBatches('bench', EVENTS);
		const started = Date.now();
		await postAll(receiver.url, bodies);
		const ingested = Date.now();
		const deadline = started + 30 * 60_000;
		let processed = 0;
		let lastProgress = 0;
		while (processed < EVENTS) {
			processed = await processedEvents(prisma, siteId);
			if (Date.now() - lastProgress > 10_000) {
				lastProgress = Date.now();
				console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${processed} of ${EVENTS} events processed by workflow 01`);
			}
			if (Date.now() > deadline) throw new Error(`only ${processed} of ${EVENTS} events processed after 30 minutes`);
			if (processed < EVENTS) await new Promise((resolve) => setTimeout(resolve, 200));
		}
		const done = Date.now();
		while ((await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } })) > 0 && Date.now() < deadline) {
			await new Promise((resolve) => setTimeout(resolve, 200));
		}
		const chained = Date.now();
		const [sessions, conversions, activities] = await Promise.all([prisma.visitorSession.count({ where: { siteId } }), prisma.conversion.count({ where: { siteId } }), prisma.activity.count({ where: { siteId } })]);
		const seconds = (ms: number) => (ms / 1000).toFixed(1);
		console.log(`${label}: ${EVENTS} events in ${bodies.length} batches of ≤ ${PER_VISITOR} (one visitor each), ${CONCURRENT_POSTS} concurrent POSTs; deliveries of ≤ ${DISPATCH_BATCH_SIZE} events, ≤ ${Math.min(readSettings({}).DISPATCH_CONCURRENCY, receiver.db.sql.concurrency)} at once`);
		console.log(`  ingest: ${seconds(ingested - started)} s (${Math.round(EVENTS / ((ingested - started) / 1000))} events/s acknowledged by /api/track)`);
		console.log(`  workflow 01 (embedded engine): last event processed ${seconds(done - started)} s after the first POST → ${Math.round(EVENTS / ((done - started) / 1000))} events/s end to end`);
		console.log(`  chain 01 → 02 → 04 and 06 answered for every delivery after ${seconds(chained - started)} s → ${Math.round(EVENTS / ((chained - started) / 1000))} events/s; ${sessions} sessions, ${conversions} conversions, ${activities} activities`);
		console.log(`  CRM rows: ${await crmDigest(prisma, siteId)}`);
		console.log(`  dispatcher: ${JSON.stringify(receiver.dispatcher.metrics)}`);
	} finally {
		await receiver.close();
	}
}

async function main(): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench_embedded');
	try {
		await run({ url }, 'Postgres');
	} finally {
		await dropTestDatabase(name);
	}
	const dataDir = mkdtempSync(path.join(tmpdir(), 'tcrm-bench-pglite-'));
	try {
		await run({ dataDir }, 'embedded PGlite (npm start default)');
	} finally {
		rmSync(dataDir, { recursive: true, force: true });
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
