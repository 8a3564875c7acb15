import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { Client } from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';

import { DatabaseOpenError, describeConnectError } from './errors';
import { PrismaClient } from './generated/client';
import { deployMigrations } from './migrator';
import { sharedAdapter, type RawDatabase } from './rawSql';
import { isLockEntry, lockDataDir, type DataDirLock } from './ownership';

export { PrismaClient, Prisma } from './generated/client';
export type * from './generated/client';
export { DatabaseOpenError, EmbeddedDatabaseBusyError, describeConnectError, type DataDirHolder } from './errors';

export interface DatabaseOptions {
	/** Postgres connection string; defaults to `DATABASE_URL`. Without one (or with `null`), the embedded database is used. */
	url?: string | null;
	/** Folder of the embedded database; defaults to `DATA_DIR` or `.data/pglite` under the working directory. */
	dataDir?: string;
	/** Apply pending migrations before returning (default: true). */
	migrate?: boolean;
	/** What this process is, for the message another process gets while this one owns the embedded folder; defaults to its command line. */
	owner?: string;
	/** How long Postgres may take to accept the first connection (default: 10 s). */
	connectTimeoutMs?: number;
}

export interface Database {
	prisma: PrismaClient;
	/** The set-based statements, on Prisma's own pool (./rawSql.ts). */
	sql: RawDatabase;
	kind: 'postgres' | 'embedded';
	/** The Postgres connection string, for a pool of the caller's own (undefined for the embedded database). */
	url?: string;
	/** Where the data lives, without credentials: a host/database or a folder. */
	location: string;
	/** Names of the migrations applied while opening. */
	appliedMigrations: string[];
	/** The driver adapter Prisma reaches the database through; the embedded engine lends it to the nodes (see ./lent.ts). */
	adapter: SqlMigrationAwareDriverAdapterFactory;
	close(): Promise<void>;
}

export function describePostgresUrl(url: string): string {
	try {
		const parsed = new URL(url);
		return `${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
	} catch {
		return 'an unparsable DATABASE_URL';
	}
}

/** Connections of the receiver's Postgres pool: pg's default. */
const POOL_SIZE = 10;

/**
 * Opens the one database the receiver and the nodes share: Postgres when a URL is given,
 * otherwise an in-process Postgres (PGlite) persisted to a folder, migrated with the same
 * migrations so a newcomer needs no database server.
 */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
	const url = options.url === undefined ? process.env.DATABASE_URL : options.url;
	const migrate = options.migrate ?? true;

	if (url) {
		await checkConnection(url, options.connectTimeoutMs ?? 10_000);
		const factory = new PrismaPg({ connectionString: url, max: POOL_SIZE });
		const appliedMigrations = migrate ? await deployMigrations(factory) : [];
		const shared = sharedAdapter(factory, POOL_SIZE);
		const prisma = new PrismaClient({ adapter: shared.factory });
		return {
			prisma,
			sql: shared.database,
			kind: 'postgres',
			url,
			location: describePostgresUrl(url),
			appliedMigrations,
			adapter: factory,
			close: async () => {
				await prisma.$disconnect();
				await shared.close();
			},
		};
	}

	const dataDir = path.resolve(options.dataDir ?? process.env.DATA_DIR ?? path.join('.data', 'pglite'));
	const lock = claimDataDir(dataDir, options.owner ?? commandLine());
	let pglite: PGlite | undefined;
	let appliedMigrations: string[] = [];
	let factory: SqlMigrationAwareDriverAdapterFactory;
	try {
		pglite = await openPGlite(dataDir);
		factory = new PrismaPGlite(pglite);
		if (migrate) appliedMigrations = await deployMigrations(factory);
	} catch (error) {
		// PGlite re-arms timers while open: a failed start must close it or the process never exits.
		await pglite?.close().catch(() => undefined);
		lock.release();
		throw error;
	}
	const shared = sharedAdapter(factory);
	const prisma = new PrismaClient({ adapter: shared.factory });
	const embedded = pglite;
	return {
		prisma,
		sql: shared.database,
		kind: 'embedded',
		location: dataDir,
		appliedMigrations,
		adapter: factory,
		close: async () => {
			try {
				await prisma.$disconnect();
				await shared.close();
				await embedded.close();
			} finally {
				lock.release();
			}
		},
	};
}

/**
 * One connection before anything else, so that a server that does not answer, a missing database
 * or a refused login is one line naming the fix (the driver's error codes say which), not the
 * schema engine's report of the same failure.
 */
async function checkConnection(url: string, timeoutMs: number): Promise<void> {
	const where = describePostgresUrl(url);
	const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
	// A failed connect can also emit 'error'; without a listener that would end the process.
	client.on('error', () => undefined);
	try {
		await client.connect();
	} catch (error) {
		throw new DatabaseOpenError(describeConnectError(where, error), { cause: error });
	}
	await client.end();
}

function commandLine(): string {
	const [script = 'node', ...args] = process.argv.slice(1);
	return [path.relative(process.cwd(), script) || script, ...args].join(' ').slice(0, 200);
}

/**
 * Prepares the embedded data folder and makes this process its one owner. Every way the folder can
 * be unusable becomes a DatabaseOpenError naming the folder and the fix.
 */
function claimDataDir(dataDir: string, owner: string): DataDirLock {
	const unusable = (why: string, fix: string, cause?: unknown) =>
		new DatabaseOpenError(`The embedded database folder ${dataDir} ${why}; ${fix}.`, { cause });
	const otherFolder = 'point DATA_DIR at another folder';
	let lock: DataDirLock;
	try {
		mkdirSync(dataDir, { recursive: true });
		lock = lockDataDir(dataDir, owner);
	} catch (error) {
		if (error instanceof DatabaseOpenError) throw error;
		const code = (error as NodeJS.ErrnoException).code;
		if (code === 'EEXIST' || code === 'ENOTDIR') throw unusable('is a file, not a folder', `${otherFolder} (a missing folder is created)`, error);
		if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw unusable(`cannot be written by this user (${code})`, `give this user write access to it, or ${otherFolder}`, error);
		throw unusable(`cannot be used (${(error as Error).message})`, otherFolder, error);
	}
	// PGlite would create a database among whatever a mistyped DATA_DIR holds (a home folder, a project).
	const entries = readdirSync(dataDir).filter((name) => !isLockEntry(name));
	if (entries.length > 0 && !entries.includes('PG_VERSION')) {
		lock.release();
		throw unusable(`holds other files (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}) but no database`, `${otherFolder}, empty or new`);
	}
	return lock;
}

async function openPGlite(dataDir: string): Promise<PGlite> {
	const pglite = new PGlite(dataDir);
	try {
		await pglite.waitReady;
		return pglite;
	} catch (error) {
		await pglite.close().catch(() => undefined);
		// PGlite's words ("Aborted(). Build with -sASSERTIONS…", "failed to initialize properly") say only that it failed.
		const said = ((error as Error).message ?? String(error)).split(/\.\s|\n/)[0];
		throw new DatabaseOpenError(
			`The embedded database in ${dataDir} cannot be opened (PGlite: ${said}): the folder is damaged or was written by another PGlite version; ` +
				'move it away to start with an empty database, or point DATA_DIR at another folder.',
			{ cause: error },
		);
	}
}
