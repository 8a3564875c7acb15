import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { Client } from 'pg';

import { LOCK_FILE } from '../../lib/db/ownership';
import { childEnv, freePort, runBuilt, writeSiteConfig } from '../helpers/builtReceiver';
import { testDbUrl } from '../helpers/db';
import { testSiteConfig } from '../helpers/sites';
import { adminUrl, withDatabase } from '../setup/testDatabase';

/**
 * Each way the receiver cannot start is one line on stderr that names what failed and the fix,
 * with exit code 1: never a stack of driver or WebAssembly frames.
 */
describe('receiver start-up failures', () => {
	const configFile = writeSiteConfig(testSiteConfig({ endpoints: false }));
	const scratch = mkdtempSync(path.join(os.tmpdir(), 'startup-'));
	afterAll(() => rmSync(scratch, { recursive: true, force: true }));

	async function failedStart(env: NodeJS.ProcessEnv): Promise<string> {
		const { code, stderr } = await runBuilt('server/main.js', [], childEnv({ SITE_CONFIG: configFile, PORT: '0', ...env }));
		const lines = stderr.trim().split('\n');
		expect({ code, lines: lines.length }).toEqual({ code: 1, lines: 1 });
		return lines[0];
	}

	/** A setting refused before anything opens: its name and the fix under one heading, no stack, no data folder made. */
	async function refusedSetting(env: NodeJS.ProcessEnv): Promise<string> {
		const dataDir = path.join(scratch, `untouched-${randomBytes(4).toString('hex')}`);
		const { code, stderr } = await runBuilt('server/main.js', [], childEnv({ SITE_CONFIG: configFile, PORT: '0', DATA_DIR: dataDir, ...env }));
		expect({ code, stack: /\n\s+at /.test(stderr), dataDir: existsSync(dataDir) }).toEqual({ code: 1, stack: false, dataDir: false });
		expect(stderr).toMatch(/^Invalid receiver environment:\n {2}- /);
		return stderr.trim().split('\n').slice(1).join('\n');
	}

	function postgresUrl(change: (url: URL) => void): string {
		const url = new URL(testDbUrl());
		change(url);
		return url.toString();
	}

	function folder(name: string): string {
		const dir = path.join(scratch, name);
		mkdirSync(dir);
		return dir;
	}

	it('Postgres that does not answer', async () => {
		const port = await freePort();
		const line = await failedStart({ DATABASE_URL: postgresUrl((url) => (url.port = String(port))) });
		expect(line).toMatch(new RegExp(`^Cannot reach the database at 127\\.0\\.0\\.1:${port}/\\S+ \\(connection refused\\); start Postgres or fix DATABASE_URL\\.$`));
	});

	it('a database that does not exist', async () => {
		const missing = `missing_${randomBytes(4).toString('hex')}`;
		const line = await failedStart({ DATABASE_URL: postgresUrl((url) => (url.pathname = `/${missing}`)) });
		expect(line).toBe(
			`The database at 127.0.0.1:5432/${missing} does not exist (database "${missing}" does not exist); create it (e.g. createdb) or fix the database name in DATABASE_URL.`,
		);
	});

	it('a login Postgres refuses', async () => {
		const line = await failedStart({ DATABASE_URL: postgresUrl((url) => (url.username = 'no_such_role')) });
		expect(line).toMatch(/^Postgres at 127\.0\.0\.1:5432\/\S+ refused the login \(.*"no_such_role".*\); fix the user or password in DATABASE_URL\.$/);
	});

	it('DATA_DIR pointing at a file', async () => {
		const file = path.join(scratch, 'a-file');
		writeFileSync(file, 'not a folder');
		expect(await failedStart({ DATA_DIR: file })).toBe(
			`The embedded database folder ${file} is a file, not a folder; point DATA_DIR at another folder (a missing folder is created).`,
		);
	});

	it('DATA_DIR pointing at a folder of other files, which is left as it was', async () => {
		const dir = folder('project');
		writeFileSync(path.join(dir, 'notes.txt'), 'mine');
		expect(await failedStart({ DATA_DIR: dir })).toBe(
			`The embedded database folder ${dir} holds other files (notes.txt) but no database; point DATA_DIR at another folder, empty or new.`,
		);
		expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(false);
		expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
	});

	it('a data folder with garbage where the database should be', async () => {
		const dir = folder('garbage');
		writeFileSync(path.join(dir, 'PG_VERSION'), 'garbage\n');
		writeFileSync(path.join(dir, 'postgresql.conf'), '\u0000\u0001');
		expect(await failedStart({ DATA_DIR: dir })).toBe(
			`The embedded database in ${dir} cannot be opened (PGlite: PGlite failed to initialize properly): the folder is damaged or was written by another PGlite version; move it away to start with an empty database, or point DATA_DIR at another folder.`,
		);
		expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
	});

	it('a damaged database (its control file overwritten), which used to abort inside WebAssembly', async () => {
		const dir = folder('damaged');
		const db = new PGlite(dir);
		await db.waitReady;
		await db.close();
		writeFileSync(path.join(dir, 'global', 'pg_control'), randomBytes(100));
		expect(await failedStart({ DATA_DIR: dir })).toBe(
			`The embedded database in ${dir} cannot be opened (PGlite: Aborted()): the folder is damaged or was written by another PGlite version; move it away to start with an empty database, or point DATA_DIR at another folder.`,
		);
	}, 60_000);

	it('a data folder another live process owns', async () => {
		const dir = folder('owned');
		// This test process stands in for the owner: it is alive, which is all the lock is checked for.
		writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, owner: 'the receiver', since: '2026-01-02T03:04:05.678Z', token: 'test' }));
		expect(await failedStart({ DATA_DIR: dir })).toBe(
			`The embedded database in ${dir} is open in the receiver (pid ${process.pid}, since 2026-01-02T03:04:05Z), and only one process may open it: stop that process (Ctrl-C in its terminal) and run this again, or run on Postgres with DATABASE_URL.`,
		);
		expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(false);
	});

	describe('a port another program listens on', () => {
		let other: Server;
		let port: number;
		beforeAll(async () => {
			port = await freePort();
			other = createServer();
			await new Promise<void>((resolve) => other.listen(port, '127.0.0.1', resolve));
		});
		afterAll(() => new Promise((resolve) => other.close(resolve)));

		it('on Postgres', async () => {
			expect(await failedStart({ DATABASE_URL: testDbUrl(), PORT: String(port) })).toBe(
				`Port ${port} on 127.0.0.1 is in use by another program; stop it or set PORT to a free port.`,
			);
		});

		it('on the embedded database, which is freed for the next start', async () => {
			const dir = path.join(scratch, 'port-in-use');
			expect(await failedStart({ DATA_DIR: dir, PORT: String(port) })).toBe(`Port ${port} on 127.0.0.1 is in use by another program; stop it or set PORT to a free port.`);
			expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
			expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
		}, 90_000);
	});

	it('a DATABASE_URL that names no database, before it connects: the shared postgres database is left alone', async () => {
		const noDatabase = withDatabase(adminUrl(), '');
		const secret = new URL(noDatabase);
		secret.password = 's3cret-password';
		for (const url of [noDatabase, secret.toString()]) {
			expect(await refusedSetting({ DATABASE_URL: url })).toBe(
				"  - DATABASE_URL names no database; expected postgresql://user:password@host:5432/database (the CRM's own database, created first, e.g. with createdb; or unset DATABASE_URL to run on the embedded database)",
			);
		}
		const postgres = new Client({ connectionString: withDatabase(adminUrl(), 'postgres') });
		await postgres.connect();
		try {
			expect((await postgres.query(`SELECT to_regclass('public.outbox') AS outbox`)).rows).toEqual([{ outbox: null }]);
		} finally {
			await postgres.end();
		}
	});

	it('a DATABASE_URL that is no URL, or not Postgres’s', async () => {
		expect(await refusedSetting({ DATABASE_URL: 'not a url' })).toMatch(/^ {2}- DATABASE_URL is not a URL; expected postgresql:\/\/user:password@host:5432\/database \(/);
		expect(await refusedSetting({ DATABASE_URL: 'mysql://x@h/db' })).toMatch(/^ {2}- DATABASE_URL must start with postgresql:\/\/; got mysql:\/\/ \(/);
	});

	it('a TRUST_PROXY Express cannot read and a LOG_LEVEL pino does not know, before the database is opened', async () => {
		expect(await refusedSetting({ TRUST_PROXY: 'garbage!!' })).toBe(
			"  - TRUST_PROXY: must be true, false, a number of proxy hops, or the proxies' addresses or subnets, comma-separated (e.g. 172.30.0.10 or loopback, 10.0.0.0/8): invalid IP address: garbage!!; got \"garbage!!\" (string)",
		);
		expect(await refusedSetting({ TRUST_PROXY: 'loopback, 10.0.0.0/99' })).toMatch(/TRUST_PROXY: .*invalid range on address: 10\.0\.0\.0\/99/);
		expect(await refusedSetting({ LOG_LEVEL: 'verbose' })).toBe('  - LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent; got "verbose" (string)');
	});

	it('a HOST that is not an address of this machine', async () => {
		// 192.0.2.0/24 is reserved for documentation (RFC 5737): no machine has it.
		expect(await failedStart({ DATABASE_URL: testDbUrl(), HOST: '192.0.2.1' })).toBe(
			'HOST 192.0.2.1 is not an address of this machine; set HOST to one of its addresses (127.0.0.1 for this machine only, 0.0.0.0 for every network).',
		);
	});
});
