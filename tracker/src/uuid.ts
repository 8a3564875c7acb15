/**
 * RFC 9562 UUIDv7: 48 bits of milliseconds, version 7, then randomUUID's random bits and
 * variant. Generated in the browser because the id is the receiver's idempotency key: a retried
 * batch carries the same ids and is stored once. Time order keeps the receiver's index
 * append-mostly. randomUUID needs a secure context (https, or localhost), as sites have now.
 */
export function uuidv7(now = Date.now()): string {
	const time = now.toString(16).padStart(12, '0');
	return `${time.slice(0, 8)}-${time.slice(8)}-7${crypto.randomUUID().slice(15)}`;
}
