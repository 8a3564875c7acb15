import { createHash } from 'node:crypto';

/** The form of an address used for hashing: case and surrounding space never make two people. */
export function canonicalEmail(email: string): string {
	return email.trim().toLowerCase();
}

/** SHA-256 of the canonical address: the key of suppressions and erasures, which outlive the address itself. */
export function emailHash(email: string): string {
	return createHash('sha256').update(canonicalEmail(email)).digest('hex');
}
