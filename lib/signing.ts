import { createHmac, timingSafeEqual } from 'node:crypto';

/** Headers of a signed delivery from the receiver to n8n. */
export const SIGNATURE_HEADER = 'x-crm-signature';
export const TIMESTAMP_HEADER = 'x-crm-timestamp';
export const DELIVERY_HEADER = 'x-crm-delivery';

/** HMAC-SHA256 over `<unix seconds>.<raw body>`, hex, prefixed like GitHub's and Stripe's: `sha256=…`. */
export function signBody(secret: string, timestampSeconds: number, body: string): string {
	return `sha256=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`;
}

export type SignatureCheck = { valid: true } | { valid: false; reason: string };

/**
 * Checks a delivery's signature and that its timestamp lies within the replay window, so a
 * captured request cannot be replayed later.
 */
export function verifySignature(
	secret: string,
	body: string,
	signature: string | undefined,
	timestamp: string | undefined,
	options: { toleranceSeconds?: number; nowSeconds?: number } = {},
): SignatureCheck {
	if (!signature || !timestamp) return { valid: false, reason: `missing ${!signature ? SIGNATURE_HEADER : TIMESTAMP_HEADER} header` };
	if (!/^\d{1,12}$/.test(timestamp)) return { valid: false, reason: `${TIMESTAMP_HEADER} is not a unix time in seconds` };
	const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
	const tolerance = options.toleranceSeconds ?? 300;
	if (Math.abs(now - Number(timestamp)) > tolerance) return { valid: false, reason: `timestamp is outside the ${tolerance} s replay window` };
	const expected = Buffer.from(signBody(secret, Number(timestamp), body));
	const given = Buffer.from(signature);
	if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { valid: false, reason: 'signature does not match the body' };
	return { valid: true };
}

/** A POST to an n8n webhook, signed the way the CRM Tracker Trigger verifies it. */
export function postSigned(url: string, secret: string, body: string, deliveryId: string, timeoutMs: number): Promise<Response> {
	const timestamp = Math.floor(Date.now() / 1000);
	return fetch(url, {
		method: 'POST',
		headers: {
			'content-type': 'application/json',
			[SIGNATURE_HEADER]: signBody(secret, timestamp, body),
			[TIMESTAMP_HEADER]: String(timestamp),
			[DELIVERY_HEADER]: deliveryId,
		},
		body,
		signal: AbortSignal.timeout(timeoutMs),
	});
}
