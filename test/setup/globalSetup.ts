import { PrismaPg } from '@prisma/adapter-pg';

import { deployMigrations } from '../../lib/db/migrator';
import { createTestDatabase } from './testDatabase';

/**
 * One database per test run, migrated with the project's migrations. Workers inherit the
 * environment set here, so every test file talks to this database through TEST_DB_URL.
 */
export default async function globalSetup(): Promise<void> {
	const { name, url } = await createTestDatabase();
	process.env.TEST_DB_NAME = name;
	process.env.TEST_DB_URL = url;
	await deployMigrations(new PrismaPg({ connectionString: url }));
}
