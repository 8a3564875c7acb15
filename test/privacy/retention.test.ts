/**
 * The retention job (server/retention) on rows the real system made: tracker batches posted to the
 * receiver and processed by the bundled workflows in its embedded engine (sessions, conversions, a
 * scored lead), some visits older than a site's privacy.dataRetention. Once on Postgres and once on
 * the embedded PGlite; the command and the receiver's schedule on Postgres.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db/generated/client';
import { campaignAnalytics, conversionAnalytics, conversionBreakdown } from '../../server/analytics/campaigns';
import { leadAnalytics } from '../../server/analytics/leads';
import { siteStats, visitorAnalytics, type TimeRange } from '../../server/analytics/queries';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { runRetention, sitesInDatabase, type RetentionResult } from '../../server/retention/retention';
import { waitFor } from '../helpers/builtReceiver';
import { daysAgo, startOfToday } from '../helpers/dashboard';
import { createTestSite, linkedEvents, testDbUrl, testPrisma } from '../helpers/db';
import { post } from '../helpers/events';
import { startTestReceiver, TEST_SECRET } from '../helpers/receiver';
import { figuresOf } from '../helpers/reports';

// The bundled workflows take a while on a busy machine.
jest.setTimeout(420_000);

const HOUR = 3_600_000;
const DAY = 86_400_000;
const ROOT = path.resolve(__dirname, '../..');
const STAGES = ['subscriber', 'lead'];
const RECEIVER_SETTINGS = { PORT: 0, DISPATCH_INTERVAL_MS: 50, DISPATCH_BACKOFF_BASE_MS: 50, DISPATCH_BACKOFF_MAX_MS: 400, RETENTION_INTERVAL_MS: 0 };

/** A site run by the embedded engine (or by an n8n that never answers): 5 points a page view, a visit to /pricing is a conversion worth 10 EUR. */
function siteConfig(name: string, { retention, n8nUrl }: { retention?: number; n8nUrl?: string }): SiteConfig {
	const key = `${name}-${uuidv7().slice(-8)}`;
	return parseSiteConfig({
		site: { key, name, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false, ...(retention ? { dataRetention: retention } : {}) },
		crm: {
			leadScoringRules: [{ event: 'pageview', score: 5 }],
			lifecycleStages: [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 5 }],
			conversionRules: [{ name: 'pricing', event: 'pageview', urlPattern: '/pricing', value: 10, currency: 'EUR' }],
		},
		integrations: n8nUrl ? { n8nUrl, webhookSecretEnv: 'TEST_WEBHOOK_SECRET' } : {},
	});
}

/** The tracker's batch of one visit, page views a minute apart from `start`; answers the events' ids. */
async function visit(receiver: Receiver, site: SiteConfig, anonymousId: string, visitNumber: number, start: Date, paths: string[]): Promise<string[]> {
	const key = site.site.key;
	const events = paths.map((pagePath, index) => ({
		id: uuidv7(),
		type: 'pageview',
		ts: start.getTime() + index * 60_000,
		anonymousId,
		sessionId: `${anonymousId}-${visitNumber}`,
		url: `https://${key}.example${pagePath}`,
		title: pagePath,
	}));
	expect((await post(`${receiver.url}/api/track`, { site: key, events }, { origin: `https://${key}.example` })).status).toBe(202);
	return events.map((event) => event.id);
}

const dayStart = (days: number) => new Date(startOfToday() - days * DAY);
const cutoffOf = (days: number, now: Date) => new Date(Math.floor((now.getTime() - days * DAY) / HOUR) * HOUR);

/** Every report of the dashboards' read layer over `range`, for one site. */
async function reports(prisma: PrismaClient, siteId: string, range: TimeRange) {
	const conversions = await conversionBreakdown(prisma, siteId, range);
	const withoutAmounts = <T extends { amounts: unknown }>({ amounts: _amounts, ...row }: T) => row;
	return {
		visitors: figuresOf(await visitorAnalytics(prisma, siteId, range)),
		// Left out: goals and amounts, read from the raw conversions joined to their sessions (server/analytics/campaigns.ts
		// has no rollup of them yet), lose the conversions whose sessions the job deleted.
		conversions: { total: withoutAmounts(conversions.total), channels: conversions.channels.map(withoutAmounts), campaigns: conversions.campaigns.map(withoutAmounts) },
		campaigns: figuresOf(await campaignAnalytics(prisma, siteId, range)),
		conversion: figuresOf(await conversionAnalytics(prisma, siteId, range, STAGES)),
		leads: figuresOf(await leadAnalytics(prisma, siteId, range, STAGES)),
	};
}

/** What a site holds of the CRM beside its raw rows: none of it may change. */
async function crmRows(prisma: PrismaClient, siteId: string) {
	const ofSite = { where: { siteId }, orderBy: { id: 'asc' as const } };
	return {
		leads: await prisma.lead.findMany(ofSite),
		scores: await prisma.leadScore.findMany(ofSite),
		stageChanges: await prisma.leadStageChange.findMany(ofSite),
		visitors: await prisma.visitor.findMany(ofSite),
		activities: await prisma.activity.findMany(ofSite),
		// A deleted session leaves its conversions without one (checked on its own below).
		conversions: (await prisma.conversion.findMany(ofSite)).map(({ sessionId: _sessionId, ...conversion }) => conversion),
		attributions: await prisma.attributionData.findMany(ofSite),
	};
}

function command(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		execFile(path.join(ROOT, 'scripts', 'retention'), args, { env: { PATH: process.env.PATH, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
		});
	});
}

function retentionScenario(database: string, start: (sites: SiteConfig[]) => Promise<Receiver>, cleanUp: () => void, commandEnv?: () => Record<string, string>) {
	describe(`the retention job on ${database}`, () => {
		const keep30 = siteConfig('keep30', { retention: 30 });
		const keepDefault = siteConfig('default', {});
		const waiting = siteConfig('waiting', { retention: 30, n8nUrl: 'http://127.0.0.1:9' });
		const sites = [keep30, keepDefault, waiting];
		const now = new Date();
		const cutoff = cutoffOf(30, now);
		const oldRange: TimeRange = { from: dayStart(50), to: dayStart(40), interval: 'day' };
		const recentRange: TimeRange = { from: dayStart(7), to: new Date(startOfToday()), interval: 'day' };
		let receiver: Receiver;
		let prisma: PrismaClient;
		const id: Record<string, string> = {};
		const oldEvents: Record<string, string[]> = {};
		const recentEvents: string[] = [];
		let oldOutbox: Array<{ id: string; siteId: string }> = [];
		let before: Awaited<ReturnType<typeof snapshot>>;

		async function snapshot() {
			const siteId = id[keep30.site.key];
			const recentSessions = await prisma.visitorSession.findMany({ where: { siteId, startedAt: { gte: cutoff } }, orderBy: { id: 'asc' } });
			return {
				old: await reports(prisma, siteId, oldRange),
				recent: await reports(prisma, siteId, recentRange),
				stats: figuresOf(await siteStats(prisma, siteId, new Date(startOfToday()))),
				crm: await crmRows(prisma, siteId),
				recentEvents: await prisma.visitorEvent.findMany({ where: { siteId, eventId: { in: recentEvents } }, orderBy: { id: 'asc' } }),
				recentSessions,
				newerOutbox: await prisma.$queryRawUnsafe<unknown[]>(`SELECT * FROM outbox WHERE site_id = $1::uuid AND NOT (id = ANY($2::bigint[])) ORDER BY id`, siteId, oldOutbox.map((row) => row.id)),
			};
		}

		const rowsOf = async (siteId: string) => ({
			events: await prisma.visitorEvent.count({ where: { siteId } }),
			sessions: await prisma.visitorSession.count({ where: { siteId } }),
			outbox: await prisma.outboxMessage.count({ where: { siteId } }),
		});
		const runsOf = (siteIds: string[]) =>
			prisma.$queryRawUnsafe<Array<Record<string, unknown>>>(
				`SELECT site_id::text AS "siteId", retention_days AS "days", cutoff, batches, deleted_events::int AS events, deleted_sessions::int AS sessions,
					deleted_outbox::int AS outbox, started_at AS "startedAt", finished_at AS "finishedAt", error
				FROM retention_runs WHERE site_id = ANY($1::uuid[]) ORDER BY started_at`,
				siteIds,
			);
		const setRetentionDays = (site: SiteConfig, days: number) =>
			prisma.$executeRawUnsafe(`UPDATE sites SET config = jsonb_set(config, '{privacy,dataRetention}', to_jsonb($2::int)) WHERE id = $1::uuid`, id[site.site.key], days);
		const pageSessionsOf = async (siteId: string, before: Date) =>
			(await prisma.$queryRawUnsafe<Array<{ rows: number }>>('SELECT count(*)::int AS rows FROM analytics_page_sessions WHERE site_id = $1::uuid AND started_at < $2::timestamptz', siteId, before))[0].rows;
		const ourSites = async () => (await Promise.all(sites.map((site) => sitesInDatabase(prisma, site.site.key)))).flat();

		beforeAll(async () => {
			receiver = await start(sites);
			prisma = receiver.db.prisma;
			for (const site of sites) id[site.site.key] = receiver.sites.byPublicKey(site.site.key)!.id;
			const [ana, bo, cy, dee] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
			const oldVisit = daysAgo(45);
			// The old visits arrive while the site still keeps 60 days (the rollup fold leaves the hours before a
			// site's cutoff as they are), and are folded then; its config keeps 30 from the runs on.
			await setRetentionDays(keep30, 60);
			oldEvents[keep30.site.key] = [
				...(await visit(receiver, keep30, ana, 1, oldVisit, ['/', '/pricing'])),
				...(await visit(receiver, keep30, ana, 2, daysAgo(44), ['/docs'])),
				...(await visit(receiver, keep30, bo, 1, oldVisit, ['/', '/about'])),
			];
			oldEvents[keepDefault.site.key] = await visit(receiver, keepDefault, cy, 1, oldVisit, ['/', '/pricing']);
			oldEvents[waiting.site.key] = await visit(receiver, waiting, dee, 1, oldVisit, ['/']);
			oldOutbox = await prisma.$queryRawUnsafe(`SELECT id::text, site_id::text AS "siteId" FROM outbox WHERE site_id = ANY($1::uuid[])`, Object.values(id));
			recentEvents.push(...(await visit(receiver, keep30, ana, 3, daysAgo(2), ['/', '/pricing'])), ...(await visit(receiver, keep30, uuidv7(), 1, daysAgo(2), ['/blog'])));
			await visit(receiver, keepDefault, cy, 2, daysAgo(2), ['/']);
			const embedded = [id[keep30.site.key], id[keepDefault.site.key]];
			const delivered = async () => (await prisma.outboxMessage.count({ where: { siteId: { in: embedded }, status: { not: 'delivered' } } })) === 0;
			await waitFor(
				async () => (await delivered()) && (await prisma.conversion.count({ where: { siteId: { in: embedded } } })) === 3 && (await linkedEvents(prisma, { siteIds: embedded })).every((event) => event.sessionId !== null),
				300_000,
				'the workflows to process every visit',
			);
			const lead = await post(`${receiver.url}/api/lead`, { site: keep30.site.key, anonymousId: ana, email: `ana.${uuidv7().slice(-6)}@clinic.example`, firstName: 'Ana' }, { origin: `https://${keep30.site.key}.example` });
			expect([lead.status, lead.json.history]).toEqual([202, 'joined']);
			// Ana's five page views, old and recent.
			await waitFor(async () => (await prisma.lead.count({ where: { siteId: id[keep30.site.key], score: 25 } })) === 1 && (await delivered()), 300_000, 'the lead to be scored');
			// The rows the receiver wrote for the old visits, dated as if it had written (and delivered) them then.
			await prisma.$executeRawUnsafe(
				`UPDATE outbox SET created_at = $2::timestamptz, delivered_at = CASE WHEN status = 'delivered' THEN $2::timestamptz END WHERE id = ANY($1::bigint[])`,
				oldOutbox.map((row) => row.id),
				oldVisit.toISOString(),
			);
			before = await snapshot();
			await setRetentionDays(keep30, 30);
		});
		afterAll(async () => {
			await receiver?.close();
			cleanUp();
		});

		it('counts in a dry run what a run would delete, and deletes and records nothing', async () => {
			const counts = await Promise.all(Object.values(id).map(rowsOf));
			const oldOutboxOfKeep30 = oldOutbox.filter((row) => row.siteId === id[keep30.site.key]).length;
			expect(oldOutboxOfKeep30).toBe(3);
			const dry = await runRetention(prisma, await ourSites(), { dryRun: true, now });
			// The old visits' page rows for page filters: / and /pricing, /docs, / and /about.
			expect(dry.map(({ site, days, cutoff: at, rows, pageSessions, runId }) => ({ site, days, at, rows, pageSessions, runId }))).toEqual([
				{ site: keep30.site.key, days: 30, at: cutoff, rows: { visitor_events: 5, visitor_sessions: 3, outbox: 3 }, pageSessions: 5, runId: null },
				{ site: keepDefault.site.key, days: 365, at: cutoffOf(365, now), rows: { visitor_events: 0, visitor_sessions: 0, outbox: 0 }, pageSessions: 0, runId: null },
				{ site: waiting.site.key, days: 30, at: cutoff, rows: { visitor_events: 0, visitor_sessions: 0, outbox: 0 }, pageSessions: 0, runId: null },
			]);
			if (commandEnv) {
				const { code, stdout, stderr } = await command(['--site', keep30.site.key, '--dry-run'], commandEnv());
				expect([code, stderr]).toEqual([0, '']);
				expect(stdout).toMatch(new RegExp(`^${keep30.site.key}: would delete 5 events, 3 sessions, 3 delivered outbox rows, 5 dashboard page rows older than \\S+Z \\(30 days\\)\\n$`));
			}
			expect(await Promise.all(Object.values(id).map(rowsOf))).toEqual(counts);
			expect(await runsOf(Object.values(id))).toEqual([]);
		});

		it('deletes the raw rows older than each site’s retention in batches of the size asked for, and records each run', async () => {
			const counts = Object.fromEntries(await Promise.all(Object.entries(id).map(async ([key, siteId]) => [key, await rowsOf(siteId)])));
			const results = await runRetention(prisma, await ourSites(), { batchSize: 2, now });
			const deleted = (result: RetentionResult) => ({ site: result.site, rows: result.rows, pageSessions: result.pageSessions, batches: result.batches, error: result.error });
			// Batches of two: five events in three, three sessions in two, three outbox rows in two.
			expect(results.map(deleted)).toEqual([
				{ site: keep30.site.key, rows: { visitor_events: 5, visitor_sessions: 3, outbox: 3 }, pageSessions: 5, batches: 7, error: null },
				{ site: keepDefault.site.key, rows: { visitor_events: 0, visitor_sessions: 0, outbox: 0 }, pageSessions: 0, batches: 0, error: null },
				{ site: waiting.site.key, rows: { visitor_events: 0, visitor_sessions: 0, outbox: 0 }, pageSessions: 0, batches: 0, error: null },
			]);
			// The recent visits' page rows stay: / and /pricing, /blog.
			expect([await pageSessionsOf(id[keep30.site.key], cutoff), await pageSessionsOf(id[keep30.site.key], new Date())]).toEqual([0, 3]);
			const runs = await runsOf(Object.values(id));
			expect(runs.map(({ startedAt, finishedAt, ...run }) => ({ ...run, finished: finishedAt instanceof Date && finishedAt >= (startedAt as Date) }))).toEqual([
				{ siteId: id[keep30.site.key], days: 30, cutoff, batches: 7, events: 5, sessions: 3, outbox: 3, error: null, finished: true },
				{ siteId: id[keepDefault.site.key], days: 365, cutoff: cutoffOf(365, now), batches: 0, events: 0, sessions: 0, outbox: 0, error: null, finished: true },
				{ siteId: id[waiting.site.key], days: 30, cutoff, batches: 0, events: 0, sessions: 0, outbox: 0, error: null, finished: true },
			]);

			const keep30Id = id[keep30.site.key];
			expect(await prisma.visitorEvent.count({ where: { siteId: keep30Id, eventId: { in: oldEvents[keep30.site.key] } } })).toBe(0);
			expect(await prisma.visitorSession.count({ where: { siteId: keep30Id, startedAt: { lt: cutoff } } })).toBe(0);
			expect(await prisma.outboxMessage.count({ where: { id: { in: oldOutbox.filter((row) => row.siteId === keep30Id).map((row) => BigInt(row.id)) } } })).toBe(0);
			expect(await rowsOf(keep30Id)).toEqual({ events: counts[keep30.site.key].events - 5, sessions: counts[keep30.site.key].sessions - 3, outbox: counts[keep30.site.key].outbox - 3 });
			// No privacy.dataRetention in its config: the default year keeps a visit of 45 days ago.
			expect(await rowsOf(id[keepDefault.site.key])).toEqual(counts[keepDefault.site.key]);
			expect(await prisma.visitorEvent.count({ where: { eventId: { in: oldEvents[keepDefault.site.key] } } })).toBe(2);
			// Its n8n never answered: the old delivery waits (or died) undelivered, and keeps the event it carries.
			expect(await rowsOf(id[waiting.site.key])).toEqual(counts[waiting.site.key]);
			expect(await prisma.visitorEvent.count({ where: { eventId: { in: oldEvents[waiting.site.key] } } })).toBe(1);
			expect(await prisma.outboxMessage.count({ where: { siteId: id[waiting.site.key], status: { not: 'delivered' }, createdAt: { lt: cutoff } } })).toBe(1);
		});

		it('leaves the dashboards’ figures of the old and the recent period, the leads’ scores and the recent raw rows as they were', async () => {
			expect(before.old.visitors.summary).toMatchObject({ sessions: 3, visitors: 2, pageviews: 5 });
			expect(before.old.conversions.total).toMatchObject({ sessions: 3, conversions: 1 });
			// Five old page views, three recent ones and the lead's identify event.
			expect(before.stats.eventsTotal).toBe(9);
			expect(before.crm.leads.map((lead) => [lead.score, lead.lifecycleStage])).toEqual([[25, 'lead']]);
			expect(before.crm.conversions).toHaveLength(2);
			expect(before.recentEvents).toHaveLength(3);
			expect(before.recentSessions).toHaveLength(2);
			const after = await snapshot();
			expect(after).toEqual(before);
			// The conversion of the deleted visit stays, without its session.
			const conversions = await prisma.conversion.findMany({ where: { siteId: id[keep30.site.key] }, orderBy: { occurredAt: 'asc' } });
			expect(conversions.map((conversion) => [conversion.occurredAt < cutoff, conversion.sessionId === null])).toEqual([
				[true, true],
				[false, false],
			]);
		});

		it('leaves the old period’s figures as folded when a visit dated before the cutoff arrives after the run', async () => {
			const siteId = id[keep30.site.key];
			const sessions = await prisma.visitorSession.count({ where: { siteId } });
			await visit(receiver, keep30, uuidv7(), 1, daysAgo(45), ['/', '/docs']);
			await waitFor(async () => (await prisma.visitorSession.count({ where: { siteId } })) === sessions + 1, 300_000, 'the late visit to be processed');
			// Its session is stored (until the next run) and noted for the fold, which leaves its hour as it was.
			expect(await prisma.visitorSession.count({ where: { siteId, startedAt: { lt: cutoff } } })).toBe(1);
			const after = await snapshot();
			expect([after.old, after.recent]).toEqual([before.old, before.recent]);
			expect(await pageSessionsOf(siteId, cutoff)).toBe(0);
		});
	});
}

retentionScenario(
	'Postgres',
	(sites) => startTestReceiver(sites, { ...RECEIVER_SETTINGS }),
	() => undefined,
	() => ({ DATABASE_URL: testDbUrl() }),
);

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'retention-pglite-'));
retentionScenario(
	'the embedded PGlite',
	(sites) =>
		startReceiver({
			sites,
			database: { url: null, dataDir },
			settings: { ...RECEIVER_SETTINGS },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		}),
	() => rmSync(dataDir, { recursive: true, force: true }),
);

describe('the retention command', () => {
	const prisma = testPrisma();
	afterAll(() => prisma.$disconnect());
	const env = () => ({ DATABASE_URL: testDbUrl() });

	it('explains itself, and names the option or site that is wrong', async () => {
		const help = await command(['--help'], env());
		expect(help.code).toBe(0);
		expect(help.stdout).toMatch(/^Usage: scripts\/retention \[--site <site key>\] \[--dry-run\] \[--batch-size <rows>\]/);
		expect(await command(['--batch-size', '0'], env())).toMatchObject({ code: 2, stderr: expect.stringMatching(/^--batch-size must be a whole number of rows from 1 to 50000; got "0"\n/) });
		expect(await command(['--sites', 'x'], env())).toMatchObject({ code: 2, stderr: expect.stringMatching(/Unknown option '--sites'/) });
		expect(await command(['--site', 'no-such-site'], env())).toMatchObject({ code: 1, stderr: 'No site "no-such-site" in the database; start the receiver once with its config so the site is registered.\n' });
	});

	it('keeps everything of a site whose stored config names no retention, and records no run', async () => {
		const site = await createTestSite(prisma, 'no-retention');
		await prisma.visitorEvent.create({ data: { siteId: site.id, eventId: uuidv7(), anonymousId: 'old-browser', type: 'pageview', path: '/', occurredAt: new Date(Date.now() - 400 * DAY) } });
		const { code, stdout } = await command(['--site', site.key, '--batch-size', '1'], env());
		expect([code, stdout]).toEqual([0, `${site.key}: keeps everything (its config names no privacy.dataRetention)\n`]);
		expect(await prisma.visitorEvent.count({ where: { siteId: site.id } })).toBe(1);
		expect(await prisma.$queryRawUnsafe(`SELECT id FROM retention_runs WHERE site_id = $1::uuid`, site.id)).toEqual([]);
	});
});

describe('the receiver’s retention schedule', () => {
	it('runs the job soon after the start and every RETENTION_INTERVAL_MS, for the receiver’s own sites', async () => {
		const key = `daily-${uuidv7().slice(-8)}`;
		const site = parseSiteConfig({
			site: { key, name: 'Daily', domain: `${key}.example` },
			tracking: { allowedOrigins: [`https://${key}.example`] },
			privacy: { cookieConsent: false, dataRetention: 1 },
			integrations: { n8nUrl: 'http://127.0.0.1:9', webhookSecretEnv: 'TEST_WEBHOOK_SECRET', webhookEndpoints: [] },
		});
		const receiver = await startTestReceiver([site], { DISPATCHER: 'off', RETENTION_INTERVAL_MS: 1000 });
		try {
			const prisma = receiver.db.prisma;
			const siteId = receiver.sites.byPublicKey(site.site.key)!.id;
			await visit(receiver, site, uuidv7(), 1, daysAgo(3), ['/']);
			const [fresh] = await visit(receiver, site, uuidv7(), 1, new Date(Date.now() - 60_000), ['/']);
			await waitFor(async () => (await prisma.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM retention_runs WHERE site_id = $1::uuid AND deleted_events = 1 AND finished_at IS NOT NULL`, siteId)).length === 1, 30_000, 'a run that deleted the old event');
			expect((await prisma.visitorEvent.findMany({ where: { siteId }, select: { eventId: true } })).map((event) => event.eventId)).toEqual([fresh]);
			// The next runs find nothing more to delete, and say so.
			await waitFor(async () => (await prisma.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM retention_runs WHERE site_id = $1::uuid AND finished_at IS NOT NULL`, siteId)).length >= 2, 30_000, 'a second run');
			expect(await prisma.$queryRawUnsafe(`SELECT sum(deleted_events)::int AS events FROM retention_runs WHERE site_id = $1::uuid`, siteId)).toEqual([{ events: 1 }]);
		} finally {
			await receiver.close();
		}
	});
});
