import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';

import { generateDataset } from '../../bench/dataset/generate';
import * as naive from '../../bench/dataset/naive';
import { openDatabase, type Database } from '../../lib/db';
import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { campaignAnalytics, conversionAnalytics } from '../../server/analytics/campaigns';
import { leadAnalytics } from '../../server/analytics/leads';
import * as reports from '../../server/analytics/queries';
import type { ReportFilter } from '../../server/analytics/filters';
import { foldAllRollups, foldRollups, forgetVisitors, lockSiteRollups, netPieces, rangePieces } from '../../server/analytics/rollup';
import { runRetention, sitesInDatabase } from '../../server/retention/retention';
import { createTestSite } from '../helpers/db';
import { figuresOf } from '../helpers/reports';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

// Folds and reference reports over tens of thousands of rows: 15–80 s per test on a 2-core machine alone, two to three times that beside other suites in CI.
jest.setTimeout(240_000);

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

/**
 * Filters a Visitor Analytics report takes: a channel, a campaign and both (rollup segments), a head
 * and a tail page, and a page with a channel, a campaign and both (a segment's page rows, the page
 * rows kept for busy days and weeks, and the sessions of each page for the rest).
 */
const FILTERS: ReportFilter[] = [
	{ channel: 'Organic Search' },
	{ campaign: 'brand' },
	{ channel: 'Paid Search', campaign: 'brand' },
	{ page: '/pricing' },
	{ page: '/docs/page-99' },
	{ page: '/pricing', channel: 'Organic Search' },
	{ page: '/', campaign: 'brand' },
	{ page: '/', channel: 'Paid Search', campaign: 'brand' },
];

/**
 * Values that hold the bar and backslash of segment keys: a channel whose key would read as the
 * (Direct, y) pair's without escaping, and the pair itself (set on a few sessions by the incremental test).
 */
const ODD_FILTERS: ReportFilter[] = [{ channel: 'Direct', campaign: 'y' }, { channel: 'Direct|campaign:y' }, { campaign: 'sp\\ring|sale', page: '/' }];

type Reader = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe' | '$transaction'>;

/** Every report of the rollup-backed read layer, for one range. */
async function rollupReports(prisma: Reader, siteId: string, range: reports.TimeRange) {
	return {
		visitors: figuresOf(await reports.visitorAnalytics(prisma, siteId, range)),
		leads: figuresOf(await leadAnalytics(prisma, siteId, range, STAGES)),
		campaigns: figuresOf(await campaignAnalytics(prisma, siteId, range)),
		conversion: figuresOf(await conversionAnalytics(prisma, siteId, range, STAGES)),
		stats: figuresOf(await reports.siteStats(prisma, siteId, range.from)),
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

async function expectSameNumbers(prisma: Reader, siteId: string, filters = FILTERS): Promise<void> {
	for (const [name, range] of RANGES) {
		const [rolled, plain] = [await rollupReports(prisma, siteId, range), await naiveReports(prisma, siteId, range)];
		expect({ name, ...rolled }).toEqual({ name, ...plain });
		for (const filter of filters) {
			const [filtered, plainFiltered] = [figuresOf(await reports.visitorAnalytics(prisma, siteId, range, filter)), await naive.visitorAnalytics(prisma, siteId, range, filter)];
			expect({ name, filter, ...filtered }).toEqual({ name, filter, ...plainFiltered });
		}
	}
}

/**
 * As expectSameNumbers, where page rows may be kept: a page filter's top pages' visitors are then
 * estimates (see topPageVisitors), compared without them and each held near the count.
 */
async function expectSameNumbersKept(prisma: Reader, siteId: string): Promise<void> {
	let estimated = 0;
	for (const [name, range] of RANGES) {
		for (const filter of FILTERS.filter((candidate) => candidate.page)) {
			const [filtered, plain] = [figuresOf(await reports.visitorAnalytics(prisma, siteId, range, filter)), await naive.visitorAnalytics(prisma, siteId, range, filter)];
			const estimates = await reports.estimatedFigures(prisma, siteId, range, filter);
			const [{ kept }] = await prisma.$queryRawUnsafe<Array<{ kept: boolean }>>(
				`SELECT EXISTS (SELECT 1 FROM analytics_page_facts WHERE site_id = $1::uuid AND path = $2 AND grain = 'week' AND bucket < $3::timestamptz AND bucket + interval '7 days' > $4::timestamptz) AS kept`,
				siteId,
				filter.page,
				range.to.toISOString(),
				range.from.toISOString(),
			);
			// Estimated exactly when kept rows of the page (any segment of it, the filter's among them) are read.
			if (estimates.length === 0) {
				expect({ name, filter, ...filtered }).toEqual({ name, filter, ...plain });
				continue;
			}
			expect({ name, filter, estimates, kept }).toEqual({ name, filter, estimates: ['topPages.visitors'], kept: true });
			estimated += 1;
			const withoutVisitors = (report: typeof filtered) => ({ ...report, topPages: report.topPages.map(({ path, pageviews }) => ({ path, pageviews })) });
			expect({ name, filter, ...withoutVisitors(filtered) }).toEqual({ name, filter, ...withoutVisitors(plain) });
			for (const [index, page] of filtered.topPages.entries()) {
				expect({ name, filter, path: page.path, near: Math.abs(page.visitors - plain.topPages[index].visitors) <= Math.max(2, 0.15 * plain.topPages[index].visitors) }).toEqual({
					name,
					filter,
					path: page.path,
					near: true,
				});
			}
		}
	}
	expect(estimated).toBeGreaterThan(0);
	await expectSameNumbers(prisma, siteId, FILTERS.filter((filter) => !filter.page));
}

/** Every hour of the site noted as changed, and folded with page days and weeks kept from `keepPageBucketsAt` sessions. */
async function refoldKeepingPagesFrom(prisma: Reader, siteId: string, keepPageBucketsAt: number): Promise<void> {
	await prisma.$executeRawUnsafe(`INSERT INTO analytics_dirty_hours (site_id, hour) SELECT DISTINCT site_id, date_trunc('hour', started_at, 'UTC') FROM visitor_sessions WHERE site_id = $1::uuid`, siteId);
	await foldAllRollups(prisma, { keepPageBucketsAt });
}

const run = (prisma: Reader) => (sql: string) => prisma.$queryRawUnsafe<unknown[]>(sql);

describe('dashboard rollups on Postgres', () => {
	// A database of its own: the fold takes every site's dirty hours, and in a full run the shared
	// database holds every other suite's.
	let database: { name: string; url: string };
	let prisma: PrismaClient;
	let siteId: string;
	let other: string;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_rollups');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		siteId = (await createTestSite(prisma, 'rollups')).id;
		other = (await createTestSite(prisma, 'rollups-other')).id;
		await generateDataset(run(prisma), { siteId, events: 30_000, days: 4, end: END, seed: 1 });
		// Another site's rows in the same hours must change none of the figures.
		await generateDataset(run(prisma), { siteId: other, events: 5_000, days: 4, end: END, seed: 1 });
		// As the receiver's job does: a read of a site this busy does not fold it (see rollupsForRead).
		await foldAllRollups(prisma);
	});
	afterAll(async () => {
		await prisma?.$disconnect();
		if (database?.name) await dropTestDatabase(database.name);
	});

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
		await prisma.$executeRawUnsafe('DELETE FROM visitor_event_links WHERE visitor_id = $1::uuid', erased);
		await prisma.$executeRawUnsafe('DELETE FROM visitor_events e USING visitors v WHERE v.id = $1::uuid AND e.site_id = v.site_id AND e.anonymous_id = v.anonymous_id', erased);
		await prisma.$executeRawUnsafe('DELETE FROM visitor_sessions WHERE visitor_id = $1::uuid', erased);
		await prisma.$executeRawUnsafe('DELETE FROM visitors WHERE id = $1::uuid', erased);
		// Channels and campaigns with the characters of segment keys.
		await prisma.$executeRawUnsafe(
			`UPDATE visitor_sessions SET channel = (ARRAY['Direct|campaign:y', 'Direct', 'Email'])[n % 3 + 1], campaign = (ARRAY[NULL, 'y', 'sp\\ring|sale'])[n % 3 + 1]
			FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM visitor_sessions WHERE site_id = $1::uuid AND started_at >= $2::timestamptz ORDER BY id LIMIT 60) odd
			WHERE visitor_sessions.id = odd.id`,
			siteId,
			hoursBefore(30).toISOString(),
		);
		// The receiver's job folds a site this busy (a read answers from the rollups as they are; see the test below).
		await foldAllRollups(prisma);
		await expectSameNumbers(prisma, siteId, [...FILTERS, ...ODD_FILTERS]);
	});

	it('folds before a read of a quiet site; a busy site’s read answers at once from the rollups as they are, and says as of when', async () => {
		const busy = (await createTestSite(prisma, 'rollups-busy')).id;
		await generateDataset(run(prisma), { siteId: busy, events: 20_000, days: 1, end: END, seed: 7 });
		await foldAllRollups(prisma);
		// Whole hours only: a range's partial hours are read from the raw sessions, which are always current.
		const range: reports.TimeRange = { from: new Date('2026-03-09T14:00:00Z'), to: new Date('2026-03-10T14:00:00Z'), interval: 'hour' };
		const takeLatestSession = async (site: string) => {
			const before = await naive.visitorAnalytics(prisma, site, range);
			await prisma.$executeRawUnsafe(
				'DELETE FROM visitor_sessions WHERE id = (SELECT id FROM visitor_sessions WHERE site_id = $1::uuid AND started_at < $2::timestamptz ORDER BY started_at DESC LIMIT 1)',
				site,
				END.toISOString(),
			);
			const after = await naive.visitorAnalytics(prisma, site, range);
			expect(after.summary.sessions).toBe(before.summary.sessions - 1);
			return { before, after };
		};

		const quiet = await takeLatestSession(other);
		const quietReadAt = Date.now();
		const quietRead = await reports.visitorAnalytics(prisma, other, range);
		expect(figuresOf(quietRead)).toEqual(quiet.after);
		expect(quietRead.asOf.getTime()).toBeGreaterThanOrEqual(quietReadAt);

		const busyChange = await takeLatestSession(busy);
		// Holding the site's fold lock keeps any receiver's job from folding it meanwhile, and a read that tried to fold would wait here.
		await prisma.$transaction(async (tx) => {
			await lockSiteRollups(tx, busy);
			const read = await reports.visitorAnalytics(prisma, busy, range);
			const [{ noted }] = await prisma.$queryRawUnsafe<Array<{ noted: Date }>>('SELECT min(noted_at) AS noted FROM analytics_dirty_hours WHERE site_id = $1::uuid', busy);
			expect(figuresOf(read)).toEqual(busyChange.before);
			expect(read.asOf).toEqual(noted);
		});
		await foldRollups(prisma, busy);
		const foldedReadAt = Date.now();
		const folded = await reports.visitorAnalytics(prisma, busy, range);
		expect(figuresOf(folded)).toEqual(busyChange.after);
		expect(folded.asOf.getTime()).toBeGreaterThanOrEqual(foldedReadAt);
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

	it('keeps the busy days and weeks of a page, reads the others from its sessions, and moves both as late page views arrive and a person is erased', async () => {
		await refoldKeepingPagesFrom(prisma, siteId, 40);
		const kept = await prisma.$queryRawUnsafe<Array<{ path: string; segment: string; grain: string }>>(
			`SELECT DISTINCT path, segment, grain FROM analytics_page_facts WHERE site_id = $1::uuid AND dimension = ''`,
			siteId,
		);
		// Both ways are read: /pricing's days are kept, a tail page's are not, and so are some of a channel's.
		expect(kept).toContainEqual({ path: '/pricing', segment: '', grain: 'day' });
		expect(kept.filter((row) => row.path === '/docs/page-99')).toEqual([]);
		expect(kept.some((row) => row.segment.startsWith('channel:'))).toBe(true);
		await expectSameNumbersKept(prisma, siteId);

		// Late page views of /pricing and of a new path join sessions already folded (the Visitor Processor
		// adds the event and updates its session), a session of a kept day moves to another hour, and one is erased.
		await prisma.$executeRawUnsafe(
			`WITH late AS (SELECT id, site_id, session_key, visitor_id, started_at FROM visitor_sessions WHERE site_id = $1::uuid AND started_at >= $2::timestamptz ORDER BY id LIMIT 8),
				views AS MATERIALIZED (SELECT late.*, p.path, gen_random_uuid() AS event_id FROM late CROSS JOIN (VALUES ('/pricing'), ('/late-page')) p(path)),
				added AS (INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, path, occurred_at)
					SELECT gen_random_uuid(), site_id, event_id, 'late', session_key, 'pageview', path, started_at + interval '1 minute' FROM views),
				linked AS (INSERT INTO visitor_event_links (site_id, event_id, visitor_id, session_id) SELECT site_id, event_id, visitor_id, id FROM views)
			UPDATE visitor_sessions s SET pageviews = s.pageviews + 2, exit_page = '/late-page', is_bounce = false FROM late WHERE s.id = late.id`,
			siteId,
			hoursBefore(20).toISOString(),
		);
		await prisma.$executeRawUnsafe(
			`UPDATE visitor_sessions SET started_at = started_at + interval '2 hours', channel = 'Organic Search'
			WHERE id IN (SELECT s.id FROM visitor_sessions s JOIN analytics_page_sessions m ON m.session_id = s.id AND m.path = '/pricing'
				WHERE s.site_id = $1::uuid AND s.started_at >= $2::timestamptz ORDER BY s.id LIMIT 3)`,
			siteId,
			hoursBefore(40).toISOString(),
		);
		await prisma.$executeRawUnsafe(
			`DELETE FROM visitor_sessions WHERE id IN (SELECT session_id FROM analytics_page_sessions WHERE site_id = $1::uuid AND path = '/pricing' ORDER BY session_id LIMIT 2)`,
			siteId,
		);
		const { hours } = await foldAllRollups(prisma, { keepPageBucketsAt: 40 });
		expect(hours).toBeGreaterThan(0);
		expect(hours).toBeLessThanOrEqual(24);
		// A person's erasure, as the privacy route does it: their per-session page rows go with their sessions, in one transaction.
		const [{ person }] = await prisma.$queryRawUnsafe<Array<{ person: string }>>(
			`SELECT m.visitor_id::text AS person FROM analytics_page_sessions m WHERE m.site_id = $1::uuid AND m.path = '/pricing'
			GROUP BY m.visitor_id ORDER BY count(*) DESC, m.visitor_id LIMIT 1`,
			siteId,
		);
		const pageRowsOf = async (visitor: string) =>
			(await prisma.$queryRawUnsafe<Array<{ rows: number }>>('SELECT count(*)::int AS rows FROM analytics_page_sessions WHERE visitor_id = $1::uuid', visitor))[0].rows;
		expect(await pageRowsOf(person)).toBeGreaterThan(1);
		await prisma.$transaction(async (tx) => {
			await forgetVisitors(tx, siteId, [person]);
			await tx.$executeRawUnsafe('DELETE FROM visitor_event_links WHERE visitor_id = $1::uuid', person);
			await tx.$executeRawUnsafe('DELETE FROM visitor_events e USING visitors v WHERE v.id = $1::uuid AND e.site_id = v.site_id AND e.anonymous_id = v.anonymous_id', person);
			await tx.$executeRawUnsafe('DELETE FROM visitor_sessions WHERE visitor_id = $1::uuid', person);
			await tx.$executeRawUnsafe('DELETE FROM visitors WHERE id = $1::uuid', person);
		});
		expect(await pageRowsOf(person)).toBe(0);
		const erasedHours = (await foldAllRollups(prisma, { keepPageBucketsAt: 40 })).hours;
		expect(erasedHours).toBeGreaterThan(0);
		expect(erasedHours).toBeLessThanOrEqual(24);
		await expectSameNumbersKept(prisma, siteId);
		// … and the kept rows are what keeping them afresh gives (a day or week that fell below 40 sessions stays kept until it holds none).
		const keptRows = () =>
			prisma.$queryRawUnsafe<unknown[]>(
				`SELECT f.* FROM analytics_page_facts f JOIN analytics_page_facts k ON k.site_id = f.site_id AND k.segment = f.segment AND k.path = f.path AND k.grain = f.grain
					AND k.bucket = f.bucket AND k.dimension = '' AND k.value = ''
				WHERE f.site_id = $1::uuid AND k.sessions >= 40 ORDER BY f.segment, f.path, f.grain, f.dimension, f.bucket, f.value`,
				siteId,
			);
		const moved = await keptRows();
		await refoldKeepingPagesFrom(prisma, siteId, 40);
		expect(await keptRows()).toEqual(moved);
	});

	it('leaves the hours before the retention cutoff as folded: old events that arrive after the retention job ran change none of their figures', async () => {
		const site = await createTestSite(prisma, 'rollups-retained');
		await generateDataset(run(prisma), { siteId: site.id, events: 6_000, days: 2, end: END, seed: 5 });
		// Whole hours only: a range's partial hours are read from the raw sessions, which the job deletes.
		const ranges = RANGES.filter(([name]) => ['whole UTC days', 'whole hours across midnight'].includes(name)).map(([, range]) => range);
		const filters: Array<ReportFilter | undefined> = [undefined, { channel: 'Organic Search' }, { campaign: 'brand' }, { channel: 'Paid Search', campaign: 'brand' }];
		const figures = async () => {
			const answers: unknown[] = [];
			for (const range of ranges) {
				for (const filter of filters) answers.push(figuresOf(await reports.visitorAnalytics(prisma, site.id, range, filter)));
				// A page filter's totals and series are its page's rollup rows (its breakdowns and median duration are read from
				// the per-session page rows of days and weeks not kept, which go with the raw rows).
				const { summary, series } = await reports.visitorAnalytics(prisma, site.id, range, { page: '/pricing' });
				const { medianDurationSeconds: _median, ...totals } = summary;
				answers.push({ totals, series });
			}
			return answers;
		};
		const folded = await figures();
		expect((folded[0] as reports.VisitorAnalytics).summary.sessions).toBeGreaterThan(0);

		// The site keeps 30 days: the job deletes every raw row of the dataset (months ago), and the per-session page rows.
		await prisma.site.update({ where: { id: site.id }, data: { config: { privacy: { dataRetention: 30 } } } });
		const pageRows = async () => (await prisma.$queryRawUnsafe<Array<{ rows: number }>>('SELECT count(*)::int AS rows FROM analytics_page_sessions WHERE site_id = $1::uuid', site.id))[0].rows;
		const stored = await pageRows();
		expect(stored).toBeGreaterThan(0);
		const [result] = await runRetention(prisma, await sitesInDatabase(prisma, site.key), { batchSize: 5000 });
		expect([result.error, result.pageSessions, await pageRows(), await prisma.visitorSession.count({ where: { siteId: site.id } })]).toEqual([null, stored, 0, 0]);
		expect(await figures()).toEqual(folded);

		// Visits dated in those hours arrive late (a browser's queue sent after weeks offline): sessions, events and conversions.
		await generateDataset(run(prisma), { siteId: site.id, events: 1_500, days: 2, end: END, seed: 6 });
		// Raw rows of those hours exist again. (Their dirty hours may already be claimed: another test's
		// receiver folds every site of this database, with the same rule.)
		expect(await prisma.visitorSession.count({ where: { siteId: site.id } })).toBeGreaterThan(0);
		expect(await foldRollups(prisma, site.id)).toEqual({ hours: 0 });
		expect([await pageRows(), await figures()]).toEqual([0, folded]);
	});

	it('folds nothing twice: a second fold finds no dirty hours and changes no figure', async () => {
		const range = RANGES[1][1];
		const before = await rollupReports(prisma, siteId, range);
		expect(await foldAllRollups(prisma)).toEqual({ hours: 0 });
		expect(await rollupReports(prisma, siteId, range)).toEqual(before);
	});

	it('counts the raw events of the site by hour, merged or not, bots\' left out', async () => {
		const [{ events }] = await prisma.$queryRawUnsafe<Array<{ events: number }>>('SELECT count(*)::float8 AS events FROM visitor_events WHERE site_id = $1::uuid AND NOT is_bot', siteId);
		expect((await reports.siteStats(prisma, siteId, hoursBefore(5))).eventsTotal).toBe(events);
		await foldAllRollups(prisma);
		const [{ rows }] = await prisma.$queryRawUnsafe<Array<{ rows: number }>>(
			'SELECT count(*)::int AS rows FROM (SELECT hour FROM analytics_event_counts WHERE site_id = $1::uuid GROUP BY hour HAVING count(*) > 1) merged',
			siteId,
		);
		expect(rows).toBe(0);
		expect(figuresOf(await reports.siteStats(prisma, siteId, hoursBefore(5)))).toEqual(await naive.siteStats(prisma, siteId, hoursBefore(5)));
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
