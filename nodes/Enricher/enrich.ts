/**
 * Offline enrichment of a lead: everything here runs from lists shipped on npm and the input
 * itself, so it needs no API key and no network. The one optional network check, MX lookup, has
 * a timeout and a cache and reports "unknown" rather than failing.
 */
import { Resolver } from 'node:dns/promises';

import { COUNTRY_CODE } from '../../lib/contracts/lead';

import { emailFacts, phoneFacts, type EmailFacts, type PhoneFacts } from '../shared/contact';
import { detectDevice, type DeviceInfo } from '../shared/device';

export interface EnrichInput {
	email?: string | null;
	phone?: string | null;
	/** ISO 3166-1 alpha-2 country of the lead or of the request (receiver headers). */
	country?: string | null;
	userAgent?: string | null;
}

export interface Enrichment {
	email: EmailFacts | null;
	phone: PhoneFacts | null;
	device: DeviceInfo | null;
	country: string | null;
	/** Tags for `lead_tags`, sorted. */
	tags: string[];
}

export function enrich(input: EnrichInput): Enrichment {
	const country = input.country && COUNTRY_CODE.test(input.country) ? input.country.toUpperCase() : null;
	const email = input.email ? emailFacts(input.email) : null;
	const phone = input.phone?.trim() ? phoneFacts(input.phone.trim(), country) : null;
	const device = input.userAgent?.trim() ? detectDevice(input.userAgent) : null;
	const tags = new Set<string>();
	if (email) {
		if (!email.validSyntax) tags.add('invalid-email');
		if (email.freeMail) tags.add('free-mail');
		if (email.disposable) tags.add('disposable');
		if (email.companyDomain) tags.add('company-domain');
	}
	if (phone && !phone.valid) tags.add('invalid-phone');
	if (device?.isBot) tags.add('bot');
	return { email, phone, device, country: country ?? phone?.country ?? null, tags: [...tags].sort() };
}

export interface MxCheckerOptions {
	timeoutMs: number;
	/** DNS servers to ask (`host` or `host:port`); the system's when empty. */
	servers?: readonly string[];
}

/**
 * Whether a domain takes mail: true / false, or null when DNS did not answer (timeout, SERVFAIL,
 * refused) — unknown, which must not read as "no mail servers".
 */
export type MxChecker = (domain: string) => Promise<boolean | null>;

type Answer<T> = { records: T[] } | { error: 'noSuchName' | 'unknown' };

/** DNS answers ENOTFOUND for a name that does not exist (NXDOMAIN), ENODATA for no records of the type. */
async function ask<T>(query: () => Promise<T[]>): Promise<Answer<T>> {
	try {
		return { records: await query() };
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code ?? '';
		if (code === 'ENODATA') return { records: [] };
		return { error: code === 'ENOTFOUND' || code === 'ENONAME' ? 'noSuchName' : 'unknown' };
	}
}

/**
 * Mail for a domain goes to its MX hosts or, without MX records, to its address records (RFC 5321
 * §5.1, the "implicit MX"); a single MX of "." says the domain takes no mail (RFC 7505).
 */
async function takesMail(resolver: Resolver, domain: string): Promise<boolean | null> {
	const mx = await ask(() => resolver.resolveMx(domain));
	if ('error' in mx) return mx.error === 'noSuchName' ? false : null;
	if (mx.records.length > 0) return mx.records.some((record) => record.exchange !== '' && record.exchange !== '.');
	const addresses = await Promise.all([ask(() => resolver.resolve4(domain)), ask(() => resolver.resolve6(domain))]);
	if (addresses.some((answer) => 'records' in answer && answer.records.length > 0)) return true;
	return addresses.every((answer) => 'records' in answer || answer.error === 'noSuchName') ? false : null;
}

/**
 * An MX checker with a per-process cache of definite answers; unknown answers are not cached,
 * so a DNS outage is retried with the next lead rather than remembered.
 */
export function createMxChecker(options: MxCheckerOptions, cache = new Map<string, boolean>()): MxChecker {
	return async (domain) => {
		const known = cache.get(domain);
		if (known !== undefined) return known;
		const resolver = new Resolver({ timeout: options.timeoutMs, tries: 1 });
		if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);
		let timer: NodeJS.Timeout | undefined;
		const deadline = new Promise<null>((resolve) => {
			timer = setTimeout(() => {
				resolver.cancel();
				resolve(null);
			}, options.timeoutMs);
		});
		try {
			const found = await Promise.race([takesMail(resolver, domain), deadline]);
			if (found !== null) cache.set(domain, found);
			return found;
		} finally {
			clearTimeout(timer);
		}
	};
}
