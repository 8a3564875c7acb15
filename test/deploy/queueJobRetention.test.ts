/**
 * docker-compose.yml's n8n keeps finished queue jobs in Redis, so that the caller of a webhook
 * (the receiver's delivery, a CRM Hand Off) gets its answer even when the job finished before
 * the webhook processor started waiting for it. The processor waits with Bull's `job.finished()`:
 * it listens for the job's completion event and checks the job's state every 5 s. An event sent
 * before it listens is missed, and the check finds the job only if Redis still keeps it. With
 * n8n's default (keep none), about one queue-mode bench run in four had two executions wait out
 * the Hand Off's 120 s and their deliveries sent again (n8n-io/n8n#30392).
 *
 * Played here with n8n's own Bull, from the real n8n install of scripts/real-n8n.sh, on the real
 * Redis, with the job options n8n builds from N8N_EXECUTIONS_QUEUE_KEEP_LAST_* (scaling.service:
 * removeOnComplete = keepLastCompleted, removeOnFail = keepLastFailed): a worker finishes a job,
 * then the waiter calls `job.finished()`, as when the completion event came first.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { operatorVariables, parseEnvFile, readCompose } from '../helpers/compose';
import { childEnv, run, SCRIPT } from '../helpers/realN8n';

const ROOT = path.resolve(__dirname, '..', '..');
const REDIS = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
/** Bull's check runs every 5 s: an answer within this is the check's. */
const ANSWER_WITHIN_MS = 8_000;

interface BullJob {
	id: string | number;
	finished(): Promise<unknown>;
}
interface BullQueue {
	add(name: string, data: object, options: object): Promise<BullJob>;
	process(name: string, concurrency: number, handler: (job: BullJob) => Promise<unknown>): Promise<void>;
	on(event: string, listener: (...args: unknown[]) => void): void;
	isReady(): Promise<unknown>;
	close(): Promise<void>;
	obliterate(options: { force: boolean }): Promise<void>;
}
type Bull = new (name: string, options: object) => BullQueue;

/** The n8n environment every n8n service of docker-compose.yml gets, as Compose reads it. */
function composeN8nEnvironment(): Record<string, string> {
	const { variables } = operatorVariables(parseEnvFile(readFileSync(path.join(ROOT, '.env.example'), 'utf8'), '.env.example').variables);
	const compose = readCompose(path.join(ROOT, 'docker-compose.yml'), variables);
	return compose.services['n8n-webhook'].environment;
}

/** n8n's Bull, from the install every real-n8n test uses. */
async function n8nBull(): Promise<Bull> {
	const log = path.join(mkdtempSync(path.join(tmpdir(), 'tcrm-bull-')), 'install.log');
	const install = await run('bash', [SCRIPT, 'install'], { env: childEnv({}), log, timeoutMs: 20 * 60_000 });
	const directory = /^N8N_DIR=(.+)$/m.exec(install.stdout)?.[1];
	if (install.code !== 0 || !directory) throw new Error(`scripts/real-n8n.sh install failed (exit ${install.code ?? install.signal}); see ${log}`);
	// Bull as n8n resolves it: from n8n's own package.
	const bull = (await import(require.resolve('bull', { paths: [path.join(directory, 'node_modules', 'n8n')] }))) as { default: Bull };
	return bull.default;
}

/**
 * Whether a waiter that calls `job.finished()` after a worker finished the job gets an answer
 * within ANSWER_WITHIN_MS, with n8n's job options for the given retention.
 */
async function answeredAfterTheEvent(Queue: Bull, keepLastCompleted: number, keepLastFailed: number): Promise<boolean> {
	const connection = { redis: { host: REDIS.hostname, port: Number(REDIS.port || 6379) }, prefix: `tcrm-bull-test-${randomBytes(4).toString('hex')}` };
	const waiter = new Queue('jobs', connection);
	const worker = new Queue('jobs', connection);
	try {
		// The waiter listens for completions before the job exists, as n8n's webhook processor does.
		const completions: unknown[] = [];
		waiter.on('global:completed', (jobId) => completions.push(jobId));
		await Promise.all([waiter.isReady(), worker.isReady()]);
		await new Promise((resolve) => setTimeout(resolve, 200));
		const job = await waiter.add('job', { executionId: '1' }, { removeOnComplete: keepLastCompleted, removeOnFail: keepLastFailed });
		void worker.process('job', 1, async () => ({ success: true }));
		const deadline = Date.now() + 5_000;
		while (!completions.map(String).includes(String(job.id))) {
			if (Date.now() > deadline) throw new Error(`the worker did not finish job ${job.id} within 5 s`);
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
		let timer: NodeJS.Timeout | undefined;
		const answer = await Promise.race([
			job.finished().then(() => true),
			new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ANSWER_WITHIN_MS))),
		]);
		clearTimeout(timer);
		return answer;
	} finally {
		await worker.obliterate({ force: true }).catch(() => undefined);
		// A waiter still in Bull's check rejects when its queue closes: that answer is not awaited.
		await Promise.all([waiter.close(), worker.close()]);
	}
}

describe("docker-compose.yml's n8n: a webhook's caller is answered when the job finished before the processor waited", () => {
	let Queue: Bull;
	let environment: Record<string, string>;
	beforeAll(async () => {
		Queue = await n8nBull();
		environment = composeN8nEnvironment();
	}, 20 * 60_000);

	it('keeps finished jobs in Redis for a while', () => {
		expect(Number(environment.N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED)).toBeGreaterThanOrEqual(100);
		expect(Number(environment.N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED)).toBeGreaterThanOrEqual(100);
	});

	it("answers within Bull's 5-second check with the compose file's retention", async () => {
		await expect(answeredAfterTheEvent(Queue, Number(environment.N8N_EXECUTIONS_QUEUE_KEEP_LAST_COMPLETED), Number(environment.N8N_EXECUTIONS_QUEUE_KEEP_LAST_FAILED))).resolves.toBe(true);
	});

	it("never answers with n8n's default retention, which keeps no finished job", async () => {
		await expect(answeredAfterTheEvent(Queue, 0, 0)).resolves.toBe(false);
	});
});
