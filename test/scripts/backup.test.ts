/**
 * scripts/backup-database and scripts/restore-database, built (dist/scripts) and run as an
 * operator runs them, against a real Postgres database seeded with CRM rows: a backup, the
 * database dropped, the backup restored, and every table's rows compared, count and checksum,
 * and the database's own settings, which pg_dump leaves out, set again.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';

import { generateDataset } from '../../bench/dataset/generate';
import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { createTestSite } from '../helpers/db';
import { roundTripEveryModel } from '../helpers/roundTrip';
import { MIGRATION_DATABASE_SETTINGS } from '../../scripts/backup-database-archive';
import { adminUrl, createTestDatabase, dropTestDatabase, withDatabase } from '../setup/testDatabase';

const ROOT = path.resolve(__dirname, '../..');
const PASSPHRASE = 'a long passphrase for the test backups';

/** `nodeOptions` go to node before the script, e.g. a module to preload. */
function script(name: 'backup-database' | 'restore-database', args: string[], env: Record<string, string | undefined>, nodeOptions: string[] = []): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, [...nodeOptions, path.join(ROOT, 'dist', 'scripts', `${name}.js`), ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
		});
	});
}

/** Every table of the public schema: its row count and an md5 over its rows in primary-key order; and every sequence's position. */
async function fingerprint(url: string): Promise<Record<string, string>> {
	const client = new Client({ connectionString: url });
	await client.connect();
	try {
		const tables = await client.query<{ table: string; key: string | null }>(`
			SELECT c.relname AS table,
			       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey::int2[], a.attnum))
			          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
			         WHERE i.indrelid = c.oid AND i.indisprimary) AS key
			  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
			 ORDER BY 1`);
		const prints: Record<string, string> = {};
		for (const { table, key } of tables.rows) {
			const order = key ?? 't::text';
			const row = await client.query<{ n: number; md5: string }>(`SELECT count(*)::int AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${order}), '')) AS md5 FROM public.${JSON.stringify(table)} t`);
			prints[table] = `${row.rows[0].n} rows, md5 ${row.rows[0].md5}`;
		}
		const sequences = await client.query<{ name: string; last: string | null }>(`SELECT sequencename AS name, last_value::text AS last FROM pg_sequences WHERE schemaname = 'public'`);
		for (const { name, last } of sequences.rows) prints[`sequence ${name}`] = String(last);
		return prints;
	} finally {
		await client.end();
	}
}

async function databaseExists(name: string): Promise<boolean> {
	const client = new Client({ connectionString: adminUrl() });
	await client.connect();
	try {
		return (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
	} finally {
		await client.end();
	}
}

/** The database's own settings (ALTER DATABASE … SET), as "name=value". */
async function databaseSettings(name: string): Promise<string[]> {
	const client = new Client({ connectionString: adminUrl() });
	await client.connect();
	try {
		const result = await client.query<{ settings: string[] }>(
			`SELECT coalesce(s.setconfig, '{}') AS settings FROM pg_database d LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 WHERE d.datname = $1`,
			[name],
		);
		return [...result.rows[0].settings].sort();
	} finally {
		await client.end();
	}
}

const listedSettings = MIGRATION_DATABASE_SETTINGS.map((setting) => `${setting.name}=${setting.value}`).sort();
const rowsOf = (prints: Record<string, string>, table: string): number => Number(/^(\d+) rows/.exec(prints[table])?.[1]);
const backupsIn = (dir: string): string[] => readdirSync(dir).filter((name) => /\.dump(\.enc)?$/.test(name)).sort();

describe('scripts/backup-database and scripts/restore-database', () => {
	let source = { name: '', url: '' };
	let before: Record<string, string> = {};
	const extraDatabases: string[] = [];
	const work = mkdtempSync(path.join(tmpdir(), 'crm-backups-'));

	beforeAll(async () => {
		source = await createTestDatabase('tcrm_backup');
		await deployMigrations(new PrismaPg({ connectionString: source.url }));
		const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: source.url }) });
		try {
			// Two sites of generated traffic, leads and email, and one row through every model.
			for (const name of ['backup-a', 'backup-b']) {
				const site = await createTestSite(prisma, name);
				await generateDataset((sql) => prisma.$queryRawUnsafe<unknown[]>(sql), { siteId: site.id, events: 3_000, days: 3, seed: 7 });
			}
			await roundTripEveryModel(prisma);
		} finally {
			await prisma.$disconnect();
		}
		before = await fingerprint(source.url);
	}, 180_000);

	afterAll(async () => {
		for (const name of [source.name, ...extraDatabases]) if (name) await dropTestDatabase(name);
		rmSync(work, { recursive: true, force: true });
	});

	it('lists exactly the settings the migrations set on a new database, each with a migration that sets it', async () => {
		expect(await databaseSettings(source.name)).toEqual(listedSettings);
		for (const { migration, name, value } of MIGRATION_DATABASE_SETTINGS) {
			expect(readFileSync(path.join(ROOT, 'prisma', 'migrations', migration, 'migration.sql'), 'utf8')).toMatch(new RegExp(`ALTER DATABASE %I SET ${name} = ${value}`));
		}
	});

	it('backs up, and after the database is dropped restores every table with the same rows', async () => {
		expect(rowsOf(before, 'visitor_events')).toBeGreaterThan(2_000);
		expect(rowsOf(before, 'leads')).toBeGreaterThan(5);
		const filled = Object.keys(before).filter((table) => !table.startsWith('sequence ') && rowsOf(before, table) > 0);
		expect(filled.length).toBeGreaterThanOrEqual(25);

		const dir = path.join(work, 'plain');
		const backup = await script('backup-database', ['--dir', dir, '--keep', '3'], { DATABASE_URL: source.url });
		expect([backup.code, backup.output]).toEqual([0, expect.stringContaining(`backup ${dir}/${source.name}-`)]);
		const [file] = backupsIn(dir);
		expect(readFileSync(path.join(dir, `${file}.sha256`), 'utf8')).toMatch(new RegExp(`^[0-9a-f]{64}  ${file}\\n$`));

		await dropTestDatabase(source.name);
		expect(await databaseExists(source.name)).toBe(false);
		const restore = await script('restore-database', [path.join(dir, file)], { DATABASE_URL: source.url });
		expect([restore.code, restore.output]).toEqual([0, expect.stringContaining(`restored  ${file} into`)]);
		expect(restore.output).toContain('created ');

		const after = await fingerprint(source.url);
		expect(after).toEqual(before);
		expect(restore.output).toContain(`settings  ${listedSettings.join(', ')} on `);
		expect(await databaseSettings(source.name)).toEqual(listedSettings);
		const tables = Object.keys(after).filter((name) => !name.startsWith('sequence '));
		console.log(`restored ${tables.length} tables, identical:\n${tables.map((table) => `  ${table.padEnd(28)} ${after[table]}`).join('\n')}`);
	}, 180_000);

	it('encrypts with a passphrase from the environment, and restores only with that passphrase', async () => {
		const dir = path.join(work, 'encrypted');
		const backup = await script('backup-database', ['--dir', dir, '--encrypt'], { DATABASE_URL: source.url, BACKUP_PASSPHRASE: PASSPHRASE });
		expect([backup.code, backup.output]).toEqual([0, expect.stringContaining('encrypted (AES-256-GCM)')]);
		const [file] = backupsIn(dir);
		expect(file).toMatch(/\.dump\.enc$/);
		const bytes = readFileSync(path.join(dir, file));
		expect(bytes.subarray(0, 8).toString('ascii')).toBe('TCRMBAK1');
		// pg_dump's custom archives start with PGDMP; an encrypted one must not hold that header anywhere readable.
		expect(bytes.includes(Buffer.from('PGDMP'))).toBe(false);

		const target = `${source.name}_enc`;
		extraDatabases.push(target);
		const wrong = await script('restore-database', [path.join(dir, file), '--name', target], { DATABASE_URL: source.url, BACKUP_PASSPHRASE: 'not the passphrase at all' });
		expect([wrong.code, wrong.output]).toEqual([1, expect.stringContaining('does not decrypt with the passphrase in BACKUP_PASSPHRASE')]);
		const none = await script('restore-database', [path.join(dir, file), '--name', target], { DATABASE_URL: source.url });
		expect([none.code, none.output]).toEqual([1, expect.stringContaining('No passphrase: set BACKUP_PASSPHRASE')]);
		expect(await databaseExists(target)).toBe(false);

		const right = await script('restore-database', [path.join(dir, file), '--name', target, '--passphrase-env', 'CRM_BACKUP_KEY'], { DATABASE_URL: source.url, CRM_BACKUP_KEY: PASSPHRASE });
		expect([right.code, right.output]).toEqual([0, expect.stringContaining('decrypted (AES-256-GCM)')]);
		expect(await fingerprint(withDatabase(source.url, target))).toEqual(before);
		expect(await databaseSettings(target)).toEqual(listedSettings);
	}, 180_000);

	it('writes a whole, decryptable backup on every encrypted run of a small database, which pg_dump reads before the key is derived', async () => {
		const small = await createTestDatabase('tcrm_backup_small');
		extraDatabases.push(small.name);
		const client = new Client({ connectionString: small.url });
		await client.connect();
		try {
			await client.query(`CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT n, 'note ' || n FROM generate_series(1, 20) n`);
		} finally {
			await client.end();
		}
		const dir = path.join(work, 'small');
		const env = { DATABASE_URL: small.url, BACKUP_PASSPHRASE: PASSPHRASE };
		const written: string[] = [];
		for (let run = 0; run < 8; run++) {
			const backup = await script('backup-database', ['--dir', dir, '--encrypt', '--keep', '20'], env);
			expect([run, backup.code, backup.output]).toEqual([run, 0, expect.stringContaining('encrypted (AES-256-GCM)')]);
			written.push(path.basename(/^backup (.+)$/m.exec(backup.output)![1]));
		}
		expect(readdirSync(dir).sort()).toEqual([...written, ...written.map((name) => `${name}.sha256`)].sort());
		for (const file of written) {
			const check = await script('restore-database', [path.join(dir, file), '--name', `${small.name}_check`, '--dry-run'], env);
			expect([file, check.code, check.output]).toEqual([file, 0, expect.stringMatching(/checksum {2}ok[^]*archive {3}ok, decrypted \(AES-256-GCM\): 1 table\(s\)/)]);
		}
		const target = `${small.name}_restored`;
		extraDatabases.push(target);
		const restore = await script('restore-database', [path.join(dir, written[0]), '--name', target], env);
		expect([restore.code, restore.output]).toEqual([0, expect.stringContaining('restored ')]);
		expect(await fingerprint(withDatabase(small.url, target))).toEqual(await fingerprint(small.url));
	}, 180_000);

	it('fails, and leaves no file, when the run would otherwise end with its work undone', async () => {
		// pg_dump's end never reaches the script: the wait for it can never end, and Node would exit 0.
		const preload = path.join(work, 'lose-close.js');
		writeFileSync(
			preload,
			`const childProcess = require('node:child_process');
const spawn = childProcess.spawn;
childProcess.spawn = (...args) => {
	const child = spawn(...args);
	const once = child.once.bind(child);
	child.once = (event, listener) => (event === 'close' ? child : once(event, listener));
	return child;
};
`,
		);
		const dir = path.join(work, 'stalled');
		for (const args of [['--encrypt'], []]) {
			const backup = await script('backup-database', ['--dir', dir, ...args], { DATABASE_URL: source.url, BACKUP_PASSPHRASE: PASSPHRASE }, ['--require', preload]);
			expect([args, backup.code, backup.output]).toEqual([args, 1, expect.stringContaining('backup-database stalled before the backup was complete')]);
			expect(readdirSync(dir)).toEqual([]);
		}
	}, 180_000);

	it('keeps the newest N backups of the database and touches no other file', async () => {
		const dir = path.join(work, 'rotation');
		const foreign = ['notes.txt', 'otherdb-2020-01-01T00-00-00-000Z.dump'];
		const written: string[] = [];
		for (let run = 0; run < 4; run++) {
			const backup = await script('backup-database', ['--dir', dir, '--keep', '2'], { DATABASE_URL: source.url });
			expect(backup.code).toBe(0);
			written.push(path.basename(/^backup (.+)$/m.exec(backup.output)![1]));
			if (run === 0) for (const name of foreign) writeFileSync(path.join(dir, name), 'not ours');
		}
		expect(new Set(written).size).toBe(4);
		expect(backupsIn(dir)).toEqual([...written.slice(2), foreign[1]].sort());
		expect(readdirSync(dir).sort()).toEqual([...written.slice(2), ...written.slice(2).map((name) => `${name}.sha256`), ...foreign].sort());

		const dry = await script('backup-database', ['--dir', dir, '--keep', '1', '--dry-run'], { DATABASE_URL: source.url });
		expect([dry.code, dry.output]).toEqual([0, expect.stringContaining(`would delete 2 older backup(s) beyond --keep 1`)]);
		expect(backupsIn(dir)).toEqual([...written.slice(2), foreign[1]].sort());
	}, 180_000);

	it('refuses to restore over a database that holds tables, unless --force, which puts the backup’s rows back', async () => {
		const dir = path.join(work, 'force');
		expect((await script('backup-database', ['--dir', dir], { DATABASE_URL: source.url })).code).toBe(0);
		const file = path.join(dir, backupsIn(dir)[0]);
		const client = new Client({ connectionString: source.url });
		await client.connect();
		try {
			await client.query('DELETE FROM email_events');
			await client.query(`UPDATE leads SET score = score + 1000`);
		} finally {
			await client.end();
		}
		const changed = await fingerprint(source.url);
		expect(changed.email_events).not.toEqual(before.email_events);

		const refused = await script('restore-database', [file], { DATABASE_URL: source.url });
		expect([refused.code, refused.output]).toEqual([1, expect.stringMatching(/is not empty: it holds \d+ table\(s\) \(public\._prisma_migrations, .*Pass --force/)]);
		const dry = await script('restore-database', [file, '--force', '--dry-run'], { DATABASE_URL: source.url });
		expect([dry.code, dry.output]).toEqual([0, expect.stringContaining("dry run: would replace the backup's objects")]);
		expect(await fingerprint(source.url)).toEqual(changed);

		const forced = await script('restore-database', [file, '--force'], { DATABASE_URL: source.url });
		expect([forced.code, forced.output]).toEqual([0, expect.stringContaining('restored ')]);
		expect(await fingerprint(source.url)).toEqual(before);
	}, 180_000);

	it('stops on bad input with what is wrong and the fix, and changes nothing', async () => {
		const dir = path.join(work, 'bad');
		const cases: Array<[string, Promise<{ code: number; output: string }>, number, string]> = [
			['no database', script('backup-database', ['--dir', dir], {}), 2, 'No database: set --database or DATABASE_URL'],
			['not a URL', script('backup-database', ['--dir', dir], { DATABASE_URL: 'crm-db' }), 2, 'is not a URL; expected postgresql://'],
			['keep 0', script('backup-database', ['--dir', dir, '--keep', '0'], { DATABASE_URL: source.url }), 2, '--keep (BACKUP_KEEP) must be a whole number of backups, 1 or more; got "0"'],
			['no passphrase', script('backup-database', ['--dir', dir, '--encrypt'], { DATABASE_URL: source.url }), 1, 'No passphrase: set BACKUP_PASSPHRASE'],
			['short passphrase', script('backup-database', ['--dir', dir, '--encrypt'], { DATABASE_URL: source.url, BACKUP_PASSPHRASE: 'short' }), 1, 'use a passphrase of at least 12'],
			['server down', script('backup-database', ['--dir', dir], { DATABASE_URL: 'postgresql://postgres@127.0.0.1:9/crm' }), 1, 'pg_dump could not reach 127.0.0.1:9/crm: is Postgres up'],
			['no such database', script('backup-database', ['--dir', dir], { DATABASE_URL: withDatabase(source.url, 'no_such_crm_db') }), 1, 'does not exist; check the URL'],
			['no pg_dump', script('backup-database', ['--dir', dir, '--pg-bin', '/nonexistent'], { DATABASE_URL: source.url }), 1, 'pg_dump was not found. Install PostgreSQL'],
			['unknown option', script('backup-database', ['--keep-last', '3'], { DATABASE_URL: source.url }), 2, "Unknown option '--keep-last'"],
			['no backup named', script('restore-database', [], { DATABASE_URL: source.url }), 2, 'Which backup? Give its file'],
			['missing file', script('restore-database', [path.join(work, 'nope.dump')], { DATABASE_URL: source.url }), 2, 'nope.dump does not exist or cannot be read'],
		];
		for (const [what, run, code, message] of cases) {
			const { code: actual, output } = await run;
			expect([what, actual, output]).toEqual([what, code, expect.stringContaining(message)]);
		}
		expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
	}, 180_000);

	it('refuses a damaged backup, one without its checksum and a file that is no archive', async () => {
		const dir = path.join(work, 'damaged');
		expect((await script('backup-database', ['--dir', dir], { DATABASE_URL: source.url })).code).toBe(0);
		const good = path.join(dir, backupsIn(dir)[0]);
		const target = `${source.name}_damaged`;
		extraDatabases.push(target);

		const flipped = path.join(work, 'flipped.dump');
		const bytes = readFileSync(good);
		bytes[Math.floor(bytes.length / 2)] ^= 0xff;
		writeFileSync(flipped, bytes);
		copyFileSync(`${good}.sha256`, `${flipped}.sha256`);
		const damaged = await script('restore-database', [flipped, '--name', target], { DATABASE_URL: source.url });
		expect([damaged.code, damaged.output]).toEqual([1, expect.stringContaining('does not match its checksum')]);

		const lonely = path.join(work, 'lonely.dump');
		copyFileSync(good, lonely);
		const unchecked = await script('restore-database', [lonely, '--name', target], { DATABASE_URL: source.url });
		expect([unchecked.code, unchecked.output]).toEqual([1, expect.stringContaining('lonely.dump.sha256 is missing')]);

		const notArchive = path.join(work, 'notes.dump');
		writeFileSync(notArchive, 'these are notes, not a database');
		writeFileSync(`${notArchive}.sha256`, `${createHash('sha256').update(readFileSync(notArchive)).digest('hex')}  notes.dump\n`);
		const junk = await script('restore-database', [notArchive, '--name', target], { DATABASE_URL: source.url });
		expect([junk.code, junk.output]).toEqual([1, expect.stringContaining('notes.dump is not a whole pg_dump archive')]);

		expect(await databaseExists(target)).toBe(false);
		const dry = await script('restore-database', [good, '--name', target, '--dry-run'], { DATABASE_URL: source.url });
		expect([dry.code, dry.output]).toEqual([0, expect.stringContaining('dry run: would create')]);
		expect(await databaseExists(target)).toBe(false);
	}, 180_000);
});
