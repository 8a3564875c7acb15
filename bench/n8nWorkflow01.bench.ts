/**
 * 10,000 tracking events through bundled workflow 01 in a REAL n8n (the cached install of
 * scripts/real-n8n.sh, this package installed from its tarball): posted to the receiver's
 * /api/track as 500 visitors' batches, stored, delivered by the outbox to workflow 01, which
 * builds sessions and hands each visitor's events on to 02 (conversions), which hands conversions
 * on to 04 (timeline) and 06. Prints the ingest rate, the time until the last event is processed,
 * and events/s end to end. BENCH_EVENTS and BENCH_DISPATCH_BATCH_SIZE (events per delivery) change
 * the traffic and the receiver's setting. n8n runs as docker-compose.yml configures it, with
 * N8N_EXPRESSION_ENGINE_LAZY_ACQUIRE=true (docs/deployment.md#scaling); BENCH_N8N_LAZY_ISOLATES=false
 * measures n8n's default instead.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';

import { parseSiteConfig } from '../lib/config/siteConfig';
import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import { CREDENTIAL_IDS } from '../scripts/bundleCredentials';
import { createLogger } from '../server/logger';
import { startReceiver } from '../server/receiver';
import { readSettings } from '../server/settings';
import { startRealN8n, type WorkflowJson } from '../test/helpers/realN8n';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';
import { CONCURRENT_POSTS, crmDigest, PER_VISITOR, postAll, processedEvents, trackBatches } from './traffic';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
/** Events per delivery (the receiver's DISPATCH_BATCH_SIZE); its default when unset. */
const DISPATCH_BATCH_SIZE = Number(process.env.BENCH_DISPATCH_BATCH_SIZE ?? readSettings({}).DISPATCH_BATCH_SIZE);
const SECRET = 'bench-webhook-secret-0123456789abcdef';
const LAZY_ISOLATES = process.env.BENCH_N8N_LAZY_ISOLATES ?? 'true';
const ROOT = path.join(__dirname, '..', '..');

const workflow = (file: string) => JSON.parse(readFileSync(path.join(ROOT, 'workflows', file), 'utf8')) as WorkflowJson;

async function main(): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench_wf01');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	await deployMigrations(new PrismaPg({ connectionString: url }));
	const database = new URL(url);
	console.log(`starting a real n8n with workflows 01, 02, 04, 06 (install cached outside the repository; the first run takes ~10 minutes)`);
	const n8n = await startRealN8n({
		// 02 hands conversions to 04 and 06: every workflow on the path of an event is there.
		workflows: [workflow('01-visitor-processor.json'), workflow('02-conversion-detector.json'), workflow('04-activity-logger.json'), workflow('06-email-orchestrator.json')],
		credentials: [
			{
				id: CREDENTIAL_IDS.postgres,
				name: 'CRM database',
				type: 'postgres',
				data: { host: database.hostname, port: Number(database.port || 5432), database: name, user: decodeURIComponent(database.username || 'postgres'), password: decodeURIComponent(database.password), ssl: 'disable' },
			},
			{ id: CREDENTIAL_IDS.trackingCrmApi, name: 'Tracking CRM API', type: 'trackingCrmApi', data: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret: SECRET, emailTokenSecret: '' } },
			// The bench's visitors are anonymous: 06 unenrolls nobody and sends nothing.
			{ id: CREDENTIAL_IDS.smtp, name: 'CRM SMTP', type: 'smtp', data: { host: '127.0.0.1', port: 2525, user: '', password: '', secure: false, disableStartTls: true } },
		],
		env: { N8N_HOST: '127.0.0.1', N8N_EXPRESSION_ENGINE_LAZY_ACQUIRE: LAZY_ISOLATES },
	});
	const site = parseSiteConfig({
		site: { key: 'bench', name: 'Bench', domain: 'bench.example' },
		tracking: { allowedOrigins: ['https://bench.example'] },
		// The batches carry no consent state, as a site without a consent banner sends them.
		privacy: { cookieConsent: false },
		crm: { conversionRules: [{ name: 'contact', event: 'form_submit', value: 10, currency: 'EUR' }] },
		integrations: { n8nUrl: n8n.baseUrl, webhookSecretEnv: 'BENCH_WEBHOOK_SECRET', webhookEndpoints: [{ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor' }] },
	});
	const receiver = await startReceiver({
		sites: [site],
		database: { url, migrate: false },
		// Every simulated browser posts from 127.0.0.1: the per-address limit would stop a BENCH_EVENTS burst past 12,000.
		settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50, DISPATCH_BATCH_SIZE, RATE_LIMIT_PER_IP: 1_000_000 },
		env: { BENCH_WEBHOOK_SECRET: SECRET },
		logger: createLogger({ level: 'warn' }),
	});
	try {
		const siteId = (await prisma.site.findUniqueOrThrow({ where: { key: 'bench' } })).id;
		const bodies = trackBatches('bench', EVENTS);
		const started = Date.now();
		await postAll(receiver.url, bodies);
		const ingested = Date.now();
		let processed = 0;
		let lastProgress = 0;
		const deadline = started + 30 * 60_000;
		while (processed < EVENTS) {
			processed = await processedEvents(prisma, siteId);
			if (Date.now() - lastProgress > 10_000) {
				lastProgress = Date.now();
				console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${processed} of ${EVENTS} events processed by workflow 01`);
			}
			if (Date.now() > deadline) throw new Error(`only ${processed} of ${EVENTS} events processed after 30 minutes\n${n8n.logTail(40)}`);
			if (processed < EVENTS) await new Promise((resolve) => setTimeout(resolve, 200));
		}
		const done = Date.now();
		// The outbox row is marked delivered when workflow 01 (and with it 02 and 04) answered.
		for (;;) {
			const pending = await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } });
			if (pending === 0 || Date.now() > deadline) break;
			await new Promise((resolve) => setTimeout(resolve, 200));
		}
		const chained = Date.now();
		const sessions = await prisma.visitorSession.count({ where: { siteId } });
		const conversions = await prisma.conversion.count({ where: { siteId } });
		const activities = await prisma.activity.count({ where: { siteId } });
		const seconds = (ms: number) => (ms / 1000).toFixed(1);
		console.log(`events: ${EVENTS} in ${bodies.length} batches of ≤ ${PER_VISITOR} (one visitor each), ${CONCURRENT_POSTS} concurrent POSTs; deliveries of ≤ ${DISPATCH_BATCH_SIZE} events, ≤ ${readSettings({}).DISPATCH_CONCURRENCY} at once`);
		console.log(`ingest: ${seconds(ingested - started)} s (${Math.round(EVENTS / ((ingested - started) / 1000))} events/s acknowledged by /api/track)`);
		console.log(`last event processed ${seconds(done - ingested)} s after the last acknowledgement`);
		console.log(`n8n: N8N_EXPRESSION_ENGINE_LAZY_ACQUIRE=${LAZY_ISOLATES}`);
		console.log(`workflow 01 (real n8n ${n8n.baseUrl}): last event processed ${seconds(done - started)} s after the first POST → ${Math.round(EVENTS / ((done - started) / 1000))} events/s end to end`);
		console.log(`chain 01 → 02 → 04 and 06 answered for every delivery after ${seconds(chained - started)} s; ${sessions} sessions, ${conversions} conversions, ${activities} activities`);
		console.log(`CRM rows: ${await crmDigest(prisma, siteId)}`);
		console.log(`dispatcher: ${JSON.stringify(receiver.dispatcher.metrics)}`);
	} finally {
		await receiver.close();
		await n8n.stop();
		await prisma.$disconnect();
		await dropTestDatabase(name);
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
