#!/usr/bin/env node
/** Restores a backup of scripts/backup-database: verified, decrypted, into a named database, never over data without --force. */
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Client, type ClientConfig } from 'pg';

import {
	databaseOf,
	decryptInto,
	describe,
	explainPgError,
	finished,
	isEncrypted,
	MIGRATION_DATABASE_SETTINGS,
	nowhere,
	parseDatabaseUrl,
	passphraseFrom,
	pgProgram,
	readChecksum,
	sha256Of,
	startPg,
	withDatabase,
} from './backup-database-archive';
import { onStop, OperatorError, option, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/restore-database <backup file> [options]

Restores a backup made by scripts/backup-database:
  1. checks the file against its checksum (<backup>.sha256 beside it);
  2. decrypts it when it is encrypted (.dump.enc; the passphrase from the environment) and
     checks that it is a whole pg_dump archive (pg_restore --list);
  3. creates the target database when it does not exist; refuses one that already holds
     tables, unless --force is given;
  4. restores with pg_restore in one transaction: if anything fails, the target is left as it
     was;
  5. sets the database's own settings the restored migrations had set (${MIGRATION_DATABASE_SETTINGS.map((setting) => `${setting.name}=${setting.value}`).join(', ')}),
     which pg_dump leaves out of a backup.
Stop the receivers and n8n that use the target database before restoring over it, and start
them after.

Options:
  --database <url>         the target database (env DATABASE_URL)
  --name <database>        restore into this database on the same server instead of the URL's
                           own, e.g. --name crm_restored to look at a backup beside the live one
  --force                  restore into a database that holds tables: every object of the
                           backup is dropped and made again from the backup (pg_restore
                           --clean); objects the backup does not have are left alone
  --passphrase-env <name>  the variable holding an encrypted backup's passphrase
                           (default BACKUP_PASSPHRASE)
  --pg-bin <folder>        the folder of pg_restore (env PG_BIN; default: from PATH)
  --dry-run                do steps 1 and 2, say what 3 and 4 would do, change nothing
  -h, --help               this text

Exit code 0 when restored, 1 when the backup or the restore failed, 2 on bad usage.`;

/** pg's settings for a URL, field by field: the URL's other parameters (Prisma's) are not pg's. */
function clientConfig(url: URL): ClientConfig {
	const sslmode = url.searchParams.get('sslmode');
	return {
		host: url.hostname || '127.0.0.1',
		port: Number(url.port || 5432),
		user: decodeURIComponent(url.username || 'postgres'),
		password: decodeURIComponent(url.password),
		database: databaseOf(url),
		connectionTimeoutMillis: 10_000,
		ssl: sslmode && sslmode !== 'disable' && sslmode !== 'prefer' && sslmode !== 'allow' ? { rejectUnauthorized: sslmode === 'verify-full' || sslmode === 'verify-ca' } : undefined,
	};
}

class MissingDatabase extends Error {}

async function query<T>(url: URL, run: (client: Client) => Promise<T>): Promise<T> {
	const client = new Client(clientConfig(url));
	try {
		await client.connect();
	} catch (error) {
		if ((error as { code?: string }).code === '3D000') throw new MissingDatabase();
		throw new OperatorError(`Cannot connect to ${describe(url)} (${(error as Error).message}): is Postgres up, and are the user and password in the URL right?`);
	}
	try {
		return await run(client);
	} finally {
		await client.end();
	}
}

const quoteIdentifier = (name: string): string => `"${name.replace(/"/g, '""')}"`;
/** The database as a libpq connection string, so no name is ever read as a URL or an option. */
const conninfoDatabase = (name: string): string => `dbname='${name.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

interface Target {
	exists: boolean;
	tables: string[];
}

async function inspectTarget(url: URL): Promise<Target> {
	try {
		const tables = await query(url, async (client) => {
			const result = await client.query<{ name: string }>(
				`SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
				 ORDER BY 1`,
			);
			return result.rows.map((row) => row.name);
		});
		return { exists: true, tables };
	} catch (error) {
		if (error instanceof MissingDatabase) return { exists: false, tables: [] };
		throw error;
	}
}

interface ArchiveSummary {
	tables: number;
	createdAt?: string;
	database?: string;
	serverVersion?: string;
}

/** What `pg_restore --list` says of the archive: proof that it is whole, and what it holds. */
function summarize(list: string): ArchiveSummary {
	return {
		tables: list.split('\n').filter((line) => /^\d+; \d+ \d+ TABLE DATA /.test(line)).length,
		createdAt: /^; Archive created at (.+)$/m.exec(list)?.[1],
		database: /^;\s+dbname: (.+)$/m.exec(list)?.[1],
		serverVersion: /^;\s+Dumped from database version: (.+)$/m.exec(list)?.[1],
	};
}

const LIST_FEED_ENDS = new Set(['EPIPE', 'ERR_STREAM_PREMATURE_CLOSE']);

async function listArchive(file: string, encrypted: boolean, passphrase: string | undefined, passphraseVariable: string, pgRestore: string, url: URL): Promise<ArchiveSummary> {
	// The tag first: pg_restore stops reading at the first wrong byte, before GCM could say why.
	if (encrypted) await decryptInto(file, passphrase!, passphraseVariable, nowhere());
	const list = startPg(pgRestore, encrypted ? ['--list'] : ['--list', file], url, encrypted ? 'pipe' : 'ignore');
	let output = '';
	list.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
	const fed = encrypted ? decryptInto(file, passphrase!, passphraseVariable, list.stdin!).then(() => undefined, (error: Error) => error) : Promise.resolve(undefined);
	const [run, feedError] = await Promise.all([finished(list, pgRestore), fed]);
	if (run.code !== 0) throw new OperatorError(`${path.basename(file)} is not a whole pg_dump archive: ${explainPgError(pgRestore, url, run)}`);
	// --list reads the table of contents and leaves the data unread: a closed pipe then is its due end,
	// reported as EPIPE by a write under way, or as a premature close when the pipe went between writes.
	if (feedError && !LIST_FEED_ENDS.has(String((feedError as NodeJS.ErrnoException).code))) throw feedError;
	return summarize(output);
}

async function main(argv: string[]): Promise<number> {
	const { values, positionals } = parseArgs({
		args: argv,
		allowPositionals: true,
		options: {
			database: { type: 'string' },
			name: { type: 'string' },
			force: { type: 'boolean' },
			'passphrase-env': { type: 'string' },
			'pg-bin': { type: 'string' },
			'dry-run': { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	if (positionals.length !== 1) throw new UsageError(positionals.length ? `One backup file at a time; got ${positionals.join(' ')}` : 'Which backup? Give its file, e.g. backups/crm-2026-11-20T03-00-00-000Z.dump');
	const file = path.resolve(positionals[0]);
	try {
		await access(file, constants.R_OK);
	} catch {
		throw new UsageError(`Backup ${file} does not exist or cannot be read`);
	}
	let url = parseDatabaseUrl(option(values, 'database', 'DATABASE_URL'), '--database or DATABASE_URL');
	if (values.name !== undefined) {
		if (!/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(values.name)) throw new UsageError(`--name "${values.name}" is not a database name PostgreSQL takes unquoted; use letters, digits, "_" and "-"`);
		url = withDatabase(url, values.name);
	}
	const passphraseVariable = values['passphrase-env'] || 'BACKUP_PASSPHRASE';
	const pgRestore = pgProgram('pg_restore', option(values, 'pg-bin', 'PG_BIN'));
	const dryRun = Boolean(values['dry-run']);

	// 1. The file is what backup-database wrote.
	const expected = await readChecksum(file);
	const actual = await sha256Of(file);
	if (actual !== expected) throw new OperatorError(`${path.basename(file)} does not match its checksum (sha256 ${actual}, expected ${expected}): the file is damaged or incomplete. Restore another backup.`);
	console.log(`checksum  ok (sha256 ${actual})`);

	// 2. It decrypts and is a whole archive.
	const encrypted = await isEncrypted(file);
	const passphrase = encrypted ? passphraseFrom(passphraseVariable) : undefined;
	const archive = await listArchive(file, encrypted, passphrase, passphraseVariable, pgRestore, url);
	console.log(
		`archive   ok${encrypted ? ', decrypted (AES-256-GCM)' : ''}: ${archive.tables} table(s) of database ${archive.database ?? '?'} (PostgreSQL ${archive.serverVersion ?? '?'}), made ${archive.createdAt ?? '?'}`,
	);

	// 3. The target.
	const target = await inspectTarget(url);
	if (target.tables.length && !values.force) {
		const shown = target.tables.slice(0, 5).join(', ') + (target.tables.length > 5 ? ', …' : '');
		throw new OperatorError(
			`${describe(url)} is not empty: it holds ${target.tables.length} table(s) (${shown}). Restoring would overwrite them. Pass --force to replace them with the backup's, or restore into a new database with --name <new name>.`,
		);
	}
	const plan = !target.exists ? `create ${describe(url)}, then restore into it` : target.tables.length ? `replace the backup's objects in ${describe(url)} (--force; ${target.tables.length} table(s) there now)` : `restore into ${describe(url)} (exists, no tables)`;
	if (dryRun) {
		console.log(`dry run: would ${plan}, in one transaction. Nothing was changed.`);
		return 0;
	}
	if (!target.exists) {
		await query(withDatabase(url, 'postgres'), async (client) => {
			try {
				await client.query(`CREATE DATABASE ${quoteIdentifier(databaseOf(url))}`);
			} catch (error) {
				throw new OperatorError(`Cannot create the database ${describe(url)} (${(error as Error).message}): create it first (CREATE DATABASE …), or give the URL's user CREATEDB.`);
			}
		});
		console.log(`created   ${describe(url)}`);
	}

	// 4. One transaction: a failure leaves the target as it was.
	const args = ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction', '--no-password', `--dbname=${conninfoDatabase(databaseOf(url))}`];
	if (target.tables.length) args.push('--clean', '--if-exists');
	const started = Date.now();
	const restore = startPg(pgRestore, encrypted ? args : [...args, file], url, encrypted ? 'pipe' : 'ignore');
	const stopRestore = onStop(() => restore.kill('SIGTERM'));
	try {
		restore.stdout!.resume();
		const fed = encrypted ? decryptInto(file, passphrase!, passphraseVariable, restore.stdin!).then(() => undefined, (error: Error) => error) : Promise.resolve(undefined);
		const [run, feedError] = await Promise.all([finished(restore, pgRestore), fed]);
		if (run.code !== 0) throw new OperatorError(`The restore failed and was rolled back; ${describe(url)} is as it was. ${explainPgError(pgRestore, url, run)}`);
		if (feedError) throw feedError;
	} finally {
		stopRestore();
	}
	const restored = await inspectTarget(url);
	const migrations = restored.tables.includes('public._prisma_migrations')
		? await query(url, async (client) => (await client.query<{ name: string }>('SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL')).rows.map((row) => row.name))
		: [];
	console.log(`restored  ${path.basename(file)} into ${describe(url)}: ${restored.tables.length} tables, ${migrations.length} migrations recorded, ${((Date.now() - started) / 1000).toFixed(1)} s`);
	await applyDatabaseSettings(url, migrations);
	return 0;
}

/**
 * Sets on the restored database the settings its recorded migrations made, which pg_dump leaves
 * out. As in the migrations, a user that may not set them leaves the database working, only
 * slower: that is said, and the restore still counts as done.
 */
async function applyDatabaseSettings(url: URL, migrations: string[]): Promise<void> {
	const settings = MIGRATION_DATABASE_SETTINGS.filter((setting) => migrations.includes(setting.migration));
	if (!settings.length) return;
	const statements = settings.map((setting) => `ALTER DATABASE ${quoteIdentifier(databaseOf(url))} SET ${setting.name} TO '${setting.value}'`);
	const listed = settings.map((setting) => `${setting.name}=${setting.value}`).join(', ');
	try {
		await query(url, async (client) => {
			for (const statement of statements) await client.query(statement);
		});
		console.log(`settings  ${listed} on ${describe(url)}, as its migrations set them`);
	} catch (error) {
		const why = `${describe(url)} is restored, but ${listed} could not be set (${(error as Error).message})`;
		if ((error as { code?: string }).code !== '42501') throw new OperatorError(`${why}. Set them yourself: ${statements.join('; ')}`);
		console.error(`settings  not set: ${why}. The database works without them, more slowly; set them as its owner or a superuser: ${statements.join('; ')}`);
	}
}

runScript(main, USAGE);
