/**
 * What an email address and a phone number tell about a lead, from lists shipped on npm and the
 * input itself: the Enricher tags leads with these facts, and the Lead Scorer's fit rules and
 * stored phone numbers read the same ones.
 */
import disposableDomains from 'disposable-email-domains';
import freeDomains from 'free-email-domains';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { getDomain } from 'tldts';

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

/** Lists name the registrable domain; mail often comes from a subdomain of it (mail.yopmail.com). */
const listed = (list: ReadonlySet<string>, domain: string, registrable: string | null): boolean => list.has(domain) || (registrable !== null && list.has(registrable));

export function emailFacts(raw: string): EmailFacts {
	const address = raw.trim().toLowerCase();
	const validSyntax = address.length <= 254 && EMAIL_SYNTAX.test(address);
	const domain = validSyntax ? address.slice(address.lastIndexOf('@') + 1) : null;
	// One public-suffix lookup per address: the lists and the company domain all ask for it.
	const registrable = domain === null ? null : getDomain(domain);
	const freeMail = domain !== null && listed(FREE, domain, registrable);
	const disposable = domain !== null && listed(DISPOSABLE, domain, registrable);
	const companyDomain = domain !== null && !freeMail && !disposable ? registrable : null;
	return { address, validSyntax, domain, freeMail, disposable, companyDomain };
}

export function phoneFacts(raw: string, country: string | null): PhoneFacts {
	const parsed = parsePhoneNumberFromString(raw, country ? (country.toUpperCase() as CountryCode) : undefined);
	if (!parsed) return { input: raw, e164: null, valid: false, country: null, type: null };
	return { input: raw, e164: parsed.number, valid: parsed.isValid(), country: parsed.country ?? null, type: parsed.getType() ?? null };
}
