/**
 * The hash key (PII_HASH_KEY) a site with `privacy.encryptPii` was first run with, kept as a
 * fingerprint in `receiver_secrets` (one row per site, written by server/secrets.ts). Under another
 * hash key every keyed hash is another value: a privacy request finds no one, an erasure removes
 * nothing, a suppression stops matching and a lead is stored twice, without any error. The
 * receiver refuses to start with another key, and the nodes refuse such a site.
 */
import { createHmac } from 'node:crypto';

import type { RawSql } from './db/rawSql';

/**
 * Fixed, so that every process derives the same fingerprint from the same key. A look-up hash is
 * the HMAC of a site id, a NUL and an address (lib/pii.ts lookupHash); this label has no NUL, so a
 * fingerprint is never the hash of an address.
 */
const FINGERPRINT_LABEL = 'n8n-nodes-tracking-crm: fingerprint of PII_HASH_KEY, v1';

const PIN_PREFIX = 'pii-hash-key-fingerprint:';

/** An HMAC under the key: equal for equal keys, and it gives no way back to the key. */
export function hashKeyFingerprint(hashKey: Buffer): string {
	return createHmac('sha256', hashKey).update(FINGERPRINT_LABEL).digest('hex');
}

/** The `receiver_secrets` row holding a site's fingerprint. */
export function hashKeyPinName(siteId: string): string {
	return `${PIN_PREFIX}${siteId}`;
}

/**
 * The sites whose recorded fingerprint is not this key's, in one query: none where the key is the
 * receiver's, so it reads no row in the usual case.
 */
export async function sitesPinnedToOtherHashKey(db: Pick<RawSql, '$queryRawUnsafe'>, hashKey: Buffer): Promise<Set<string>> {
	const rows = await db.$queryRawUnsafe<Array<{ siteId: string }>>(
		`SELECT substr(name, length($1) + 1) AS "siteId" FROM receiver_secrets WHERE starts_with(name, $1) AND value <> $2`,
		PIN_PREFIX,
		hashKeyFingerprint(hashKey),
	);
	return new Set(rows.map((row) => row.siteId));
}

/** What is wrong with PII_HASH_KEY when the sites `siteKeys` were first run with another, and the fix. */
export function otherHashKeyProblem(siteKeys: readonly string[]): string {
	const sitesNamed = `${siteKeys.length > 1 ? 'sites' : 'site'} ${siteKeys.map((key) => `"${key}"`).join(', ')}`;
	return (
		`is not the key the addresses of ${sitesNamed} were hashed with (privacy.encryptPii; the receiver keeps a fingerprint of the key each site was first run with). ` +
		'Under another key the privacy export and erasure find no one, suppressions stop matching and leads are stored twice. ' +
		`Set PII_HASH_KEY back to that key (n8n may still hold it: PII Hash Key of the Tracking CRM API credential, or PII_HASH_KEY of n8n's environment); ` +
		'it cannot be rotated, since suppressions of erased addresses keep only its hash. See docs/troubleshooting.md#starting-the-receiver'
	);
}
