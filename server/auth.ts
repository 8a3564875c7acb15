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

export async function createApiKey(prisma: PrismaClient, siteId: string, scope: KeyScope, name: string): Promise<string> {
	const key = generateApiKey(scope);
	await prisma.apiKey.create({ data: { siteId, scope, name, keyHash: hashApiKey(key) } });
	return key;
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

function presentedKey(req: Request): string | undefined {
	const header = req.headers.authorization;
	if (header?.startsWith('Bearer ')) return header.slice(7).trim();
	const apiKey = req.headers['x-api-key'];
	return typeof apiKey === 'string' ? apiKey.trim() : undefined;
}

/**
 * Read and admin endpoints take a key bound to ONE site: every query they run is scoped to the
 * key's site, so no key can read another site's rows. Admin keys may also read.
 */
export function requireApiKey(prisma: PrismaClient, scope: KeyScope) {
	return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
		const key = presentedKey(req);
		if (!key) {
			sendProblem(res, 401, 'api_key_required', 'Send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>"');
			return;
		}
		if (key.length > 200) {
			sendProblem(res, 401, 'invalid_api_key', 'The API key is not valid');
			return;
		}
		let row: { siteId: string; scope: KeyScope; name: string; revokedAt: Date | null } | null;
		try {
			row = await prisma.apiKey.findUnique({ where: { keyHash: hashApiKey(key) }, select: { siteId: true, scope: true, name: true, revokedAt: true } });
		} catch (error) {
			next(error);
			return;
		}
		if (!row || row.revokedAt) {
			sendProblem(res, 401, 'invalid_api_key', 'The API key is not valid or was revoked');
			return;
		}
		if (scope === 'admin' && row.scope !== 'admin') {
			sendProblem(res, 403, 'admin_key_required', 'This endpoint needs an admin key; this key may only read');
			return;
		}
		req.auth = { siteId: row.siteId, scope: row.scope, keyName: row.name };
		next();
	};
}
