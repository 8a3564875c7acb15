/**
 * /api/track under load, side by side with a no-op Express route in the same run, on loopback.
 * Both servers run as their own processes. The load comes from wrk (C, little CPU, so the two
 * cores go to the servers and Postgres); without wrk, from autocannon in this process.
 * Each round measures the baseline, /api/track flat out, the baseline again (the ratio takes the
 * mean of both baselines), and /api/track paced at 1,000 req/s, each from a settled database;
 * the figures of every round are printed with the load average, then the medians.
 * Afterwards every event acknowledged with a 202 is looked up in Postgres.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import autocannon from 'autocannon';

import { parseSiteConfig } from '../lib/config/siteConfig';
import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';

const EVENTS_PER_BATCH = 5;
const DURATION_SECONDS = Number(process.env.BENCH_DURATION ?? 10);
/**
 * Every run, the baseline's too, holds the same connections. A receiver answers only after the
 * batch is committed, so on few connections its rate is bound by the commit's wait for the
 * disk (32 connections at 10 ms each cap it near 3,200 req/s, whatever the CPU could do), which
 * measures the load generator's closed loop rather than the receiver. Real traffic is many
 * browsers with a request each now and then: hundreds of open connections at these rates.
 */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 128);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PACED_RATE = 1000;
const WRK_THREADS = 2;
const ROOT = path.join(__dirname, '..', '..');
const WRK_SCRIPT = path.join(ROOT, 'bench', 'receiver.wrk.lua');
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
/** Event times and the time part of every event id; a fixed instant keeps ids derivable from the request id. */
const START_MS = Date.now();

async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as { port: number };
	await new Promise((resolve) => server.close(resolve));
	return port;
}

async function waitUntilUp(url: string): Promise<void> {
	for (let i = 0; i < 600; i++) {
		try {
			await fetch(url);
			return;
		} catch {
			await new Promise((resolve) => setTimeout(resolve, 100));
		}
	}
	throw new Error(`${url} did not come up`);
}

function run(file: string, env: NodeJS.ProcessEnv): ChildProcess {
	return spawn(process.execPath, [file], { env: { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * The id of event `index` (1-based) of request `counter` of load-generator thread `thread` in
 * load run `run`: a UUIDv7 whose time is START_MS and whose other bits name the request.
 * bench/receiver.wrk.lua builds the same ids.
 */
function eventId(run: number, thread: number, counter: number, index: number): string {
	const n = counter * 64 + index;
	const hex = (value: number, width: number) => value.toString(16).padStart(width, '0');
	return `${hex(Math.floor(START_MS / 65536), 8)}-${hex(START_MS % 65536, 4)}-7${hex(thread, 3)}-${hex(0x8000 + run, 4)}-${hex(Math.floor(n / 16777216), 6)}${hex(n % 16777216, 6)}`;
}

function batchBody(site: string, run: number, thread: number, counter: number): string {
	const anonymousId = `bench-${thread}-${counter % 10_000}`;
	const events = Array.from({ length: EVENTS_PER_BATCH }, (_, i) => ({
		id: eventId(run, thread, counter, i + 1),
		type: 'pageview',
		ts: START_MS + i + 1,
		anonymousId,
		sessionId: `${anonymousId}-s`,
		url: `https://bench.example/page/${i + 1}`,
		title: 'Bench page',
	}));
	return JSON.stringify({ site, events });
}

interface LoadResult {
	requestsPerSecond: number;
	p50: number;
	p99: number;
	ok: number;
	non2xx: number;
	errors: number;
	/** Request ids ("<thread>-<counter>") answered 202. */
	acknowledged: string[];
}

interface LoadOptions {
	url: string;
	connections: number;
	site: string;
	run: number;
	duration: number;
	rate?: number;
}

function wrkAvailable(): boolean {
	const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
	return !probe.error && /wrk/.test(`${probe.stdout}${probe.stderr}`);
}

async function loadWithWrk(options: LoadOptions): Promise<LoadResult> {
	const ackFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-ack-')), 'acknowledged.txt');
	const child = spawn('wrk', ['-t', String(WRK_THREADS), '-c', String(options.connections), '-d', `${options.duration}s`, '--timeout', '10s', '-s', WRK_SCRIPT, options.url], {
		env: {
			...process.env,
			BENCH_SITE: options.site,
			BENCH_EVENTS: String(EVENTS_PER_BATCH),
			BENCH_RUN: String(options.run),
			BENCH_START_MS: String(START_MS),
			BENCH_RATE: String(options.rate ?? 0),
			BENCH_THREADS: String(WRK_THREADS),
			BENCH_ACK_FILE: ackFile,
		},
		stdio: ['ignore', 'pipe', 'inherit'],
	});
	let output = '';
	child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
	const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
	const line = output.split('\n').find((text) => text.startsWith('BENCH_JSON '));
	if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}):\n${output}`);
	const summary = JSON.parse(line.slice('BENCH_JSON '.length)) as { requests: number; duration_us: number; errors: number; non2xx: number; p50_us: number; p99_us: number };
	const acknowledged = readFileSync(ackFile, 'utf8').split('\n').filter(Boolean);
	return {
		requestsPerSecond: summary.requests / (summary.duration_us / 1e6),
		p50: summary.p50_us / 1000,
		p99: summary.p99_us / 1000,
		ok: summary.requests - summary.non2xx,
		non2xx: summary.non2xx,
		errors: summary.errors,
		acknowledged,
	};
}

/**
 * Each connection has one request in flight (no pipelining), so the request built for a
 * connection is the one its next response acknowledges.
 */
async function loadWithAutocannon(options: LoadOptions): Promise<LoadResult> {
	const acknowledged: string[] = [];
	let counter = 0;
	const result = await autocannon({
		url: options.url,
		method: 'POST',
		connections: options.connections,
		duration: options.duration,
		...(options.rate ? { overallRate: options.rate } : {}),
		headers: { 'content-type': 'text/plain', 'user-agent': USER_AGENT },
		requests: [
			{
				setupRequest: (request, context) => {
					counter += 1;
					(context as { requestId?: string }).requestId = `0-${counter}`;
					return { ...request, body: batchBody(options.site, options.run, 0, counter) };
				},
				onResponse: (status, _body, context) => {
					if (status === 202) acknowledged.push((context as { requestId: string }).requestId);
				},
			},
		],
	});
	return {
		requestsPerSecond: result.requests.average,
		p50: result.latency.p50,
		p99: result.latency.p99,
		ok: result['2xx'],
		non2xx: result.non2xx,
		errors: result.errors + result.timeouts,
		acknowledged,
	};
}

/**
 * The baseline runs before and after the /api/track run, and the ratio takes their mean: on a
 * machine whose speed drifts during the bench (shared cores, CPU credits), a baseline measured
 * only before would favour or penalize /api/track by the drift.
 */
function mean(a: LoadResult, b: LoadResult): LoadResult {
	return { ...a, requestsPerSecond: (a.requestsPerSecond + b.requestsPerSecond) / 2, p50: (a.p50 + b.p50) / 2, p99: (a.p99 + b.p99) / 2 };
}

function median(values: number[]): number {
	const sorted = [...values].sort((a, b) => a - b);
	const middle = Math.floor(sorted.length / 2);
	return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const loadAverage = () =>
	os
		.loadavg()
		.map((value) => value.toFixed(2))
		.join(' ');

function line(label: string, r: LoadResult): string {
	return `  ${label.padEnd(34)} ${r.requestsPerSecond.toFixed(0).padStart(6)} req/s   p50 ${r.p50.toFixed(1).padStart(5)} ms   p99 ${r.p99.toFixed(1).padStart(5)} ms   2xx ${r.ok}   non-2xx ${r.non2xx}   errors ${r.errors}`;
}

/**
 * The disk's answer to what every acknowledged batch waits for: a small write and fdatasync, as
 * Postgres does at each commit, for a few seconds. Its tail is the floor of /api/track's p99,
 * whatever the receiver does, so the bench prints it beside the figures. Taken next to the
 * database's files when this user may write there, else in the temporary directory.
 */
function diskSyncProfile(directories: string[], seconds = 3): string {
	for (const directory of directories) {
		const file = path.join(directory, `tcrm-bench-sync-${process.pid}`);
		let fd: number;
		try {
			fd = openSync(file, 'w');
		} catch {
			continue;
		}
		const block = Buffer.alloc(8192, 1);
		const waits: number[] = [];
		try {
			for (const end = Date.now() + seconds * 1000; Date.now() < end; ) {
				writeSync(fd, block, 0, block.length, (waits.length % 2048) * block.length);
				const started = process.hrtime.bigint();
				fdatasyncSync(fd);
				waits.push(Number(process.hrtime.bigint() - started) / 1e6);
			}
		} finally {
			closeSync(fd);
			rmSync(file, { force: true });
		}
		waits.sort((a, b) => a - b);
		const at = (q: number) => waits[Math.min(waits.length - 1, Math.floor(waits.length * q))].toFixed(1);
		return `${waits.length} fdatasync of 8 KB in ${directory}: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, p99.9 ${at(0.999)} ms, max ${waits[waits.length - 1].toFixed(1)} ms`;
	}
	return 'no writable directory to time fdatasync in';
}

async function main(): Promise<void> {
	const useWrk = wrkAvailable();
	if (!useWrk) {
		console.log(
			'wrk is not installed: falling back to autocannon inside this process, which takes CPU from the servers and lowers both figures.\n' +
				'Install wrk for the reference figures: apt-get install -y wrk (Debian/Ubuntu), brew install wrk (macOS).',
		);
	}
	const load = useWrk ? loadWithWrk : loadWithAutocannon;
	const { name, url } = await createTestDatabase('tcrm_bench');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	const children: ChildProcess[] = [];
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		const site = parseSiteConfig({
			site: { key: 'bench', name: 'Bench', domain: 'bench.example' },
			tracking: { allowedOrigins: ['https://bench.example'] },
			privacy: { cookieConsent: false },
			// An n8n that is never called (DISPATCHER off): the bench measures ingest alone.
			integrations: { n8nUrl: 'http://127.0.0.1:9', webhookEndpoints: [{ workflow: 'visitor-processor', url: '/webhook/visitor' }] },
		});
		const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-')), 'site.json');
		writeFileSync(configFile, JSON.stringify(site));

		const receiverPort = await freePort();
		const noopPort = await freePort();
		children.push(
			run(path.join(ROOT, 'dist', 'server', 'main.js'), {
				DATABASE_URL: url,
				SITE_CONFIG: configFile,
				PORT: String(receiverPort),
				DISPATCHER: 'off',
				RATE_LIMIT_PER_IP: '1000000',
				RATE_LIMIT_PER_SITE: '10000000',
			}),
			run(path.join(__dirname, 'noopServer.js'), { PORT: String(noopPort) }),
		);
		const receiverUrl = `http://127.0.0.1:${receiverPort}/api/track`;
		const noopUrl = `http://127.0.0.1:${noopPort}/api/track`;
		await Promise.all([waitUntilUp(`http://127.0.0.1:${receiverPort}/health`), waitUntilUp(noopUrl)]);

		console.log(
			`\n/api/track benchmark — ${os.cpus().length} cores, load generator ${useWrk ? `wrk (${WRK_THREADS} threads)` : 'autocannon (in process)'}, ` +
				`${CONNECTIONS} connections, ${DURATION_SECONDS} s per run, ${EVENTS_PER_BATCH} events per batch, ${ROUNDS} rounds`,
		);
		console.log(
			'baseline: an Express 5.3 app in its own process, POST /api/track reading the body with the same express.text (limit, type, charset) ' +
				'and answering 202 with a small JSON body as the receiver does; no middleware, parsing, validation or database',
		);
		const [{ data_directory: dataDirectory }] = await prisma.$queryRawUnsafe<Array<{ data_directory: string }>>('SHOW data_directory');
		console.log(`disk: ${diskSyncProfile([dataDirectory, os.tmpdir()])}`);
		let runNumber = 0;
		const acknowledged: Array<{ run: number; ids: string[] }> = [];
		/**
		 * Every run starts on a settled database: a forced checkpoint and no autovacuum at work,
		 * so the writes of one run (a checkpoint they triggered, vacuum of the rows they added) do
		 * not land in the next run's figures, whichever route that run measures.
		 */
		const settle = async () => {
			await prisma.$executeRawUnsafe('CHECKPOINT');
			for (let waited = 0; waited < 30_000; waited += 250) {
				const [{ busy }] = await prisma.$queryRawUnsafe<Array<{ busy: number }>>(
					"SELECT count(*)::int AS busy FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
				);
				if (busy === 0) return;
				await new Promise((resolve) => setTimeout(resolve, 250));
			}
		};
		const measure = async (target: string, options: { rate?: number; duration?: number } = {}) => {
			await settle();
			runNumber += 1;
			const result = await load({ url: target, site: 'bench', run: runNumber, connections: CONNECTIONS, duration: options.duration ?? DURATION_SECONDS, rate: options.rate });
			if (target === receiverUrl) acknowledged.push({ run: runNumber, ids: result.acknowledged });
			return result;
		};
		await measure(receiverUrl, { duration: 2 });
		await measure(noopUrl, { duration: 2 });

		const rounds: Array<{ noop: LoadResult; track: LoadResult; paced: LoadResult }> = [];
		for (let round = 1; round <= ROUNDS; round++) {
			console.log(`round ${round} (load average ${loadAverage()})`);
			const noopBefore = await measure(noopUrl);
			console.log(line('no-op Express route (baseline)', noopBefore));
			const track = await measure(receiverUrl);
			console.log(line('/api/track, as fast as it goes', track));
			const noopAfter = await measure(noopUrl);
			console.log(line('no-op Express route again', noopAfter));
			const paced = await measure(receiverUrl, { rate: PACED_RATE });
			console.log(line(`/api/track, paced at ${PACED_RATE.toLocaleString('en')} req/s`, paced));
			const noop = mean(noopBefore, noopAfter);
			console.log(`  ratio ${(track.requestsPerSecond / noop.requestsPerSecond).toFixed(2)} (against the mean of the two baseline runs)`);
			rounds.push({ noop, track, paced });
		}

		let acknowledgedEvents = 0;
		const expected = new Set<string>();
		for (const { run: loadRun, ids } of acknowledged) {
			for (const requestId of ids) {
				const [thread, counter] = requestId.split('-').map(Number);
				for (let index = 1; index <= EVENTS_PER_BATCH; index++) expected.add(eventId(loadRun, thread, counter, index));
				acknowledgedEvents += EVENTS_PER_BATCH;
			}
		}
		const stored = new Set((await prisma.visitorEvent.findMany({ select: { eventId: true } })).map((row) => row.eventId));
		const missing = [...expected].filter((id) => !stored.has(id)).length;

		const ratio = median(rounds.map((r) => r.track.requestsPerSecond / r.noop.requestsPerSecond));
		const trackRate = median(rounds.map((r) => r.track.requestsPerSecond));
		console.log(`\nmedians over ${ROUNDS} rounds (load average now ${loadAverage()}):`);
		console.log(`  no-op Express route (baseline)     ${median(rounds.map((r) => r.noop.requestsPerSecond)).toFixed(0)} req/s, p99 ${median(rounds.map((r) => r.noop.p99)).toFixed(1)} ms`);
		console.log(
			`  /api/track, as fast as it goes     ${trackRate.toFixed(0)} req/s = ${(trackRate * EVENTS_PER_BATCH).toFixed(0)} events/s, ` +
				`p50 ${median(rounds.map((r) => r.track.p50)).toFixed(1)} ms, p99 ${median(rounds.map((r) => r.track.p99)).toFixed(1)} ms`,
		);
		console.log(
			`  /api/track, paced at ${PACED_RATE.toLocaleString('en')} req/s     ${median(rounds.map((r) => r.paced.requestsPerSecond)).toFixed(0)} req/s, ` +
				`p50 ${median(rounds.map((r) => r.paced.p50)).toFixed(1)} ms, p99 ${median(rounds.map((r) => r.paced.p99)).toFixed(1)} ms (target ≤ 25 ms)`,
		);
		console.log(`  ratio /api/track ÷ no-op           ${ratio.toFixed(2)} (target ≥ 0.6)`);
		console.log(
			`acknowledged events ${acknowledgedEvents}, found in Postgres ${acknowledgedEvents - missing}: ${missing === 0 ? 'every acknowledged event is stored' : `${missing} MISSING`}`,
		);
		if (missing > 0 || acknowledgedEvents === 0) process.exitCode = 1;
	} finally {
		for (const child of children) child.kill('SIGTERM');
		await prisma.$disconnect();
		await dropTestDatabase(name);
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
