/**
 * lib/pii.ts: sealed values open only with their key, site and column; a changed byte is
 * detected; old keys keep opening while a rotation runs; clear values written before encryption
 * read as themselves; the key settings are checked with errors that name the variable and the fix.
 */
import { createHash, randomBytes } from 'node:crypto';

import { emailHash } from '../../lib/email';
import { isSealed, parsePiiKeys, PiiCipher, PiiDecryptError, PiiKeyError, piiKeyringFromCredential, piiKeyringFromEnv, sealedKeyId } from '../../lib/pii';

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
