import { createHash, randomFillSync } from 'node:crypto';

/**
 * `count` UUIDv7s (RFC 9562) for the rows of one flush: 48 bits of Unix milliseconds, then 74
 * random bits. Row ids that grow with time append to the primary-key index; random (v4) ids
 * dirty a random index page per row, and after each checkpoint Postgres writes every such page
 * whole to the WAL (measured: 3x the full-page images of v7 ids on visitor_events).
 */
export function uuidv7s(count: number, now = Date.now()): string[] {
	const random = randomFillSync(Buffer.allocUnsafe(count * 10));
	const time = now.toString(16).padStart(12, '0');
	const template = Buffer.from(`${time.slice(0, 8)}-${time.slice(8, 12)}-7000-8000-000000000000`, 'latin1');
	// The ids' text is written into one buffer and each id read from it as one flat string: a
	// batch takes thousands, and building each from slices left several string objects per id.
	const text = Buffer.allocUnsafe(count * 36);
	const ids = new Array<string>(count);
	for (let i = 0; i < count; i++) {
		const at = i * 36;
		template.copy(text, at);
		const bits = i * 10;
		for (let n = 0; n < 3; n++) text[at + 15 + n] = HEX[nibble(random, bits, n)];
		text[at + 19] = HEX[8 | (nibble(random, bits, 3) & 3)];
		for (let n = 0; n < 3; n++) text[at + 20 + n] = HEX[nibble(random, bits, 4 + n)];
		for (let n = 0; n < 12; n++) text[at + 24 + n] = HEX[nibble(random, bits, 8 + n)];
		ids[i] = text.toString('latin1', at, at + 36);
	}
	return ids;
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** The `n`th four bits of the random bytes from `from`, high half of a byte first. */
const nibble = (random: Buffer, from: number, n: number): number => (random[from + (n >> 1)] >> (n & 1 ? 0 : 4)) & 15;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID in its text form (any version, either case): a row id rather than a name or address. */
export function isUuid(value: string): boolean {
	return UUID.test(value);
}

/**
 * How an erasure's tombstone names a browser (erased_visitors): the SHA-256 of the tracker's
 * anonymous id, which recognises the browser's items without keeping the id itself.
 */
export function anonymousIdHash(anonymousId: string): string {
	return createHash('sha256').update(anonymousId).digest('hex');
}
