import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { openDatabase } from '../lib/db';
import { Prisma } from '../lib/db/generated/client';
import { testDbUrl, testPrisma } from './helpers/db';
import { roundTripEveryModel } from './helpers/roundTrip';

const everyModel = Object.values(Prisma.ModelName).sort();

describe('database', () => {
	it('round-trips a row through every model on the migrated Postgres test database', async () => {
		const prisma = testPrisma();
		try {
			expect((await roundTripEveryModel(prisma)).sort()).toEqual(everyModel);
		} finally {
			await prisma.$disconnect();
		}
	});

	it('opens Postgres through DATABASE_URL-style options with nothing left to migrate', async () => {
		const db = await openDatabase({ url: testDbUrl() });
		try {
			expect(db.kind).toBe('postgres');
			expect(db.appliedMigrations).toEqual([]);
			expect(await db.prisma.site.count()).toBeGreaterThanOrEqual(0);
		} finally {
			await db.close();
		}
	});

	it('migrates the embedded database, round-trips every model and keeps the data across a reopen', async () => {
		const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tcrm-pglite-'));
		try {
			const first = await openDatabase({ url: null, dataDir });
			expect(first.kind).toBe('embedded');
			expect(first.appliedMigrations.length).toBeGreaterThan(0);
			expect((await roundTripEveryModel(first.prisma)).sort()).toEqual(everyModel);
			const sites = await first.prisma.site.count();
			await first.close();

			const second = await openDatabase({ url: null, dataDir });
			try {
				expect(second.appliedMigrations).toEqual([]);
				expect(await second.prisma.site.count()).toBe(sites);
			} finally {
				await second.close();
			}
		} finally {
			rmSync(dataDir, { recursive: true, force: true });
		}
	});
});
