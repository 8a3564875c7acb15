/**
 * A 10,000-event item batch through the Visitor Processor node inside n8n's execution engine,
 * with its Postgres writes, on a fresh database. Our package is loaded from its built dist/ the
 * way n8n loads an installed package.
 */
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import { v7 as uuidv7 } from 'uuid';

import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import { disconnectAll } from '../nodes/shared/database';
import { HarnessNodeTypes, runWorkflow } from '../test/harness/n8n';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
const VISITORS = Math.max(1, Math.round(EVENTS / 20));
const ROOT = path.join(__dirname, '..', '..');

function prng(seed: number): () => number {
	return () => {
		seed = (seed + 0x6d2b79f5) | 0;
		let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

async function main(): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench_vp');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		await prisma.site.create({ data: { key: 'bench', name: 'Bench', domain: 'bench.example' } });
		const random = prng(7);
		const start = Date.UTC(2026, 10, 1);
		const clock = new Array<number>(VISITORS).fill(start);
		const paths = ['/', '/pricing', '/blog/a', '/blog/b', '/contact', '/docs'];
		const input = Array.from({ length: EVENTS }, () => {
			const visitor = Math.floor(random() * VISITORS);
			clock[visitor] += random() < 0.1 ? 3_600_000 : Math.floor(random() * 120_000);
			return {
				site: 'bench',
				id: uuidv7(),
				anonymousId: `v${visitor}`,
				type: random() < 0.8 ? 'pageview' : 'scroll',
				url: `https://bench.example${paths[Math.floor(random() * paths.length)]}`,
				userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
				occurredAt: new Date(clock[visitor]).toISOString(),
			};
		});
		const nodeTypes = await HarnessNodeTypes.load({ sourcePackages: [], installedPackages: [ROOT, path.dirname(require.resolve('n8n-nodes-base/package.json'))] });
		const parsed = new URL(url);
		const credentials = { postgres: { host: parsed.hostname, port: Number(parsed.port || 5432), database: name, user: parsed.username || 'postgres', password: '', ssl: 'disable' } };
		const workflow = {
			nodes: [
				{ id: 's', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0] as [number, number], parameters: {} },
				{ id: 'v', name: 'Visitor Processor', type: 'n8n-nodes-tracking-crm.visitorProcessor', typeVersion: 1, position: [200, 0] as [number, number], parameters: {}, credentials: { postgres: { id: '1', name: 'db' } } },
			],
			connections: { Start: { main: [[{ node: 'Visitor Processor', type: 'main' as const, index: 0 }]] } },
		};

		const started = process.hrtime.bigint();
		const result = await runWorkflow(workflow, { input, credentials, nodeTypes, throwOnError: true });
		const seconds = Number(process.hrtime.bigint() - started) / 1e9;
		const out = result.outputOf('Visitor Processor');
		const sessions = await prisma.visitorSession.count();
		const linked = await prisma.visitorEvent.count({ where: { sessionId: { not: null } } });

		const retryStarted = process.hrtime.bigint();
		await runWorkflow(workflow, { input, credentials, nodeTypes, throwOnError: true });
		const retrySeconds = Number(process.hrtime.bigint() - retryStarted) / 1e9;

		console.log(`Visitor Processor node, ${EVENTS} events of ${VISITORS} visitors in one execution (n8n engine + Postgres)`);
		console.log(`first run:  ${seconds.toFixed(2)} s  → ${(EVENTS / seconds).toFixed(0)} events/s; ${out.length} items out, ${sessions} sessions, ${linked} events linked`);
		console.log(`retry:      ${retrySeconds.toFixed(2)} s  → ${(EVENTS / retrySeconds).toFixed(0)} events/s; sessions afterwards ${await prisma.visitorSession.count()} (unchanged)`);
	} finally {
		await disconnectAll();
		await prisma.$disconnect();
		await dropTestDatabase(name);
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
