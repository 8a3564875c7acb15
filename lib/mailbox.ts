/**
 * Email addresses as lead identities. Two submissions are one person when their dedupe keys are
 * equal: case and surrounding space never matter, and for providers that deliver
 * `jane.doe+news@gmail.com` to `janedoe@gmail.com` the variants collapse too. Other providers keep
 * their local part, since a `+` or `.` may name a different mailbox there.
 */

export interface NormalizedEmail {
	/** Trimmed, lower-cased address as given. */
	canonical: string;
	/** The identity of the mailbox: the address every variant delivers to. */
	key: string;
	/** Domain of the key (after provider aliases such as googlemail.com → gmail.com). */
	domain: string;
}

interface ProviderRule {
	/** Dots in the local part are ignored by the provider. */
	ignoreDots: boolean;
	/** Everything from this character on in the local part is a tag. */
	tagSeparator: string;
	/** The domain the provider's aliases deliver to. */
	domain?: string;
}

const GMAIL: ProviderRule = { ignoreDots: true, tagSeparator: '+', domain: 'gmail.com' };
const PLUS_TAGS: ProviderRule = { ignoreDots: false, tagSeparator: '+' };

const PROVIDERS: ReadonlyMap<string, ProviderRule> = new Map([
	['gmail.com', GMAIL],
	['googlemail.com', GMAIL],
	...['outlook.com', 'hotmail.com', 'live.com', 'msn.com', 'icloud.com', 'me.com', 'mac.com', 'protonmail.com', 'proton.me', 'pm.me', 'fastmail.com'].map(
		(domain) => [domain, PLUS_TAGS] as const,
	),
]);

/** Deliberately loose: the receiver validated syntax already; this only rejects what cannot be a mailbox. */
const SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The address split into canonical form and dedupe key, or null when it is not an address. */
export function normalizeEmail(raw: string): NormalizedEmail | null {
	const canonical = raw.trim().toLowerCase();
	if (!SHAPE.test(canonical)) return null;
	const at = canonical.lastIndexOf('@');
	let local = canonical.slice(0, at);
	let domain = canonical.slice(at + 1);
	const rule = PROVIDERS.get(domain);
	if (rule) {
		const tag = local.indexOf(rule.tagSeparator);
		if (tag > 0) local = local.slice(0, tag);
		if (rule.ignoreDots) local = local.replaceAll('.', '');
		if (rule.domain) domain = rule.domain;
	}
	if (local === '') return null;
	return { canonical, key: `${local}@${domain}`, domain };
}
