import { randomBytes } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';

import { PrismaClient, type Prisma } from '../../lib/db/generated/client';

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

/** A raw event as a test seeds it: with the visitor and session the Visitor Processor would have linked it to, or none. */
export type SeededEvent = Prisma.VisitorEventCreateManyInput & { visitorId?: string | null; sessionId?: string | null };

/** Stores raw events as the receiver does and, for those given a visitor and session, their links as the Visitor Processor writes them. */
export async function storeEvents(prisma: Pick<PrismaClient, 'visitorEvent' | 'visitorEventLink'>, events: readonly SeededEvent[]): Promise<void> {
	await prisma.visitorEvent.createMany({ data: events.map(({ visitorId: _visitor, sessionId: _session, ...event }) => event) });
	const links = events.flatMap(({ siteId, eventId, visitorId, sessionId }) => (visitorId && sessionId ? [{ siteId, eventId, visitorId, sessionId }] : []));
	if (links.length > 0) await prisma.visitorEventLink.createMany({ data: links });
}

/** Events with the visitor and session the Visitor Processor linked each to (null while it has not), by event id. */
export async function linkedEvents(
	prisma: Pick<PrismaClient, '$queryRawUnsafe'>,
	of: { siteIds?: string[]; anonymousIds?: string[]; anonymousPrefix?: string },
): Promise<Array<{ eventId: string; anonymousId: string; type: string; visitorId: string | null; sessionId: string | null }>> {
	return prisma.$queryRawUnsafe(
		`SELECT e.event_id::text AS "eventId", e.anonymous_id AS "anonymousId", e.type, l.visitor_id::text AS "visitorId", l.session_id::text AS "sessionId"
		FROM visitor_events e LEFT JOIN visitor_event_links l ON l.site_id = e.site_id AND l.event_id = e.event_id
		WHERE ($1::uuid[] IS NULL OR e.site_id = ANY($1::uuid[])) AND ($2::text[] IS NULL OR e.anonymous_id = ANY($2::text[])) AND ($3::text IS NULL OR starts_with(e.anonymous_id, $3))
		ORDER BY e.event_id`,
		of.siteIds ?? null,
		of.anonymousIds ?? null,
		of.anonymousPrefix ?? null,
	);
}
