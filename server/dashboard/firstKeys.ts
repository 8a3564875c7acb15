import type { PrismaClient } from '../../lib/db';
import { createApiKey } from '../auth';
import type { SiteRegistry } from '../siteRegistry';

/** A read key made at this start, to print once: only its hash is kept. */
export interface FirstKey {
	site: string;
	key: string;
}

export const FIRST_KEY_NAME = 'dashboard (made at first start)';

/**
 * Gives every site that has no unrevoked key at all a read key, so a newcomer can sign in to the
 * dashboards: on the embedded database the api-key script cannot run beside the receiver. A site
 * with any key (even one its owner keeps elsewhere) gets none, so the key is made, and shown,
 * once. Only the receiver of an embedded database calls this, and that database is open in one
 * process at a time: no other start or api-key run can make a key between the look and the create.
 */
export async function ensureFirstKeys(prisma: PrismaClient, sites: SiteRegistry): Promise<FirstKey[]> {
	const ids = sites.all().map((site) => site.id);
	const keyed = await prisma.apiKey.findMany({ where: { siteId: { in: ids }, revokedAt: null }, distinct: ['siteId'], select: { siteId: true } });
	const hasKey = new Set(keyed.map((row) => row.siteId));
	const made: FirstKey[] = [];
	for (const site of sites.all()) {
		if (!hasKey.has(site.id)) made.push({ site: site.key, key: await createApiKey(prisma, site.id, 'read', FIRST_KEY_NAME) });
	}
	return made;
}
