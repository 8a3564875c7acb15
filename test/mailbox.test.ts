import { canonicalEmail, emailHash } from '../lib/email';
import { normalizeEmail } from '../lib/mailbox';

describe('normalizeEmail', () => {
	it.each([
		['  Jane.Doe+News@Gmail.com ', 'janedoe@gmail.com'],
		['j.a.n.e.doe@googlemail.com', 'janedoe@gmail.com'],
		['jane.doe+promo@outlook.com', 'jane.doe@outlook.com'],
		['Jane+x@Hotmail.com', 'jane@hotmail.com'],
		['jane+tag@icloud.com', 'jane@icloud.com'],
		// other providers may route + and . to different mailboxes: kept as typed
		['Jane.Doe+Sales@Acme.co.uk', 'jane.doe+sales@acme.co.uk'],
	])('%s → %s', (raw, key) => {
		expect(normalizeEmail(raw)?.key).toBe(key);
	});

	it('keeps the canonical address beside the key', () => {
		expect(normalizeEmail(' A.B+c@GMAIL.com')).toEqual({ canonical: 'a.b+c@gmail.com', key: 'ab@gmail.com', domain: 'gmail.com' });
	});

	it.each(['', 'jane', 'jane@', '@gmail.com', 'jane@localhost', 'a b@x.com'])('rejects %j', (raw) => {
		expect(normalizeEmail(raw)).toBeNull();
	});
});

describe('one identity for an address everywhere', () => {
	it('hashes every spelling of one mailbox alike, and different mailboxes apart', () => {
		expect(canonicalEmail(' Jane.Doe+News@GoogleMail.com ')).toBe('janedoe@gmail.com');
		expect(emailHash('Jane.Doe+news@gmail.com')).toBe(emailHash('janedoe@gmail.com'));
		expect(emailHash('jane.doe@example.com')).not.toBe(emailHash('janedoe@example.com'));
		expect(canonicalEmail('not an address')).toBe('not an address');
	});
});
