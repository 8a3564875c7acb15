import type { PrismaClient } from '../../lib/db/generated/client';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A reference that cannot be resolved; `field` names the node parameter to fix. */
export class SubjectNotFoundError extends Error {
	constructor(
		readonly field: string,
		message: string,
	) {
		super(message);
	}
}

/** Looks up site ids by public key, once per key for the lifetime of the cache. */
export class SiteResolver {
	private readonly ids = new Map<string, string>();

	constructor(private readonly prisma: PrismaClient) {}

	async idOf(siteKey: string): Promise<string> {
		const key = siteKey.trim();
		const cached = this.ids.get(key);
		if (cached) return cached;
		const site = await this.prisma.site.findUnique({ where: { key }, select: { id: true } });
		if (!site) {
			throw new SubjectNotFoundError('siteKey', `No site with key "${key}"; use the site.key of a site config the receiver has loaded (e.g. nat-pets)`);
		}
		this.ids.set(key, site.id);
		return site.id;
	}
}

/** A lead by id or by email address, always within one site. */
export async function findLeadId(prisma: PrismaClient, siteId: string, reference: string): Promise<string> {
	const value = reference.trim();
	const where = UUID.test(value) ? { id: value, siteId } : { siteId, email: value.toLowerCase() };
	const lead = await prisma.lead.findFirst({ where, select: { id: true } });
	if (!lead) throw new SubjectNotFoundError('lead', `No lead "${value}" on this site; give the lead's id or email address`);
	return lead.id;
}

/** A visitor by id or by the tracker's anonymous id, always within one site. */
export async function findVisitorId(prisma: PrismaClient, siteId: string, reference: string): Promise<string> {
	const value = reference.trim();
	const where = UUID.test(value) ? { siteId, OR: [{ id: value }, { anonymousId: value }] } : { siteId, anonymousId: value };
	const visitor = await prisma.visitor.findFirst({ where, select: { id: true } });
	if (!visitor) throw new SubjectNotFoundError('visitor', `No visitor "${value}" on this site; give the visitor's id or the tracker's anonymous id`);
	return visitor.id;
}
