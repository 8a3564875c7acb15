import { randomBytes } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';

import { PrismaClient } from '../../lib/db/generated/client';

/** The database of this test run (created and migrated by the global setup). */
export function testDbUrl(): string {
	const url = process.env.TEST_DB_URL;
	if (!url) throw new Error('TEST_DB_URL is not set: run the tests through jest so the global setup creates the test database');
	return url;
}

export function testPrisma(): PrismaClient {
	return new PrismaClient({ adapter: new PrismaPg({ connectionString: testDbUrl() }) });
}

/** Postgres credential data as n8n's built-in `postgres` credential type holds it. */
export function postgresCredential(): Record<string, string | number> {
	const url = new URL(testDbUrl());
	return {
		host: url.hostname,
		port: Number(url.port || 5432),
		database: decodeURIComponent(url.pathname.slice(1)),
		user: decodeURIComponent(url.username || 'postgres'),
		password: decodeURIComponent(url.password),
		ssl: 'disable',
	};
}

/** A fresh site, so each test owns its rows and no test sees another's. */
export async function createTestSite(prisma: PrismaClient, name = 'test'): Promise<{ id: string; key: string }> {
	const key = `${name}-${randomBytes(5).toString('hex')}`.toLowerCase();
	const site = await prisma.site.create({ data: { key, name, domain: `${key}.example` }, select: { id: true, key: true } });
	return site;
}
