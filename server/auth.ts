import { createHash, randomBytes } from 'node:crypto';

import type { NextFunction, Request, Response } from 'express';

import type { PrismaClient } from '../lib/db';
import { sendProblem } from './routes/problems';

export type KeyScope = 'read' | 'admin';

/** Keys are shown once and stored only as SHA-256: a leaked database leaks no usable key. */
export function hashApiKey(key: string): string {
	return createHash('sha256').update(key).digest('hex');
}

export function generateApiKey(scope: KeyScope): string {
	return `tcrm_${scope}_${randomBytes(24).toString('base64url')}`;
}

/** An active key of a site, as its owner tells it apart from the others: by name and scope. */
export interface NamedKey {
	name: string;
	scope: KeyScope;
}

/** A create that would give a site's second active key a name already in use: revoke would no longer pick one key. */
export class KeyNameTakenError extends Error {
	override readonly name = 'KeyNameTakenError';
	/** The input at fault, as the receiver's problems name fields. */
	readonly field = 'name';

	constructor(
		readonly keyName: string,
		readonly active: NamedKey[],
	) {
		super(`name "${keyName}" is already used by an active key of this site: choose another name, or revoke that key first`);
	}
}

/** The site's unrevoked keys, oldest first. */
export async function activeKeys(prisma: Pick<PrismaClient, 'apiKey'>, siteId: string): Promise<NamedKey[]> {
	return prisma.apiKey.findMany({ where: { siteId, revokedAt: null }, orderBy: { createdAt: 'asc' }, select: { name: true, scope: true } });
}

/**
 * Makes a key of the site and returns it. Its name must be free among the site's active keys, so
 * `revoke --name` takes exactly the key meant; a taken one throws KeyNameTakenError. The schema
 * has no unique index for it (revoked keys keep their names, and adding one needs a migration),
 * so a per-site advisory lock serializes the check and the insert: two creates of one name at
 * once make one key, and the other is refused.
 */
export async function createApiKey(prisma: PrismaClient, siteId: string, scope: KeyScope, name: string): Promise<string> {
	const key = generateApiKey(scope);
	await prisma.$transaction(async (tx) => {
		await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', `api-key-names:${siteId}`);
		const active = await activeKeys(tx, siteId);
		if (active.some((row) => row.name === name)) throw new KeyNameTakenError(name, active);
		await tx.apiKey.create({ data: { siteId, scope, name, keyHash: hashApiKey(key) } });
	});
	return key;
}

/** Revokes the site's active keys of `name` (more than one only if made before names were unique); the names of the active keys when none has it. */
export async function revokeApiKeys(prisma: PrismaClient, siteId: string, name: string): Promise<{ revoked: number; active: NamedKey[] }> {
	return prisma.$transaction(async (tx) => {
		await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', `api-key-names:${siteId}`);
		const { count } = await tx.apiKey.updateMany({ where: { siteId, name, revokedAt: null }, data: { revokedAt: new Date() } });
		return { revoked: count, active: count ? [] : await activeKeys(tx, siteId) };
	});
}

export interface Authenticated {
	siteId: string;
	scope: KeyScope;
	keyName: string;
}

declare module 'express-serve-static-core' {
	interface Request {
		auth?: Authenticated;
	}
}

interface PresentedKey {
	/** The header as the client names it, for the answer. */
	header: 'Authorization' | 'X-API-Key';
	key: string;
	/** The Authorization header names a scheme other than Bearer: no key, but not "no credentials" either. */
	scheme?: string;
}

function presentedKey(req: Request): PresentedKey | undefined {
	const header = req.headers.authorization?.trim();
	if (header) {
		// Schemes are case-insensitive (RFC 9110 §11.1): "bearer" is Bearer.
		const [, scheme, credentials] = /^(\S+)(?:\s+(.*))?$/s.exec(header) ?? [];
		if (scheme.toLowerCase() === 'bearer') return { header: 'Authorization', key: (credentials ?? '').trim() };
		return { header: 'Authorization', key: '', scheme: scheme.slice(0, 30) };
	}
	const apiKey = req.headers['x-api-key'];
	return typeof apiKey === 'string' ? { header: 'X-API-Key', key: apiKey.trim() } : undefined;
}

/**
 * Whether the request offers a key: a route open to everyone may still give more to a key holder.
 * Another scheme's credentials are not offered to us (a proxy's Basic auth passed on): such a route
 * serves the request as anyone's, and only a route that needs a key refuses them, naming Bearer.
 */
export const presentsApiKey = (req: Request): boolean => {
	const presented = presentedKey(req);
	return presented !== undefined && presented.scheme === undefined;
};

/**
 * What generateApiKey makes, with room for a longer random part. Anything else cannot be a key,
 * so it is refused without a lookup, whatever bytes the header carries.
 */
const KEY_FORMAT = /^tcrm_(?:read|admin)_[A-Za-z0-9_-]{16,128}$/;

/**
 * Read and admin endpoints take a key bound to ONE site: every query they run is scoped to the
 * key's site, so no key can read another site's rows. Admin keys may also read.
 */
export function requireApiKey(prisma: PrismaClient, scope: KeyScope) {
	return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
		const presented = presentedKey(req);
		if (presented?.scheme !== undefined) {
			sendProblem(res, 401, 'unsupported_auth_scheme', `The Authorization scheme ${JSON.stringify(presented.scheme)} is not supported; send "Authorization: Bearer <key>" (or "X-API-Key: <key>")`, {
				issues: [{ field: 'Authorization', message: 'must use the Bearer scheme: "Bearer <key>"' }],
			});
			return;
		}
		if (!presented?.key) {
			sendProblem(res, 401, 'api_key_required', 'Send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>"', {
				issues: [{ field: 'Authorization', message: 'is required: "Bearer <key>" (or send the key as X-API-Key)' }],
			});
			return;
		}
		const refused = (message: string) =>
			sendProblem(res, 401, 'invalid_api_key', `The API key is not valid${message ? ` (${message})` : ' or was revoked'}`, { issues: [{ field: presented.header, message: 'is not a valid API key' }] });
		if (!KEY_FORMAT.test(presented.key)) {
			refused('keys look like tcrm_read_… or tcrm_admin_…, as scripts/api-key printed them');
			return;
		}
		let row: { siteId: string; scope: KeyScope; name: string; revokedAt: Date | null } | null;
		try {
			row = await prisma.apiKey.findUnique({ where: { keyHash: hashApiKey(presented.key) }, select: { siteId: true, scope: true, name: true, revokedAt: true } });
		} catch (error) {
			next(error);
			return;
		}
		if (!row || row.revokedAt) {
			refused('');
			return;
		}
		if (scope === 'admin' && row.scope !== 'admin') {
			sendProblem(res, 403, 'admin_key_required', 'This endpoint needs an admin key; this key may only read', { issues: [{ field: presented.header, message: 'is a read key; use an admin key' }] });
			return;
		}
		req.auth = { siteId: row.siteId, scope: row.scope, keyName: row.name };
		next();
	};
}
