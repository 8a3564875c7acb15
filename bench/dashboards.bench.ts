/**
 * The dashboards' reports at scale: a realistic dataset (bench/dataset/generate.ts) of 1,000,000
 * events over 30 days, and more where BENCH_DASHBOARD_EVENTS asks (a comma-separated list, e.g.
 * "1000000,10000000": ten million take about a quarter of an hour to build and fold on this
 * machine, so they are not built by default). For each size: the time to build the data and to
 * fold the rollups from nothing, then each report of server/analytics/queries.ts over the last 24
 * hours, 7 days and 30 days, p50 / p95 over BENCH_RUNS runs, beside the simplest SQL that gives the
 * same numbers (bench/dataset/naive.ts: GROUP BYs over the raw tables), with the load average.
 */
import os from 'node:os';

import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';

import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import * as reports from '../server/analytics/queries';
import { foldAllRollups } from '../server/analytics/rollup';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';
import { generateDataset } from './dataset/generate';
import * as naive from './dataset/naive';

const SIZES = (process.env.BENCH_DASHBOARD_EVENTS ?? '1000000').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
/** The plain SQL takes seconds per report at ten million events: fewer runs of it. */
const NAIVE_RUNS = Number(process.env.BENCH_NAIVE_RUNS ?? 3);
const STAGES = ['subscriber', 'lead', 'mql', 'sql', 'customer'];
const RANGES: Array<[string, number, reports.Interval]> = [
	['24 h', 1, 'hour'],
	['7 d', 7, 'day'],
	['30 d', 30, 'day'],
];

type Db = PrismaClient;
type Report = (db: Db, siteId: string, range: reports.TimeRange) => Promise<unknown>;
const REPORTS: Array<[string, Report, Report]> = [
	['visitorAnalytics', (db, site, range) => reports.visitorAnalytics(db, site, range), (db, site, range) => naive.visitorAnalytics(db, site, range)],
	['leadAnalytics', (db, site, range) => reports.leadAnalytics(db, site, range, STAGES), (db, site, range) => naive.leadAnalytics(db, site, range, STAGES)],
	['campaignAnalytics', (db, site, range) => reports.campaignAnalytics(db, site, range), (db, site, range) => naive.campaignAnalytics(db, site, range)],
	['conversionAnalytics', (db, site, range) => reports.conversionAnalytics(db, site, range, STAGES), (db, site, range) => naive.conversionAnalytics(db, site, range, STAGES)],
	['siteStats', (db, site, range) => reports.siteStats(db, site, range.from), (db, site, range) => naive.siteStats(db, site, range.from)],
];

const load = () =>
	os
		.loadavg()
		.map((value) => value.toFixed(2))
		.join(' ');

function percentile(sorted: number[], p: number): number {
	return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** p50 and p95 of `runs` calls after one warm-up call. */
async function time(runs: number, call: () => Promise<unknown>): Promise<{ p50: number; p95: number }> {
	await call();
	const samples: number[] = [];
	for (let run = 0; run < runs; run++) {
		const started = performance.now();
		await call();
		samples.push(performance.now() - started);
	}
	samples.sort((a, b) => a - b);
	return { p50: percentile(samples, 50), p95: percentile(samples, 95) };
}

const ms = (value: number) => `${value.toFixed(0).padStart(6)} ms`;

async function benchSize(events: number): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench_dash');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	const client = new Client({ connectionString: url });
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		await client.connect();
		const site = await prisma.site.create({ data: { key: 'bench', name: 'Bench', domain: 'site.example' }, select: { id: true } });
		console.log(`\n--- ${events.toLocaleString('en')} events (load average ${load()}, ${os.cpus().length} cores)`);
		let started = performance.now();
		const counts = await generateDataset((sql) => client.query(sql).then((result) => result.rows), { siteId: site.id, events });
		const { seconds, ...rows } = counts;
		console.log(`generated in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(rows)}`);
		console.log(`  slowest steps: ${Object.entries(seconds).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([step, s]) => `${step} ${s.toFixed(1)} s`).join(', ')}`);
		started = performance.now();
		const { hours } = await foldAllRollups(prisma);
		await client.query('VACUUM ANALYZE analytics_session_facts, analytics_visitor_pairs, analytics_event_counts');
		console.log(`rollups folded from nothing in ${((performance.now() - started) / 1000).toFixed(1)} s (${hours} hours)`);

		const now = new Date();
		console.log(`\n${'report'.padEnd(20)} ${'range'.padEnd(5)} ${'p50'.padStart(9)} ${'p95'.padStart(9)}   plain SQL p50 (p95)   load average`);
		for (const [label, days, interval] of RANGES) {
			const range: reports.TimeRange = { from: new Date(now.getTime() - days * 86_400_000), to: now, interval };
			for (const [report, rolled, plain] of REPORTS) {
				const fast = await time(RUNS, () => rolled(prisma, site.id, range));
				const slow = await time(NAIVE_RUNS, () => plain(prisma, site.id, range));
				console.log(`${report.padEnd(20)} ${label.padEnd(5)} ${ms(fast.p50)} ${ms(fast.p95)}   ${ms(slow.p50)} (${ms(slow.p95).trim()})   ${load()}`);
			}
		}
	} finally {
		await client.end();
		await prisma.$disconnect();
		await dropTestDatabase(name);
	}
}

async function main(): Promise<void> {
	console.log(`dashboards: sizes ${SIZES.map((size) => size.toLocaleString('en')).join(', ')} events (BENCH_DASHBOARD_EVENTS), ${RUNS} runs per report (BENCH_RUNS), ${NAIVE_RUNS} of the plain SQL (BENCH_NAIVE_RUNS)`);
	for (const events of SIZES) await benchSize(events);
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
