import { PrismaPg } from '@prisma/adapter-pg';
import { v7 as uuidv7 } from 'uuid';

import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { nextFoldDelay, startRollupJob } from '../../server/analytics/rollup';
import { createLogger } from '../../server/logger';
import { createTestSite } from '../helpers/db';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

describe('nextFoldDelay', () => {
	it('starts a short fold every interval, counted from the start of the last', () => {
		expect(nextFoldDelay(5000, 120)).toBe(4880);
		expect(nextFoldDelay(5000, 0)).toBe(5000);
	});

	it('pauses three times as long as a long fold took, so folds keep Postgres busy a quarter of the time at most', () => {
		expect(nextFoldDelay(5000, 2000)).toBe(6000);
		expect(nextFoldDelay(5000, 30_000)).toBe(90_000);
		for (const took of [1250, 1500, 4000, 5000, 12_000]) expect(took / (took + nextFoldDelay(5000, took))).toBeLessThanOrEqual(0.25);
	});
});

describe('the receiver’s rollup job', () => {
	// A database of its own: the job folds every site's dirty hours.
	let database: { name: string; url: string };
	let prisma: PrismaClient;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_rollup_job');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
	});
	afterAll(async () => {
		await prisma?.$disconnect();
		if (database?.name) await dropTestDatabase(database.name);
	});

	const dirtyHours = async (siteId: string) =>
		(await prisma.$queryRawUnsafe<Array<{ dirty: number }>>('SELECT count(*)::int AS dirty FROM analytics_dirty_hours WHERE site_id = $1::uuid', siteId))[0].dirty;
	const sessionsCounted = async (siteId: string) =>
		(
			await prisma.$queryRawUnsafe<Array<{ sessions: number }>>(
				`SELECT COALESCE(sum(sessions), 0)::int AS sessions FROM analytics_session_facts WHERE site_id = $1::uuid AND segment = '' AND grain = 'hour' AND dimension = ''`,
				siteId,
			)
		)[0].sessions;
	const until = async (check: () => Promise<boolean>) => {
		const deadline = Date.now() + 10_000;
		while (!(await check())) {
			if (Date.now() > deadline) throw new Error('the job did not fold in 10 s');
			await new Promise((resolve) => setTimeout(resolve, 20));
		}
	};

	it('folds what sessions change, fold after fold, and none once stopped', async () => {
		const site = await createTestSite(prisma, 'rollup-job');
		const visitor = await prisma.visitor.create({ data: { siteId: site.id, anonymousId: 'job-visitor', firstSeenAt: new Date(Date.now() - 7_200_000), lastSeenAt: new Date() } });
		const visit = (startedAt: Date) => prisma.visitorSession.create({ data: { siteId: site.id, visitorId: visitor.id, sessionKey: uuidv7(), startedAt, lastActivityAt: startedAt, pageviews: 1 } });
		const job = startRollupJob({ prisma, logger: createLogger({ level: 'silent' }), intervalMs: 50 });
		try {
			await visit(new Date(Date.now() - 7_200_000));
			await until(async () => (await dirtyHours(site.id)) === 0 && (await sessionsCounted(site.id)) === 1);
			// The job scheduled itself again after the fold.
			await visit(new Date(Date.now() - 60_000));
			await until(async () => (await dirtyHours(site.id)) === 0 && (await sessionsCounted(site.id)) === 2);
		} finally {
			await job.stop();
		}
		await visit(new Date());
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(await dirtyHours(site.id)).toBeGreaterThan(0);
		expect(await sessionsCounted(site.id)).toBe(2);
	});
});
