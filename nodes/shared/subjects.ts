import { siteConfigSchema, type SiteConfig } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import type { RawSql } from '../../lib/db/rawSql';
import { formatIssues, toFieldIssues } from '../../lib/contracts/issues';
import { isUuid } from '../../lib/ids';
import { InputError } from './inputError';
import { ErasedPerson, erasedVisitorReferences } from './leads';

export interface ResolvedSite {
	id: string;
	key: string;
	domain: string;
	/** The site's config as the receiver stored it, with every default filled in. */
	config: SiteConfig;
}

/**
 * The config the receiver synced into `sites.config`. A row without one (`{}`, a site written by
 * other means) gets the defaults. A stored config this version cannot read is an error, never
 * silently the defaults: the site's goals, scoring rules and consent settings would vanish.
 */
function storedConfig(site: { key: string; name: string; domain: string; config: unknown }): SiteConfig {
	const stored = site.config;
	const empty = stored === null || (typeof stored === 'object' && !Array.isArray(stored) && Object.keys(stored).length === 0);
	const input = empty ? { site: { key: site.key, name: site.name, domain: site.domain }, tracking: { allowedOrigins: [`https://${site.domain}`] } } : stored;
	const parsed = siteConfigSchema.safeParse(input);
	if (parsed.success) return parsed.data;
	throw new InputError(
		'siteKey',
		`The config stored for site "${site.key}" does not fit this version of the CRM nodes (${formatIssues(toFieldIssues(parsed.error, input, siteConfigSchema))}); ` +
			'install the same version of n8n-nodes-tracking-crm in n8n as the receiver runs, or fix the site config file and restart the receiver',
	);
}

/** Looks up sites by public key, once per key for the lifetime of the resolver (one execution). */
export class SiteResolver {
	private readonly sites = new Map<string, Promise<ResolvedSite>>();

	constructor(private readonly sql: Pick<RawSql, '$queryRawUnsafe'>) {}

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
		const [site] = await this.sql.$queryRawUnsafe<Array<{ id: string; key: string; name: string; domain: string; config: unknown }>>(
			'SELECT id, key, name, domain, config FROM sites WHERE key = $1',
			key,
		);
		if (!site) {
			// The Email Orchestrator's list offers "*" (All Sites) to Send Due, and the editor keeps it when the operation changes.
			if (key === '*') throw new InputError('siteKey', 'is "All Sites", which only Send Due takes: pick one site for this operation, or map it, such as {{ $json.site }}');
			throw new InputError('siteKey', `No site with key "${key}"; use the site.key of a site config the receiver has loaded (e.g. nat-pets)`);
		}
		return { id: site.id, key: site.key, domain: site.domain, config: storedConfig(site) };
	}
}

/**
 * Visitors by id or by the tracker's anonymous id, always within one site, in one query: each
 * reference maps to its visitor's id, to {@link ErasedPerson} when it names a browser an erasure
 * deleted (one query more, for the references no visitor answers), or to why it names none.
 */
export async function findVisitorIds(prisma: Pick<PrismaClient, 'visitor' | '$queryRawUnsafe'>, siteId: string, references: readonly string[]): Promise<Map<string, string | InputError | ErasedPerson>> {
	const found = new Map<string, string | InputError | ErasedPerson>();
	const values = [...new Set(references.map((reference) => reference.trim()))];
	const rows =
		values.length === 0
			? []
			: await prisma.visitor.findMany({ where: { siteId, OR: [{ id: { in: values.filter((value) => isUuid(value)) } }, { anonymousId: { in: values } }] }, select: { id: true, anonymousId: true } });
	const byId = new Set(rows.map((row) => row.id));
	const byAnonymousId = new Map(rows.map((row) => [row.anonymousId, row.id]));
	const idOf = (value: string) => (byId.has(value.toLowerCase()) ? value.toLowerCase() : byAnonymousId.get(value));
	const erased = await erasedVisitorReferences(
		prisma,
		siteId,
		values.filter((value) => idOf(value) === undefined),
	);
	for (const reference of references) {
		const value = reference.trim();
		const id = idOf(value);
		if (id !== undefined) found.set(reference, id);
		else if (erased.has(value)) found.set(reference, new ErasedPerson(value, 'visitor'));
		else found.set(reference, new InputError('visitor', `No visitor "${value}" on this site; give the visitor's id or the tracker's anonymous id`));
	}
	return found;
}
