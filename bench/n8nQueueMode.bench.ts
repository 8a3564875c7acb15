/**
 * The traffic of n8nWorkflow01 (10,000 tracking events, 500 visitors' batches) through the
 * production topology of docker-compose.yml in n8n's queue mode (test/helpers/queueTopology.ts:
 * n8n main, the webhook processor and the workers on Redis, two receivers on Postgres, each with
 * its compose environment), once with ONE worker and once with TWO, each run on a fresh topology.
 * The batches are posted to receiver-1 with n8nWorkflow01's concurrency; both receivers' outbox
 * dispatchers deliver them to the webhook processor, which queues workflow 01 for the workers;
 * 01 hands each visitor's events on to 02, and 02 its conversions to 04 and 06, through the
 * webhook processor and the queue too.
 *
 * Prints per run: the time from the first POST to the last event processed by workflow 01, to
 * the chain's last answer (every outbox row delivered) and to n8n idle; events/s end to end;
 * the executions each worker ran, per workflow; failed deliveries and executions; the load
 * average before and after. Then checks the CRM holds what n8nWorkflow01 makes of the same
 * traffic (a session per visitor holding its events, a conversion and an activity per form).
 * BENCH_EVENTS changes the traffic (past 12,000 events, more batches than RATE_LIMIT_PER_IP
 * allows one network a minute, that limit is raised to the bench's batches), BENCH_WORKERS
 * (default "1,2") the runs.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';

import { PrismaClient } from '../lib/db/generated/client';
import { bundledWorkflows } from '../scripts/workflowTools';
import { parseEnvFile } from '../test/helpers/compose';
import { SERVICES, startQueueTopology, type QueueTopology } from '../test/helpers/queueTopology';
import { CONCURRENT_POSTS, crmDigest, PER_VISITOR, postAll, PROCESSED_EVENTS, trackBatches } from './traffic';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
const WORKERS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
const STALL_MS = 3 * 60_000;
const UNFINISHED = ['new', 'running', 'waiting'];
const ROOT = path.join(__dirname, '..', '..');
const RECEIVERS = SERVICES.receivers.length;
/** Workflows a delivery to 01 keeps running at once: 01 waits for 02, 02 for 04. */
const CHAIN_DEPTH = 3;

/** n8nWorkflow01's site, its workflow 01 at this topology's webhook processor; the receivers' secret is the compose file's. */
const benchSite = (webhookProcessorUrl: string) => ({
	site: { key: 'bench', name: 'Bench', domain: 'bench.example' },
	tracking: { allowedOrigins: ['https://bench.example'] },
	privacy: { cookieConsent: false },
	crm: { conversionRules: [{ name: 'contact', event: 'form_submit', value: 10, currency: 'EUR' }] },
	integrations: { n8nUrl: webhookProcessorUrl, webhookSecretEnv: 'CRM_WEBHOOK_SECRET', webhookEndpoints: [{ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor' }] },
});

/** What n8nWorkflow01 makes of the traffic: one session per visitor (its events span minutes), a conversion and its timeline activity per form. */
function expectedHolding(bodies: string[]): { sessions: number; conversions: number; activities: number } {
	const events = bodies.flatMap((body) => (JSON.parse(body) as { events: Array<{ type: string; anonymousId: string }> }).events);
	const forms = events.filter((event) => event.type === 'form_submit').length;
	return { sessions: new Set(events.map((event) => event.anonymousId)).size, conversions: forms, activities: forms };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const load = () => loadavg().map((value) => value.toFixed(2)).join(', ');
const seconds = (ms: number) => (ms / 1000).toFixed(1);
const rate = (ms: number) => Math.round(EVENTS / (ms / 1000));

/**
 * .env.example as an operator sizes it for `workers` workers: deliveries in flight per receiver
 * within docs/deployment.md's rule, receivers × DISPATCH_CONCURRENCY × 3 ≤ workers ×
 * N8N_WORKER_CONCURRENCY (a delivery to 01 holds a slot for 01, 02 and 04 while its chain runs).
 */
function envFor(workers: number): string {
	const example = readFileSync(path.join(ROOT, '.env.example'), 'utf8');
	const { variables } = parseEnvFile(example, '.env.example');
	const slots = workers * Number(variables.N8N_WORKER_CONCURRENCY);
	const concurrency = Math.max(1, Math.floor(slots / (RECEIVERS * CHAIN_DEPTH)));
	console.log(`DISPATCH_CONCURRENCY ${concurrency} per receiver: ${RECEIVERS} receivers × ${concurrency} × ${CHAIN_DEPTH} ≤ ${slots} worker slots`);
	let env = example.replace(/^DISPATCH_CONCURRENCY=.*$/m, `DISPATCH_CONCURRENCY=${concurrency}`);
	// The visitors' batches all come from this machine's one address, where a site's visitors each have their own.
	const batches = Math.ceil(EVENTS / PER_VISITOR);
	const perNetwork = Number(variables.RATE_LIMIT_PER_IP);
	if (batches > perNetwork) {
		console.log(`RATE_LIMIT_PER_IP ${batches}: the bench's ${batches} visitors post from one address, where .env.example allows ${perNetwork} requests a minute`);
		env = env.replace(/^RATE_LIMIT_PER_IP=.*$/m, `RATE_LIMIT_PER_IP=${batches}`);
	}
	const file = path.join(mkdtempSync(path.join(tmpdir(), 'tcrm-queue-bench-')), '.env');
	writeFileSync(file, env);
	return file;
}

async function run(workers: number): Promise<string[]> {
	console.log(`\n--- queue mode, ${workers} worker(s) ---`);
	const startedAt = Date.now();
	const envFile = envFor(workers);
	const topology: QueueTopology = await startQueueTopology({
		workers,
		envFile,
		sites: ({ webhookProcessorUrl }) => [benchSite(webhookProcessorUrl)],
		// The bench's visitors are anonymous: 06 unenrolls nobody and sends nothing.
		smtpUrl: 'smtp://127.0.0.1:2525?starttls=off',
	});
	console.log(`topology up in ${seconds(Date.now() - startedAt)} s: ${[topology.main, topology.webhook, ...topology.workers, ...topology.receivers].map((entry) => entry.name).join(', ')}`);
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: topology.crmDatabaseUrl }) });
	let failed = false;
	try {
		const siteId = (await prisma.site.findUniqueOrThrow({ where: { key: 'bench' } })).id;
		const bodies = trackBatches('bench', EVENTS);
		// An execution's row names its workflow; the worker that ran it is only in the worker's log.
		const workflowOf = new Map<string, string>();
		let n8nRunning = 0;
		const readExecutions = async () => {
			const executions = await topology.executions();
			for (const execution of executions) workflowOf.set(execution.id, execution.workflowId);
			n8nRunning = executions.filter((execution) => UNFINISHED.includes(execution.status)).length;
			return executions;
		};

		const loadBefore = load();
		const started = Date.now();
		await postAll(topology.receivers[0].url, bodies);
		const ingested = Date.now();
		// Waits for the last event processed by 01, then every outbox row delivered, then n8n idle;
		// a run that makes no progress for STALL_MS is reported as far as it got.
		const reached: { done?: number; chained?: number; idle?: number } = {};
		let stalled: string | undefined;
		let progress = '';
		let progressAt = started;
		let lastRunning = 0;
		let lastPrinted = 0;
		for (;;) {
			const [row] = await prisma.$queryRawUnsafe<Array<{ processed: number; delivered: number; pending: number }>>(
				`SELECT (SELECT processed FROM (${PROCESSED_EVENTS}) sessions) AS processed,
				        (SELECT count(*)::int FROM outbox WHERE site_id = $1::uuid AND status = 'delivered') AS delivered,
				        (SELECT count(*)::int FROM outbox WHERE site_id = $1::uuid AND status = 'pending') AS pending`,
				siteId,
			);
			await readExecutions();
			const now = Date.now();
			if (row.processed >= EVENTS) reached.done ??= now;
			// The outbox row is marked delivered when workflow 01, and through its hand-offs 02 and 04, answered.
			if (reached.done && row.pending === 0) reached.chained ??= now;
			if (reached.chained && n8nRunning === 0) {
				reached.idle = now;
				break;
			}
			// Executions coming and going are no progress: retried deliveries queue more of them.
			const state = `${row.processed} of ${EVENTS} events processed by workflow 01, ${row.delivered} outbox rows delivered, ${row.pending} pending`;
			if (state !== progress || (reached.chained && n8nRunning < lastRunning)) [progress, progressAt] = [state, now];
			lastRunning = n8nRunning;
			if (now - lastPrinted > 10_000) {
				lastPrinted = now;
				console.log(`  ${seconds(now - started)} s: ${state}, ${n8nRunning} executions queued or running`);
			}
			if (now - progressAt > STALL_MS) {
				stalled = `no progress for ${STALL_MS / 60_000} minutes, stopped after ${seconds(now - started)} s at: ${state}, ${n8nRunning} executions queued or running`;
				break;
			}
			await sleep(250);
		}
		const loadAfter = load();

		const executions = await readExecutions();
		const queue = topology.queueLog();
		const titles = new Map(bundledWorkflows().map((workflow) => [workflow.id, workflow.number]));
		const perWorkflow = (ids: string[]) => {
			const counts = new Map<string, number>();
			for (const id of ids) {
				const workflow = workflowOf.has(id) ? (titles.get(workflowOf.get(id)!) ?? workflowOf.get(id)!) : 'unknown';
				counts.set(workflow, (counts.get(workflow) ?? 0) + 1);
			}
			return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([workflow, count]) => `${workflow}: ${count}`).join(', ');
		};
		const failedExecutions = executions.filter((execution) => !['success', ...UNFINISHED].includes(execution.status));
		const outbox = await prisma.outboxMessage.groupBy({ by: ['status'], where: { siteId }, _count: true, _sum: { attempts: true } });
		const rows = outbox.reduce((sum, group) => sum + group._count, 0);
		const attempts = outbox.reduce((sum, group) => sum + (group._sum.attempts ?? 0), 0);
		const dead = outbox.find((group) => group.status === 'dead')?._count ?? 0;
		const failedDeliveries = topology.receivers.map((receiver) => `${receiver.name} ${(readFileSync(receiver.logFile, 'utf8').match(/delivery to n8n failed/g) ?? []).length}`);

		const sessions = await prisma.visitorSession.count({ where: { siteId } });
		const sessionEvents = (await prisma.visitorSession.aggregate({ where: { siteId }, _sum: { eventCount: true } }))._sum.eventCount ?? 0;
		const conversions = await prisma.conversion.count({ where: { siteId } });
		const attributions = await prisma.attributionData.count({ where: { siteId } });
		const activities = await prisma.activity.count({ where: { siteId } });

		console.log(`events: ${EVENTS} in ${bodies.length} batches of ≤ ${PER_VISITOR} (one visitor each), ${CONCURRENT_POSTS} concurrent POSTs to ${topology.receivers[0].name}; both receivers deliver (compose settings: DISPATCH_TIMEOUT_MS ${topology.receivers[0].env.DISPATCH_TIMEOUT_MS}, worker ${topology.compose.services['n8n-worker'].command.join(' ')})`);
		console.log(`ingest: ${seconds(ingested - started)} s (${rate(ingested - started)} events/s acknowledged by /api/track)`);
		const after = (at: number | undefined, what: string) => (at === undefined ? `${what}: not reached` : `${what} ${seconds(at - started)} s after the first POST → ${rate(at - started)} events/s end to end`);
		if (stalled) console.log(`STALLED: ${stalled}`);
		console.log(after(reached.done, 'workflow 01: last event processed'));
		console.log(`${after(reached.chained, "chain 01 → 02 → 04 and 06: last answer (every outbox row delivered)")}; ${reached.idle === undefined ? 'n8n not idle' : `n8n idle after ${seconds(reached.idle - started)} s`}`);
		console.log(`executions: ${queue.enqueued.length} queued; per worker: ${queue.workers.map((worker) => `${worker.worker} ${worker.finished.length} (${perWorkflow(worker.finished)})`).join('; ')}`);
		console.log(
			`failed: ${failedExecutions.length} n8n executions${failedExecutions.length ? ` (${failedExecutions.map((execution) => `${execution.id} of ${titles.get(execution.workflowId) ?? execution.workflowId} ${execution.status}`).join(', ')})` : ''}; ` +
				`deliveries failed (receiver logs): ${failedDeliveries.join(', ')}; outbox ${rows} rows, ${attempts - rows} extra attempts, ${dead} dead-lettered`,
		);
		const statuses = new Map<string, number>();
		for (const execution of executions) {
			const key = `${titles.get(execution.workflowId) ?? execution.workflowId} ${execution.status}`;
			statuses.set(key, (statuses.get(key) ?? 0) + 1);
		}
		console.log(`n8n execution records (successful ones are marked deleted, not removed, until the pruner runs): ${[...statuses].sort().map(([key, count]) => `${key} ${count}`).join(', ')}`);
		console.log(`CRM: ${sessions} sessions holding ${sessionEvents} events, ${conversions} conversions (${attributions} attribution rows), ${activities} activities`);
		console.log(`CRM rows: ${await crmDigest(prisma, siteId)}`);
		console.log(`load average (1, 5, 15 min): before ${loadBefore}; after ${loadAfter}`);

		const expected = expectedHolding(bodies);
		// A failed execution fails its delivery, which the outbox sends again: it is a figure above;
		// what must hold is the CRM, and no delivery given up.
		const wrong = [
			...(stalled ? [stalled] : []),
			...(sessions === expected.sessions ? [] : [`${sessions} sessions, expected ${expected.sessions}`]),
			...(sessionEvents === EVENTS ? [] : [`the sessions hold ${sessionEvents} events, expected ${EVENTS}`]),
			...(conversions === expected.conversions ? [] : [`${conversions} conversions, expected ${expected.conversions}`]),
			...(activities === expected.activities ? [] : [`${activities} activities, expected ${expected.activities}`]),
			...(dead === 0 ? [] : [`${dead} outbox rows dead-lettered`]),
			...queue.workers.filter((worker) => worker.finished.length === 0).map((worker) => `${worker.worker} ran no execution`),
		];
		if (wrong.length) {
			failed = true;
			console.log(`WRONG with ${workers} worker(s): ${wrong.join('; ')} (logs kept in ${topology.logFolder})`);
		} else {
			console.log(`CRM as n8nWorkflow01 makes it of the same traffic: ${expected.sessions} sessions, ${expected.conversions} conversions, ${expected.activities} activities`);
		}
		return wrong;
	} catch (error) {
		failed = true;
		console.log(`logs kept in ${topology.logFolder}`);
		throw error;
	} finally {
		await prisma.$disconnect();
		await topology.stop({ keepLogs: failed });
	}
}

async function main(): Promise<void> {
	const wrong: string[] = [];
	for (const workers of WORKERS) wrong.push(...(await run(workers)).map((message) => `${workers} worker(s): ${message}`));
	if (wrong.length) throw new Error(`the chain's results are wrong:\n${wrong.join('\n')}`);
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
