// First: playwright-core needs Symbol.dispose from the moment it loads (see test/setup/symbolDispose.ts).

import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';

import express from 'express';
import helmet from 'helmet';
import pino, { type Logger } from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { v7 as uuidv7 } from 'uuid';

import { generateDataset } from '../../bench/dataset/generate';
import type { PrismaClient } from '../../lib/db/generated/client';
import { createApiKey, hashApiKey } from '../../server/auth';
import { startReceiver, type Receiver } from '../../server/receiver';
import { foldAllRollups, lockSiteRollups, READ_FOLDS_BELOW_SESSIONS_A_DAY } from '../../server/analytics/rollup';
import { requestLog } from '../../server/requestLog';
import { VISITOR_TABLES } from '../../server/dashboard/visitors';
import { dashboardRouter } from '../../server/routes/dashboard';
import { sendProblem } from '../../server/routes/problems';
import { eventually, launchChromium } from '../helpers/browser';
import { daysAgo, pageBounds, parseCsv, startOfToday } from '../helpers/dashboard';
import { storeEvents, testDbUrl, testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';
import { overflowingTables } from './layout';

const OUTPUT = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'dashboard');
const DAY = 86_400_000;
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);

interface Served {
	url: string;
	close(): Promise<void>;
}

/**
 * The dashboard router mounted as server/app.ts mounts the receiver's routers: request log, helmet,
 * the router, a 404. Once app.ts mounts dashboardRouter itself, the tests use receiver.url instead.
 */
async function serveDashboard(receiver: Receiver, logger: Logger, trustProxy = false): Promise<Served> {
	const app = express();
	app.set('trust proxy', trustProxy);
	app.use(requestLog(logger));
	app.use(helmet({ crossOriginResourcePolicy: { policy: 'cross-origin' } }));
	app.use(dashboardRouter({ prisma: receiver.db.prisma, sites: receiver.sites, logger }));
	app.use((req, res) => sendProblem(res, 404, 'not_found', `No route for ${req.method} ${req.path}`));
	const server: Server = createServer(app);
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

/**
 * A request without following redirects, on a connection of its own that ends with the answer: no
 * kept-alive socket outlives the servers the test closes (Jest saw the worker still busy after it).
 */
async function send(url: string, init: { method?: string; headers?: Record<string, string>; body?: URLSearchParams } = {}): Promise<{ status: number; headers: Headers; text: string }> {
	const response = await fetch(url, { redirect: 'manual', ...init, headers: { connection: 'close', ...init.headers } });
	return { status: response.status, headers: response.headers, text: await response.text() };
}

type SessionSeed = {
	startedAt: Date;
	lastActivityAt?: Date;
	paths: string[];
	durationSeconds: number;
	isBounce: boolean;
	engagementLevel: 'low' | 'medium' | 'high';
	channel: string;
	deviceType?: string;
	browser?: string;
	os?: string;
	country?: string;
	referrerDomain?: string;
	source?: string;
	medium?: string;
	campaign?: string;
	exitPage?: string;
	maxScrollDepth?: number;
};

/**
 * Visitors and their sessions as the Visitor Processor leaves them: each session with its page
 * views attached (visitor_event_links), its page count, its entry page, written in one
 * transaction as the node writes them. Returns the session ids per visitor.
 */
async function seedVisitors(prisma: PrismaClient, siteId: string, visitors: Record<string, SessionSeed[]>): Promise<Record<string, string[]>> {
	const ids: Record<string, string[]> = {};
	for (const [anonymousId, sessions] of Object.entries(visitors)) {
		const visitor = await prisma.visitor.create({ data: { siteId, anonymousId, firstSeenAt: daysAgo(30), lastSeenAt: new Date() } });
		ids[anonymousId] = [];
		for (const { paths, ...fields } of sessions) {
			const id = await prisma.$transaction(async (tx) => {
				const session = await tx.visitorSession.create({
					data: { siteId, visitorId: visitor.id, sessionKey: uuidv7(), lastActivityAt: fields.startedAt, pageviews: paths.length, entryPage: paths[0], ...fields },
				});
				await storeEvents(
					tx,
					paths.map((path, index) => ({ siteId, eventId: uuidv7(), anonymousId, visitorId: visitor.id, sessionId: session.id, type: 'pageview', path, occurredAt: new Date(fields.startedAt.getTime() + index * 10_000) })),
				);
				return session.id;
			});
			ids[anonymousId].push(id);
		}
	}
	return ids;
}

/** What the page's headline figures must be, worked out here with plain SQL over the bounds the page states. */
async function sqlFigures(prisma: PrismaClient, siteId: string, from: string, to: string) {
	const [row] = await prisma.$queryRawUnsafe<Array<Record<string, number | null>>>(
		`SELECT count(DISTINCT visitor_id)::int AS visitors, count(*)::int AS sessions, coalesce(sum(pageviews), 0)::int AS pageviews,
			count(*) FILTER (WHERE is_bounce)::int AS bounces, avg(duration_seconds)::float8 AS "avgDuration",
			percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_seconds)::float8 AS "medianDuration"
		FROM visitor_sessions WHERE site_id = $1::uuid AND started_at >= $2::timestamptz AND started_at < $3::timestamptz`,
		siteId,
		from,
		to,
	);
	const sessions = Number(row.sessions);
	return {
		visitors: row.visitors,
		sessions,
		pageviews: row.pageviews,
		bounceRate: sessions ? Number(row.bounces) / sessions : null,
		pageviewsPerSession: sessions ? Number(row.pageviews) / sessions : null,
		avgDuration: row.avgDuration,
		medianDuration: row.medianDuration,
	};
}

async function sqlTopPages(prisma: PrismaClient, siteId: string, from: string, to: string): Promise<string[][]> {
	// The page views of the sessions that started in the range (here every page view of the seed
	// lies in its session's range, so counting them by their own time gives the same rows).
	const rows = await prisma.$queryRawUnsafe<Array<{ path: string; views: number; visitors: number }>>(
		`SELECT e.path, count(*)::int AS views, count(DISTINCT s.visitor_id)::int AS visitors
		FROM visitor_event_links l JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id JOIN visitor_sessions s ON s.id = l.session_id
		WHERE s.site_id = $1::uuid AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz AND e.type = 'pageview' AND e.path IS NOT NULL
		GROUP BY e.path ORDER BY views DESC, e.path LIMIT 10`,
		siteId,
		from,
		to,
	);
	return rows.map((row) => [row.path, String(row.views), String(row.visitors)]);
}

async function sqlChannels(prisma: PrismaClient, siteId: string, from: string, to: string): Promise<string[][]> {
	const rows = await prisma.$queryRawUnsafe<Array<{ channel: string; sessions: number }>>(
		`SELECT channel, count(*)::int AS sessions FROM visitor_sessions WHERE site_id = $1::uuid AND started_at >= $2::timestamptz AND started_at < $3::timestamptz
		GROUP BY channel ORDER BY sessions DESC, channel`,
		siteId,
		from,
		to,
	);
	return rows.map((row) => [row.channel, String(row.sessions)]);
}

/** The figures the page shows, by name: its raw value, the previous period's and the text a person reads. */
async function pageFigures(page: Page): Promise<Record<string, { value: number | null; previous: number | null; text: string }>> {
	const raw = await page.$$eval('[data-figure]', (elements) =>
		elements.map((element) => [(element as HTMLElement).dataset.figure!, (element as HTMLElement).dataset.value ?? '', (element as HTMLElement).dataset.previous ?? '', element.textContent ?? ''] as const),
	);
	const number = (text: string) => (text === '' ? null : Number(text));
	return Object.fromEntries(raw.map(([name, value, previous, text]) => [name, { value: number(value), previous: number(previous), text: text.trim() }]));
}

/** A table's body rows as text (the first `columns` cells). */
async function tableRows(page: Page, id: string, columns: number): Promise<string[][]> {
	return page.$$eval(
		`#${id} tbody tr`,
		(rows, count) => rows.map((row) => Array.from(row.children).slice(0, count).map((cell) => (cell.textContent ?? '').trim())),
		columns,
	);
}

describe('dashboards: sign-in, the shell and Visitor Analytics in a real Chromium', () => {
	const prisma = testPrisma();
	const siteA = testSiteConfig();
	const siteB = testSiteConfig();
	const logLines: string[] = [];
	const logger = pino(
		{ level: 'info' },
		new Writable({
			write(chunk: Buffer, _encoding, done) {
				logLines.push(chunk.toString());
				done();
			},
		}),
	);
	let receiver: Receiver;
	let dashboard: Served;
	let browser: Browser;
	let siteAId: string;
	let siteBId: string;
	let keyA: string;
	let keyB: string;
	const consoleErrors: string[] = [];

	beforeAll(async () => {
		mkdirSync(OUTPUT, { recursive: true });
		// The test receiver, with a logger whose lines the last test reads.
		receiver = await startReceiver({ sites: [siteA, siteB], database: { url: testDbUrl(), migrate: false }, settings: { PORT: 0, DISPATCHER: 'off' }, logger });
		siteAId = receiver.sites.byPublicKey(siteA.site.key)!.id;
		siteBId = receiver.sites.byPublicKey(siteB.site.key)!.id;
		dashboard = { url: receiver.url, close: async () => undefined };
		keyA = await createApiKey(prisma, siteAId, 'read', 'dashboard A');
		keyB = await createApiKey(prisma, siteBId, 'admin', 'ops B');

		// Site A: five visitors this week (two active now), two the week before, one a month ago.
		const a = await seedVisitors(prisma, siteAId, {
			ana: [
				{
					startedAt: daysAgo(1),
					paths: ['/', '/', '/pricing'],
					durationSeconds: 120,
					isBounce: false,
					engagementLevel: 'high',
					channel: 'Organic Search',
					...{ deviceType: 'desktop', browser: 'Chrome', os: 'Windows', country: 'ES', referrerDomain: 'google.com', source: 'google', medium: 'organic', exitPage: '/pricing', maxScrollDepth: 80 },
				},
				{ startedAt: daysAgo(2), paths: ['/pricing'], durationSeconds: 0, isBounce: true, engagementLevel: 'low', channel: 'Direct', deviceType: 'mobile', browser: 'Safari', os: 'iOS', country: 'ES', exitPage: '/pricing', maxScrollDepth: 100 },
				{ startedAt: daysAgo(8), paths: ['/', '/blog'], durationSeconds: 60, isBounce: false, engagementLevel: 'medium', channel: 'Direct' },
			],
			bob: [
				// A visitor's text can look like a spreadsheet formula.
				{
					startedAt: daysAgo(3),
					paths: ['/', '/blog', '/pricing', '/', '=HYPERLINK("http://x.example","click")'],
					durationSeconds: 300,
					isBounce: false,
					engagementLevel: 'medium',
					channel: 'Organic Search',
					...{ deviceType: 'mobile', browser: 'Chrome', os: 'Android', country: 'US', referrerDomain: 'google.com', source: 'google', medium: 'organic', campaign: 'spring', maxScrollDepth: 55 },
				},
				{ startedAt: daysAgo(10), paths: ['/'], durationSeconds: 0, isBounce: true, engagementLevel: 'low', channel: 'Direct' },
			],
			cyd: [
				{
					startedAt: daysAgo(5),
					paths: ['/blog'],
					durationSeconds: 30,
					isBounce: true,
					engagementLevel: 'low',
					channel: 'Paid Search',
					...{ deviceType: 'desktop', browser: 'Firefox', os: 'Linux', country: 'US', referrerDomain: 'bing.com', source: 'bing', medium: 'cpc', campaign: 'spring', exitPage: '/blog', maxScrollDepth: 30 },
				},
				{ startedAt: daysAgo(20), paths: ['/old', '/old', '/x', '/y'], durationSeconds: 200, isBounce: false, engagementLevel: 'high', channel: 'Email' },
			],
			dee: [{ startedAt: minutesAgo(20), lastActivityAt: minutesAgo(5), paths: ['/a-only', '/a-only'], durationSeconds: 40, isBounce: false, engagementLevel: 'medium', channel: 'Referral' }],
		});
		// A bot's page view: stored, in no session, counted nowhere.
		await prisma.visitorEvent.create({ data: { siteId: siteAId, eventId: uuidv7(), anonymousId: 'bot', type: 'pageview', path: '/bot', occurredAt: daysAgo(2), isBot: true } });
		const anaVisitor = await prisma.visitor.findFirstOrThrow({ where: { siteId: siteAId, anonymousId: 'ana' } });
		await prisma.conversion.create({ data: { siteId: siteAId, visitorId: anaVisitor.id, sessionId: a.ana[0], goal: 'contact-request', eventId: uuidv7(), occurredAt: daysAgo(1, 13) } });

		// And two page views as a browser sends them, through the receiver's ingest, then put in a
		// session as the Visitor Processor would (the dispatcher is off here).
		const key = siteA.site.key;
		const tracked = await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'eve', '/a-tracked', { ts: Date.now() - 60_000 }), pageview(key, 'eve', '/a-tracked', { ts: Date.now() - 30_000 })]), {
			origin: siteA.tracking.allowedOrigins[0],
		});
		expect(tracked.status).toBe(202);
		const stored = await eventually(
			() => prisma.visitorEvent.findMany({ where: { siteId: siteAId, anonymousId: 'eve' }, orderBy: { occurredAt: 'asc' } }),
			(events) => events.length === 2,
		);
		const eve = await prisma.visitor.create({ data: { siteId: siteAId, anonymousId: 'eve', firstSeenAt: stored[0].occurredAt, lastSeenAt: stored[1].occurredAt } });
		await prisma.$transaction(async (tx) => {
			const session = await tx.visitorSession.create({
				data: { siteId: siteAId, visitorId: eve.id, sessionKey: uuidv7(), startedAt: stored[0].occurredAt, lastActivityAt: stored[1].occurredAt, pageviews: 2, durationSeconds: 30, isBounce: false, engagementLevel: 'medium', channel: 'Direct', entryPage: '/a-tracked' },
			});
			const events = await tx.visitorEvent.findMany({ where: { siteId: siteAId, anonymousId: 'eve' } });
			await tx.visitorEventLink.createMany({ data: events.map((event) => ({ siteId: siteAId, eventId: event.eventId, visitorId: eve.id, sessionId: session.id })) });
		});

		// Site B: other figures in the same week, and pages A never has.
		await seedVisitors(prisma, siteBId, {
			zed: [
				{ startedAt: daysAgo(1), paths: ['/b-only', '/b-pricing', '/b-only'], durationSeconds: 700, isBounce: false, engagementLevel: 'high', channel: 'Organic Search' },
				{ startedAt: daysAgo(4), paths: ['/b-only'], durationSeconds: 900, isBounce: false, engagementLevel: 'high', channel: 'Social' },
			],
		});

		browser = await launchChromium();
	});

	afterAll(async () => {
		await browser?.close();
		await dashboard?.close();
		await receiver?.close();
		await prisma.$disconnect();
	});

	/** A fresh browser context and page whose console errors and page errors are collected. */
	async function openPage(options: { viewport?: { width: number; height: number }; reducedMotion?: 'reduce' } = {}): Promise<{ context: BrowserContext; page: Page }> {
		const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, reducedMotion: options.reducedMotion, acceptDownloads: true });
		const page = await context.newPage();
		page.on('console', (message) => {
			if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
		});
		page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
		return { context, page };
	}

	async function signIn(page: Page, key: string): Promise<void> {
		await page.goto(`${dashboard.url}/dashboard`);
		expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
		await page.fill('#key', key);
		await Promise.all([page.waitForURL(/\/dashboard\/visitors/), page.click('button[type=submit]')]);
	}

	const shot = (page: Page, name: string) => page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });

	it('refuses a wrong key with the form again, a clear message and 401; the right one opens Visitor Analytics', async () => {
		const { context, page } = await openPage();
		await page.goto(`${dashboard.url}/dashboard/visitors`);
		expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
		await shot(page, '01-sign-in');

		await page.fill('#key', 'tcrm_read_wrongwrongwrongwrongwrongwrong');
		const [refused] = await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST'), page.click('button[type=submit]')]);
		expect(refused.status()).toBe(401);
		await expect(page.textContent('#notice')).resolves.toContain('This key is not valid or was revoked');
		await expect(page.inputValue('#key')).resolves.toBe('');
		await shot(page, '02-sign-in-wrong-key');

		await page.fill('#key', keyA);
		await Promise.all([page.waitForURL(/\/dashboard\/visitors$/), page.click('button[type=submit]')]);
		await expect(page.textContent('header .site')).resolves.toBe(siteA.site.name);
		const [cookie] = await context.cookies();
		expect(cookie).toMatchObject({ name: 'tcrm_dashboard', httpOnly: true, sameSite: 'Strict', secure: false, path: '/dashboard' });
		expect(cookie.value).not.toContain(keyA.slice(10));
		await context.close();
	});

	it('shows site A’s figures for the last 7 days, each against the 7 days before, equal to SQL over the bounds it states', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		await page.waitForFunction(() => Array.from(document.querySelectorAll('canvas')).every((canvas) => (window as any).Chart?.getChart(canvas)));

		const bounds = await pageBounds(page);
		const today = startOfToday();
		expect(bounds).toEqual({
			from: new Date(today - 6 * DAY).toISOString(),
			to: new Date(today + DAY).toISOString(),
			'previous-from': new Date(today - 13 * DAY).toISOString(),
			'previous-to': new Date(today - 6 * DAY).toISOString(),
		});
		const expected = await sqlFigures(prisma, siteAId, bounds.from, bounds.to);
		const before = await sqlFigures(prisma, siteAId, bounds['previous-from'], bounds['previous-to']);
		// The seed, counted by hand, so the SQL above is not trivially empty.
		expect([expected.visitors, expected.sessions, expected.pageviews, before.visitors, before.sessions]).toEqual([5, 6, 14, 2, 2]);

		const figures = await pageFigures(page);
		for (const name of ['visitors', 'sessions', 'pageviews'] as const) {
			expect([name, figures[name].value, figures[name].previous]).toEqual([name, expected[name], before[name]]);
			expect(figures[name].text).toBe(String(expected[name]));
		}
		for (const name of ['bounceRate', 'pageviewsPerSession', 'avgDuration', 'medianDuration'] as const) {
			expect(figures[name].value).toBeCloseTo(expected[name]!, 9);
			expect(figures[name].previous).toBeCloseTo(before[name]!, 9);
		}
		expect(figures.bounceRate.text).toBe(`${((expected.bounceRate ?? 0) * 100).toFixed(1)}%`);
		await expect(page.textContent('[data-change=visitors]')).resolves.toContain('+150.0%');
		const [active] = await prisma.$queryRawUnsafe<Array<{ n: number }>>(
			`SELECT count(*)::int AS n FROM visitor_sessions WHERE site_id = $1::uuid AND last_activity_at >= now() - interval '30 minutes'`,
			siteAId,
		);
		expect(figures.activeSessions.value).toBe(active.n);

		const topPages = await sqlTopPages(prisma, siteAId, bounds.from, bounds.to);
		expect(topPages.map((row) => row[0])).toEqual(expect.arrayContaining(['/', '/a-only', '/a-tracked']));
		expect(await tableRows(page, 'table-top-pages', 3)).toEqual(topPages);
		expect((await tableRows(page, 'table-channels', 2)).sort()).toEqual((await sqlChannels(prisma, siteAId, bounds.from, bounds.to)).sort());
		expect(await tableRows(page, 'table-engagement', 2)).toEqual([
			['Low', '2'],
			['Medium', '3'],
			['High', '1'],
		]);
		// Seven days, each a point of the chart and a row of its table.
		expect(await page.$$eval('#table-over-time tbody tr', (rows) => rows.length)).toBe(7);
		const html = await page.content();
		expect(html).not.toContain('/b-only');
		// Every table fits its card at 1280 px, its last column and its headers whole.
		expect(await overflowingTables(page)).toEqual([]);
		await shot(page, '03-visitors-7-days');
		await context.close();
	});

	it('downloads a table as CSV with the page’s rows, the site taken from the session, cells safe from formulas', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const bounds = await pageBounds(page);
		const [download] = await Promise.all([page.waitForEvent('download'), page.click('#h-top-pages ~ a.csv, section[aria-labelledby=h-top-pages] a.csv')]);
		expect(download.suggestedFilename()).toMatch(new RegExp(`^${siteA.site.key}-top-pages-\\d{4}-\\d{2}-\\d{2}-to-\\d{4}-\\d{2}-\\d{2}\\.csv$`));
		const rows = parseCsv(readFileSync((await download.path())!, 'utf8'));
		const expected = await sqlTopPages(prisma, siteAId, bounds.from, bounds.to);
		expect(rows[0]).toEqual(['Page', 'Page views', 'Visitors']);
		// The path a visitor made look like a formula is written as text.
		expect(rows.slice(1)).toEqual(expected.map((row) => (row[0].startsWith('=') ? [`'${row[0]}`, ...row.slice(1)] : row)));
		expect(rows.map((row) => row[0])).toContain(`'=HYPERLINK("http://x.example","click")`);

		// A site parameter changes nothing: the session decides.
		const cookie = (await context.cookies()).map((entry) => `${entry.name}=${entry.value}`).join('; ');
		const asked = await send(`${dashboard.url}/dashboard/visitors.csv?table=channels&site=${siteB.site.key}`, { headers: { cookie } });
		expect(asked.status).toBe(200);
		expect(asked.headers.get('content-type')).toBe('text/csv; charset=utf-8');
		const channels = parseCsv(asked.text);
		expect(channels.map((row) => row[0]).sort()).toEqual(['Channel', 'Direct', 'Organic Search', 'Paid Search', 'Referral']);
		expect(channels.find((row) => row[0] === 'Organic Search')).toEqual(['Organic Search', '2', '1', '50']);
		const unknown = await send(`${dashboard.url}/dashboard/visitors.csv?table=leads`, { headers: { cookie } });
		expect([unknown.status, unknown.text]).toEqual([400, 'table must be one of over-time, top-pages, entry-pages, channels, exit-pages, referrers, sources, mediums, campaigns, devices, browsers, os, countries, scroll-depth, engagement.']);
		const signedOut = await send(`${dashboard.url}/dashboard/visitors.csv?table=top-pages`);
		expect([signedOut.status, signedOut.headers.get('location')]).toEqual([303, '/dashboard/sign-in']);
		await context.close();
	});

	it('filters by a custom period and interval, and keeps them across the navigation', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		await expect(page.isHidden('#custom-dates')).resolves.toBe(true);
		await page.selectOption('#range', 'custom');
		await expect(page.isVisible('#from')).resolves.toBe(true);
		const from = new Date(startOfToday() - 3 * DAY).toISOString().slice(0, 10);
		const to = new Date(startOfToday() - 1 * DAY).toISOString().slice(0, 10);
		await page.fill('#from', from);
		await page.fill('#to', to);
		await page.selectOption('#interval', 'hour');
		await Promise.all([page.waitForURL(/range=custom/), page.click('form.filters button[type=submit]')]);
		const bounds = await pageBounds(page);
		expect([bounds.from, bounds.to]).toEqual([`${from}T00:00:00.000Z`, new Date(startOfToday()).toISOString()]);
		const expected = await sqlFigures(prisma, siteAId, bounds.from, bounds.to);
		expect((await pageFigures(page)).sessions.value).toBe(expected.sessions);
		// Ana's two sessions and Bob's; in the first half hour of a UTC day, the sessions of a few minutes ago are in the period too.
		expect(expected.sessions).toBeGreaterThanOrEqual(3);
		expect(await page.$$eval('#table-over-time tbody tr', (rows) => rows.length)).toBe(72);
		const leadsLink = await page.getAttribute('nav a[href^="/dashboard/leads"]', 'href');
		expect(leadsLink).toBe(`/dashboard/leads?range=custom&from=${from}&to=${to}&interval=hour`);
		await page.click('nav a[href^="/dashboard/leads"]');
		await expect(page.textContent('#period')).resolves.toContain('Custom period');
		await expect(page.inputValue('#from')).resolves.toBe(from);
		await shot(page, '05-lead-intelligence-custom-period');

		const bad = await page.goto(`${dashboard.url}/dashboard/visitors?range=custom&from=${to}&to=${from}`);
		expect(bad!.status()).toBe(400);
		await expect(page.textContent('[role=alert]')).resolves.toBe('From must be on or before To.');
		await context.close();
	});

	it('shows every breakdown, visitors now, filtered views and weeks with the numbers SQL gives', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const bounds = await pageBounds(page);
		const inRange = `site_id = $1::uuid AND started_at >= $2::timestamptz AND started_at < $3::timestamptz`;
		/** A breakdown as the page's table shows it: value, sessions, by sessions then value, a missing value last. */
		const sqlBreakdown = async (column: string) => {
			const rows = await prisma.$queryRawUnsafe<Array<{ value: string | null; sessions: number }>>(
				`SELECT ${column} AS value, count(*)::int AS sessions FROM visitor_sessions WHERE ${inRange} GROUP BY 1 ORDER BY sessions DESC, value NULLS LAST LIMIT 10`,
				siteAId,
				bounds.from,
				bounds.to,
			);
			return rows.map((row) => [row.value ?? '(not set)', String(row.sessions)]);
		};
		const columns = { devices: 'device_type', browsers: 'browser', os: 'os', countries: 'country', referrers: 'referrer_domain', sources: 'source', mediums: 'medium', campaigns: 'campaign', 'exit-pages': 'exit_page' };
		for (const [table, column] of Object.entries(columns)) {
			const expected = await sqlBreakdown(column);
			expect([table, await tableRows(page, `table-${table}`, 2)]).toEqual([table, expected]);
			expect(expected.length).toBeGreaterThan(1);
		}
		const [scroll] = await prisma.$queryRawUnsafe<Array<Record<string, number>>>(
			`SELECT count(*) FILTER (WHERE max_scroll_depth < 25)::int AS a, count(*) FILTER (WHERE max_scroll_depth >= 25 AND max_scroll_depth < 50)::int AS b,
				count(*) FILTER (WHERE max_scroll_depth >= 50 AND max_scroll_depth < 75)::int AS c, count(*) FILTER (WHERE max_scroll_depth >= 75 AND max_scroll_depth < 100)::int AS d,
				count(*) FILTER (WHERE max_scroll_depth >= 100)::int AS e FROM visitor_sessions WHERE ${inRange}`,
			siteAId,
			bounds.from,
			bounds.to,
		);
		expect(await tableRows(page, 'table-scroll-depth', 2)).toEqual(
			['0–24%', '25–49%', '50–74%', '75–99%', '100%'].map((bucket, index) => [bucket, String(scroll['abcde'[index]])]),
		);
		const [now] = await prisma.$queryRawUnsafe<Array<{ visitors: number }>>(
			`SELECT count(DISTINCT visitor_id)::int AS visitors FROM visitor_sessions WHERE site_id = $1::uuid AND last_activity_at >= now() - interval '5 minutes'`,
			siteAId,
		);
		expect((await pageFigures(page)).visitorsNow.value).toBe(now.visitors);
		// Eve's last page view was 30 s before the seed; Dee's, 5 minutes before it: only Eve is here now.
		expect(now.visitors).toBe(1);
		expect(await overflowingTables(page)).toEqual([]);
		await shot(page, '09-visitor-breakdowns');
		// The figures over time, opened as a table, fit as well.
		await page.click('section[aria-labelledby=h-over-time] summary');
		expect(await overflowingTables(page)).toEqual([]);

		// Organic Search only, chosen in the form: every figure is that channel's, and so is the period before.
		await page.selectOption('#channel', 'Organic Search');
		await Promise.all([page.waitForURL(/channel=Organic\+Search/), page.click('form.filters button[type=submit]')]);
		const organic = await prisma.$queryRawUnsafe<Array<{ sessions: number; visitors: number; pageviews: number }>>(
			`SELECT count(*)::int AS sessions, count(DISTINCT visitor_id)::int AS visitors, coalesce(sum(pageviews), 0)::int AS pageviews FROM visitor_sessions WHERE ${inRange} AND channel = 'Organic Search'`,
			siteAId,
			bounds.from,
			bounds.to,
		);
		const filtered = await pageFigures(page);
		expect([filtered.sessions.value, filtered.visitors.value, filtered.pageviews.value]).toEqual([organic[0].sessions, organic[0].visitors, organic[0].pageviews]);
		expect(organic[0].sessions).toBe(2);
		await expect(page.textContent('#filtered')).resolves.toContain('channel Organic Search');
		// The JSON route answers the same filtered figures from the same query layer; a filter it cannot read is a 400 naming it.
		const json = await send(`${dashboard.url}/api/analytics/visitors?from=${bounds.from}&to=${bounds.to}&channel=Organic+Search`, { headers: { authorization: `Bearer ${keyA}` } });
		const { summary } = JSON.parse(json.text) as { summary: { sessions: number; visitors: number; pageviews: number } };
		expect([json.status, summary.sessions, summary.visitors, summary.pageviews]).toEqual([200, filtered.sessions.value, filtered.visitors.value, filtered.pageviews.value]);
		const unknownChannel = await send(`${dashboard.url}/api/analytics/visitors?channel=Nowhere`, { headers: { authorization: `Bearer ${keyA}` } });
		expect([unknownChannel.status, unknownChannel.text]).toEqual([400, expect.stringContaining('"field":"channel"')]);
		const notALeadFilter = await send(`${dashboard.url}/api/analytics/leads?channel=Direct`, { headers: { authorization: `Bearer ${keyA}` } });
		expect(notALeadFilter.status).toBe(400);
		expect(await page.getAttribute('nav a[href^="/dashboard/leads"]', 'href')).toContain('channel=Organic+Search');
		await shot(page, '10-visitors-filtered-by-channel');

		// Sessions that viewed /pricing, typed into the Page field.
		await page.selectOption('#channel', '');
		await page.fill('#page', '/pricing');
		await Promise.all([page.waitForURL(/page=%2Fpricing/), page.click('form.filters button[type=submit]')]);
		const [pricing] = await prisma.$queryRawUnsafe<Array<{ sessions: number; visitors: number }>>(
			`SELECT count(*)::int AS sessions, count(DISTINCT visitor_id)::int AS visitors FROM visitor_sessions s WHERE ${inRange}
				AND EXISTS (SELECT 1 FROM visitor_event_links l JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id WHERE l.session_id = s.id AND e.type = 'pageview' AND e.path = '/pricing')`,
			siteAId,
			bounds.from,
			bounds.to,
		);
		const viewedPricing = await pageFigures(page);
		expect([viewedPricing.sessions.value, viewedPricing.visitors.value]).toEqual([pricing.sessions, pricing.visitors]);
		expect(pricing.sessions).toBe(3);

		// Filters together: a page and a channel, then a channel and a campaign. Every headline figure and
		// the top pages (the paths viewed in those sessions, with their visitors) are SQL's, and the JSON
		// route answers the same from the same query layer.
		const sqlCombined = async (condition: string) => {
			const [figures] = await prisma.$queryRawUnsafe<Array<{ sessions: number; visitors: number; pageviews: number }>>(
				`SELECT count(*)::int AS sessions, count(DISTINCT visitor_id)::int AS visitors, coalesce(sum(pageviews), 0)::int AS pageviews FROM visitor_sessions s WHERE ${inRange} AND ${condition}`,
				siteAId,
				bounds.from,
				bounds.to,
			);
			const top = await prisma.$queryRawUnsafe<Array<{ path: string; views: number; visitors: number }>>(
				`SELECT e.path, count(*)::int AS views, count(DISTINCT s.visitor_id)::int AS visitors FROM visitor_sessions s JOIN visitor_event_links l ON l.session_id = s.id JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id AND e.type = 'pageview'
				WHERE s.${inRange} AND ${condition} GROUP BY e.path ORDER BY views DESC, e.path LIMIT 10`,
				siteAId,
				bounds.from,
				bounds.to,
			);
			return { figures, top: top.map((row) => [row.path, String(row.views), String(row.visitors)]) };
		};
		const viewed = (path: string) => `EXISTS (SELECT 1 FROM visitor_event_links l JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id WHERE l.session_id = s.id AND e.type = 'pageview' AND e.path = '${path}')`;
		const combinations = [
			{ form: { channel: 'Organic Search', page: '/pricing', campaign: '' }, condition: `s.channel = 'Organic Search' AND ${viewed('/pricing')}`, url: /channel=Organic\+Search&campaign=&page=%2Fpricing/, sessions: 2 },
			{ form: { channel: 'Organic Search', page: '', campaign: 'spring' }, condition: `s.channel = 'Organic Search' AND s.campaign = 'spring'`, url: /channel=Organic\+Search&campaign=spring&page=$/, sessions: 1 },
		];
		for (const { form, condition, url, sessions } of combinations) {
			await page.selectOption('#channel', form.channel);
			await page.fill('#page', form.page);
			await page.fill('#campaign', form.campaign);
			await Promise.all([page.waitForURL(url), page.click('form.filters button[type=submit]')]);
			const expected = await sqlCombined(condition);
			const shown = await pageFigures(page);
			expect([form, shown.sessions.value, shown.visitors.value, shown.pageviews.value]).toEqual([form, expected.figures.sessions, expected.figures.visitors, expected.figures.pageviews]);
			expect(expected.figures.sessions).toBe(sessions);
			expect([form, await tableRows(page, 'table-top-pages', 3)]).toEqual([form, expected.top]);
			const query = new URLSearchParams({ from: bounds.from, to: bounds.to, ...Object.fromEntries(Object.entries(form).filter(([, value]) => value)) });
			const answer = await send(`${dashboard.url}/api/analytics/visitors?${query}`, { headers: { authorization: `Bearer ${keyA}` } });
			const json = JSON.parse(answer.text) as { summary: { sessions: number; visitors: number; pageviews: number }; topPages: Array<{ path: string; pageviews: number; visitors: number }> };
			expect([form, answer.status, json.summary.sessions, json.summary.visitors, json.summary.pageviews]).toEqual([form, 200, shown.sessions.value, shown.visitors.value, shown.pageviews.value]);
			expect([form, json.topPages.map((row) => [row.path, String(row.pageviews), String(row.visitors)])]).toEqual([form, expected.top]);
		}
		await shot(page, '11-visitors-filtered-by-page-and-channel');
		await page.selectOption('#channel', '');
		await page.fill('#campaign', '');

		// With a page's busy days and weeks kept (every one of them, here) the top pages' visitors under a
		// page filter are estimates: the table says so, and every other figure is still SQL's.
		await prisma.$executeRawUnsafe(`INSERT INTO analytics_dirty_hours (site_id, hour) SELECT DISTINCT site_id, date_trunc('hour', started_at, 'UTC') FROM visitor_sessions WHERE site_id = $1::uuid`, siteAId);
		await foldAllRollups(prisma, { keepPageBucketsAt: 1 });
		await page.fill('#page', '/pricing');
		await Promise.all([page.waitForURL(/channel=&campaign=&page=%2Fpricing/), page.click('form.filters button[type=submit]')]);
		expect(await page.$$eval('#table-top-pages thead th', (cells) => cells.map((cell) => (cell.textContent ?? '').trim()))).toEqual(['Page', 'Page views', 'Visitors (estimated)']);
		const kept = await pageFigures(page);
		expect([kept.sessions.value, kept.visitors.value]).toEqual([pricing.sessions, pricing.visitors]);
		const pricingTop = (await sqlCombined(viewed('/pricing'))).top;
		expect((await tableRows(page, 'table-top-pages', 2)).sort()).toEqual(pricingTop.map(([path, views]) => [path, views]).sort());
		await shot(page, '12-visitors-filtered-by-page-estimated');
		await page.fill('#page', '');
		const bad = await page.goto(`${dashboard.url}/dashboard/visitors?page=pricing`);
		expect(bad!.status()).toBe(400);
		await expect(page.textContent('[role=alert]')).resolves.toBe('Page must be a path starting with / (such as /pricing).');

		// Thirty days by week: each row the sessions SQL counts in that ISO week (Monday, UTC).
		await page.goto(`${dashboard.url}/dashboard/visitors?range=30d&interval=week`);
		const weekly = await pageBounds(page);
		const weeks = await prisma.$queryRawUnsafe<Array<{ week: Date; sessions: number; visitors: number }>>(
			`SELECT date_trunc('week', started_at AT TIME ZONE 'UTC') AS week, count(*)::int AS sessions, count(DISTINCT visitor_id)::int AS visitors
			FROM visitor_sessions WHERE ${inRange} GROUP BY 1 ORDER BY 1`,
			siteAId,
			weekly.from,
			weekly.to,
		);
		const shown = (await tableRows(page, 'table-over-time', 3)).filter((row) => row[2] !== '0');
		expect(shown).toEqual(weeks.map((week) => [week.week.toISOString().slice(0, 10), String(week.visitors), String(week.sessions)]));
		expect(weeks.length).toBeGreaterThan(1);
		await context.close();
	});

	it('is usable at phone width and by keyboard: labelled controls, no sideways scrolling, tab reaches every control', async () => {
		// Charts drawn without animation, as for a person who asked for less motion (and a still screenshot).
		const { context, page } = await openPage({ viewport: { width: 390, height: 844 }, reducedMotion: 'reduce' });
		await signIn(page, keyA);
		await page.waitForFunction(() => Array.from(document.querySelectorAll('canvas')).every((canvas) => (window as any).Chart?.getChart(canvas)));
		expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
		const unlabelled = await page.$$eval('input, select, button, canvas', (elements) =>
			elements.filter((element) => !((element as HTMLInputElement).labels?.length || element.getAttribute('aria-label') || (element.textContent ?? '').trim())).map((element) => element.outerHTML),
		);
		expect(unlabelled).toEqual([]);
		await shot(page, '04-visitors-phone');

		const reached = new Set<string>();
		for (let press = 0; press < 40; press++) {
			await page.keyboard.press('Tab');
			reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim().slice(0, 12) || document.activeElement?.tagName || ''));
		}
		expect([...reached]).toEqual(expect.arrayContaining(['Skip to cont', 'Visitor Anal', 'Lead Intelli', 'Sign out', 'range', 'interval', 'Apply', 'Download CSV']));
		await context.close();
	});

	it('signs out with a POST from its own page; the old cookie no longer opens anything', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const old = (await context.cookies())[0];
		const cookie = `${old.name}=${old.value}`;
		expect((await send(`${dashboard.url}/dashboard/visitors`, { headers: { cookie } })).status).toBe(200);

		// A form from elsewhere (or none at all) cannot sign anyone out, nor in; a GET changes nothing.
		for (const origin of ['http://evil.example', undefined]) {
			const refused = await send(`${dashboard.url}/dashboard/sign-out`, { method: 'POST', headers: { cookie, ...(origin && { origin }) } });
			expect(refused.status).toBe(403);
		}
		const crossSignIn = await send(`${dashboard.url}/dashboard/sign-in`, {
			method: 'POST',
			headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
			body: new URLSearchParams({ key: keyB }),
		});
		expect(crossSignIn.status).toBe(403);
		// Signing out is a POST: a GET (a link, an image tag on another page) signs nobody out.
		expect((await send(`${dashboard.url}/dashboard/sign-out`, { headers: { cookie } })).status).toBe(405);
		expect((await send(`${dashboard.url}/dashboard/visitors`, { headers: { cookie } })).status).toBe(200);

		await Promise.all([page.waitForURL(/sign-in\?ended=signed-out/), page.click('form.signout button')]);
		await expect(page.textContent('#notice')).resolves.toContain('You are signed out');
		expect(await context.cookies()).toEqual([]);
		await shot(page, '06-signed-out');

		const replay = await send(`${dashboard.url}/dashboard/visitors`, { headers: { cookie } });
		expect([replay.status, replay.headers.get('location')]).toEqual([303, '/dashboard/sign-in?ended=session']);
		const csv = await send(`${dashboard.url}/dashboard/visitors.csv?table=top-pages`, { headers: { cookie } });
		expect(csv.status).toBe(303);
		await context.close();
	});

	it('ends the session of a key that is revoked', async () => {
		const revocable = await createApiKey(prisma, siteAId, 'read', 'revoked soon');
		const { context, page } = await openPage();
		await signIn(page, revocable);
		await prisma.apiKey.update({ where: { keyHash: hashApiKey(revocable) }, data: { revokedAt: new Date() } });
		await page.reload();
		expect(page.url()).toBe(`${dashboard.url}/dashboard/sign-in?ended=session`);
		await expect(page.textContent('#notice')).resolves.toContain('Your session ended');
		await context.close();
	});

	it('shows site B’s key site B only, whatever the URL names', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyB);
		await page.goto(`${dashboard.url}/dashboard/visitors?site=${siteA.site.key}`);
		await expect(page.textContent('header .site')).resolves.toBe(siteB.site.name);
		const bounds = await pageBounds(page);
		const expected = await sqlFigures(prisma, siteBId, bounds.from, bounds.to);
		const figures = await pageFigures(page);
		expect([figures.visitors.value, figures.sessions.value, figures.pageviews.value]).toEqual([expected.visitors, expected.sessions, expected.pageviews]);
		expect([expected.visitors, expected.sessions, expected.pageviews]).toEqual([1, 2, 4]);
		expect(await tableRows(page, 'table-top-pages', 3)).toEqual(await sqlTopPages(prisma, siteBId, bounds.from, bounds.to));
		// The filter form lists every channel there is, whichever site: site A's data is looked for in the rest.
		const html = (await page.content()).replace(/<select id="channel"[\s\S]*?<\/select>/, '');
		for (const onlyA of ['/a-only', '/a-tracked', '/pricing', 'Paid Search', siteA.site.name]) expect(html).not.toContain(onlyA);

		const cookie = (await context.cookies()).map((entry) => `${entry.name}=${entry.value}`).join('; ');
		for (const table of VISITOR_TABLES) {
			const { text: body } = await send(`${dashboard.url}/dashboard/visitors.csv?table=${table}&site=${siteA.site.key}`, { headers: { cookie } });
			for (const onlyA of ['/a-only', '/a-tracked', 'Paid Search']) expect([table, body.includes(onlyA)]).toEqual([table, false]);
		}
		await shot(page, '07-visitors-site-b');
		await context.close();
	});

	it('wrote no key into the log, and the pages had no console errors', () => {
		const log = logLines.join('');
		expect(log).toContain('dashboard sign-in');
		for (const key of [keyA, keyB, 'tcrm_read_wrongwrongwrongwrongwrongwrong']) expect(log).not.toContain(key.slice(10));
		// Chromium reports a page answered with an error status as a console error: the two the tests
		// asked for (the wrong key's 401, the reversed period's and the pathless page's 400) are the only ones allowed.
		const statusNote = (status: string) => `Failed to load resource: the server responded with a status of ${status}`;
		expect(consoleErrors).toEqual([
			`${dashboard.url}/dashboard/sign-in: ${statusNote('401 (Unauthorized)')}`,
			expect.stringMatching(new RegExp(`/dashboard/visitors\\?range=custom&from=[\\d-]+&to=[\\d-]+: ${statusNote('400 \\(Bad Request\\)')}$`)),
			`${dashboard.url}/dashboard/visitors?page=pricing: ${statusNote('400 (Bad Request)')}`,
		]);
	});
});

describe('dashboard sign-in behind a TLS proxy, and its attempt limit', () => {
	const prisma = testPrisma();
	const site = testSiteConfig();
	let receiver: Receiver;
	let dashboard: Served;
	let key: string;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off' });
		dashboard = await serveDashboard(receiver, pino({ level: 'silent' }), true);
		key = await createApiKey(prisma, receiver.sites.byPublicKey(site.site.key)!.id, 'read', 'proxied');
	});
	afterAll(async () => {
		await dashboard?.close();
		await receiver?.close();
		await prisma.$disconnect();
	});

	const signIn = (typed: string, headers: Record<string, string> = {}) =>
		send(`${dashboard.url}/dashboard/sign-in`, {
			method: 'POST',
			headers: { origin: 'https://crm.example', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'crm.example', 'content-type': 'application/x-www-form-urlencoded', ...headers },
			body: new URLSearchParams({ key: typed }),
		});

	it('sets a Secure cookie when the receiver is reached over https', async () => {
		const response = await signIn(key);
		expect(response.status).toBe(303);
		const attributes = response.headers.get('set-cookie')!.split('; ');
		expect(attributes[0]).toMatch(/^tcrm_dashboard=[0-9a-f-]{36}\.\d+\.[\w-]{43}$/);
		expect(attributes.slice(1)).toEqual(expect.arrayContaining(['Max-Age=43200', 'Path=/dashboard', 'HttpOnly', 'Secure', 'SameSite=Strict']));
	});

	it('refuses every sign-in from a network after ten wrong keys in a minute, the right key included', async () => {
		// The count runs in whole minutes: start well inside one.
		if (new Date().getSeconds() > 45) await new Promise((resolve) => setTimeout(resolve, (61 - new Date().getSeconds()) * 1000));
		const statuses: number[] = [];
		for (let attempt = 0; attempt < 10; attempt++) statuses.push((await signIn(`tcrm_read_wrong${attempt}wrongwrongwrongwrong`)).status);
		expect(statuses).toEqual(Array(10).fill(401));
		const limited = await signIn(key);
		expect(limited.status).toBe(429);
		expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
		expect(limited.text).toContain('Too many wrong keys from your network');
	});
});

describe('a busy site’s dashboard: figures from the rollups as they are, and a note of up to when', () => {
	const prisma = testPrisma();
	const site = testSiteConfig();
	let receiver: Receiver;
	let browser: Browser;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await prisma.$disconnect();
	});

	it('shows the last fold’s figures at once while a visit waits for the next fold, says so, and shows the visit once folded', async () => {
		mkdirSync(OUTPUT, { recursive: true });
		const siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		const key = await createApiKey(prisma, siteId, 'read', 'busy');
		// About 1,500 sessions in the last day: more than a read folds itself (READ_FOLDS_BELOW_SESSIONS_A_DAY).
		await generateDataset((sql) => prisma.$queryRawUnsafe<unknown[]>(sql), { siteId, events: 15_000, days: 1, end: new Date(), seed: 9 });
		await foldAllRollups(prisma);
		const sessionsNow = () => prisma.visitorSession.count({ where: { siteId, startedAt: { gte: new Date(startOfToday() - DAY) } } });
		const before = await sessionsNow();
		expect(before).toBeGreaterThan(READ_FOLDS_BELOW_SESSIONS_A_DAY);

		const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
		const page = await context.newPage();
		await page.goto(`${receiver.url}/dashboard/sign-in`);
		await page.fill('#key', key);
		await Promise.all([page.waitForURL(/\/dashboard\/visitors/), page.click('button[type="submit"]')]);
		const shownSessions = async () => Number((await page.getAttribute('[data-figure="sessions"]', 'data-value')) ?? Number.NaN);
		const period = `${receiver.url}/dashboard/visitors?range=custom&from=${new Date(startOfToday() - DAY).toISOString().slice(0, 10)}&to=${new Date().toISOString().slice(0, 10)}`;
		await page.goto(period);
		expect([await shownSessions(), await page.locator('#counted-up-to').count()]).toEqual([before, 0]);

		// A visit arrives: a new session, noted for the next fold. Holding the site's fold lock keeps the receiver's job from folding it meanwhile.
		await prisma.$transaction(
			async (tx) => {
				await lockSiteRollups(tx, siteId);
				await seedVisitors(prisma, siteId, { late: [{ startedAt: new Date(), paths: ['/'], durationSeconds: 0, isBounce: true, engagementLevel: 'low', channel: 'Direct' }] });
				await new Promise((resolve) => setTimeout(resolve, 2500));
				await page.goto(period);
				const note = (await page.textContent('#counted-up-to')) ?? '';
				expect(note).toMatch(/^Visits and conversions are counted up to \d\d:\d\d:\d\d UTC: the last \d+ seconds are still being added, and show on the next load\.$/);
				expect(await shownSessions()).toBe(before);
				await page.screenshot({ path: path.join(OUTPUT, '20-busy-site-counted-up-to.png'), fullPage: false });
			},
			{ timeout: 30_000 },
		);
		await foldAllRollups(prisma);
		await page.goto(period);
		expect([await shownSessions(), await page.locator('#counted-up-to').count()]).toEqual([before + 1, 0]);
		await context.close();
	});
});
