/**
 * What backup-database and restore-database share: where a backup's database is and how pg_dump
 * and pg_restore reach it, the backup files' names, their checksums and their encryption.
 *
 * An encrypted backup is `TCRMBAK1` (8 bytes), a scrypt salt (16), an AES-256-GCM nonce (12),
 * the encrypted pg_dump archive, and GCM's authentication tag (16). The key is
 * scrypt(passphrase, salt, N=2^15, r=8, p=1). A wrong passphrase and a changed byte both fail
 * the tag, so nothing undecryptable ever reaches pg_restore.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { OperatorError, UsageError } from './workflowTools';
import { checkedDatabaseUrl, databaseOf } from '../lib/db/databaseUrl';

export const MAGIC = Buffer.from('TCRMBAK1', 'ascii');
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const HEADER_BYTES = MAGIC.length + SALT_BYTES + NONCE_BYTES;
/** scrypt at N=2^15, r=8 needs 32 MiB; Node's default ceiling is exactly that, so it is raised. */
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
/** Short passphrases fall to a guessing run however slow the key derivation. */
export const MIN_PASSPHRASE_LENGTH = 12;

/**
 * The database's own settings (ALTER DATABASE … SET) the migrations make, each with its migration.
 * pg_dump without --create leaves a database's settings out, so restore-database sets those of the
 * migrations the restored database records; the backup test checks this list against what the
 * migrations set on a new database.
 */
export const MIGRATION_DATABASE_SETTINGS: ReadonlyArray<{ migration: string; name: string; value: string }> = [
	{ migration: '20261205120000_visitor_dashboard_segments', name: 'jit', value: 'off' },
];

/** `<database>-2026-11-20T09-15-00-123Z.dump`, `.dump.enc` when encrypted: sortable by name, one per millisecond. */
const BACKUP_NAME = /^(.+)-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z)\.dump(\.enc)?$/;

export interface BackupFile {
	file: string;
	database: string;
	/** The name's timestamp, as written (sorts like the time). */
	stamp: string;
	encrypted: boolean;
}

export function backupName(database: string, at: Date, encrypted: boolean): string {
	const stamp = at.toISOString().replace(/[:.]/g, '-');
	return `${database}-${stamp}.dump${encrypted ? '.enc' : ''}`;
}

export function parseBackupName(file: string): BackupFile | undefined {
	const match = BACKUP_NAME.exec(path.basename(file));
	return match ? { file, database: match[1], stamp: match[2], encrypted: Boolean(match[3]) } : undefined;
}

/** A backup's checksum sits beside it in `sha256sum`'s format, so `sha256sum -c` checks it too. */
export const checksumFileOf = (file: string): string => `${file}.sha256`;
export const checksumLine = (hex: string, file: string): string => `${hex}  ${path.basename(file)}\n`;

export async function sha256Of(file: string): Promise<string> {
	const hash = createHash('sha256');
	await pipeline(createReadStream(file), hash);
	return hash.digest('hex');
}

export async function readChecksum(file: string): Promise<string> {
	const checksumFile = checksumFileOf(file);
	let text: string;
	try {
		text = await readFile(checksumFile, 'utf8');
	} catch {
		throw new OperatorError(`No checksum beside the backup: ${checksumFile} is missing. backup-database writes it with each backup; copy it along with the backup file.`);
	}
	const hex = /^([0-9a-f]{64})\b/i.exec(text.trim())?.[1];
	if (!hex) throw new OperatorError(`${checksumFile} holds no SHA-256 checksum (expected "<64 hex digits>  ${path.basename(file)}").`);
	return hex.toLowerCase();
}

/** The database a URL names, checked the way pg_dump would fail on it, with the fix in the message. */
export function parseDatabaseUrl(value: string | undefined, source: string): URL {
	if (!value) {
		throw new UsageError(
			`No database: set ${source}. (Without DATABASE_URL the receiver runs on its embedded database, a folder, .data/pglite by default: stop the receiver and copy that folder instead.)`,
		);
	}
	const url = checkedDatabaseUrl(value, source);
	if (typeof url === 'string') throw new UsageError(url);
	return url;
}

export { databaseOf };

export function withDatabase(url: URL, database: string): URL {
	const copy = new URL(url);
	copy.pathname = `/${encodeURIComponent(database)}`;
	return copy;
}

/** host:port/database, without the password, for messages. */
export const describe = (url: URL): string => `${url.hostname}:${url.port || '5432'}/${databaseOf(url)}`;

/**
 * libpq's variables for a URL: the password stays out of the process list, and the URL's extra
 * parameters (Prisma's `connection_limit`, `schema`), which libpq would refuse, stay out entirely.
 */
export function pgEnvironment(url: URL): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = {
		...process.env,
		PGHOST: url.hostname || '127.0.0.1',
		PGPORT: url.port || '5432',
		PGUSER: decodeURIComponent(url.username || 'postgres'),
		PGDATABASE: databaseOf(url),
	};
	if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
	else delete env.PGPASSWORD;
	for (const [parameter, variable] of [
		['sslmode', 'PGSSLMODE'],
		['sslrootcert', 'PGSSLROOTCERT'],
		['sslcert', 'PGSSLCERT'],
		['sslkey', 'PGSSLKEY'],
	] as const) {
		const value = url.searchParams.get(parameter);
		if (value) env[variable] = value;
	}
	return env;
}

/** A PostgreSQL client program: from --pg-bin / PG_BIN when given, else from PATH. */
export function pgProgram(name: 'pg_dump' | 'pg_restore', pgBin: string | undefined): string {
	return pgBin ? path.join(pgBin, name) : name;
}

export interface Finished {
	code: number | null;
	signal: NodeJS.Signals | null;
	stderr: string;
}

/** A child's end with its stderr; a missing program is an operator's error that says where to get it. */
export function finished(child: ChildProcess, program: string): Promise<Finished> {
	return new Promise((resolve, reject) => {
		let stderr = '';
		child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
		child.once('error', (error: NodeJS.ErrnoException) => {
			reject(
				error.code === 'ENOENT'
					? new OperatorError(`${program} was not found. Install PostgreSQL's client programs (Debian: apt-get install postgresql-client-<server major version>), or pass --pg-bin / set PG_BIN to their folder.`)
					: error,
			);
		});
		child.once('close', (code, signal) => resolve({ code, signal, stderr }));
	});
}

/** pg_dump's and pg_restore's words, with the fix for the failures an operator meets. */
export function explainPgError(program: string, url: URL, run: Finished): string {
	const said = run.stderr.trim().split('\n').slice(-8).join('\n');
	const where = describe(url);
	if (/server version mismatch|aborting because of server version mismatch|unsupported version .* in file header/i.test(said)) {
		return `${program} is older than the server or the archive (${said.split('\n')[0]}). Use the client programs of the server's major version or newer: pass --pg-bin /usr/lib/postgresql/<version>/bin.`;
	}
	if (/password authentication failed|no password supplied/i.test(said)) return `${program} could not log in to ${where}: check the user and password in the URL.\n${said}`;
	if (/database ".*" does not exist/i.test(said)) return `${program}: the database ${where} does not exist; check the URL's database name.\n${said}`;
	if (/Connection refused|could not connect|could not translate host name|timeout expired/i.test(said)) return `${program} could not reach ${where}: is Postgres up and the host and port in the URL right?\n${said}`;
	if (/permission denied/i.test(said)) return `${program}: the URL's user may not read everything in ${where}; use the database's owner.\n${said}`;
	return `${program} failed (${run.code === null ? `signal ${run.signal}` : `exit ${run.code}`}).\n${said}`;
}

function deriveKey(passphrase: string, salt: Buffer): Promise<Buffer> {
	return new Promise((resolve, reject) => scrypt(passphrase, salt, 32, SCRYPT, (error, key) => (error ? reject(error) : resolve(key))));
}

/** The passphrase of the variable named by --passphrase-env, checked before any work is done. */
export function passphraseFrom(variable: string): string {
	const value = process.env[variable];
	if (!value) throw new OperatorError(`No passphrase: set ${variable} (or name another variable with --passphrase-env). It is read from the environment only, never from the command line, which other users can see.`);
	if (value.length < MIN_PASSPHRASE_LENGTH) throw new OperatorError(`${variable} is ${value.length} characters long; use a passphrase of at least ${MIN_PASSPHRASE_LENGTH}.`);
	return value;
}

/** A transform that encrypts a stream into the format above. */
export async function encryptor(passphrase: string): Promise<(source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer>> {
	const salt = randomBytes(SALT_BYTES);
	const nonce = randomBytes(NONCE_BYTES);
	const cipher = createCipheriv('aes-256-gcm', await deriveKey(passphrase, salt), nonce);
	return async function* encrypt(source) {
		yield Buffer.concat([MAGIC, salt, nonce]);
		for await (const chunk of source) yield cipher.update(chunk);
		yield cipher.final();
		yield cipher.getAuthTag();
	};
}

export async function isEncrypted(file: string): Promise<boolean> {
	const handle = await open(file, 'r');
	try {
		const head = Buffer.alloc(MAGIC.length);
		const { bytesRead } = await handle.read(head, 0, MAGIC.length, 0);
		return bytesRead === MAGIC.length && head.equals(MAGIC);
	} finally {
		await handle.close();
	}
}

export class DecryptionError extends OperatorError {}

/**
 * Decrypts an encrypted backup into `destination`. GCM checks its tag only at the end, so a wrong
 * passphrase or a changed byte fails with a DecryptionError after everything was written: check
 * into nowhere() first, before anything reads the plain archive for real.
 */
export async function decryptInto(file: string, passphrase: string, passphraseVariable: string, destination: NodeJS.WritableStream): Promise<void> {
	const size = (await stat(file)).size;
	if (size < HEADER_BYTES + TAG_BYTES) throw new DecryptionError(`${file} is too short to be an encrypted backup (${size} bytes).`);
	const header = Buffer.alloc(HEADER_BYTES);
	const tag = Buffer.alloc(TAG_BYTES);
	const handle = await open(file, 'r');
	try {
		await handle.read(header, 0, HEADER_BYTES, 0);
		await handle.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
	} finally {
		await handle.close();
	}
	const salt = header.subarray(MAGIC.length, MAGIC.length + SALT_BYTES);
	const nonce = header.subarray(MAGIC.length + SALT_BYTES);
	const decipher = createDecipheriv('aes-256-gcm', await deriveKey(passphrase, salt), nonce);
	decipher.setAuthTag(tag);
	try {
		await pipeline(createReadStream(file, { start: HEADER_BYTES, end: size - TAG_BYTES - 1 }), decipher, destination);
	} catch (error) {
		if (/unable to authenticate data/i.test((error as Error).message)) {
			throw new DecryptionError(
				`${path.basename(file)} does not decrypt with the passphrase in ${passphraseVariable}: it differs from the passphrase the backup was made with (the file itself matches its checksum).`,
			);
		}
		throw error;
	}
}

export const nowhere = (): Writable => new Writable({ write: (_chunk, _encoding, done) => done() });

/** Starts a PostgreSQL client program with the database's environment and stderr captured. */
export function startPg(program: string, args: string[], url: URL, stdin: 'ignore' | 'pipe'): ChildProcess {
	return spawn(program, args, { env: pgEnvironment(url), stdio: [stdin, 'pipe', 'pipe'] });
}
