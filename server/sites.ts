import type { SiteConfig } from '../lib/contracts';
import type { PrismaClient } from '../lib/db';

/**
 * Makes the `sites` table mirror the config files: a site's row is keyed by its public key,
 * so ids stay stable across restarts while name, domain and config follow the files.
 */
export async function syncSites(prisma: PrismaClient, configs: SiteConfig[]): Promise<Map<string, string>> {
	const ids = new Map<string, string>();
	for (const config of configs) {
		const data = { name: config.site.name, domain: config.site.domain, config: config as object };
		const row = await prisma.site.upsert({
			where: { key: config.site.key },
			create: { key: config.site.key, ...data },
			update: data,
			select: { id: true },
		});
		ids.set(config.site.key, row.id);
	}
	return ids;
}
