import { createHash } from 'node:crypto';

import { normalizeEmail } from './mailbox';

/**
 * The mailbox an address delivers to, the one identity of a person's address everywhere: lead
 * dedupe, suppressions, erasure and export all compare this, so `Jane.Doe+news@gmail.com` and
 * `janedoe@gmail.com` can never be two people to one check and one person to another.
 */
export function canonicalEmail(email: string): string {
	return normalizeEmail(email)?.key ?? email.trim().toLowerCase();
}

/** SHA-256 of the canonical address: the key of suppressions and erasures, which outlive the address itself. */
export function emailHash(email: string): string {
	return createHash('sha256').update(canonicalEmail(email)).digest('hex');
}
