/**
 * lib/pii.ts: sealed values open only with their key, site and column; a changed byte is
 * detected; old keys keep opening while a rotation runs; clear values written before encryption
 * read as themselves; a lead's properties (free text too) are sealed whole, in the row and in the
 * outbox's submission; the key settings are checked with errors that name the variable and the fix.
 */
import { createHash, randomBytes } from 'node:crypto';

import { emailHash } from '../../lib/email';
import {
	isSealed,
	isSealedSubmission,
	openLead,
	openLeadProperties,
	openSubmission,
	parsePiiKeys,
	PiiCipher,
	PiiDecryptError,
	PiiKeyError,
	piiKeyringFromCredential,
	piiKeyringFromEnv,
	sealedKeyId,
	sealLeadProperties,
	sealSubmission,
} from '../../lib/pii';

const key = () => randomBytes(32).toString('base64');
const SITE = '019a8b6e-0000-7000-8000-000000000001';
const OTHER_SITE = '019a8b6e-0000-7000-8000-000000000002';

describe('PII cipher', () => {
	const oldKey = key();
	const newKey = key();
	const hashKey = key();
	const before = new PiiCipher(parsePiiKeys(`2026a:${oldKey}`, hashKey), SITE);
	const during = new PiiCipher(parsePiiKeys(`2026b:${newKey},2026a:${oldKey}`, hashKey), SITE);
	const after = new PiiCipher(parsePiiKeys(`2026b:${newKey}`, hashKey), SITE);

	it('seals a value so that it holds nothing of it, differently each time, and opens it again', () => {
		const sealed = before.seal('Zoë O’Brien', 'leads.first_name');
		expect(sealed).toMatch(/^pii1:2026a:/);
		// Base64 holds two given letters by chance now and then; five in a row, or a letter outside its alphabet, all but never.
		for (const part of ['Zoë', 'O’Brien', 'Brien']) expect(sealed).not.toContain(part);
		expect(before.seal('Zoë O’Brien', 'leads.first_name')).not.toBe(sealed);
		expect(before.open(sealed, 'leads.first_name')).toBe('Zoë O’Brien');
		expect(before.open(before.seal('', 'leads.phone'), 'leads.phone')).toBe('');
	});

	it('detects any changed byte of a sealed value', () => {
		const sealed = before.seal('jane@example.com', 'leads.email');
		const body = sealed.slice(sealed.lastIndexOf(':') + 1);
		const bytes = Buffer.from(body, 'base64url');
		for (const position of [0, bytes.length - 1, Math.floor(bytes.length / 2)]) {
			const altered = Buffer.from(bytes);
			altered[position] ^= 1;
			const tampered = sealed.slice(0, sealed.lastIndexOf(':') + 1) + altered.toString('base64url');
			expect(() => before.open(tampered, 'leads.email')).toThrow(PiiDecryptError);
		}
		const iv = sealed.split(':')[2];
		const otherIv = Buffer.from(iv, 'base64url');
		otherIv[0] ^= 1;
		expect(() => before.open(sealed.replace(iv, otherIv.toString('base64url')), 'leads.email')).toThrow(/does not authenticate under key "2026a"/);
	});

	it('opens a value only in the column and site it was sealed for', () => {
		const sealed = before.seal('jane@example.com', 'leads.email');
		expect(() => before.open(sealed, 'leads.first_name')).toThrow(/leads\.first_name does not authenticate/);
		const otherSite = new PiiCipher(before.keyring, OTHER_SITE);
		expect(() => otherSite.open(sealed, 'leads.email')).toThrow(PiiDecryptError);
	});

	it('refuses a key whose value is wrong, and names a key no longer configured', () => {
		const sealed = before.seal('+49 30 1234567', 'leads.phone');
		const wrong = new PiiCipher(parsePiiKeys(`2026a:${key()}`, hashKey), SITE);
		expect(() => wrong.open(sealed, 'leads.phone')).toThrow(/does not authenticate under key "2026a"/);
		expect(() => after.open(sealed, 'leads.phone')).toThrow(/sealed with key "2026a", which PII_ENCRYPTION_KEYS no longer lists; add it back/);
	});

	it('rotates: the new key seals, both keys open, and old values are known as stale', () => {
		const old = before.seal('Ada', 'leads.first_name');
		const fresh = during.seal('Ada', 'leads.first_name');
		expect(sealedKeyId(old)).toBe('2026a');
		expect(sealedKeyId(fresh)).toBe('2026b');
		expect(during.open(old, 'leads.first_name')).toBe('Ada');
		expect(during.open(fresh, 'leads.first_name')).toBe('Ada');
		expect(after.open(fresh, 'leads.first_name')).toBe('Ada');
		expect(during.isStale(old)).toBe(true);
		expect(during.isStale(fresh)).toBe(false);
		expect(during.isStale('Ada')).toBe(true);
	});

	it('reads clear values stored before encryption was on as they are', () => {
		for (const clear of ['jane@example.com', 'pii1:not-sealed', 'Ada Lovelace', '+4930123']) {
			expect(isSealed(clear)).toBe(false);
			expect(during.open(clear, 'leads.email')).toBe(clear);
		}
		expect(during.openOrNull(null, 'leads.phone')).toBeNull();
	});

	it('hashes addresses with the hash key, per site, the same across encryption key rotations', () => {
		const hash = emailHash('Jane.Doe+news@gmail.com', before);
		expect(hash).toMatch(/^[0-9a-f]{64}$/);
		expect(emailHash('janedoe@gmail.com', after)).toBe(hash);
		expect(hash).not.toBe(emailHash('janedoe@gmail.com'));
		expect(hash).not.toBe(createHash('sha256').update('janedoe@gmail.com').digest('hex'));
		expect(emailHash('janedoe@gmail.com', new PiiCipher(before.keyring, OTHER_SITE))).not.toBe(hash);
		expect(emailHash('janedoe@gmail.com', new PiiCipher(parsePiiKeys(`2026a:${oldKey}`, key()), SITE))).not.toBe(hash);
	});
});

describe('a lead’s properties', () => {
	const cipher = new PiiCipher(parsePiiKeys(`2026a:${key()}`, key()), SITE);
	const message = `Bitte rufen Sie mich wegen Angebot ${randomBytes(4).toString('hex')} zurück`;
	const properties = { message, budget: 12000, urgent: true };

	it('seals the whole object as one string that holds none of it, bound to the column and site, and opens it again', () => {
		const sealed = sealLeadProperties(cipher, properties);
		expect(typeof sealed).toBe('string');
		expect(isSealed(sealed as string)).toBe(true);
		for (const part of [message, 'message', 'budget', '12000']) expect(sealed).not.toContain(part);
		expect(openLeadProperties(cipher, sealed)).toEqual(properties);
		expect(() => cipher.open(sealed as string, 'leads.first_name')).toThrow(PiiDecryptError);
		expect(() => openLeadProperties(new PiiCipher(cipher.keyring, OTHER_SITE), sealed)).toThrow(/leads\.properties does not authenticate/);
	});

	it('leaves none as none, properties stored before encryption was on as they are, and a site that stores in clear as ever', () => {
		expect([sealLeadProperties(cipher, null), sealLeadProperties(cipher, undefined), openLeadProperties(cipher, null)]).toEqual([null, undefined, null]);
		expect(openLeadProperties(cipher, properties)).toBe(properties);
		expect(sealLeadProperties(null, properties)).toBe(properties);
		expect(openLeadProperties(null, properties)).toBe(properties);
	});

	it('opens a lead row’s properties with its columns, and only when the row has them', () => {
		const row = { email: cipher.seal('jane@example.com', 'leads.email'), properties: sealLeadProperties(cipher, properties), score: 5 };
		expect(openLead(cipher, row)).toEqual({ email: 'jane@example.com', properties, score: 5 });
		expect(openLead(cipher, { email: row.email })).toEqual({ email: 'jane@example.com' });
		expect(openLead(null, row)).toBe(row);
	});

	it('seals a submission’s properties in the outbox under their own binding, and opens the submission as it was posted', () => {
		const posted = { site: 'shop', email: 'jane@example.com', firstName: 'Jane', consent: true, properties };
		const sealed = sealSubmission(cipher, posted);
		expect(isSealed(sealed.properties as unknown as string)).toBe(true);
		expect(JSON.stringify(sealed)).not.toContain(message);
		expect(() => openLeadProperties(cipher, sealed.properties)).toThrow(PiiDecryptError);
		expect(isSealedSubmission({ properties: sealed.properties })).toBe(true);
		expect(openSubmission(cipher, sealed)).toEqual(posted);
		expect(openSubmission(cipher, { email: 'jane@example.com' })).toEqual({ email: 'jane@example.com' });
		expect(sealSubmission(null, posted)).toBe(posted);
		expect(isSealedSubmission(posted)).toBe(false);
	});

	it('hands sealed properties to a resealing cipher as they are, as the key rotation reseals a stored submission, and leaves clear ones the object they were', () => {
		// The rotation's cipher (scripts/rotate-pii-key-core.ts): reseals a sealed value, leaves a clear one.
		class Resealing extends PiiCipher {
			override seal(value: string, field: string): string {
				return isSealed(value) ? super.seal(this.open(value, field), field) : value;
			}
		}
		const sealed = sealSubmission(cipher, { email: 'jane@example.com', properties });
		const resealed = sealSubmission(new Resealing(cipher.keyring, SITE), sealed);
		expect(resealed.properties).not.toBe(sealed.properties);
		expect(openSubmission(cipher, resealed)).toEqual({ email: 'jane@example.com', properties });
		const clear = { email: 'jane@example.com', properties };
		expect(sealSubmission(new Resealing(cipher.keyring, SITE), clear)).toEqual(clear);
	});
});

describe('PII key settings', () => {
	it.each([
		['nothing set', {}, /^PII_ENCRYPTION_KEYS: is not set, and a site has privacy.encryptPii: true; set it to id:key \(make one with `openssl rand -base64 32`\)/],
		['no hash key', { PII_ENCRYPTION_KEYS: `a:${key()}` }, /^PII_HASH_KEY: is not set, .*never change it/],
		['a key without id', { PII_ENCRYPTION_KEYS: key(), PII_HASH_KEY: key() }, /^PII_ENCRYPTION_KEYS: entry 1 is not id:key/],
		['an id with a space', { PII_ENCRYPTION_KEYS: `a:${key()},b c:${key()}`, PII_HASH_KEY: key() }, /^PII_ENCRYPTION_KEYS: entry 2 \("b c"\) is not id:key/],
		['a 16-byte key', { PII_ENCRYPTION_KEYS: `a:${randomBytes(16).toString('base64')}`, PII_HASH_KEY: key() }, /^PII_ENCRYPTION_KEYS: entry 1 \("a"\) is not a 32-byte key in base64/],
		['one id twice', { PII_ENCRYPTION_KEYS: `a:${key()},a:${key()}`, PII_HASH_KEY: key() }, /^PII_ENCRYPTION_KEYS: key id "a" is listed twice/],
		['a password as hash key', { PII_ENCRYPTION_KEYS: `a:${key()}`, PII_HASH_KEY: 'secret' }, /^PII_HASH_KEY: the value is not a 32-byte key/],
	])('refuses %s with an error naming the variable and the fix', (_, env, message) => {
		expect(() => piiKeyringFromEnv(env as NodeJS.ProcessEnv)).toThrow(PiiKeyError);
		expect(() => piiKeyringFromEnv(env as NodeJS.ProcessEnv)).toThrow(message);
	});

	it('refuses a hash key that is also an encryption key', () => {
		const shared = key();
		expect(() => parsePiiKeys(`a:${shared}`, shared)).toThrow(/^PII_HASH_KEY: is also one of PII_ENCRYPTION_KEYS; give the hash key a value of its own/);
	});

	it('takes base64, base64url and hex keys, newest first', () => {
		const bytes = randomBytes(32);
		const keyring = parsePiiKeys(` new:${bytes.toString('base64url')} , old:${randomBytes(32).toString('hex')}`, key());
		expect(keyring.currentKeyId).toBe('new');
		expect(keyring.keys.get('new')?.equals(bytes)).toBe(true);
		expect([...keyring.keys.keys()]).toEqual(['new', 'old']);
	});

	it('reads the keys of the Tracking CRM API credential, naming its fields; empty fields leave the environment’s keys', () => {
		expect(piiKeyringFromCredential({ piiEncryptionKeys: '', piiHashKey: '' })).toBeNull();
		expect(piiKeyringFromCredential({ piiEncryptionKeys: `c1:${key()}`, piiHashKey: key() })?.currentKeyId).toBe('c1');
		expect(() => piiKeyringFromCredential({ piiEncryptionKeys: '', piiHashKey: key() })).toThrow(/^Tracking CRM API credential, PII Encryption Keys: is not set/);
	});
});
