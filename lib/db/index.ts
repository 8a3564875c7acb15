import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaPGlite } from 'pglite-prisma-adapter';

import { PrismaClient } from './generated/client';
import { deployMigrations } from './migrator';

export { PrismaClient, Prisma } from './generated/client';
export type * from './generated/client';

export interface DatabaseOptions {
	/** Postgres connection string; defaults to `DATABASE_URL`. Without one (or with `null`), the embedded database is used. */
	url?: string | null;
	/** Folder of the embedded database; defaults to `DATA_DIR` or `.data/pglite` under the working directory. */
	dataDir?: string;
	/** Apply pending migrations before returning (default: true). */
	migrate?: boolean;
}

export interface Database {
	prisma: PrismaClient;
	kind: 'postgres' | 'embedded';
	/** The Postgres connection string, for a pool of the caller's own (undefined for the embedded database). */
	url?: string;
	/** Where the data lives, without credentials: a host/database or a folder. */
	location: string;
	/** Names of the migrations applied while opening. */
	appliedMigrations: string[];
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

/**
 * Opens the one database the receiver and the nodes share: Postgres when a URL is given,
 * otherwise an in-process Postgres (PGlite) persisted to a folder, migrated with the same
 * migrations so a newcomer needs no database server.
 */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
	const url = options.url === undefined ? process.env.DATABASE_URL : options.url;
	const migrate = options.migrate ?? true;

	if (url) {
		const factory = new PrismaPg({ connectionString: url });
		const appliedMigrations = migrate ? await deployMigrations(factory) : [];
		const prisma = new PrismaClient({ adapter: factory });
		return {
			prisma,
			kind: 'postgres',
			url,
			location: describePostgresUrl(url),
			appliedMigrations,
			close: () => prisma.$disconnect(),
		};
	}

	const dataDir = path.resolve(options.dataDir ?? process.env.DATA_DIR ?? path.join('.data', 'pglite'));
	mkdirSync(dataDir, { recursive: true });
	const pglite = new PGlite(dataDir);
	await pglite.waitReady;
	const factory: SqlMigrationAwareDriverAdapterFactory = new PrismaPGlite(pglite);
	let appliedMigrations: string[] = [];
	try {
		if (migrate) appliedMigrations = await deployMigrations(factory);
	} catch (error) {
		// PGlite re-arms timers while open: a failed start must close it or the process never exits.
		await pglite.close();
		throw error;
	}
	const prisma = new PrismaClient({ adapter: factory });
	return {
		prisma,
		kind: 'embedded',
		location: dataDir,
		appliedMigrations,
		close: async () => {
			await prisma.$disconnect();
			await pglite.close();
		},
	};
}
