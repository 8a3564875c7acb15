import type { SiteConfig } from '../lib/contracts';
import type { PrismaClient } from '../lib/db';
import { SequenceResolver } from '../nodes/EmailOrchestrator/sequences';

/**
 * Makes the `sites` table mirror the config files: a site's row is keyed by its public key,
 * so ids stay stable across restarts while name, domain and config follow the files. The
 * config's email sequences are written as the config is loaded (by the Email Orchestrator's own
 * writer of email_sequences), so a sequence exists before any lead can enter its stage: Send Due
 * makes up only the stage moves made after a sequence existed.
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
		await new SequenceResolver(prisma).configured({ id: row.id, key: config.site.key, domain: config.site.domain, config });
		ids.set(config.site.key, row.id);
	}
	return ids;
}
