import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers of a signed delivery from the receiver (or a CRM Hand Off) to a CRM Tracker Trigger. */
export const SIGNATURE_HEADER = 'x-crm-signature';
export const TIMESTAMP_HEADER = 'x-crm-timestamp';
export const SITE_HEADER = 'x-crm-site';
export const DELIVERY_HEADER = 'x-crm-delivery';

/**
 * What the site header may hold: a site key. No dot, so `<timestamp>.<site>.<body>` splits one
 * way only and no signature made for one site reads as another site's.
 */
const SIGNED_SITE = /^[A-Za-z0-9_-]{1,64}$/;

export function isSignableSite(site: unknown): site is string {
	return typeof site === 'string' && SIGNED_SITE.test(site);
}

/**
 * HMAC-SHA256 over `<unix seconds>.<site key>.<raw body>`, hex, prefixed like GitHub's and
 * Stripe's: `sha256=…`. The site is signed so a delivery is bound to it: the trigger refuses a
 * body that names any other site, whatever secret the sites share.
 */
export function signBody(secret: string, timestampSeconds: number, site: string, body: string | Uint8Array): string {
	if (!isSignableSite(site)) throw new TypeError(`Cannot sign for site ${JSON.stringify(String(site).slice(0, 80))}: a site key is 1–64 letters, digits, "-" or "_"`);
	// The body is hashed as it is, not joined to the prefix first: a delivery's body runs to megabytes.
	return `sha256=${createHmac('sha256', secret).update(`${timestampSeconds}.${site}.`).update(body).digest('hex')}`;
}

/** The headers of one signed delivery of `body` for `site`. */
export function signedHeaders(secret: string, site: string, body: string, deliveryId: string, timestampSeconds = Math.floor(Date.now() / 1000)): Record<string, string> {
	return {
		'content-type': 'application/json',
		[SIGNATURE_HEADER]: signBody(secret, timestampSeconds, site, body),
		[TIMESTAMP_HEADER]: String(timestampSeconds),
		[SITE_HEADER]: site,
		[DELIVERY_HEADER]: deliveryId,
	};
}

/** The signed site once the signature holds: the only site the delivery may carry data of. */
export type SignatureCheck = { valid: true; site: string } | { valid: false; reason: string };

type Headers = Record<string, string | string[] | undefined>;

const single = (headers: Headers, name: string) => {
	const value = headers[name];
	return typeof value === 'string' ? value : undefined;
};

/**
 * Checks a delivery's signature over its timestamp, site and body, and that the timestamp lies
 * within the replay window, so a captured request cannot be replayed later. `headers` are the
 * request's, names in lower case (as Node gives them).
 */
export function verifySignature(secret: string, body: string | Uint8Array, headers: Headers, options: { toleranceSeconds?: number; nowSeconds?: number } = {}): SignatureCheck {
	const signature = single(headers, SIGNATURE_HEADER);
	const timestamp = single(headers, TIMESTAMP_HEADER);
	const site = single(headers, SITE_HEADER);
	if (!signature || !timestamp || !site) return { valid: false, reason: `missing ${!signature ? SIGNATURE_HEADER : !timestamp ? TIMESTAMP_HEADER : SITE_HEADER} header` };
	if (!/^\d{1,12}$/.test(timestamp)) return { valid: false, reason: `${TIMESTAMP_HEADER} is not a unix time in seconds` };
	if (!isSignableSite(site)) return { valid: false, reason: `${SITE_HEADER} is not a site key` };
	const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
	const tolerance = options.toleranceSeconds ?? 300;
	// NaN would compare false against every age and accept any old delivery.
	if (!Number.isFinite(tolerance)) return { valid: false, reason: 'the replay window is not a number of seconds' };
	if (Math.abs(now - Number(timestamp)) > tolerance) return { valid: false, reason: `timestamp is outside the ${tolerance} s replay window` };
	const expected = Buffer.from(signBody(secret, Number(timestamp), site, body));
	const given = Buffer.from(signature);
	if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { valid: false, reason: 'signature does not match the body and site' };
	return { valid: true, site };
}

/** The arrays of a delivery (and of a handed-on item that is a whole delivery) whose entries may name a site. */
const ENTRY_ARRAYS = ['events', 'leads', 'emailEvents', 'items'] as const;

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The first place in a delivery that names a site other than `site`, as a field path
 * (`site`, `leads[0].lead.site`, `items[3].siteId` …), or undefined when it names only `site`.
 * A site is named by `site` and `siteId` at the top, in every event, lead, email event and
 * handed-on item, and in a lead's `lead` payload; all site ids must agree with `siteId`, or,
 * without it, with the first one named. Properties a visitor sent (`props`, `properties`) are
 * their data, not a site, and are not read.
 */
export function foreignSiteField(delivery: Record<string, unknown>, site: string, siteId?: string): string | undefined {
	let expectedId = siteId;
	const pending: Array<[Record<string, unknown>, string]> = [[delivery, '']];
	for (let next = 0; next < pending.length; next++) {
		const [record, path] = pending[next];
		for (const [holder, prefix] of [[record, path], [record.lead, `${path}lead.`]] as const) {
			if (!isRecord(holder)) continue;
			if (holder.site !== undefined && holder.site !== site) return `${prefix}site`;
			if (holder.siteId === undefined) continue;
			expectedId ??= typeof holder.siteId === 'string' ? holder.siteId : undefined;
			if (holder.siteId !== expectedId) return `${prefix}siteId`;
		}
		for (const key of ENTRY_ARRAYS) {
			const entries = record[key];
			if (!Array.isArray(entries)) continue;
			entries.forEach((entry, index) => {
				if (isRecord(entry)) pending.push([entry, `${path}${key}[${index}].`]);
			});
		}
	}
	return undefined;
}

/** A POST to a CRM Tracker Trigger, signed for `site` the way the trigger verifies it. */
export function postSigned(url: string, secret: string, site: string, body: string, deliveryId: string, timeoutMs: number): Promise<Response> {
	return fetch(url, { method: 'POST', headers: signedHeaders(secret, site, body, deliveryId), body, signal: AbortSignal.timeout(timeoutMs) });
}
