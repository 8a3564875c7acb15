import { isSealed, piiKeyringFromEnv, PiiCipher, PiiDecryptError, PiiKeyError } from '../../lib/pii';
import type { CaughtMessage, HeaderField } from './caught';

/**
 * Caught mail of a site with privacy.encryptPii, at rest: a CRM email carries the lead's address
 * (envelope, To header), its name (subject and body greet it) and its unsubscribe link, so the
 * catcher seals every recipient, the subject, both parts and every header value, each under its
 * column (lib/pii.ts binds the site and the column into the sealed value). The sender, the
 * Message-ID and the sizes stay clear: they are the site's, not the person's.
 */
export const CAUGHT_FIELDS = {
	toAddresses: 'mailbox_messages.to_addresses',
	subject: 'mailbox_messages.subject',
	html: 'mailbox_messages.html',
	text: 'mailbox_messages.text',
	headers: 'mailbox_messages.headers',
} as const;

/** The parts of a caught message that are sealed on a site with privacy.encryptPii; a row may hold any of them. */
export type SealedParts = Partial<Pick<CaughtMessage, 'toAddresses' | 'subject' | 'html' | 'text' | 'headers'>>;

/** Whether a site's stored config (the sites table's JSON) asks for personal data to be sealed. */
export function encryptsPii(config: unknown): boolean {
	return (config as { privacy?: { encryptPii?: unknown } } | null)?.privacy?.encryptPii === true;
}

function mapParts<T extends SealedParts>(row: T, each: (value: string, field: string) => string): T {
	const mapped: SealedParts = { ...row };
	if (row.toAddresses) mapped.toAddresses = row.toAddresses.map((address) => each(address, CAUGHT_FIELDS.toAddresses));
	if (typeof row.subject === 'string') mapped.subject = each(row.subject, CAUGHT_FIELDS.subject);
	if (typeof row.html === 'string') mapped.html = each(row.html, CAUGHT_FIELDS.html);
	if (typeof row.text === 'string') mapped.text = each(row.text, CAUGHT_FIELDS.text);
	if (row.headers) mapped.headers = row.headers.map((header): HeaderField => ({ name: header.name, value: each(header.value, CAUGHT_FIELDS.headers) }));
	return mapped as T;
}

/** The message as mailbox_messages keeps it: sealed with the site's cipher, as it is on a site that stores in clear (null). */
export function sealCaught<T extends SealedParts>(cipher: PiiCipher | null, message: T): T {
	return cipher ? mapParts(message, (value, field) => cipher.seal(value, field)) : message;
}

/** What the mailbox shows for a sealed value it cannot open. */
export const UNOPENED = '(encrypted: this receiver has no key that opens it)';

/**
 * A stored row with its sealed values opened by the keys of the receiver's environment. Decided by
 * each value's shape rather than by the site's config now, so mail caught while a site sealed still
 * opens after it stopped (or after the site left the config); a clear value comes back as it is.
 * A value no key here opens (the keys were removed, or another receiver with other keys caught it
 * into a shared database) shows as UNOPENED: one such row must not take the mailbox down.
 */
export function openCaught<T extends SealedParts>(siteId: string | null, row: T): T {
	if (siteId === null) return row;
	let cipher: PiiCipher | null | undefined;
	return mapParts(row, (value, field) => {
		if (!isSealed(value)) return value;
		if (cipher === undefined) cipher = keyringOrNull(siteId);
		if (cipher === null) return UNOPENED;
		try {
			return cipher.open(value, field);
		} catch (error) {
			if (error instanceof PiiDecryptError) return UNOPENED;
			throw error;
		}
	});
}

function keyringOrNull(siteId: string): PiiCipher | null {
	try {
		return new PiiCipher(piiKeyringFromEnv(), siteId);
	} catch (error) {
		if (error instanceof PiiKeyError) return null;
		throw error;
	}
}
