import { randomBytes } from 'node:crypto';

import { Client } from 'pg';

/** The server the tests create their databases on: TEST_DATABASE_URL, DATABASE_URL, or the local Postgres. */
export function adminUrl(): string {
	return process.env.TEST_DATABASE_ADMIN_URL ?? process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
}

export function withDatabase(url: string, database: string): string {
	const parsed = new URL(url);
	parsed.pathname = `/${database}`;
	return parsed.toString();
}

async function admin<T>(run: (client: Client) => Promise<T>): Promise<T> {
	const client = new Client({ connectionString: adminUrl() });
	try {
		await client.connect();
	} catch (error) {
		throw new Error(
			`Tests need a Postgres server: could not connect to ${new URL(adminUrl()).host} (${(error as Error).message}). ` +
				'Start the local Postgres or set TEST_DATABASE_URL to a server where the tests may create databases.',
		);
	}
	try {
		return await run(client);
	} finally {
		await client.end();
	}
}

/** Creates an empty, uniquely named database so parallel runs never see each other's rows. */
export async function createTestDatabase(prefix = 'tcrm_test'): Promise<{ name: string; url: string }> {
	const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
	await admin((client) => client.query(`CREATE DATABASE "${name}"`));
	return { name, url: withDatabase(adminUrl(), name) };
}

export async function dropTestDatabase(name: string): Promise<void> {
	await admin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}
