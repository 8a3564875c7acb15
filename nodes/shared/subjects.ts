import { siteConfigSchema, type SiteConfig } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { isUuid } from '../../lib/ids';
import { InputError } from './inputError';

export interface ResolvedSite {
	id: string;
	key: string;
	domain: string;
	/** The site's config as the receiver stored it, with every default filled in. */
	config: SiteConfig;
}

/**
 * The config the receiver synced into `sites.config`; a site row written by other means (no
 * or an outdated config) gets the defaults, so the nodes still run with documented behaviour.
 */
function storedConfig(site: { key: string; name: string; domain: string; config: unknown }): SiteConfig {
	const parsed = siteConfigSchema.safeParse(site.config);
	if (parsed.success) return parsed.data;
	return siteConfigSchema.parse({
		site: { key: site.key, name: site.name, domain: site.domain },
		tracking: { allowedOrigins: [`https://${site.domain}`] },
	});
}

/** Looks up sites by public key, once per key for the lifetime of the resolver (one execution). */
export class SiteResolver {
	private readonly sites = new Map<string, Promise<ResolvedSite>>();

	constructor(private readonly prisma: PrismaClient) {}

	async idOf(siteKey: string): Promise<string> {
		return (await this.siteOf(siteKey)).id;
	}

	siteOf(siteKey: string): Promise<ResolvedSite> {
		const key = String(siteKey ?? '').trim();
		let site = this.sites.get(key);
		if (!site) {
			site = this.load(key);
			site.catch(() => this.sites.delete(key));
			this.sites.set(key, site);
		}
		return site;
	}

	private async load(key: string): Promise<ResolvedSite> {
		const site = await this.prisma.site.findUnique({ where: { key }, select: { id: true, key: true, name: true, domain: true, config: true } });
		if (!site) {
			throw new InputError('siteKey', `No site with key "${key}"; use the site.key of a site config the receiver has loaded (e.g. nat-pets)`);
		}
		return { id: site.id, key: site.key, domain: site.domain, config: storedConfig(site) };
	}
}

/** A visitor by id or by the tracker's anonymous id, always within one site. */
export async function findVisitorId(prisma: PrismaClient, siteId: string, reference: string): Promise<string> {
	const value = reference.trim();
	const where = isUuid(value) ? { siteId, OR: [{ id: value }, { anonymousId: value }] } : { siteId, anonymousId: value };
	const visitor = await prisma.visitor.findFirst({ where, select: { id: true } });
	if (!visitor) throw new InputError('visitor', `No visitor "${value}" on this site; give the visitor's id or the tracker's anonymous id`);
	return visitor.id;
}
