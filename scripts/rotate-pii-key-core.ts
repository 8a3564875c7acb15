/**
 * Key rotation of sealed personal data (scripts/rotate-pii-key): each lead of a site with
 * privacy.encryptPii is read in bounded batches, in id order (the order every writer locks leads
 * in), and what is sealed with an older key or still in clear is resealed under the current key.
 */
import type { PrismaClient } from '../lib/db';
import { emailHash } from '../lib/email';
import { LEAD_PII_COLUMNS, leadField, PiiCipher, type LeadPiiField, type PiiKeyring } from '../lib/pii';

export const DEFAULT_BATCH_SIZE = 200;
export const MAX_BATCH_SIZE = 5000;

export interface RotationResult {
	site: string;
	/** Leads read. */
	leads: number;
	/** Leads whose values were resealed or whose hash was replaced. */
	resealed: number;
	batches: number;
}

type LeadRow = { id: string; emailHash: string } & Record<LeadPiiField, string | null>;

const FIELDS = Object.keys(LEAD_PII_COLUMNS) as LeadPiiField[];

const BATCH = `
SELECT id, email_hash AS "emailHash", email, first_name AS "firstName", last_name AS "lastName", phone, company, job_title AS "jobTitle"
FROM leads WHERE site_id = $1::uuid AND id > $2::uuid ORDER BY id LIMIT $3 FOR UPDATE`;

// updated_at stays: the lead's content is what it was.
const RESEAL = `
UPDATE leads SET email_hash = v.email_hash, email = v.email, first_name = v.first_name, last_name = v.last_name, phone = v.phone, company = v.company, job_title = v.job_title
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS v(id, email_hash, email, first_name, last_name, phone, company, job_title)
WHERE leads.id = v.id`;

/** The lead resealed under the current key, or null when nothing of it needs resealing. */
export function resealed(cipher: PiiCipher, lead: LeadRow): LeadRow | null {
	const next = { ...lead };
	let changed = false;
	for (const field of FIELDS) {
		const value = lead[field];
		if (value === null || !cipher.isStale(value)) continue;
		next[field] = cipher.seal(cipher.open(value, leadField(field)), leadField(field));
		changed = true;
	}
	const hash = emailHash(cipher.open(lead.email as string, leadField('email')), cipher);
	if (hash !== lead.emailHash) {
		next.emailHash = hash;
		changed = true;
	}
	return changed ? next : null;
}

/** Reseals one site's leads, batch after batch, until every lead was read once or `signal` stops it. */
export async function rotateSite(prisma: PrismaClient, site: { id: string; key: string }, keyring: PiiKeyring, options: { batchSize?: number; signal?: AbortSignal } = {}): Promise<RotationResult> {
	const cipher = new PiiCipher(keyring, site.id);
	const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
	const result: RotationResult = { site: site.key, leads: 0, resealed: 0, batches: 0 };
	let after = '00000000-0000-0000-0000-000000000000';
	for (;;) {
		options.signal?.throwIfAborted();
		const read = await prisma.$transaction(async (tx) => {
			const leads = await tx.$queryRawUnsafe<LeadRow[]>(BATCH, site.id, after, batchSize);
			const changed = leads.flatMap((lead) => resealed(cipher, lead) ?? []);
			if (changed.length > 0) {
				await tx.$executeRawUnsafe(
					RESEAL,
					changed.map((lead) => lead.id),
					changed.map((lead) => lead.emailHash),
					...FIELDS.map((field) => changed.map((lead) => lead[field])),
				);
			}
			return { leads, changed: changed.length };
		});
		result.batches += 1;
		result.leads += read.leads.length;
		result.resealed += read.changed;
		if (read.leads.length < batchSize) return result;
		after = read.leads[read.leads.length - 1].id;
	}
}

/** The sites whose stored config seals personal data; one site by its key with `only`. */
export async function encryptingSites(prisma: PrismaClient, only?: string): Promise<Array<{ id: string; key: string }>> {
	const sites = await prisma.site.findMany({ where: only ? { key: only } : {}, select: { id: true, key: true, config: true }, orderBy: { key: 'asc' } });
	return sites.filter((site) => (site.config as { privacy?: { encryptPii?: unknown } } | null)?.privacy?.encryptPii === true).map(({ id, key }) => ({ id, key }));
}
