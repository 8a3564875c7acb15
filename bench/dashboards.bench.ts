/**
 * The dashboards' reports at scale: a realistic dataset (bench/dataset/generate.ts) of 1,000,000
 * events over 30 days, and more where BENCH_DASHBOARD_EVENTS asks (a comma-separated list, e.g.
 * "1000000,10000000": ten million take long to build and fold on this machine, see the figures the
 * bench prints, so they are not built by default). For each size: the time to build the data and to
 * fold the rollups from nothing, then each request of REQUESTS (every Visitor Analytics range,
 * interval and filter a dashboard sends, siteStats, and the other reports over 30 days), p50 / p95
 * over BENCH_RUNS runs, beside the simplest SQL that gives the same numbers (bench/dataset/naive.ts:
 * GROUP BYs over the raw tables), with the load average.
 */
import os from 'node:os';

import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';

import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import type { ReportFilter } from '../server/analytics/filters';
import { campaignAnalytics, conversionAnalytics } from '../server/analytics/campaigns';
import { leadAnalytics } from '../server/analytics/leads';
import * as reports from '../server/analytics/queries';
import { foldAllRollups } from '../server/analytics/rollup';
import { adminUrl, createTestDatabase, dropTestDatabase, withDatabase } from '../test/setup/testDatabase';
import { generateDataset } from './dataset/generate';
import * as naive from './dataset/naive';

const SIZES = (process.env.BENCH_DASHBOARD_EVENTS ?? '1000000').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
/** The plain SQL takes seconds per report at ten million events: fewer runs of it. */
const NAIVE_RUNS = Number(process.env.BENCH_NAIVE_RUNS ?? 3);
const STAGES = ['subscriber', 'lead', 'mql', 'sql', 'customer'];

type Db = PrismaClient;
type Call = (db: Db, siteId: string, range: reports.TimeRange) => Promise<unknown>;
interface Request {
	report: string;
	label: string;
	days: number;
	interval: reports.Interval;
	rolled: Call;
	plain: Call;
}

/** Every Visitor Analytics request a dashboard makes (ranges, intervals, filters), siteStats, and the other reports over 30 days. */
const visitors = (label: string, days: number, interval: reports.Interval, filter?: ReportFilter): Request => ({
	report: 'visitorAnalytics',
	label: `${label} ${interval}${filter ? ` ${Object.entries(filter).map(([field, value]) => `${field}=${value}`).join(' ')}` : ''}`,
	days,
	interval,
	rolled: (db, site, range) => reports.visitorAnalytics(db, site, range, filter),
	plain: (db, site, range) => naive.visitorAnalytics(db, site, range, filter),
});
const REQUESTS: Request[] = [
	{ report: 'siteStats', label: 'all time', days: 1, interval: 'hour', rolled: (db, site, range) => reports.siteStats(db, site, range.from), plain: (db, site, range) => naive.siteStats(db, site, range.from) },
	visitors('24 h', 1, 'hour'),
	visitors('7 d', 7, 'hour'),
	visitors('7 d', 7, 'day'),
	visitors('30 d', 30, 'hour'),
	visitors('30 d', 30, 'day'),
	visitors('30 d', 30, 'week'),
	visitors('90 d', 90, 'day'),
	visitors('90 d', 90, 'week'),
	visitors('24 h', 1, 'hour', { channel: 'Organic Search' }),
	visitors('30 d', 30, 'day', { channel: 'Organic Search' }),
	visitors('30 d', 30, 'day', { campaign: 'brand' }),
	// Page filters are read from the raw sessions (no rollup segment per page): a head page and a tail page.
	visitors('24 h', 1, 'hour', { page: '/pricing' }),
	visitors('30 d', 30, 'day', { page: '/pricing' }),
	visitors('30 d', 30, 'day', { page: '/docs/page-99' }),
	{ report: 'leadAnalytics', label: '30 d day', days: 30, interval: 'day', rolled: (db, site, range) => leadAnalytics(db, site, range, STAGES), plain: (db, site, range) => naive.leadAnalytics(db, site, range, STAGES) },
	{ report: 'campaignAnalytics', label: '30 d day', days: 30, interval: 'day', rolled: (db, site, range) => campaignAnalytics(db, site, range), plain: (db, site, range) => naive.campaignAnalytics(db, site, range) },
	{ report: 'conversionAnalytics', label: '30 d day', days: 30, interval: 'day', rolled: (db, site, range) => conversionAnalytics(db, site, range, STAGES), plain: (db, site, range) => naive.conversionAnalytics(db, site, range, STAGES) },
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

/** A database that already holds a generated dataset (BENCH_DASHBOARD_DATABASE): measured as it is, folded first, kept. */
const EXISTING = process.env.BENCH_DASHBOARD_DATABASE;

async function benchSize(events: number): Promise<void> {
	const { name, url } = EXISTING ? { name: EXISTING, url: withDatabase(adminUrl(), EXISTING) } : await createTestDatabase('tcrm_bench_dash');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	const client = new Client({ connectionString: url });
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		await client.connect();
		console.log(`\n--- ${EXISTING ? `database ${EXISTING}` : `${events.toLocaleString('en')} events`} (load average ${load()}, ${os.cpus().length} cores)`);
		const site = EXISTING
			? (await prisma.site.findFirstOrThrow({ where: { key: 'bench' }, select: { id: true } }))
			: await prisma.site.create({ data: { key: 'bench', name: 'Bench', domain: 'site.example' }, select: { id: true } });
		let started = performance.now();
		if (!EXISTING) {
			const counts = await generateDataset((sql) => client.query(sql).then((result) => result.rows), { siteId: site.id, events });
			const { seconds, ...rows } = counts;
			console.log(`generated in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(rows)}`);
			console.log(`  slowest steps: ${Object.entries(seconds).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([step, s]) => `${step} ${s.toFixed(1)} s`).join(', ')}`);
		}
		started = performance.now();
		const { hours } = await foldAllRollups(prisma);
		await client.query('VACUUM ANALYZE analytics_session_facts, analytics_visitor_pairs, analytics_event_counts');
		console.log(`rollups folded${EXISTING ? '' : ' from nothing'} in ${((performance.now() - started) / 1000).toFixed(1)} s (${hours} hours)`);

		const now = new Date();
		console.log(`\n${'report'.padEnd(20)} ${'request'.padEnd(34)} ${'p50'.padStart(9)} ${'p95'.padStart(9)}   plain SQL p50 (p95)   load average`);
		for (const request of REQUESTS) {
			const range: reports.TimeRange = { from: new Date(now.getTime() - request.days * 86_400_000), to: now, interval: request.interval };
			const fast = await time(RUNS, () => request.rolled(prisma, site.id, range));
			const slow = await time(NAIVE_RUNS, () => request.plain(prisma, site.id, range));
			console.log(`${request.report.padEnd(20)} ${request.label.padEnd(34)} ${ms(fast.p50)} ${ms(fast.p95)}   ${ms(slow.p50)} (${ms(slow.p95).trim()})   ${load()}`);
		}
	} finally {
		await client.end();
		await prisma.$disconnect();
		if (!EXISTING) await dropTestDatabase(name);
	}
}

async function main(): Promise<void> {
	const data = EXISTING ? `the dataset in database ${EXISTING} (BENCH_DASHBOARD_DATABASE)` : `sizes ${SIZES.map((size) => size.toLocaleString('en')).join(', ')} events (BENCH_DASHBOARD_EVENTS)`;
	console.log(`dashboards: ${data}, ${RUNS} runs per report (BENCH_RUNS), ${NAIVE_RUNS} of the plain SQL (BENCH_NAIVE_RUNS)`);
	for (const events of EXISTING ? [0] : SIZES) await benchSize(events);
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
