import { createHash } from 'node:crypto';

import { normalizeEmail } from './mailbox';
import type { PiiCipher } from './pii';

/**
 * The mailbox an address delivers to, the one identity of a person's address everywhere: lead
 * dedupe, suppressions, erasure and export all compare this, so `Jane.Doe+news@gmail.com` and
 * `janedoe@gmail.com` can never be two people to one check and one person to another.
 */
export function canonicalEmail(email: string): string {
	return normalizeEmail(email)?.key ?? email.trim().toLowerCase();
}

/**
 * The hash of the canonical address: the key of suppressions and erasures, which outlive the
 * address itself. SHA-256 on a site that stores addresses in clear; on a site with
 * `privacy.encryptPii`, its cipher's keyed hash, so a copy of the database gives no way to test
 * a guessed address against it.
 */
export function emailHash(email: string, cipher?: PiiCipher | null): string {
	const canonical = canonicalEmail(email);
	return cipher ? cipher.lookupHash(canonical) : createHash('sha256').update(canonical).digest('hex');
}
