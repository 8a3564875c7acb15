/**
 * 10,000 events through the Visitor Processor node inside n8n's execution engine, with its
 * Postgres reads and writes, on a fresh database; our package is loaded from its built dist/ the
 * way n8n loads an installed package. The events are stored first, as the receiver stores them on
 * ingest before it delivers them. Twice: as bundled workflow 01 gives them (one item per visitor
 * with its events, Input "Events Array per Item"), and one item per event, which pays n8n's cost
 * per item ten thousand times. Each shape runs on visitors of its own, after a warm-up execution
 * on others (n8n, Prisma and the node compiled, as in a running n8n); a retry of the same input follows.
 */
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import type { IDataObject } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import { disconnectAll } from '../nodes/shared/database';
import { eventsByVisitor } from '../nodes/shared/events';
import { HarnessNodeTypes, runWorkflow } from '../test/harness/n8n';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';
import { prng } from '../test/helpers/prng';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 10_000);
const VISITORS = Math.max(1, Math.round(EVENTS / 20));
const ROOT = path.join(__dirname, '..', '..');

/** `count` events of `visitors` visitors named `<prefix><n>`, mixed across visitors as deliveries mix them. */
function trafficOf(prefix: string, count: number, visitors: number): IDataObject[] {
	const random = prng(7);
	const start = Date.UTC(2026, 10, 1);
	const clock = new Array<number>(visitors).fill(start);
	const paths = ['/', '/pricing', '/blog/a', '/blog/b', '/contact', '/docs'];
	return Array.from({ length: count }, () => {
		const visitor = Math.floor(random() * visitors);
		clock[visitor] += random() < 0.1 ? 3_600_000 : Math.floor(random() * 120_000);
		return {
			site: 'bench',
			id: uuidv7(),
			anonymousId: `${prefix}${visitor}`,
			type: random() < 0.8 ? 'pageview' : 'scroll',
			url: `https://bench.example${paths[Math.floor(random() * paths.length)]}`,
			userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
			occurredAt: new Date(clock[visitor]).toISOString(),
		};
	});
}

/** The items CRM Tracker Trigger's "One Item per Visitor" makes of these events. */
const perVisitor = (events: IDataObject[]): IDataObject[] =>
	[...eventsByVisitor(events as Array<IDataObject & { anonymousId: string }>)].map(([anonymousId, list]) => ({ site: 'bench', kind: 'events', anonymousId, events: list }));

async function main(): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench_vp');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		await prisma.site.create({ data: { key: 'bench', name: 'Bench', domain: 'bench.example' } });
		const nodeTypes = await HarnessNodeTypes.load({ sourcePackages: [], installedPackages: [ROOT, path.dirname(require.resolve('n8n-nodes-base/package.json'))] });
		const parsed = new URL(url);
		const credentials = { postgres: { host: parsed.hostname, port: Number(parsed.port || 5432), database: name, user: parsed.username || 'postgres', password: '', ssl: 'disable' } };
		const workflow = (input: 'batch' | 'event') => ({
			nodes: [
				{ id: 's', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0] as [number, number], parameters: {} },
				{
					id: 'v',
					name: 'Visitor Processor',
					type: 'n8n-nodes-tracking-crm.visitorProcessor',
					typeVersion: 1,
					position: [200, 0] as [number, number],
					parameters: { input },
					credentials: { postgres: { id: '1', name: 'db' } },
				},
			],
			connections: { Start: { main: [[{ node: 'Visitor Processor', type: 'main' as const, index: 0 }]] } },
		});
		/** What the receiver's ingest writes for each event: the raw row, not yet of any visitor or session. */
		const store = async (events: IDataObject[]) => {
			await prisma.$executeRawUnsafe(
				`INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, type, url, path, user_agent, occurred_at, received_at)
				SELECT gen_random_uuid(), s.id, e.id, e."anonymousId", e.type, e.url, '/', e."userAgent", e."occurredAt", now()
				FROM jsonb_to_recordset($1::jsonb) AS e(id uuid, "anonymousId" text, type text, url text, "userAgent" text, "occurredAt" timestamptz)
				CROSS JOIN sites s WHERE s.key = 'bench'`,
				JSON.stringify(events),
			);
		};
		const timed = async (input: 'batch' | 'event', items: IDataObject[]) => {
			const started = process.hrtime.bigint();
			const result = await runWorkflow(workflow(input), { input: items, credentials, nodeTypes, throwOnError: true });
			return { seconds: Number(process.hrtime.bigint() - started) / 1e9, out: result.outputOf('Visitor Processor').length };
		};

		// The warm-ups have the measured runs' shape, so they also open the pool connections those
		// runs' parallel transactions use, as a running n8n's pool has them open.
		const warmBatch = trafficOf('warm-', EVENTS, VISITORS);
		const warmEvents = trafficOf('warm-event-', EVENTS, VISITORS);
		await store([...warmBatch, ...warmEvents]);
		await timed('batch', perVisitor(warmBatch));
		await timed('event', warmEvents);

		console.log(`Visitor Processor node, ${EVENTS} events of ${VISITORS} visitors in one execution (n8n engine + Postgres), after a warm-up execution`);
		const visitorTraffic = trafficOf('v', EVENTS, VISITORS);
		const eventTraffic = trafficOf('e', EVENTS, VISITORS);
		await store([...visitorTraffic, ...eventTraffic]);
		for (const [label, input, items] of [
			['one item per visitor (workflow 01)', 'batch', perVisitor(visitorTraffic)],
			['one item per event', 'event', eventTraffic],
		] as const) {
			const prefix = input === 'batch' ? 'v' : 'e';
			const first = await timed(input, [...items]);
			const sessions = await prisma.visitorSession.count({ where: { visitor: { anonymousId: { startsWith: prefix } } } });
			const [{ linked }] = await prisma.$queryRawUnsafe<Array<{ linked: number }>>(
				`SELECT count(*)::int AS linked FROM visitor_events e JOIN visitor_event_links l ON l.site_id = e.site_id AND l.event_id = e.event_id WHERE e.anonymous_id LIKE $1`,
				`${prefix}%`,
			);
			const retry = await timed(input, [...items]);
			console.log(`${label}: ${items.length} items`);
			console.log(`  first run: ${first.seconds.toFixed(2)} s → ${(EVENTS / first.seconds).toFixed(0)} events/s; ${first.out} items out, ${sessions} sessions, ${linked} events linked`);
			console.log(`  retry:     ${retry.seconds.toFixed(2)} s → ${(EVENTS / retry.seconds).toFixed(0)} events/s; sessions afterwards ${await prisma.visitorSession.count({ where: { visitor: { anonymousId: { startsWith: prefix } } } })} (unchanged)`);
		}
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
