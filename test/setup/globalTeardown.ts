import { dropTestDatabase } from './testDatabase';

export default async function globalTeardown(): Promise<void> {
	if (process.env.TEST_DB_NAME && !process.env.KEEP_TEST_DATABASE) await dropTestDatabase(process.env.TEST_DB_NAME);
}
