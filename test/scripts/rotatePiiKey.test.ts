/**
 * scripts/rotate-pii-key, built and run as an operator runs it, on a database of its own: the keys
 * are asked for only once a site seals personal data, so an installation without such a site needs
 * none and is told there is nothing to reseal.
 */
import { randomBytes } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';

import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { hashKeyFingerprint, hashKeyPinName } from '../../lib/piiHashKey';
import { childEnv, runBuilt } from '../helpers/builtReceiver';
import { createTestSite } from '../helpers/db';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const newKey = () => randomBytes(32).toString('base64');

describe('scripts/rotate-pii-key', () => {
	let database = { name: '', url: '' };
	let prisma: PrismaClient;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_rotate_cli');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
	}, 120_000);

	afterAll(async () => {
		await prisma?.$disconnect();
		if (database.name) await dropTestDatabase(database.name);
	});

	const rotate = (env: NodeJS.ProcessEnv = {}) => runBuilt('scripts/rotate-pii-key.js', [], childEnv({ DATABASE_URL: database.url, PII_ENCRYPTION_KEYS: '', PII_HASH_KEY: '', ...env }));

	it('needs no keys while no site has privacy.encryptPii, and names the missing one once a site has it', async () => {
		const site = await createTestSite(prisma, 'rotate-cli');
		expect(await rotate()).toEqual({ code: 0, stdout: 'No site has privacy.encryptPii: true; nothing to reseal\n', stderr: '' });

		await prisma.site.update({ where: { id: site.id }, data: { config: { privacy: { encryptPii: true } } } });
		const missing = await rotate();
		expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('PII_ENCRYPTION_KEYS: is not set, and a site has privacy.encryptPii: true')]);

		const hashKey = newKey();
		// The receiver first ran the site under this hash key: resealing under another would move its leads' hashes onto that one.
		await prisma.receiverSecret.create({ data: { name: hashKeyPinName(site.id), value: hashKeyFingerprint(Buffer.from(hashKey, 'base64')) } });
		const otherHashKey = await rotate({ PII_ENCRYPTION_KEYS: `k1:${newKey()}`, PII_HASH_KEY: newKey() });
		expect([otherHashKey.code, otherHashKey.stdout]).toEqual([1, '']);
		expect(otherHashKey.stderr).toContain(`PII_HASH_KEY: is not the key the addresses of site "${site.key}" were hashed with`);

		const keyed = await rotate({ PII_ENCRYPTION_KEYS: `k1:${newKey()}`, PII_HASH_KEY: hashKey });
		expect([keyed.code, keyed.stdout]).toEqual([0, expect.stringContaining(`${site.key}: resealed under key "k1"`)]);
	}, 60_000);
});
