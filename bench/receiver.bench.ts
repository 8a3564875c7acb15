/**
 * /api/track under load, side by side with a no-op Express route in the same run, on loopback.
 * Both servers run as their own processes; autocannon drives them from this one.
 * Prints requests/s of both, the ratio, events/s, p50/p99 latency, and checks that every
 * acknowledged event was stored in Postgres.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import autocannon from 'autocannon';
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../lib/config/siteConfig';
import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';

const EVENTS_PER_BATCH = 5;
const DURATION_SECONDS = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROOT = path.join(__dirname, '..', '..');

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

function batchBody(site: string, ids: string[]): string {
	const anonymousId = `bench-${Math.floor(Math.random() * 10_000)}`;
	const now = Date.now();
	const events = Array.from({ length: EVENTS_PER_BATCH }, (_, i) => ({
		id: uuidv7(),
		type: 'pageview',
		ts: now + i,
		anonymousId,
		sessionId: `${anonymousId}-s`,
		url: `https://bench.example/page/${i}`,
		title: 'Bench page',
	}));
	ids.push(...events.map((event) => event.id));
	return JSON.stringify({ site, events });
}

interface LoadResult {
	requestsPerSecond: number;
	p50: number;
	p99: number;
	ok: number;
	non2xx: number;
	errors: number;
}

/**
 * Each connection has one request in flight (no pipelining), so the ids generated for a
 * connection's request are the ones its next response acknowledges.
 */
async function load(url: string, site: string, acknowledged: string[] | null, options: { rate?: number; duration: number }): Promise<LoadResult> {
	const result = await autocannon({
		url,
		method: 'POST',
		connections: CONNECTIONS,
		duration: options.duration,
		...(options.rate ? { overallRate: options.rate } : {}),
		headers: { 'content-type': 'text/plain', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' },
		requests: [
			{
				setupRequest: (request, context) => {
					const ids: string[] = [];
					const body = batchBody(site, ids);
					(context as { ids?: string[] }).ids = ids;
					return { ...request, body };
				},
				onResponse: (status, _body, context) => {
					if (acknowledged && status === 202) acknowledged.push(...((context as { ids?: string[] }).ids ?? []));
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
	};
}

async function main(): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	const children: ChildProcess[] = [];
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		const site = parseSiteConfig({
			site: { key: 'bench', name: 'Bench', domain: 'bench.example' },
			tracking: { allowedOrigins: ['https://bench.example'] },
			privacy: { cookieConsent: false },
			integrations: { webhookEndpoints: [{ workflow: 'visitor-processor', url: 'http://127.0.0.1:9/webhook/visitor' }] },
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
			run(path.join(ROOT, 'dist', 'bench', 'noopServer.js'), { PORT: String(noopPort) }),
		);
		const receiverUrl = `http://127.0.0.1:${receiverPort}/api/track`;
		const noopUrl = `http://127.0.0.1:${noopPort}/api/track`;
		await Promise.all([waitUntilUp(`http://127.0.0.1:${receiverPort}/health`), waitUntilUp(noopUrl)]);
		const acknowledgedIds: string[] = [];
		await load(receiverUrl, 'bench', acknowledgedIds, { duration: 2 });
		const noop = await load(noopUrl, 'bench', null, { duration: DURATION_SECONDS });
		const track = await load(receiverUrl, 'bench', acknowledgedIds, { duration: DURATION_SECONDS });
		const paced = await load(receiverUrl, 'bench', acknowledgedIds, { duration: DURATION_SECONDS, rate: 1000 });

		const storedIds = new Set((await prisma.visitorEvent.findMany({ select: { eventId: true } })).map((row) => row.eventId));
		const missing = acknowledgedIds.filter((id) => !storedIds.has(id)).length;
		const line = (label: string, r: LoadResult) =>
			`${label.padEnd(34)} ${r.requestsPerSecond.toFixed(0).padStart(7)} req/s   p50 ${String(r.p50).padStart(4)} ms   p99 ${String(r.p99).padStart(4)} ms   2xx ${r.ok}   non-2xx ${r.non2xx}   errors ${r.errors}`;
		console.log(`\n/api/track benchmark — ${os.cpus().length} cores, ${CONNECTIONS} connections, ${DURATION_SECONDS} s per run, ${EVENTS_PER_BATCH} events per batch`);
		console.log(line('no-op Express route (baseline)', noop));
		console.log(line('/api/track, as fast as it goes', track));
		console.log(line('/api/track, paced at 1,000 req/s', paced));
		console.log(`ratio /api/track ÷ no-op:            ${(track.requestsPerSecond / noop.requestsPerSecond).toFixed(2)} (target ≥ 0.6)`);
		console.log(`events/s stored at full speed:       ${(track.requestsPerSecond * EVENTS_PER_BATCH).toFixed(0)}`);
		console.log(`p99 at 1,000 req/s:                  ${paced.p99} ms (target ≤ 25 ms)`);
		console.log(`acknowledged events ${acknowledgedIds.length}, found in Postgres ${acknowledgedIds.length - missing}: ${missing === 0 ? 'every acknowledged event is stored' : `${missing} MISSING`}`);
		if (missing > 0) process.exitCode = 1;
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
