import type { SiteConfig } from '../lib/contracts';
import type { PrismaClient } from '../lib/db';
import { SequenceResolver } from '../nodes/EmailOrchestrator/sequences';
import { lockSiteRollups } from './analytics/rollup';
import { forgetSiteSecrets } from './secrets';

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

/**
 * The tables keyed by site that no foreign key to `sites` empties when a site goes: the raw events
 * and the outbox (written with every batch, so they skip the key), the consent and retention
 * records, the mail catcher's and the rollups' rows. Read from the catalog, so that a table added
 * later is not forgotten. Tables with triggers come first: their deletes note rows of the site in
 * the others (the rollups' dirty hours and event counts), which go after them.
 */
const TABLES_WITHOUT_SITE_KEY = `SELECT c.relname AS name FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'site_id' AND NOT a.attisdropped
	WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid = 'sites'::regclass)
	ORDER BY EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) DESC, 1`;

/**
 * Removes a site and every row of it in one transaction: all or nothing. Under the rollups' lock of
 * the site, so a fold running at the same time finishes before, or finds nothing after.
 */
export async function removeSite(prisma: PrismaClient, siteId: string): Promise<void> {
	await prisma.$transaction(
		async (tx) => {
			await lockSiteRollups(tx, siteId);
			await tx.site.delete({ where: { id: siteId } });
			await forgetSiteSecrets(tx, siteId);
			// After the cascade, whose deletes also note rows of the site for the rollups.
			for (const { name } of await tx.$queryRawUnsafe<Array<{ name: string }>>(TABLES_WITHOUT_SITE_KEY)) {
				await tx.$executeRawUnsafe(`DELETE FROM "${name}" WHERE site_id = $1::uuid`, siteId);
			}
		},
		// A real site's cascade can take long; the default 5 s is for short writes.
		{ timeout: 30 * 60_000, maxWait: 60_000 },
	);
}
