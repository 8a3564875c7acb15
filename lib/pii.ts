/**
 * Personal data at rest for sites with `privacy.encryptPii`: each value is sealed with AES-256-GCM
 * (authenticated, so a changed byte fails instead of decrypting to garbage) under a key named in
 * the sealed text, so old and new keys can be read side by side while a rotation runs; and a keyed
 * hash (HMAC-SHA-256) stands in for the address wherever rows are found or de-duplicated by it.
 *
 * Keys come from the environment (the receiver, the rotation command) or from the Tracking CRM API
 * credential (the nodes in n8n), in the same text form, checked by {@link parsePiiKeys}.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/** Encryption keys, newest first: `id:key,id:key`; the first seals, every one opens. */
export const PII_KEYS_ENV = 'PII_ENCRYPTION_KEYS';
/** The look-up hash key; never rotated (see {@link PiiKeyring.hashKey}). */
export const PII_HASH_KEY_ENV = 'PII_HASH_KEY';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const MAKE_KEY = 'make one with `openssl rand -base64 32`';

/**
 * `pii1:<key id>:<iv>:<ciphertext and tag>`, base64url. A value is taken as sealed only when it has
 * exactly this shape, so clear values written before the site turned encryption on still read as
 * themselves (no name, address or phone number a form accepts has it).
 */
const SEALED = /^pii1:([A-Za-z0-9_-]{1,32}):([A-Za-z0-9_-]{16}):([A-Za-z0-9_-]{22,})$/;

/** A key setting that cannot be used; the message names the variable (or credential field) and the fix. */
export class PiiKeyError extends Error {
	constructor(
		readonly setting: string,
		message: string,
	) {
		super(`${setting}: ${message}`);
		this.name = 'PiiKeyError';
	}
}

/** A sealed value that does not open: altered, cut, sealed for another row or column, or under a key not configured. */
export class PiiDecryptError extends Error {
	constructor(
		message: string,
		readonly keyId: string | null,
	) {
		super(message);
		this.name = 'PiiDecryptError';
	}
}

export interface PiiKeyring {
	/** The key new values are sealed with. */
	currentKeyId: string;
	keys: ReadonlyMap<string, Buffer>;
	/**
	 * The HMAC key of look-up hashes. It is not rotated with the encryption keys: suppressions and
	 * erasure records keep only the hash of an address they no longer hold, so a new hash key could
	 * not recompute them and an erased address would be accepted again.
	 */
	hashKey: Buffer;
	/**
	 * The sites the receiver recorded another hash key for (lib/piiHashKey.ts), and the setting
	 * this keyring's hash key was read from, which {@link siteCipher} names when it refuses one.
	 * Only the nodes set it: the receiver checks its key when it starts.
	 */
	otherHashKeySites?: { siteIds: ReadonlySet<string>; setting: string };
}

/** Where the key texts were read from, for the error messages. */
export interface PiiKeySources {
	keys: string;
	hashKey: string;
}

const ENV_SOURCES: PiiKeySources = { keys: PII_KEYS_ENV, hashKey: PII_HASH_KEY_ENV };
/** The credential fields the nodes read the keys from, as their errors name them. */
export const CREDENTIAL_SOURCES: PiiKeySources = { keys: 'Tracking CRM API credential, PII Encryption Keys', hashKey: 'Tracking CRM API credential, PII Hash Key' };

function decodeKey(text: string, setting: string, what: string): Buffer {
	const trimmed = text.trim();
	const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : /^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed) ? Buffer.from(trimmed, 'base64') : null;
	if (!key || key.length !== KEY_BYTES) {
		throw new PiiKeyError(setting, `${what} is not a ${KEY_BYTES}-byte key in base64 (or 64 hex digits); ${MAKE_KEY}`);
	}
	return key;
}

/**
 * The keyring from its two texts: `keys` as `id:key` entries separated by commas, newest first
 * (e.g. `2026b:…,2026a:…`), and the hash key alone. Throws {@link PiiKeyError} naming the setting.
 */
export function parsePiiKeys(keysText: string | undefined, hashKeyText: string | undefined, sources: PiiKeySources = ENV_SOURCES): PiiKeyring {
	if (!keysText?.trim()) {
		throw new PiiKeyError(sources.keys, `is not set, and a site has privacy.encryptPii: true; set it to id:key (${MAKE_KEY}), e.g. 2026a:<key>`);
	}
	if (!hashKeyText?.trim()) {
		throw new PiiKeyError(sources.hashKey, `is not set, and a site has privacy.encryptPii: true; set it to a key of its own (${MAKE_KEY}) and never change it`);
	}
	const keys = new Map<string, Buffer>();
	for (const [index, entry] of keysText.split(',').entries()) {
		const separator = entry.indexOf(':');
		const id = separator < 0 ? '' : entry.slice(0, separator).trim();
		const what = `entry ${index + 1}${id ? ` ("${id}")` : ''}`;
		if (!KEY_ID.test(id)) {
			throw new PiiKeyError(sources.keys, `${what} is not id:key with an id of letters, digits, "-" or "_" (at most 32); write the keys as id:key, newest first, separated by commas`);
		}
		if (keys.has(id)) throw new PiiKeyError(sources.keys, `key id "${id}" is listed twice; give each key its own id`);
		keys.set(id, decodeKey(entry.slice(separator + 1), sources.keys, what));
	}
	const hashKey = decodeKey(hashKeyText, sources.hashKey, 'the value');
	if ([...keys.values()].some((key) => key.equals(hashKey))) {
		throw new PiiKeyError(sources.hashKey, `is also one of ${sources.keys}; give the hash key a value of its own`);
	}
	return { currentKeyId: keys.keys().next().value as string, keys, hashKey };
}

let parsedFromEnv: { keys: string | undefined; hashKey: string | undefined; keyring: PiiKeyring } | undefined;

/**
 * The keyring of the environment; only asked for when a site encrypts, so its absence is an error
 * then. Parsed again only when the variables change, since the receiver asks for it per request.
 */
export function piiKeyringFromEnv(env: NodeJS.ProcessEnv = process.env): PiiKeyring {
	const keys = env[PII_KEYS_ENV];
	const hashKey = env[PII_HASH_KEY_ENV];
	const last = parsedFromEnv;
	if (last && last.keys === keys && last.hashKey === hashKey) return last.keyring;
	const keyring = parsePiiKeys(keys, hashKey);
	parsedFromEnv = { keys, hashKey, keyring };
	return keyring;
}

/**
 * The keyring of the Tracking CRM API credential's PII fields, so the nodes in n8n read the keys
 * where n8n keeps secrets; null when both are empty (the n8n process' environment then applies).
 */
export function piiKeyringFromCredential(credential: { piiEncryptionKeys?: unknown; piiHashKey?: unknown }): PiiKeyring | null {
	const keys = String(credential.piiEncryptionKeys ?? '');
	const hashKey = String(credential.piiHashKey ?? '');
	if (!keys.trim() && !hashKey.trim()) return null;
	return parsePiiKeys(keys, hashKey, CREDENTIAL_SOURCES);
}

/** Whether a stored value is sealed (by any key). */
export function isSealed(value: string): boolean {
	return SEALED.test(value);
}

/** The key a stored value is sealed with; null for a clear value. */
export function sealedKeyId(value: string): string | null {
	return SEALED.exec(value)?.[1] ?? null;
}

/**
 * Seals and opens one site's values. `field` (the table and column) is bound into each value as
 * GCM's associated data, with the site, so a sealed value copied to another column, row of another
 * site, or site cannot be opened there.
 */
export class PiiCipher {
	constructor(
		readonly keyring: PiiKeyring,
		readonly siteId: string,
	) {}

	private aad(field: string): Buffer {
		return Buffer.from(`${this.siteId}\u0000${field}`, 'utf8');
	}

	seal(value: string, field: string): string {
		const keyId = this.keyring.currentKeyId;
		const iv = randomBytes(IV_BYTES);
		const cipher = createCipheriv('aes-256-gcm', this.keyring.keys.get(keyId) as Buffer, iv);
		cipher.setAAD(this.aad(field));
		const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final(), cipher.getAuthTag()]);
		return `pii1:${keyId}:${iv.toString('base64url')}:${body.toString('base64url')}`;
	}

	/** The clear value; a value stored before encryption was on comes back as it is. */
	open(stored: string, field: string): string {
		const parts = SEALED.exec(stored);
		if (!parts) return stored;
		const [, keyId, iv, body] = parts;
		const key = this.keyring.keys.get(keyId);
		if (!key) {
			throw new PiiDecryptError(`${field} is sealed with key "${keyId}", which ${PII_KEYS_ENV} no longer lists; add it back (after the new key) until rotate-pii-key has resealed every value`, keyId);
		}
		const bytes = Buffer.from(body, 'base64url');
		if (bytes.length < TAG_BYTES) throw new PiiDecryptError(`${field} is sealed but cut short; it cannot be read`, keyId);
		const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
		decipher.setAAD(this.aad(field));
		decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
		try {
			return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
		} catch {
			throw new PiiDecryptError(`${field} does not authenticate under key "${keyId}": it was altered, or sealed for another site or column, or the key's value changed`, keyId);
		}
	}

	sealOrNull(value: string | null | undefined, field: string): string | null {
		return value === null || value === undefined ? null : this.seal(value, field);
	}

	openOrNull(stored: string | null, field: string): string | null {
		return stored === null ? null : this.open(stored, field);
	}

	/**
	 * `value` sealed for `field`, or `stored` itself when it already holds that value: a replayed
	 * write then stores what is there and changes nothing (a new seal would differ in every byte).
	 */
	sealUnlessSame(value: string | null | undefined, stored: string | null | undefined, field: string): string | null {
		if (value === null || value === undefined) return null;
		if (stored && isSealed(stored) && this.open(stored, field) === value) return stored;
		return this.seal(value, field);
	}

	/** Whether the value must be (re)sealed: clear, or sealed with a key other than the current one. */
	isStale(stored: string): boolean {
		return sealedKeyId(stored) !== this.keyring.currentKeyId;
	}

	/** Keyed hash of a value already in its canonical form (lib/email.ts canonicalEmail for addresses). */
	lookupHash(canonical: string): string {
		return createHmac('sha256', this.keyring.hashKey).update(this.siteId).update('\u0000').update(canonical).digest('hex');
	}
}

/**
 * The cipher of a site with `privacy.encryptPii`, null for a site that stores in clear. The keyring
 * is the credential's in n8n; the environment's otherwise (the receiver and its embedded engine).
 * A site the receiver recorded another hash key for is refused: under this one, no lead would be
 * found by its address and each would be stored again.
 */
export function siteCipher(siteId: string, encryptPii: boolean, keyring?: PiiKeyring | null): PiiCipher | null {
	if (!encryptPii) return null;
	const ring = keyring ?? piiKeyringFromEnv();
	const other = ring.otherHashKeySites;
	if (other?.siteIds.has(siteId)) {
		throw new PiiKeyError(
			other.setting,
			`is not the hash key this site's addresses were hashed with (the receiver keeps a fingerprint of its ${PII_HASH_KEY_ENV}): under it no lead would be found by its address, and each would be stored again`,
		);
	}
	return new PiiCipher(ring, siteId);
}

/** The sealed columns of `leads`, by their Prisma field names: the address, names, phone, company and job title (the properties are sealed whole: {@link sealLeadProperties}). */
export const LEAD_PII_COLUMNS = {
	email: 'email',
	firstName: 'first_name',
	lastName: 'last_name',
	phone: 'phone',
	company: 'company',
	jobTitle: 'job_title',
} as const;

export type LeadPiiField = keyof typeof LEAD_PII_COLUMNS;

/** The associated data a lead column is sealed under. */
export const leadField = (field: LeadPiiField) => `leads.${LEAD_PII_COLUMNS[field]}`;

/**
 * A JSON value sealed for `field` as one string (its JSON text sealed), so a jsonb column keeps its
 * type. A value already sealed goes to the cipher as it is, for the rotation's resealing cipher to
 * reseal; a clear value that cipher leaves clear stays the value it was, not its text.
 */
function sealJson(cipher: PiiCipher, value: unknown, field: string): unknown {
	const sealed = cipher.seal(typeof value === 'string' && isSealed(value) ? value : JSON.stringify(value), field);
	return isSealed(sealed) ? sealed : value;
}

/** The JSON value {@link sealJson} sealed; a clear value (stored before encryption was on) as it is. */
function openJson(cipher: PiiCipher, stored: unknown, field: string): unknown {
	return typeof stored === 'string' && isSealed(stored) ? JSON.parse(cipher.open(stored, field)) : stored;
}

/** The associated data a lead's `properties` are sealed under. */
export const LEAD_PROPERTIES_FIELD = 'leads.properties';

/**
 * A lead's `properties` as a site that seals stores them: the whole object sealed as one string,
 * since a form's or identify call's properties may hold free text (a message, a note); null and
 * absent stay so, and a site that stores in clear stores the object.
 */
export function sealLeadProperties(cipher: PiiCipher | null, properties: unknown): unknown {
	return !cipher || properties === null || properties === undefined ? properties : sealJson(cipher, properties, LEAD_PROPERTIES_FIELD);
}

/** A lead's stored `properties` opened; as stored on a site that stores in clear. */
export function openLeadProperties(cipher: PiiCipher | null, stored: unknown): unknown {
	return cipher ? openJson(cipher, stored, LEAD_PROPERTIES_FIELD) : stored;
}

/** A lead row (any selection of its fields) with its sealed fields (and its properties, when selected) opened; the row itself when the site stores in clear. */
export function openLead<T extends Partial<Record<LeadPiiField, string | null>> & { properties?: unknown }>(cipher: PiiCipher | null, row: T): T {
	if (!cipher) return row;
	const opened: Partial<Record<LeadPiiField, string | null>> & { properties?: unknown } = { ...row };
	for (const field of Object.keys(LEAD_PII_COLUMNS) as LeadPiiField[]) {
		const value = row[field];
		if (typeof value === 'string') opened[field] = cipher.open(value, leadField(field));
	}
	if ('properties' in row) opened.properties = openLeadProperties(cipher, row.properties);
	return opened as T;
}

/**
 * The personal fields of a lead submission (lib/contracts/lead.ts) as the receiver's outbox holds
 * it until n8n has it: the same fields as the lead row's sealed columns, and its properties.
 */
const SUBMISSION_PII_FIELDS = Object.keys(LEAD_PII_COLUMNS) as LeadPiiField[];

/** The associated data a submission field is sealed under in the outbox. */
const submissionField = (field: LeadPiiField | 'properties') => `outbox.lead.${field}`;

type Submission = Partial<Record<LeadPiiField, unknown>> & { properties?: unknown };

/** The submission with its personal fields and properties sealed; the submission itself on a site that stores in clear. */
export function sealSubmission<T extends Submission>(cipher: PiiCipher | null, lead: T): T {
	if (!cipher) return lead;
	const sealed: Submission = { ...lead };
	for (const field of SUBMISSION_PII_FIELDS) {
		const value = lead[field];
		if (typeof value === 'string') sealed[field] = cipher.seal(value, submissionField(field));
	}
	if (lead.properties !== undefined && lead.properties !== null) sealed.properties = sealJson(cipher, lead.properties, submissionField('properties'));
	return sealed as T;
}

/** Whether any personal field (or the properties) of the submission is sealed, so that opening it needs the site's keys. */
export function isSealedSubmission(lead: Submission): boolean {
	return [...SUBMISSION_PII_FIELDS.map((field) => lead[field]), lead.properties].some((value) => typeof value === 'string' && isSealed(value));
}

/** The submission as it was posted: sealed fields opened, clear ones (a site that stores in clear, a test delivery) as they are. */
export function openSubmission<T extends Submission>(cipher: PiiCipher, lead: T): T {
	const opened: Submission = { ...lead };
	for (const field of SUBMISSION_PII_FIELDS) {
		const value = lead[field];
		if (typeof value === 'string') opened[field] = cipher.open(value, submissionField(field));
	}
	if ('properties' in lead) opened.properties = openJson(cipher, lead.properties, submissionField('properties'));
	return opened as T;
}

/** The associated data of the recipient address of an email message. */
export const MESSAGE_RECIPIENT_FIELD = 'email_messages.to_email';
/** The associated data of a sent subject, which may greet the lead by name. */
export const MESSAGE_SUBJECT_FIELD = 'email_messages.subject';

/** A message's recipient and subject as email_messages keeps them: sealed on a site with privacy.encryptPii, since a subject may greet the lead by name. */
export function storedRecipient(cipher: PiiCipher | null, toEmail: string, subject: string): { toEmail: string; subject: string } {
	return cipher ? { toEmail: cipher.seal(toEmail, MESSAGE_RECIPIENT_FIELD), subject: cipher.seal(subject, MESSAGE_SUBJECT_FIELD) } : { toEmail, subject };
}
