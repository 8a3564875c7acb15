import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { openDatabase } from '../../lib/db';
import { FIRST_KEY_NAME } from '../../server/dashboard/firstKeys';
import { childEnv, freePort, runBuilt, startBuiltReceiver, stopBuilt, writeSiteConfig, type Started } from '../helpers/builtReceiver';
import { testDbUrl } from '../helpers/db';
import { testSiteConfig } from '../helpers/sites';

async function statsStatus(port: number, key: string): Promise<number> {
	const response = await fetch(`http://127.0.0.1:${port}/api/stats`, { headers: { authorization: `Bearer ${key}` } });
	await response.body?.cancel();
	return response.status;
}

/** `api-key.js create` while the receiver runs: every printed key works at once, or nothing is printed. */
describe('API keys created while the receiver runs', () => {
	const site = testSiteConfig({ endpoints: false });
	const configFile = writeSiteConfig(site);
	const createArgs = (name: string) => ['create', '--site', site.site.key, '--scope', 'read', '--name', name];
	let receiver: Started | undefined;
	afterEach(() => {
		receiver?.child.kill('SIGKILL');
		receiver = undefined;
	});

	it('on Postgres, each printed key reads at once from the running receiver', async () => {
		const port = await freePort();
		const env = { DATABASE_URL: testDbUrl(), SITE_CONFIG: configFile };
		receiver = await startBuiltReceiver(port, env);
		for (const name of ['first', 'second', 'third']) {
			const { code, stdout, stderr } = await runBuilt('scripts/api-key.js', createArgs(name), childEnv(env));
			expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
			const key = stdout.trim();
			expect(key).toMatch(/^tcrm_read_\S+$/);
			expect(await statsStatus(port, key)).toBe(200);
		}
		expect(await statsStatus(port, 'tcrm_read_not-a-key')).toBe(401);
	}, 180_000);

	it('on the embedded database, refuses while the receiver owns it and prints no key; a key made after stopping it works', async () => {
		const dataDir = mkdtempSync(path.join(os.tmpdir(), 'api-keys-embedded-'));
		try {
			const port = await freePort();
			const env = { DATA_DIR: dataDir, SITE_CONFIG: configFile };
			receiver = await startBuiltReceiver(port, env);
			const pid = receiver.child.pid!;
			const refusal = `The embedded database in ${dataDir} is open in the receiver (pid ${pid}, since `;
			for (const name of ['first', 'second', 'third']) {
				const { code, stdout, stderr } = await runBuilt('scripts/api-key.js', createArgs(name), childEnv(env));
				expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
				expect(stderr.trim().split('\n')).toEqual([expect.stringContaining(refusal)]);
				expect(stderr).toContain('stop that process (Ctrl-C in its terminal) and run this again, or run on Postgres with DATABASE_URL.');
			}
			const migrate = await runBuilt('scripts/migrate.js', ['deploy'], childEnv(env));
			expect(migrate.code).toBe(1);
			expect(migrate.stderr.trim().split('\n')).toEqual([expect.stringContaining(`migrate: ${refusal}`)]);
			const second = await runBuilt('server/main.js', [], childEnv({ ...env, PORT: String(await freePort()) }));
			expect(second.code).toBe(1);
			expect(second.stderr).toContain(refusal);

			expect((await stopBuilt(receiver)).code).toBe(0);
			receiver = undefined;
			const created = await runBuilt('scripts/api-key.js', createArgs('after-stop'), childEnv(env));
			expect(created.code).toBe(0);
			const key = created.stdout.trim();

			receiver = await startBuiltReceiver(port, env);
			expect(await statsStatus(port, key)).toBe(200);
			expect((await stopBuilt(receiver)).code).toBe(0);
			receiver = undefined;

			// The refused runs stored nothing: besides the read key the receiver made at its first start, the one key is the one that was printed.
			const db = await openDatabase({ url: null, dataDir, migrate: false });
			try {
				expect((await db.prisma.apiKey.findMany({ select: { name: true } })).map((row) => row.name).sort()).toEqual(['after-stop', FIRST_KEY_NAME]);
			} finally {
				await db.close();
			}
		} finally {
			rmSync(dataDir, { recursive: true, force: true });
		}
	}, 300_000);
});
