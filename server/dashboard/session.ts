import { createHmac, timingSafeEqual } from 'node:crypto';

import type { PrismaClient } from '../../lib/db';
import { hashApiKey, type KeyScope } from '../auth';
import { receiverSecret } from '../secrets';

/**
 * A dashboard session is a signed cookie: the API key's row id and an expiry, with an HMAC made
 * with a secret of that key alone (a receiver secret named after the key). Every request checks
 * the signature, the expiry and the key's row, so a revoked key ends its sessions at once, and
 * signing out deletes the key's session secret, which ends every dashboard session of that key on
 * every receiver sharing the database, with no session table and no state in memory.
 */

export const SESSION_COOKIE = 'tcrm_dashboard';
export const SESSION_HOURS = 12;

export interface DashboardSession {
	keyId: string;
	siteId: string;
	scope: KeyScope;
	keyName: string;
}

const secretName = (keyId: string) => `dashboard-session:${keyId}`;

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const COOKIE_FORMAT = new RegExp(`^(${UUID})\\.(\\d{1,12})\\.([A-Za-z0-9_-]{43})$`);

function mac(secret: string, keyId: string, expiresAt: number): string {
	return createHmac('sha256', secret).update(`${keyId}.${expiresAt}`).digest('base64url');
}

/** The cookie's value: `<key id>.<expiry in epoch seconds>.<HMAC>`. */
export function signSession(secret: string, keyId: string, expiresAt: number): string {
	return `${keyId}.${expiresAt}.${mac(secret, keyId, expiresAt)}`;
}

/** The parts of a cookie value that has the session's shape and has not expired; undefined otherwise. */
export function readSession(value: string, now: Date): { keyId: string; expiresAt: number; mac: string } | undefined {
	const match = COOKIE_FORMAT.exec(value);
	if (!match) return undefined;
	const expiresAt = Number(match[2]);
	if (expiresAt * 1000 <= now.getTime()) return undefined;
	return { keyId: match[1], expiresAt, mac: match[3] };
}

/** Whether `presented` is the HMAC of the session under `secret`, compared in constant time. */
export function signatureMatches(secret: string, keyId: string, expiresAt: number, presented: string): boolean {
	const expected = Buffer.from(mac(secret, keyId, expiresAt));
	const given = Buffer.from(presented);
	return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
	for (const part of (header ?? '').split(';')) {
		const separator = part.indexOf('=');
		if (separator > 0 && part.slice(0, separator).trim() === name) return part.slice(separator + 1).trim();
	}
	return undefined;
}

/** The unrevoked key a person typed, or undefined; both scopes may sign in, since both may read. */
export async function keyForSignIn(prisma: PrismaClient, key: string): Promise<{ id: string; siteId: string; name: string } | undefined> {
	const row = await prisma.apiKey.findUnique({ where: { keyHash: hashApiKey(key) }, select: { id: true, siteId: true, name: true, revokedAt: true } });
	return row && !row.revokedAt ? row : undefined;
}

/** A new session of the key: the cookie value and its expiry. */
export async function startSession(prisma: PrismaClient, keyId: string, now: Date): Promise<{ value: string; expiresAt: Date }> {
	const secret = await receiverSecret(prisma, secretName(keyId));
	const expiresAt = Math.floor(now.getTime() / 1000) + SESSION_HOURS * 3600;
	return { value: signSession(secret, keyId, expiresAt), expiresAt: new Date(expiresAt * 1000) };
}

/** The session a cookie value stands for, if it is signed, unexpired, and its key is unrevoked and still signed in. */
export async function sessionOf(prisma: PrismaClient, value: string | undefined, now: Date): Promise<DashboardSession | undefined> {
	const parts = value === undefined ? undefined : readSession(value, now);
	if (!parts) return undefined;
	const [row] = await prisma.$queryRaw<Array<{ siteId: string; scope: KeyScope; name: string; revokedAt: Date | null; secret: string }>>`
		SELECT k.site_id::text AS "siteId", k.scope::text AS scope, k.name, k.revoked_at AS "revokedAt", s.value AS secret
		FROM api_keys k JOIN receiver_secrets s ON s.name = ${secretName(parts.keyId)}
		WHERE k.id = ${parts.keyId}::uuid`;
	if (!row || row.revokedAt || !signatureMatches(row.secret, parts.keyId, parts.expiresAt, parts.mac)) return undefined;
	return { keyId: parts.keyId, siteId: row.siteId, scope: row.scope, keyName: row.name };
}

/** Signs out every dashboard session of the key: their signatures no longer verify. */
export async function endSessions(prisma: PrismaClient, keyId: string): Promise<void> {
	await prisma.receiverSecret.deleteMany({ where: { name: secretName(keyId) } });
}
