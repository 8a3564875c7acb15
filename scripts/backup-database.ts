#!/usr/bin/env node
/** One consistent pg_dump of the CRM database into a folder that keeps the newest N, optionally encrypted. */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, rmSync } from 'node:fs';
import { access, constants, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';

import {
	backupName,
	checksumFileOf,
	checksumLine,
	databaseOf,
	describe,
	encryptor,
	explainPgError,
	finished,
	nowhere,
	parseBackupName,
	parseDatabaseUrl,
	passphraseFrom,
	pgProgram,
	startPg,
	type BackupFile,
} from './backup-database-archive';
import { onStop, OperatorError, option, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/backup-database [options]

Backs up the CRM database (DATABASE_URL) with pg_dump in its custom format (compressed;
restore it with scripts/restore-database). pg_dump reads the whole database in one snapshot,
so the backup is consistent while the receivers keep writing: a transaction committed during
the dump is in the next backup, never half of it in this one.

Into the folder go <database>-<UTC time>.dump (.dump.enc when encrypted) and its SHA-256
checksum, <file>.sha256 (sha256sum's format: "sha256sum -c" checks it too). Then the oldest
backups of the same database beyond --keep are deleted. A failed run leaves no file behind
and deletes nothing.

Options:
  --database <url>         the database (env DATABASE_URL)
  --dir <folder>           where the backups go (env BACKUP_DIR, default ./backups)
  --keep <n>               how many backups of this database to keep, the newest
                           (env BACKUP_KEEP, default 7)
  --encrypt                encrypt with AES-256-GCM under a key derived (scrypt) from a
                           passphrase read from the environment
  --passphrase-env <name>  the variable holding that passphrase (default BACKUP_PASSPHRASE;
                           at least 12 characters). Keep it apart from the backups: without
                           it they cannot be restored.
  --pg-bin <folder>        the folder of pg_dump (env PG_BIN; default: from PATH); it must be
                           the server's major version or newer
  --dry-run                check the database, pg_dump and the folder, print what would be
                           written and deleted, change nothing
  -h, --help               this text

Exit code 0 when the backup is written, 1 when it failed, 2 on bad usage.

Every night at 03:00, keeping two weeks:
  0 3 * * *  cd /srv/crm && DATABASE_URL=… BACKUP_PASSPHRASE=… scripts/backup-database --encrypt --dir /var/backups/crm --keep 14`;

function positiveInteger(value: string, name: string): number {
	if (!/^\d+$/.test(value) || Number(value) < 1) throw new UsageError(`${name} must be a whole number of backups, 1 or more; got "${value}"`);
	return Number(value);
}

/** This database's backups in the folder, newest first. Other files are never touched. */
async function backupsIn(dir: string, database: string): Promise<BackupFile[]> {
	let names: string[];
	try {
		names = await readdir(dir);
	} catch {
		return [];
	}
	return names
		.map((name) => parseBackupName(path.join(dir, name)))
		.filter((backup): backup is BackupFile => backup !== undefined && backup.database === database)
		.sort((a, b) => (a.stamp < b.stamp ? 1 : a.stamp > b.stamp ? -1 : 0));
}

async function writableFolder(dir: string, dryRun: boolean): Promise<'exists' | 'new'> {
	const found = await stat(dir).catch(() => undefined);
	if (found && !found.isDirectory()) throw new UsageError(`--dir ${dir} is a file, not a folder`);
	if (!found) {
		if (!dryRun) await mkdir(dir, { recursive: true, mode: 0o700 });
		return 'new';
	}
	try {
		await access(dir, constants.W_OK);
	} catch {
		throw new OperatorError(`Cannot write into ${dir}: give this user write access to it, or pick another folder with --dir / BACKUP_DIR.`);
	}
	return 'exists';
}

/**
 * Node exits with code 0 once its event loop is empty, even while a promise is still pending: a
 * wait for an event that had already passed would end the run as a success, with no backup. So an
 * empty loop before main has finished is a failure, and it takes the unfinished backup with it.
 */
function failOnStall(target: string): void {
	process.once('beforeExit', () => {
		const whole = existsSync(checksumFileOf(target));
		if (!whole) for (const file of [`${target}.partial`, target]) rmSync(file, { force: true });
		console.error(
			whole
				? `backup-database stalled after writing ${target} and its checksum, before deleting the backups beyond --keep: the backup is whole; the next run deletes them.`
				: `backup-database stalled before the backup was complete (it waited for an event that never came): no backup was written. Run it again; if this repeats, report it with your pg_dump version.`,
		);
		process.exit(1);
	});
}

const megabytes = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 2 : 0)} MB`;

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			database: { type: 'string' },
			dir: { type: 'string' },
			keep: { type: 'string' },
			encrypt: { type: 'boolean' },
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
	const url = parseDatabaseUrl(option(values, 'database', 'DATABASE_URL'), '--database or DATABASE_URL');
	const database = databaseOf(url);
	const dir = path.resolve(option(values, 'dir', 'BACKUP_DIR', 'backups')!);
	const keep = positiveInteger(option(values, 'keep', 'BACKUP_KEEP', '7')!, '--keep (BACKUP_KEEP)');
	const passphraseVariable = values['passphrase-env'] || 'BACKUP_PASSPHRASE';
	const passphrase = values.encrypt ? passphraseFrom(passphraseVariable) : undefined;
	const pgDump = pgProgram('pg_dump', option(values, 'pg-bin', 'PG_BIN'));
	const dryRun = Boolean(values['dry-run']);

	const target = path.join(dir, backupName(database, new Date(), Boolean(passphrase)));
	failOnStall(target);
	const folder = await writableFolder(dir, dryRun);
	const existing = await backupsIn(dir, database);

	if (dryRun) {
		// The schema alone: proves pg_dump runs, matches the server and may read the database.
		const probe = startPg(pgDump, ['--schema-only', '--format=custom', '--no-password'], url, 'ignore');
		const [run] = await Promise.all([finished(probe, pgDump), pipeline(probe.stdout!, nowhere())]);
		if (run.code !== 0) throw new OperatorError(explainPgError(pgDump, url, run));
		const doomed = existing.slice(Math.max(0, keep - 1));
		console.log(`dry run: nothing is written or deleted`);
		console.log(`would dump ${describe(url)} with ${pgDump} (it answers and may read the database)`);
		console.log(`would write ${target}${passphrase ? ` (AES-256-GCM, passphrase from ${passphraseVariable})` : ''} and its .sha256${folder === 'new' ? ` (creating ${dir})` : ''}`);
		console.log(doomed.length ? `would delete ${doomed.length} older backup(s) beyond --keep ${keep}:\n${doomed.map((backup) => `  ${backup.file}`).join('\n')}` : `would delete nothing (${existing.length} backup(s) there, --keep ${keep})`);
		return 0;
	}

	const started = Date.now();
	const partial = `${target}.partial`;
	// The key first: scrypt takes a tenth of a second, in which a small database's pg_dump may have
	// written everything and exited; its output and end must find their readers already attached.
	const encrypt = passphrase ? await encryptor(passphrase) : undefined;
	const hash = createHash('sha256');
	let bytes = 0;
	const checksum = async function* (source: AsyncIterable<Buffer>) {
		for await (const chunk of source) {
			hash.update(chunk);
			bytes += chunk.length;
			yield chunk;
		}
	};
	const dump = startPg(pgDump, ['--format=custom', '--no-password'], url, 'ignore');
	const abandon = onStop(() => {
		dump.kill('SIGTERM');
		void rm(partial, { force: true });
	});
	try {
		const ended = finished(dump, pgDump);
		const write = createWriteStream(partial, { flags: 'wx', mode: 0o600 });
		const copied = encrypt ? pipeline(dump.stdout!, encrypt, checksum, write) : pipeline(dump.stdout!, checksum, write);
		const [run, copy] = await Promise.all([ended, copied.then(() => undefined, (error: Error) => error)]);
		if (run.code !== 0) throw new OperatorError(explainPgError(pgDump, url, run));
		if (copy) throw new OperatorError(`Writing ${partial} failed: ${copy.message}. Is the disk full, or the folder read-only?`);
		await rename(partial, target);
	} finally {
		abandon();
		await rm(partial, { force: true });
	}
	const hex = hash.digest('hex');
	await writeFile(checksumFileOf(target), checksumLine(hex, target), { mode: 0o600 });
	console.log(`backup ${target}`);
	console.log(`  ${describe(url)}, ${megabytes(bytes)}${passphrase ? ', encrypted (AES-256-GCM)' : ''}, sha256 ${hex}, ${((Date.now() - started) / 1000).toFixed(1)} s`);

	const doomed = (await backupsIn(dir, database)).slice(keep);
	for (const backup of doomed) {
		await rm(backup.file, { force: true });
		await rm(checksumFileOf(backup.file), { force: true });
	}
	console.log(doomed.length ? `deleted ${doomed.length} older backup(s), keeping the newest ${keep}:\n${doomed.map((backup) => `  ${backup.file}`).join('\n')}` : `kept all ${Math.min(keep, existing.length + 1)} backup(s) (--keep ${keep})`);
	return 0;
}

runScript(main, USAGE);
