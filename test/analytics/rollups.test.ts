import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { generateDataset } from '../../bench/dataset/generate';
import * as naive from '../../bench/dataset/naive';
import { openDatabase, type Database } from '../../lib/db';
import type { PrismaClient } from '../../lib/db/generated/client';
import { campaignAnalytics, conversionAnalytics } from '../../server/analytics/campaigns';
import { leadAnalytics } from '../../server/analytics/leads';
import * as reports from '../../server/analytics/queries';
import type { ReportFilter } from '../../server/analytics/filters';
import { foldAllRollups, netPieces, rangePieces } from '../../server/analytics/rollup';
import { createTestSite, testPrisma } from '../helpers/db';

const STAGES = ['subscriber', 'lead', 'mql', 'sql', 'customer'];
/** The generated data ends here: not on an hour, so "the last 24 hours" has partial hours at both ends. */
const END = new Date('2026-03-10T13:37:11.123Z');
const hoursBefore = (hours: number, at = END) => new Date(at.getTime() - hours * 3_600_000);

/** Ranges over whole days and hours, partial hours, within one hour, across midnight and outside the data. */
const RANGES: Array<[string, reports.TimeRange]> = [
	['the last 24 hours by hour', { from: hoursBefore(24), to: END, interval: 'hour' }],
	['the last 7 days by day', { from: hoursBefore(7 * 24), to: END, interval: 'day' }],
	['whole UTC days', { from: new Date('2026-03-07T00:00:00Z'), to: new Date('2026-03-10T00:00:00Z'), interval: 'day' }],
	['whole hours across midnight', { from: new Date('2026-03-08T21:00:00Z'), to: new Date('2026-03-09T03:00:00Z'), interval: 'hour' }],
	['inside one hour', { from: new Date('2026-03-09T10:05:00Z'), to: new Date('2026-03-09T10:55:00Z'), interval: 'hour' }],
	['across one hour boundary', { from: new Date('2026-03-09T10:59:59.999Z'), to: new Date('2026-03-09T11:00:00.001Z'), interval: 'hour' }],
	['a day and a few ms', { from: new Date('2026-03-08T23:59:59.999Z'), to: new Date('2026-03-10T00:00:00.001Z'), interval: 'day' }],
	['all of it', { from: new Date('2026-02-01T00:00:00Z'), to: new Date('2026-04-01T00:00:00Z'), interval: 'day' }],
	['before the data', { from: new Date('2025-01-01T00:00:00Z'), to: new Date('2025-01-02T00:00:00Z'), interval: 'day' }],
	['the last 7 days by ISO week', { from: hoursBefore(7 * 24), to: END, interval: 'week' }],
	['whole ISO weeks by week', { from: new Date('2026-02-23T00:00:00Z'), to: new Date('2026-03-09T00:00:00Z'), interval: 'week' }],
	['the last 30 days by hour', { from: hoursBefore(30 * 24), to: END, interval: 'hour' }],
];

/** Filters a Visitor Analytics report takes: two read from rollup segments, two from the raw sessions. */
const FILTERS: ReportFilter[] = [{ channel: 'Organic Search' }, { campaign: 'brand' }, { page: '/pricing' }, { channel: 'Paid Search', campaign: 'brand' }];

type Reader = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe' | '$transaction'>;

/** Every report of the rollup-backed read layer, for one range. */
async function rollupReports(prisma: Reader, siteId: string, range: reports.TimeRange) {
	return {
		visitors: await reports.visitorAnalytics(prisma, siteId, range),
		leads: await leadAnalytics(prisma, siteId, range, STAGES),
		campaigns: await campaignAnalytics(prisma, siteId, range),
		conversion: await conversionAnalytics(prisma, siteId, range, STAGES),
		stats: await reports.siteStats(prisma, siteId, range.from),
	};
}

/** The same reports computed with plain GROUP BYs over the raw tables. */
async function naiveReports(prisma: Reader, siteId: string, range: reports.TimeRange) {
	return {
		visitors: await naive.visitorAnalytics(prisma, siteId, range),
		leads: await naive.leadAnalytics(prisma, siteId, range, STAGES),
		campaigns: await naive.campaignAnalytics(prisma, siteId, range),
		conversion: await naive.conversionAnalytics(prisma, siteId, range, STAGES),
		stats: await naive.siteStats(prisma, siteId, range.from),
	};
}

async function expectSameNumbers(prisma: Reader, siteId: string): Promise<void> {
	for (const [name, range] of RANGES) {
		const [rolled, plain] = [await rollupReports(prisma, siteId, range), await naiveReports(prisma, siteId, range)];
		expect({ name, ...rolled }).toEqual({ name, ...plain });
		for (const filter of FILTERS) {
			const [filtered, plainFiltered] = [await reports.visitorAnalytics(prisma, siteId, range, filter), await naive.visitorAnalytics(prisma, siteId, range, filter)];
			expect({ name, filter, ...filtered }).toEqual({ name, filter, ...plainFiltered });
		}
	}
}

const run = (prisma: Reader) => (sql: string) => prisma.$queryRawUnsafe<unknown[]>(sql);

describe('dashboard rollups on Postgres', () => {
	const prisma = testPrisma();
	let siteId: string;
	let other: string;

	beforeAll(async () => {
		siteId = (await createTestSite(prisma, 'rollups')).id;
		other = (await createTestSite(prisma, 'rollups-other')).id;
		await generateDataset(run(prisma), { siteId, events: 30_000, days: 4, end: END, seed: 1 });
		// Another site's rows in the same hours must change none of the figures.
		await generateDataset(run(prisma), { siteId: other, events: 5_000, days: 4, end: END, seed: 1 });
	});
	afterAll(() => prisma.$disconnect());

	it('splits a range into raw partial hours, whole hours and whole UTC days', () => {
		expect(rangePieces(new Date('2026-03-08T22:30:00Z'), new Date('2026-03-10T01:15:00Z'))).toEqual({
			edges: [
				[Date.parse('2026-03-08T22:30:00Z'), Date.parse('2026-03-08T23:00:00Z')],
				[Date.parse('2026-03-10T01:00:00Z'), Date.parse('2026-03-10T01:15:00Z')],
			],
			hours: [
				[Date.parse('2026-03-08T23:00:00Z'), Date.parse('2026-03-09T00:00:00Z')],
				[Date.parse('2026-03-10T00:00:00Z'), Date.parse('2026-03-10T01:00:00Z')],
			],
			days: [[Date.parse('2026-03-09T00:00:00Z'), Date.parse('2026-03-10T00:00:00Z')]],
			weeks: null,
			inner: [Date.parse('2026-03-08T23:00:00Z'), Date.parse('2026-03-10T01:00:00Z')],
		});
		// ISO weeks start on Monday (2026-03-02 and 2026-03-09 are Mondays).
		expect(rangePieces(new Date('2026-02-26T00:00:00Z'), new Date('2026-03-11T00:00:00Z'))).toMatchObject({
			days: [
				[Date.parse('2026-02-26T00:00:00Z'), Date.parse('2026-03-02T00:00:00Z')],
				[Date.parse('2026-03-09T00:00:00Z'), Date.parse('2026-03-11T00:00:00Z')],
			],
			weeks: [Date.parse('2026-03-02T00:00:00Z'), Date.parse('2026-03-09T00:00:00Z')],
		});
		expect(rangePieces(new Date('2026-03-09T10:05:00Z'), new Date('2026-03-09T10:55:00Z')).edges).toEqual([[Date.parse('2026-03-09T10:05:00Z'), Date.parse('2026-03-09T10:55:00Z')]]);
	});

	it('reads a range ending now as the current week less what is still to come, and a late start as a bucket less its beginning', () => {
		const now = Date.parse('2026-03-11T10:20:00Z');
		const piece = (sign: number, grain: string, from: string, to: string) => ({ sign, grain, span: [Date.parse(from), Date.parse(to)] });
		expect(netPieces(new Date('2026-03-02T00:00:00Z'), new Date(now), 'week', now)).toEqual([
			piece(1, 'week', '2026-03-02T00:00:00Z', '2026-03-09T00:00:00Z'),
			piece(1, 'week', '2026-03-09T00:00:00Z', '2026-03-16T00:00:00Z'),
			piece(-1, 'day', '2026-03-12T00:00:00Z', '2026-03-16T00:00:00Z'),
			piece(-1, 'hour', '2026-03-11T11:00:00Z', '2026-03-12T00:00:00Z'),
			piece(-1, 'raw', '2026-03-11T10:20:00Z', '2026-03-11T11:00:00Z'),
		]);
		// A range from 02:30 on a day: that day less its first hours, not its last twenty-one.
		expect(netPieces(new Date('2026-03-10T02:30:00Z'), new Date('2026-03-11T00:00:00Z'), 'day', now)).toEqual([
			piece(1, 'day', '2026-03-10T00:00:00Z', '2026-03-11T00:00:00Z'),
			piece(-1, 'hour', '2026-03-10T00:00:00Z', '2026-03-10T02:00:00Z'),
			piece(-1, 'raw', '2026-03-10T02:00:00Z', '2026-03-10T02:30:00Z'),
		]);
	});

	it('answers every report with the numbers of plain SQL over the raw tables, at every range', async () => {
		const { visitors } = await rollupReports(prisma, siteId, RANGES[1][1]);
		// The dataset really has what the comparison needs: returning visitors, a long tail of pages, engaged sessions.
		expect(visitors.summary.sessions).toBeGreaterThan(visitors.summary.visitors);
		expect(visitors.topPages).toHaveLength(10);
		expect(visitors.topPages.some((page) => page.visitors < page.pageviews)).toBe(true);
		expect(visitors.engagement.high).toBeGreaterThan(0);
		// … and figures in every breakdown and filter.
		expect(visitors.breakdowns.channels.length).toBeGreaterThan(5);
		expect(visitors.breakdowns.channels.some((row) => row.conversions > 0)).toBe(true);
		expect(visitors.breakdowns.scrollDepth.every((row) => row.sessions > 0)).toBe(true);
		expect(visitors.breakdowns.exitPages).toHaveLength(10);
		for (const filter of FILTERS) expect((await reports.visitorAnalytics(prisma, siteId, RANGES[1][1], filter)).summary.sessions).toBeGreaterThan(0);
		await expectSameNumbers(prisma, siteId);
	});

	it('stays exact as sessions arrive, change and go (the incremental path)', async () => {
		await foldAllRollups(prisma);
		// New sessions of known and new visitors, in hours already folded.
		await generateDataset(run(prisma), { siteId, events: 4_000, days: 2, end: END, seed: 2 });
		const [{ dirty }] = await prisma.$queryRawUnsafe<Array<{ dirty: number }>>('SELECT count(*)::int AS dirty FROM analytics_dirty_hours WHERE site_id = $1::uuid', siteId);
		expect(dirty).toBeGreaterThan(0);
		// A session moves to another hour and becomes engaged (a late event re-sessionized it), and
		// returning visitors' earlier sessions are merged away, as the Visitor Processor does.
		await prisma.$executeRawUnsafe(
			`UPDATE visitor_sessions SET started_at = started_at - interval '3 hours', engagement_level = 'high', channel = 'Referral'
			WHERE id IN (SELECT id FROM visitor_sessions WHERE site_id = $1::uuid AND engagement_level = 'low' ORDER BY id LIMIT 40)`,
			siteId,
		);
		await prisma.$executeRawUnsafe(
			`DELETE FROM visitor_sessions WHERE id IN (SELECT DISTINCT ON (visitor_id) id FROM visitor_sessions
				WHERE site_id = $1::uuid AND visitor_id IN (SELECT visitor_id FROM visitor_sessions WHERE site_id = $1::uuid GROUP BY visitor_id HAVING count(*) > 2)
				ORDER BY visitor_id, started_at LIMIT 30)`,
			siteId,
		);
		// An erasure: one visitor's events, sessions and the visitor.
		const [{ erased }] = await prisma.$queryRawUnsafe<Array<{ erased: string }>>('SELECT visitor_id::text AS erased FROM visitor_sessions WHERE site_id = $1::uuid ORDER BY id LIMIT 1', siteId);
		await prisma.$executeRawUnsafe('DELETE FROM visitor_events WHERE visitor_id = $1::uuid', erased);
		await prisma.$executeRawUnsafe('DELETE FROM visitor_sessions WHERE visitor_id = $1::uuid', erased);
		await prisma.$executeRawUnsafe('DELETE FROM visitors WHERE id = $1::uuid', erased);
		await expectSameNumbers(prisma, siteId);
	});

	it('moves the days and weeks by a few changed hours as exactly as it rebuilds them', async () => {
		await foldAllRollups(prisma);
		// A handful of sessions in two hours change channel, campaign, engagement and scroll depth, and one gets a conversion.
		await prisma.$executeRawUnsafe(
			`UPDATE visitor_sessions SET channel = 'Paid Search', campaign = 'brand', engagement_level = 'medium', max_scroll_depth = 90
			WHERE id IN (SELECT id FROM visitor_sessions WHERE site_id = $1::uuid AND started_at >= $2::timestamptz AND started_at < $2::timestamptz + interval '2 hours' ORDER BY id LIMIT 6)`,
			siteId,
			hoursBefore(30).toISOString(),
		);
		await prisma.$executeRawUnsafe(
			`INSERT INTO conversions (id, site_id, visitor_id, session_id, goal, event_id, occurred_at)
			SELECT gen_random_uuid(), site_id, visitor_id, id, 'signup', 'moved-' || id, started_at FROM visitor_sessions
			WHERE site_id = $1::uuid AND started_at >= $2::timestamptz ORDER BY started_at LIMIT 1`,
			siteId,
			hoursBefore(29).toISOString(),
		);
		const { hours } = await foldAllRollups(prisma);
		expect(hours).toBeGreaterThan(0);
		expect(hours).toBeLessThanOrEqual(24);
		await expectSameNumbers(prisma, siteId);
	});

	it('folds nothing twice: a second fold finds no dirty hours and changes no figure', async () => {
		const range = RANGES[1][1];
		const before = await rollupReports(prisma, siteId, range);
		expect(await foldAllRollups(prisma)).toEqual({ hours: 0 });
		expect(await rollupReports(prisma, siteId, range)).toEqual(before);
	});

	it('counts the raw events of the site by hour, merged or not', async () => {
		const [{ events }] = await prisma.$queryRawUnsafe<Array<{ events: number }>>('SELECT count(*)::float8 AS events FROM visitor_events WHERE site_id = $1::uuid', siteId);
		expect((await reports.siteStats(prisma, siteId, hoursBefore(5))).eventsTotal).toBe(events);
		await foldAllRollups(prisma);
		const [{ rows }] = await prisma.$queryRawUnsafe<Array<{ rows: number }>>(
			'SELECT count(*)::int AS rows FROM (SELECT hour FROM analytics_event_counts WHERE site_id = $1::uuid GROUP BY hour HAVING count(*) > 1) merged',
			siteId,
		);
		expect(rows).toBe(0);
		expect(await reports.siteStats(prisma, siteId, hoursBefore(5))).toEqual(await naive.siteStats(prisma, siteId, hoursBefore(5)));
	});
});

describe('dashboard rollups on the embedded PGlite', () => {
	let db: Database;
	let dataDir: string;

	beforeAll(async () => {
		dataDir = mkdtempSync(path.join(os.tmpdir(), 'tcrm-rollups-'));
		db = await openDatabase({ url: null, dataDir });
	});
	afterAll(async () => {
		await db.close();
		rmSync(dataDir, { recursive: true, force: true });
	});

	it('runs the migration\'s triggers and folds to the numbers of plain SQL', async () => {
		const siteId = (await createTestSite(db.prisma, 'embedded')).id;
		await generateDataset(run(db.prisma), { siteId, events: 3_000, days: 2, end: END, seed: 3 });
		await expectSameNumbers(db.prisma, siteId);
		await generateDataset(run(db.prisma), { siteId, events: 1_000, days: 1, end: END, seed: 4 });
		await expectSameNumbers(db.prisma, siteId);
	});
});
