/**
 * scripts/api-key and createApiKey: a key's name picks one active key of its site, so `revoke --name`
 * can never take a second key in use with it, and a name that picks none says which names there are.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';

import { createApiKey, KeyNameTakenError, revokeApiKeys } from '../../server/auth';
import { FIRST_KEY_NAME } from '../../server/dashboard/firstKeys';
import { childEnv, runBuilt } from '../helpers/builtReceiver';
import { createTestSite, testDbUrl, testPrisma } from '../helpers/db';

const ROOT = path.resolve(__dirname, '..', '..');

describe('scripts/api-key', () => {
	const prisma = testPrisma();
	const env = childEnv({ DATABASE_URL: testDbUrl() });
	const run = (args: string[]) => runBuilt('scripts/api-key.js', args, env);
	afterAll(async () => {
		await prisma.$disconnect();
	});

	it('refuses a second active key of the same name on a site, naming --name', async () => {
		const site = await createTestSite(prisma, 'keys');
		const first = await run(['create', '--site', site.key, '--scope', 'read', '--name', 'r']);
		expect([first.code, first.stderr]).toEqual([0, '']);
		expect(first.stdout.trim()).toMatch(/^tcrm_read_\S+$/);

		const second = await run(['create', '--site', site.key, '--scope', 'admin', '--name', 'r']);
		expect([second.code, second.stdout]).toEqual([1, '']);
		expect(second.stderr).toMatch(/--name "r"/);
		expect(second.stderr).toMatch(/revoke/);
		expect(await prisma.apiKey.count({ where: { siteId: site.id, name: 'r', revokedAt: null } })).toBe(1);

		// Another site may use the name.
		const other = await createTestSite(prisma, 'keys');
		expect((await run(['create', '--site', other.key, '--scope', 'read', '--name', 'r'])).code).toBe(0);
	}, 60_000);

	it('revokes the one key of a name, and the name is free again afterwards', async () => {
		const site = await createTestSite(prisma, 'keys');
		expect((await run(['create', '--site', site.key, '--scope', 'read', '--name', 'r'])).code).toBe(0);
		expect((await run(['create', '--site', site.key, '--scope', 'read', '--name', 'kept'])).code).toBe(0);
		const revoked = await run(['revoke', '--site', site.key, '--name', 'r']);
		expect([revoked.code, revoked.stdout.trim()]).toEqual([0, 'Revoked the key named "r".']);
		expect(await prisma.apiKey.count({ where: { siteId: site.id, revokedAt: null } })).toBe(1);
		expect((await run(['create', '--site', site.key, '--scope', 'read', '--name', 'r'])).code).toBe(0);
	}, 60_000);

	it('exits non-zero on a name no active key has, listing the site’s key names', async () => {
		const site = await createTestSite(prisma, 'keys');
		expect((await run(['create', '--site', site.key, '--scope', 'read', '--name', 'dashboard'])).code).toBe(0);
		expect((await run(['create', '--site', site.key, '--scope', 'admin', '--name', 'n8n'])).code).toBe(0);
		const missing = await run(['revoke', '--site', site.key, '--name', 'nope']);
		expect(missing.code).toBe(1);
		expect(missing.stdout).toBe('');
		expect(missing.stderr).toMatch(/No active key named "nope"/);
		expect(missing.stderr).toMatch(/"dashboard" \(read\)/);
		expect(missing.stderr).toMatch(/"n8n" \(admin\)/);
		expect(await prisma.apiKey.count({ where: { siteId: site.id, revokedAt: null } })).toBe(2);

		const empty = await createTestSite(prisma, 'keys');
		const none = await run(['revoke', '--site', empty.key, '--name', 'nope']);
		expect(none.code).toBe(1);
		expect(none.stderr).toMatch(/has no active keys/);
	}, 60_000);

	it('takes no option as the value of another', async () => {
		const site = await createTestSite(prisma, 'keys');
		const answer = await run(['create', '--site', site.key, '--name', '--scope', 'read']);
		expect(answer.code).toBe(2);
		expect(answer.stderr).toMatch(/--name needs a value/);
		expect(await prisma.apiKey.count({ where: { siteId: site.id } })).toBe(0);
	});

	it('refuses the same name in createApiKey itself, whoever calls it (the first start, a test), naming the field; a revoked key’s name is free again', async () => {
		const site = await createTestSite(prisma, 'keys');
		await createApiKey(prisma, site.id, 'read', FIRST_KEY_NAME);
		const taken = createApiKey(prisma, site.id, 'admin', FIRST_KEY_NAME);
		await expect(taken).rejects.toBeInstanceOf(KeyNameTakenError);
		await expect(taken).rejects.toMatchObject({
			field: 'name',
			keyName: FIRST_KEY_NAME,
			active: [{ name: FIRST_KEY_NAME, scope: 'read' }],
			message: `name "${FIRST_KEY_NAME}" is already used by an active key of this site: choose another name, or revoke that key first`,
		});
		expect(await prisma.apiKey.count({ where: { siteId: site.id } })).toBe(1);

		expect((await revokeApiKeys(prisma, site.id, FIRST_KEY_NAME)).revoked).toBe(1);
		await expect(createApiKey(prisma, site.id, 'admin', FIRST_KEY_NAME)).resolves.toMatch(/^tcrm_admin_\S+$/);
		expect(await prisma.apiKey.count({ where: { siteId: site.id, name: FIRST_KEY_NAME, revokedAt: null } })).toBe(1);
	});

	it('runs as scripts/api-key, the command its messages and health-check name', async () => {
		const site = await createTestSite(prisma, 'keys');
		const answer = await new Promise<{ code: number; stdout: string }>((resolve) => {
			execFile(path.join(ROOT, 'scripts', 'api-key'), ['create', '--site', site.key, '--scope', 'admin', '--name', 'wrapper'], { env }, (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }));
		});
		expect([answer.code, answer.stdout.trim()]).toEqual([0, expect.stringMatching(/^tcrm_admin_\S+$/)]);
		expect(await prisma.apiKey.count({ where: { siteId: site.id, name: 'wrapper', revokedAt: null } })).toBe(1);
	}, 60_000);

	it('makes one key of a name when creates race', async () => {
		const site = await createTestSite(prisma, 'keys');
		const results = await Promise.allSettled(Array.from({ length: 6 }, () => createApiKey(prisma, site.id, 'read', 'raced')));
		expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
		for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(KeyNameTakenError);
		expect(await prisma.apiKey.count({ where: { siteId: site.id, name: 'raced' } })).toBe(1);
	});
});
