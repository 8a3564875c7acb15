import { z } from 'zod/v4';

import { observed, propertiesSchema, storableText } from './tracking';

/** A country as leads store it: an ISO 3166-1 alpha-2 code, in either case. */
export const COUNTRY_CODE = /^[A-Za-z]{2}$/;
export const COUNTRY_CODE_RULE = 'must be an ISO 3166-1 alpha-2 country code such as DE';

/** What a lead field may not hold: every control character, tabs and line breaks too. */
// eslint-disable-next-line no-control-regex
export const LEAD_CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

const field = (max: number) =>
	z
		.string()
		.trim()
		.max(max, { error: `must be at most ${max} characters` })
		.refine((value) => !LEAD_CONTROL_CHARS.test(value), { error: 'must not contain control characters' })
		.overwrite((value) => storableText(value));

const isTimeZone = (zone: string) => {
	try {
		new Intl.DateTimeFormat('en-US', { timeZone: zone });
		return true;
	} catch {
		return false;
	}
};

/**
 * CLDR's zone for "unknown": what a browser's Intl reports when it cannot tell the computer's
 * zone (Chromium with an unset or unknown TZ). The tracker sends the browser's zone with every
 * lead, so this means "no zone", not a mistake that would cost the lead.
 */
const UNKNOWN_ZONE = 'Etc/Unknown';

/**
 * An IANA time zone (aliases such as Asia/Calcutta too), as this Node's ICU knows them; any other
 * value refuses the lead with a 400 naming `timezone`, so a caller learns of its typo.
 */
const timeZone = z
	.string()
	.transform((zone) => (zone === UNKNOWN_ZONE ? undefined : zone))
	.pipe(z.string().refine(isTimeZone, { error: 'must be an IANA time zone such as Europe/Berlin' }).optional());

/** A form submission or an identify call: what `POST /api/lead` accepts and the Lead Scorer consumes. */
export const leadPayloadSchema = z.strictObject({
	site: field(64).min(1, { error: 'must not be empty' }),
	// Trimmed as every other field of a form is: a space pasted around an address is no other address.
	email: z.preprocess((value) => (typeof value === 'string' ? value.trim() : value), z.email({ error: 'must be an email address such as jane@example.com' }).max(254)),
	/** Client UUIDv7 of the submission, so a retried form post creates nothing twice. */
	eventId: z.uuid({ error: 'must be a UUID' }).optional(),
	/** The tracker's anonymous id, to join the anonymous history to the lead. */
	anonymousId: field(64).optional(),
	firstName: field(100).optional(),
	lastName: field(100).optional(),
	phone: field(40).optional(),
	company: field(200).optional(),
	jobTitle: field(200).optional(),
	country: z.string().regex(COUNTRY_CODE, { error: COUNTRY_CODE_RULE }).optional(),
	/** The lead's IANA time zone; the tracker sends the browser's. The Email Orchestrator's send windows are its wall clock. */
	timezone: timeZone.optional(),
	source: field(100).optional(),
	formId: observed(100).optional(),
	/** Marketing consent as the visitor gave it on the form. */
	consent: z.boolean().default(false),
	/** The consent text's version (the form's wording or the privacy policy), recorded with a given consent. */
	consentVersion: field(64)
		.min(1, { error: 'must not be empty' })
		.optional()
		.meta({ description: 'The site’s own label of the consent wording or privacy policy the lead agreed to with `consent`, e.g. `newsletter-2026-11`; recorded with the consent. At most 64 characters.' }),
	properties: propertiesSchema.optional(),
	/**
	 * A submitted form's fields as [name, input type, value], which the receiver maps to the lead
	 * fields above (the tracker leaves that to it, to stay small) and then drops: never stored.
	 * The tracker sends no password, hidden, file or payment field, nor an unticked box.
	 */
	fields: z
		.array(z.tuple([z.string(), z.string(), z.string()]))
		.max(200, { error: 'must hold at most 200 fields' })
		.optional(),
});

export type LeadPayload = z.infer<typeof leadPayloadSchema>;
export type LeadPayloadInput = z.input<typeof leadPayloadSchema>;
