/**
 * The scripts' test site and server/sites.ts's removeSite on a CRM database the real receiver has
 * written two sites' traffic into: removing one site leaves no row of it in any table — the ones a
 * foreign key empties and the ones none does (raw events, outbox, consent records, event counts, the
 * hash key's fingerprint) — and
 * the other site's rows as they were.
 */
import { randomBytes } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';
import { v7 as uuidv7 } from 'uuid';

import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { PII_HASH_KEY_ENV, PII_KEYS_ENV } from '../../lib/pii';
import { hashKeyPinName } from '../../lib/piiHashKey';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { checkPiiHashKey } from '../../server/secrets';
import { removeSite } from '../../server/sites';
import { prepareSelfTestSite, SELF_TEST_SITE } from '../../scripts/selfTestSite';
import { OperatorError } from '../../scripts/workflowTools';
import { post } from '../helpers/events';
import { TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

/** Every table with a site_id column, and how many rows of the site it holds. */
async function rowsOf(prisma: PrismaClient, siteId: string): Promise<Record<string, number>> {
	const tables = await prisma.$queryRawUnsafe<Array<{ name: string }>>(
		`SELECT c.table_name AS name FROM information_schema.columns c JOIN pg_tables t ON t.tablename = c.table_name AND t.schemaname = c.table_schema
		WHERE c.table_schema = 'public' AND c.column_name = 'site_id' ORDER BY 1`,
	);
	const counts: Record<string, number> = { sites: await prisma.site.count({ where: { id: siteId } }) };
	for (const { name } of tables) counts[name] = Number((await prisma.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM "${name}" WHERE site_id = $1::uuid`, siteId))[0].n);
	// The one row kept by name rather than by site_id: the site's PII hash key fingerprint.
	counts.receiver_secrets = await prisma.receiverSecret.count({ where: { name: hashKeyPinName(siteId) } });
	return counts;
}

const filled = (counts: Record<string, number>) => Object.keys(counts).filter((table) => counts[table] > 0);

describe('removeSite and the scripts’ test site', () => {
	let database = { name: '', url: '' };
	let prisma: PrismaClient;
	let receiver: Receiver;
	const [gone, kept] = [testSiteConfig(), testSiteConfig()];

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_selftest_site');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		// The sites' n8n is not there: their deliveries wait in the outbox, as rows of the site.
		receiver = await startReceiver({
			sites: [gone, kept],
			database: { url: database.url, migrate: false },
			settings: { PORT: 0, DISPATCH_INTERVAL_MS: 60_000 },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		for (const site of [gone, kept]) {
			const key = site.site.key;
			const origin = { origin: `https://${key}.example` };
			const anonymousId = uuidv7();
			const events = ['/', '/pricing'].map((path, index) => ({ id: uuidv7(), type: 'pageview', ts: Date.now() - 3_600_000 + index * 1000, anonymousId, sessionId: `${anonymousId}-1`, url: `https://${key}.example${path}`, title: path }));
			expect((await post(`${receiver.url}/api/track`, { site: key, events }, origin)).status).toBe(202);
			const lead = { site: key, anonymousId, email: `ana.${randomBytes(3).toString('hex')}@clinic.example`, firstName: 'Ana', consent: true, consentVersion: 'v1' };
			expect((await post(`${receiver.url}/api/lead`, lead, origin)).status).toBe(202);
		}
	}, 120_000);

	afterAll(async () => {
		await receiver?.close();
		await prisma?.$disconnect();
		if (database.name) await dropTestDatabase(database.name);
	});

	it('removes every row of the site, in tables with and without a foreign key to it, and no row of another site', async () => {
		const [goneId, keptId] = await Promise.all([gone, kept].map(async (site) => (await prisma.site.findUniqueOrThrow({ where: { key: site.site.key } })).id));
		// Both sites as if they had sealed addresses: the receiver records the key's fingerprint of each.
		const hashKey = { [PII_KEYS_ENV]: `k1:${randomBytes(32).toString('base64')}`, [PII_HASH_KEY_ENV]: randomBytes(32).toString('base64') };
		await checkPiiHashKey(prisma, [gone, kept].map((site, index) => ({ id: [goneId, keptId][index], key: site.site.key, config: { privacy: { ...site.privacy, encryptPii: true } } })), hashKey);
		const keptBefore = await rowsOf(prisma, keptId);
		const before = await rowsOf(prisma, goneId);
		// Tables that no foreign key to sites empties hold rows of the site: the test can fail.
		expect(filled(before)).toEqual(expect.arrayContaining(['sites', 'visitor_events', 'outbox', 'consent_records', 'analytics_event_counts', 'receiver_secrets']));

		await removeSite(prisma, goneId);

		const after = await rowsOf(prisma, goneId);
		expect(filled(after)).toEqual([]);
		expect(Object.keys(after)).toEqual(Object.keys(before));
		expect(await rowsOf(prisma, keptId)).toEqual(keptBefore);
		expect(filled(keptBefore)).toEqual(filled(before));
	});

	it('makes the test site with no email sequence, keeps it when not fresh, replaces it when fresh, and never takes a real site', async () => {
		const first = await prepareSelfTestSite(prisma, SELF_TEST_SITE, { script: 'a script', fresh: false });
		const site = await prisma.site.findUniqueOrThrow({ where: { id: first } });
		expect([site.key, site.domain]).toEqual([SELF_TEST_SITE, `${SELF_TEST_SITE}.invalid`]);
		expect(await prisma.emailSequence.count({ where: { siteId: first } })).toBe(0);

		expect(await prepareSelfTestSite(prisma, SELF_TEST_SITE, { script: 'a script', fresh: false })).toBe(first);
		const fresh = await prepareSelfTestSite(prisma, SELF_TEST_SITE, { script: 'a script', fresh: true });
		expect(fresh).not.toBe(first);
		expect(await prisma.site.count({ where: { id: first } })).toBe(0);

		const real = prepareSelfTestSite(prisma, kept.site.key, { script: 'a script', fresh: true });
		await expect(real).rejects.toThrow(OperatorError);
		await expect(real).rejects.toThrow(`The site "${kept.site.key}" in the CRM database is a real site (domain ${kept.site.domain}): a script writes only into a test site it made itself`);
		expect(await prisma.site.count({ where: { key: kept.site.key } })).toBe(1);
	});
});
