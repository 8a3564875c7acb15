/**
 * The dashboards' reports at scale: a realistic dataset (bench/dataset/generate.ts) of 1,000,000
 * events over 30 days, and more where BENCH_DASHBOARD_EVENTS asks (a comma-separated list, e.g.
 * "1000000,10000000": ten million take long to build and fold on this machine, see the figures the
 * bench prints, so they are not built by default). For each size: the time to build the data and to
 * fold the rollups from nothing, their rows and size on disk, three folds of a live hour, then each
 * request of REQUESTS (every Visitor Analytics range, interval and filter a dashboard sends, siteStats,
 * and the other reports over 30 days), p50 / p95 over BENCH_RUNS runs, beside the simplest SQL that
 * gives the same numbers (bench/dataset/naive.ts: GROUP BYs over the raw tables), with the load
 * average and the figures a report gives as estimates; then the dashboard's main requests again while
 * visits arrive and the receiver's rollup job folds them (whileVisitsArrive). BENCH_DASHBOARD_DATABASE keeps the dataset
 * in a named database between runs (BENCH_DASHBOARD_REFOLD=1 rebuilds its rollups),
 * BENCH_DASHBOARD_REQUESTS runs only the requests whose name holds the text.
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
import { foldAllRollups, startRollupJob } from '../server/analytics/rollup';
import { createLogger } from '../server/logger';
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
	/** The figures of the report that are estimates rather than counts. */
	estimates?: (db: Db, siteId: string, range: reports.TimeRange) => Promise<string[]>;
}

/** Every Visitor Analytics request a dashboard makes (ranges, intervals, filters), siteStats, and the other reports over 30 days. */
const visitors = (label: string, days: number, interval: reports.Interval, filter?: ReportFilter): Request => ({
	report: 'visitorAnalytics',
	label: `${label} ${interval}${filter ? ` ${Object.entries(filter).map(([field, value]) => `${field}=${value}`).join(' ')}` : ''}`,
	days,
	interval,
	rolled: (db, site, range) => reports.visitorAnalytics(db, site, range, filter),
	plain: (db, site, range) => naive.visitorAnalytics(db, site, range, filter),
	estimates: (db, site, range) => reports.estimatedFigures(db, site, range, filter),
});
const ALL_REQUESTS: Request[] = [
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
	visitors('24 h', 1, 'hour', { channel: 'Paid Search', campaign: 'brand' }),
	visitors('30 d', 30, 'day', { channel: 'Paid Search', campaign: 'brand' }),
	// Page filters: a head page (its busy days and weeks kept) and a tail page (read from its sessions), alone and with the other filters.
	visitors('24 h', 1, 'hour', { page: '/pricing' }),
	visitors('7 d', 7, 'day', { page: '/pricing' }),
	visitors('30 d', 30, 'day', { page: '/pricing' }),
	visitors('30 d', 30, 'hour', { page: '/pricing' }),
	visitors('90 d', 90, 'week', { page: '/pricing' }),
	visitors('24 h', 1, 'hour', { page: '/docs/page-99' }),
	visitors('30 d', 30, 'day', { page: '/docs/page-99' }),
	visitors('24 h', 1, 'hour', { page: '/pricing', channel: 'Organic Search' }),
	visitors('30 d', 30, 'day', { page: '/pricing', channel: 'Organic Search' }),
	visitors('30 d', 30, 'day', { page: '/', channel: 'Paid Social' }),
	visitors('30 d', 30, 'day', { page: '/pricing', campaign: 'brand' }),
	visitors('30 d', 30, 'day', { page: '/', channel: 'Paid Search', campaign: 'brand' }),
	visitors('30 d', 30, 'day', { page: '/docs/page-99', channel: 'Organic Search' }),
	{ report: 'leadAnalytics', label: '30 d day', days: 30, interval: 'day', rolled: (db, site, range) => leadAnalytics(db, site, range, STAGES), plain: (db, site, range) => naive.leadAnalytics(db, site, range, STAGES) },
	{ report: 'campaignAnalytics', label: '30 d day', days: 30, interval: 'day', rolled: (db, site, range) => campaignAnalytics(db, site, range), plain: (db, site, range) => naive.campaignAnalytics(db, site, range) },
	{ report: 'conversionAnalytics', label: '30 d day', days: 30, interval: 'day', rolled: (db, site, range) => conversionAnalytics(db, site, range, STAGES), plain: (db, site, range) => naive.conversionAnalytics(db, site, range, STAGES) },
];

/** Only the requests whose report or label holds this text (BENCH_DASHBOARD_REQUESTS), e.g. "page=". */
const ONLY = process.env.BENCH_DASHBOARD_REQUESTS;
const REQUESTS = ONLY ? ALL_REQUESTS.filter((request) => `${request.report} ${request.label}`.includes(ONLY)) : ALL_REQUESTS;

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

/**
 * A database kept between runs (BENCH_DASHBOARD_DATABASE): built with the first size on the run that
 * creates it, then measured as it is (migrations deployed and dirty hours folded first), so a change
 * to the rollups is measured at ten million events without building them again.
 */
const KEPT = process.env.BENCH_DASHBOARD_DATABASE;
/** With BENCH_DASHBOARD_REFOLD=1, every hour of a kept database is noted as changed first: its fold is then a full rebuild. */
const REFOLD = process.env.BENCH_DASHBOARD_REFOLD === '1';

async function keptDatabase(name: string): Promise<{ url: string; created: boolean }> {
	const admin = new Client({ connectionString: adminUrl() });
	await admin.connect();
	try {
		const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
		if (rowCount === 0) await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
		return { url: withDatabase(adminUrl(), name), created: rowCount === 0 };
	} finally {
		await admin.end();
	}
}

/** Rows and disk size (with indexes) of each rollup table, and their rows by kind of segment and grain. */
async function rollupSizes(client: Client): Promise<string> {
	const { rows } = await client.query<{ table: string; kind: string; grain: string; rows: number; size: string }>(
		`SELECT t.table, CASE WHEN t.segment = '' THEN 'site' WHEN t.segment LIKE 'channel:%|campaign:%' THEN 'channel+campaign' ELSE split_part(t.segment, ':', 1) END AS kind,
			t.grain, count(*)::int AS rows, pg_size_pretty(pg_total_relation_size(t.table)) AS size
		FROM (SELECT 'analytics_session_facts' AS table, segment, grain FROM analytics_session_facts
			UNION ALL SELECT 'analytics_visitor_pairs', segment, grain FROM analytics_visitor_pairs
			UNION ALL SELECT 'analytics_page_facts', segment, grain FROM analytics_page_facts
			UNION ALL SELECT 'analytics_page_sessions', '', 'session' FROM analytics_page_sessions) t
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
	);
	const tables = [...new Set(rows.map((row) => row.table))];
	return tables
		.map((table) => {
			const own = rows.filter((row) => row.table === table);
			const total = own.reduce((sum, row) => sum + row.rows, 0);
			return `  ${table}: ${total.toLocaleString('en')} rows, ${own[0].size} (${own.map((row) => `${row.kind} ${row.grain} ${row.rows.toLocaleString('en')}`).join(', ')})`;
		})
		.join('\n');
}

/**
 * A fold as the receiver's job meets one while visitors browse: a page view more for each of 20
 * sessions of the last hour (an event attached, its session updated, as the Visitor Processor does).
 */
async function liveFold(client: Client, prisma: PrismaClient, siteId: string): Promise<string> {
	await client.query(
		`WITH live AS MATERIALIZED (SELECT id, site_id, session_key, visitor_id, started_at, gen_random_uuid() AS event_id FROM visitor_sessions WHERE site_id = $1::uuid ORDER BY started_at DESC LIMIT 20),
			viewed AS (INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, path, occurred_at)
				SELECT gen_random_uuid(), site_id, event_id, 'bench-live', session_key, 'pageview', '/pricing', started_at FROM live),
			linked AS (INSERT INTO visitor_event_links (site_id, event_id, visitor_id, session_id) SELECT site_id, event_id, visitor_id, id FROM live)
		UPDATE visitor_sessions s SET pageviews = s.pageviews + 1, is_bounce = false FROM live WHERE s.id = live.id`,
		[siteId],
	);
	const started = performance.now();
	const { hours } = await foldAllRollups(prisma);
	return `a live fold (20 sessions of the last hour gained a page view): ${(performance.now() - started).toFixed(0)} ms (${hours} hours)`;
}

/** The dashboard's own requests, measured again while visits arrive. */
const LIVE_REQUESTS = ['siteStats all time', 'visitorAnalytics 24 h hour', 'visitorAnalytics 30 d day', 'visitorAnalytics 30 d hour page=/pricing', 'leadAnalytics 30 d day', 'campaignAnalytics 30 d day'];
/** A change to a session of the last hour this often: four a second, the pace of ten million events a month. */
const LIVE_CHANGE_EVERY_MS = 250;

/**
 * Requests as on a live site: a session of the last hour gains a page view every LIVE_CHANGE_EVERY_MS
 * (as the Visitor Processor writes them) while the receiver's rollup job folds every few seconds, so
 * the site has changes not folded yet at almost every read. Each read answers from the rollups as
 * they are; how far behind they were is printed beside.
 */
async function whileVisitsArrive(client: Client, prisma: PrismaClient, siteId: string, now: Date): Promise<void> {
	let changing = true;
	const changes = (async () => {
		while (changing) {
			await client.query(
				`WITH live AS MATERIALIZED (SELECT id, site_id, session_key, visitor_id, started_at, gen_random_uuid() AS event_id FROM visitor_sessions
						WHERE site_id = $1::uuid AND started_at >= now() - interval '1 hour' ORDER BY random() LIMIT 1),
					viewed AS (INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, path, occurred_at)
						SELECT gen_random_uuid(), site_id, event_id, 'bench-live', session_key, 'pageview', '/pricing', now() FROM live),
					linked AS (INSERT INTO visitor_event_links (site_id, event_id, visitor_id, session_id) SELECT site_id, event_id, visitor_id, id FROM live)
				UPDATE visitor_sessions s SET pageviews = s.pageviews + 1, is_bounce = false FROM live WHERE s.id = live.id`,
				[siteId],
			);
			await new Promise((resolve) => setTimeout(resolve, LIVE_CHANGE_EVERY_MS));
		}
	})();
	const job = startRollupJob({ prisma, logger: createLogger({ level: 'warn' }) });
	try {
		// The first changes and a tick of the job before measuring.
		await new Promise((resolve) => setTimeout(resolve, 6000));
		console.log(`\nwhile visits arrive (a session of the last hour changes every ${LIVE_CHANGE_EVERY_MS} ms, the rollup job folds every 5 s):`);
		for (const request of ALL_REQUESTS.filter((candidate) => LIVE_REQUESTS.includes(`${candidate.report} ${candidate.label}`))) {
			const range: reports.TimeRange = { from: new Date(now.getTime() - request.days * 86_400_000), to: new Date(), interval: request.interval };
			const behind: number[] = [];
			const timing = await time(RUNS * 3, async () => {
				const answer = (await request.rolled(prisma, siteId, range)) as { asOf: Date };
				behind.push(Date.now() - answer.asOf.getTime());
			});
			behind.sort((a, b) => a - b);
			console.log(
				`${request.report.padEnd(20)} ${request.label.padEnd(34)} ${ms(timing.p50)} ${ms(timing.p95)}   figures behind by p50 ${(percentile(behind, 50) / 1000).toFixed(1)} s, at most ${(behind[behind.length - 1] / 1000).toFixed(1)} s   ${load()}`,
			);
		}
	} finally {
		changing = false;
		await changes;
		await job.stop();
	}
}

async function benchSize(events: number): Promise<void> {
	const { name, url, created } = KEPT ? { name: KEPT, ...(await keptDatabase(KEPT)) } : { ...(await createTestDatabase('tcrm_bench_dash')), created: true };
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	const client = new Client({ connectionString: url });
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		await client.connect();
		console.log(`\n--- ${created ? `${events.toLocaleString('en')} events` : `database ${name}`} (load average ${load()}, ${os.cpus().length} cores)`);
		const site = created
			? await prisma.site.create({ data: { key: 'bench', name: 'Bench', domain: 'site.example' }, select: { id: true } })
			: await prisma.site.findFirstOrThrow({ where: { key: 'bench' }, select: { id: true } });
		let started = performance.now();
		if (created) {
			const counts = await generateDataset((sql) => client.query(sql).then((result) => result.rows), { siteId: site.id, events });
			const { seconds, ...rows } = counts;
			console.log(`generated in ${((performance.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(rows)}`);
			console.log(`  slowest steps: ${Object.entries(seconds).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([step, s]) => `${step} ${s.toFixed(1)} s`).join(', ')}`);
		}
		if (REFOLD) await client.query(`INSERT INTO analytics_dirty_hours (site_id, hour) SELECT DISTINCT site_id, date_trunc('hour', started_at, 'UTC') FROM visitor_sessions`);
		started = performance.now();
		const { hours } = await foldAllRollups(prisma);
		await client.query('VACUUM ANALYZE analytics_session_facts, analytics_visitor_pairs, analytics_page_facts, analytics_page_sessions, analytics_event_counts');
		console.log(`rollups folded${created || REFOLD ? ' from nothing' : ''} in ${((performance.now() - started) / 1000).toFixed(1)} s (${hours} hours)`);
		console.log(await rollupSizes(client));
		for (let run = 0; run < 3; run++) console.log(await liveFold(client, prisma, site.id));

		const now = new Date();
		console.log(`\n${'report'.padEnd(20)} ${'request'.padEnd(34)} ${'p50'.padStart(9)} ${'p95'.padStart(9)}   plain SQL p50 (p95)   load average`);
		for (const request of REQUESTS) {
			const range: reports.TimeRange = { from: new Date(now.getTime() - request.days * 86_400_000), to: now, interval: request.interval };
			const fast = await time(RUNS, () => request.rolled(prisma, site.id, range));
			const slow = await time(NAIVE_RUNS, () => request.plain(prisma, site.id, range));
			const estimates = (await request.estimates?.(prisma, site.id, range)) ?? [];
			console.log(`${request.report.padEnd(20)} ${request.label.padEnd(34)} ${ms(fast.p50)} ${ms(fast.p95)}   ${ms(slow.p50)} (${ms(slow.p95).trim()})   ${load()}${estimates.length ? `   estimated: ${estimates.join(', ')}` : ''}`);
		}
		await whileVisitsArrive(client, prisma, site.id, now);
	} finally {
		await client.end();
		await prisma.$disconnect();
		if (!KEPT) await dropTestDatabase(name);
	}
}

async function main(): Promise<void> {
	const sizes = `${SIZES.map((size) => size.toLocaleString('en')).join(', ')} events (BENCH_DASHBOARD_EVENTS)`;
	const data = KEPT ? `the database ${KEPT} (BENCH_DASHBOARD_DATABASE), built with ${SIZES[0].toLocaleString('en')} events if new` : `sizes ${sizes}`;
	console.log(`dashboards: ${data}, ${RUNS} runs per report (BENCH_RUNS), ${NAIVE_RUNS} of the plain SQL (BENCH_NAIVE_RUNS)`);
	for (const events of KEPT ? SIZES.slice(0, 1) : SIZES) await benchSize(events);
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
