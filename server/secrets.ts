import { randomBytes } from 'node:crypto';

import type { SiteConfig } from '../lib/contracts';
import type { PrismaClient } from '../lib/db';
import { emailHash } from '../lib/email';
import { leadField, PII_HASH_KEY_ENV, PiiCipher, PiiDecryptError, PiiKeyError, piiKeyringFromEnv, type PiiKeyring } from '../lib/pii';
import { hashKeyFingerprint, hashKeyPinName, otherHashKeyProblem } from '../lib/piiHashKey';

/**
 * The values of `names` kept in `receiver_secrets`; each one absent is stored as `valueOf` gives it
 * first. Insert-or-keep, then read: of receivers starting at once on one database, the first write
 * wins and every one reads that.
 */
async function keptValues(prisma: PrismaClient, names: readonly string[], valueOf: () => string): Promise<Map<string, string>> {
	await prisma.$executeRawUnsafe(
		`INSERT INTO receiver_secrets (name, value) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (name) DO NOTHING`,
		names,
		names.map(() => valueOf()),
	);
	return await storedValues(prisma, names);
}

async function storedValues(prisma: PrismaClient, names: readonly string[]): Promise<Map<string, string>> {
	const rows = await prisma.$queryRawUnsafe<Array<{ name: string; value: string }>>(`SELECT name, value FROM receiver_secrets WHERE name = ANY($1::text[])`, names);
	return new Map(rows.map((row) => [row.name, row.value]));
}

/**
 * A secret the receiver makes for itself the first time it needs one, kept in the database: a
 * restart, or another receiver on the same database, gets the same value, so what was signed
 * before (an email's unsubscribe link) still verifies.
 */
export async function receiverSecret(prisma: PrismaClient, name: string): Promise<string> {
	return (await keptValues(prisma, [name], () => randomBytes(48).toString('base64url'))).get(name) as string;
}

/** Deletes what is kept for one site (its hash key's fingerprint): part of removing the site. */
export async function forgetSiteSecrets(prisma: Pick<PrismaClient, '$executeRawUnsafe'>, siteId: string): Promise<void> {
	await prisma.$executeRawUnsafe(`DELETE FROM receiver_secrets WHERE name = $1`, hashKeyPinName(siteId));
}

type SealingSite = { id: string; key: string; config: Pick<SiteConfig, 'privacy'> };

/**
 * The sites among `sites` whose stored leads show another hash key: a lead's sealed address opens,
 * and its hash is neither the keyed hash under this key nor the SHA-256 it had while in clear. For
 * a database written before fingerprints were kept, whose first fingerprint would otherwise be of
 * whatever key this start has. A lead that does not open proves nothing about the hash key.
 */
async function sitesHashedOtherwise(prisma: PrismaClient, sites: readonly SealingSite[], keyring: PiiKeyring): Promise<Set<string>> {
	const samples = await prisma.$queryRawUnsafe<Array<{ siteId: string; email: string; emailHash: string }>>(
		`SELECT s.id::text AS "siteId", l.email, l.email_hash AS "emailHash" FROM unnest($1::uuid[]) AS s(id)
		CROSS JOIN LATERAL (SELECT email, email_hash FROM leads WHERE site_id = s.id AND starts_with(email, 'pii1:') LIMIT 1) l`,
		sites.map((site) => site.id),
	);
	const other = new Set<string>();
	for (const sample of samples) {
		const cipher = new PiiCipher(keyring, sample.siteId);
		let address: string;
		try {
			address = cipher.open(sample.email, leadField('email'));
		} catch (error) {
			if (error instanceof PiiDecryptError) continue;
			throw error;
		}
		if (sample.emailHash !== emailHash(address, cipher) && sample.emailHash !== emailHash(address)) other.add(sample.siteId);
	}
	return other;
}

/**
 * Refuses a PII_HASH_KEY other than the one each site with privacy.encryptPii was first run with.
 * The first start of such a site records a fingerprint of the key (lib/piiHashKey.ts); a site's
 * keyed hashes are written only while it encrypts, and nodes see it encrypt only once a receiver
 * synced its config, so that start precedes every keyed hash of it. Per site, since each site's
 * hashes stand alone (the site is part of each) and receivers may serve different sites.
 */
export async function checkPiiHashKey(prisma: PrismaClient, sites: readonly SealingSite[], env: NodeJS.ProcessEnv): Promise<void> {
	const sealing = sites.filter((site) => site.config.privacy.encryptPii);
	if (sealing.length === 0) return;
	const keyring = piiKeyringFromEnv(env);
	const fingerprint = hashKeyFingerprint(keyring.hashKey);
	const names = sealing.map((site) => hashKeyPinName(site.id));
	const pinned = await storedValues(prisma, names);
	const unpinned = sealing.filter((site) => !pinned.has(hashKeyPinName(site.id)));
	const disproved = unpinned.length > 0 ? await sitesHashedOtherwise(prisma, unpinned, keyring) : new Set<string>();
	const toPin = unpinned.filter((site) => !disproved.has(site.id)).map((site) => hashKeyPinName(site.id));
	const recorded = new Map([...pinned, ...(toPin.length > 0 ? await keptValues(prisma, toPin, () => fingerprint) : [])]);
	const refused = sealing.filter((site) => recorded.get(hashKeyPinName(site.id)) !== fingerprint).map((site) => site.key);
	if (refused.length > 0) throw new PiiKeyError(PII_HASH_KEY_ENV, otherHashKeyProblem(refused));
}
