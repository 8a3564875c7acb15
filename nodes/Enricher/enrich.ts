/**
 * Offline enrichment of a lead: everything here runs from lists shipped on npm and the input
 * itself, so it needs no API key and no network. The one optional network check, MX lookup, has
 * a timeout and a cache and reports "unknown" rather than failing.
 */
import { Resolver } from 'node:dns/promises';

import disposableDomains from 'disposable-email-domains';
import freeDomains from 'free-email-domains';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { getDomain } from 'tldts';

import { detectDevice, type DeviceInfo } from '../VisitorProcessor/device';

const FREE = new Set<string>(freeDomains);
const DISPOSABLE = new Set<string>(disposableDomains);

/** Same shape check as a mail server's: one @, a non-empty local part and a dotted domain. */
const EMAIL_SYNTAX = /^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

export interface EmailFacts {
	address: string;
	validSyntax: boolean;
	domain: string | null;
	freeMail: boolean;
	disposable: boolean;
	/** Registrable domain of a company address (not free-mail, not disposable), else null. */
	companyDomain: string | null;
}

export interface PhoneFacts {
	input: string;
	/** E.164 form, or null when the number cannot be parsed for the country. */
	e164: string | null;
	valid: boolean;
	country: string | null;
	type: string | null;
}

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

function domainListed(domain: string, list: ReadonlySet<string>): boolean {
	if (list.has(domain)) return true;
	// Lists name the registrable domain; mail often comes from a subdomain of it (mail.yopmail.com).
	const registrable = getDomain(domain);
	return registrable !== null && registrable !== domain && list.has(registrable);
}

export function emailFacts(raw: string): EmailFacts {
	const address = raw.trim().toLowerCase();
	const validSyntax = address.length <= 254 && EMAIL_SYNTAX.test(address);
	const domain = validSyntax ? address.slice(address.lastIndexOf('@') + 1) : null;
	const freeMail = domain !== null && domainListed(domain, FREE);
	const disposable = domain !== null && domainListed(domain, DISPOSABLE);
	const companyDomain = domain !== null && !freeMail && !disposable ? getDomain(domain) : null;
	return { address, validSyntax, domain, freeMail, disposable, companyDomain };
}

export function phoneFacts(raw: string, country: string | null): PhoneFacts {
	const parsed = parsePhoneNumberFromString(raw, country ? (country.toUpperCase() as CountryCode) : undefined);
	if (!parsed) return { input: raw, e164: null, valid: false, country: null, type: null };
	return { input: raw, e164: parsed.number, valid: parsed.isValid(), country: parsed.country ?? null, type: parsed.getType() ?? null };
}

export function enrich(input: EnrichInput): Enrichment {
	const country = input.country && /^[A-Za-z]{2}$/.test(input.country) ? input.country.toUpperCase() : null;
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

/** Whether a domain has mail servers: true / false, or null when DNS did not answer in time. */
export type MxChecker = (domain: string) => Promise<boolean | null>;

/** Answers that mean "this name has no MX": the domain or its MX records do not exist. */
const NO_MX = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

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
		const lookup = resolver.resolveMx(domain).then(
			(records) => records.length > 0,
			(error: NodeJS.ErrnoException) => (NO_MX.has(error.code ?? '') ? false : null),
		);
		try {
			const found = await Promise.race([lookup, deadline]);
			if (found !== null) cache.set(domain, found);
			return found;
		} finally {
			clearTimeout(timer);
		}
	};
}
