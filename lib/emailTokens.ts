import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Tokens in the tracking URLs of an email. The receiver verifies them and the Email
 * Orchestrator node mints them, so both must agree on this format byte for byte:
 *
 *   open:        o.<messageId>.<mac>
 *   unsubscribe: u.<messageId>.<mac>
 *   click:       c.<messageId>.<linkIndex>.<mac>
 *   confirm:     v.<messageId>.<mac>   (the link of a double opt-in confirmation email)
 *
 * `messageId` is the email_messages UUID in lowercase, `linkIndex` the position of the URL in
 * the message's `links` (decimal, no leading zeros), and `mac` is base64url(HMAC-SHA256(secret,
 * "tcrm-email-v1:" + everything before the last dot)). Every character is URL-unreserved, so
 * the token needs no escaping in a path. The prefix keeps a token from ever being valid as a
 * signature made with the same secret for another purpose, and marks the version should the
 * format change. Tokens do not expire: unsubscribe links must keep working for as long as the
 * email sits in someone's mailbox.
 */

export type EmailTokenAction = 'open' | 'click' | 'unsubscribe' | 'confirm';

export interface ValidEmailToken<A extends EmailTokenAction> {
	valid: true;
	messageId: string;
	action: A;
	/** Position in the message's `links`; only click tokens carry one. */
	linkIndex: A extends 'click' ? number : undefined;
}

export type EmailTokenCheck<A extends EmailTokenAction = EmailTokenAction> = ValidEmailToken<A> | { valid: false; reason: string };

/** A secret shorter than this is guessable enough to forge unsubscribes and redirects. */
export const MIN_EMAIL_TOKEN_SECRET_LENGTH = 32;

/** More links than this in one email is not a message a person reads; it bounds the index. */
export const MAX_LINKS_PER_MESSAGE = 10_000;

const DOMAIN = 'tcrm-email-v1:';
const CODES: Record<EmailTokenAction, string> = { open: 'o', click: 'c', unsubscribe: 'u', confirm: 'v' };
const ACTIONS: Record<string, EmailTokenAction> = { o: 'open', c: 'click', u: 'unsubscribe', v: 'confirm' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INDEX = /^(0|[1-9]\d{0,3})$/;
const MAC = /^[A-Za-z0-9_-]{43}$/;
/** The longest well-formed token (click, four-digit index) is 87 characters; anything longer is rejected unread. */
const MAX_TOKEN_LENGTH = 100;

function mac(secret: string, body: string): string {
	return createHmac('sha256', secret).update(DOMAIN + body).digest('base64url');
}

function checkSecret(secret: string): void {
	if (secret.length < MIN_EMAIL_TOKEN_SECRET_LENGTH) throw new RangeError(`The email token secret must be at least ${MIN_EMAIL_TOKEN_SECRET_LENGTH} characters`);
}

/** The signed token for one action on one message (and, for a click, one of its links). */
export function signEmailToken(secret: string, messageId: string, action: EmailTokenAction, linkIndex?: number): string {
	checkSecret(secret);
	const id = messageId.toLowerCase();
	if (!UUID.test(id)) throw new TypeError(`messageId must be a UUID, got ${JSON.stringify(messageId.slice(0, 60))}`);
	const parts = [CODES[action], id];
	if (action === 'click') {
		if (linkIndex === undefined || !Number.isInteger(linkIndex) || linkIndex < 0 || linkIndex >= MAX_LINKS_PER_MESSAGE) {
			throw new RangeError(`linkIndex must be a whole number from 0 to ${MAX_LINKS_PER_MESSAGE - 1} for a click token`);
		}
		parts.push(String(linkIndex));
	} else if (linkIndex !== undefined) {
		throw new TypeError(`A ${action} token has no link index`);
	}
	const body = parts.join('.');
	return `${body}.${mac(secret, body)}`;
}

/**
 * Checks a token's form and signature, and that it was made for `expected` (an open token
 * must not unsubscribe). The reason of a failure is safe to show: it names no secret.
 */
export function verifyEmailToken<A extends EmailTokenAction>(secret: string, token: string, expected: A): EmailTokenCheck<A> {
	checkSecret(secret);
	if (token.length > MAX_TOKEN_LENGTH) return { valid: false, reason: 'the token is longer than any tracking token' };
	const parts = token.split('.');
	const action = ACTIONS[parts[0]];
	const expectedParts = action === 'click' ? 4 : 3;
	if (!action || parts.length !== expectedParts || !UUID.test(parts[1]) || (action === 'click' && !INDEX.test(parts[2])) || !MAC.test(parts[parts.length - 1])) {
		return { valid: false, reason: 'the token is malformed (cut off or altered when the link was copied?)' };
	}
	const given = Buffer.from(parts[parts.length - 1]);
	const wanted = Buffer.from(mac(secret, parts.slice(0, -1).join('.')));
	if (!timingSafeEqual(given, wanted)) return { valid: false, reason: 'the token signature does not match (altered, or signed with another secret)' };
	if (action !== expected) return { valid: false, reason: `the token is for ${action}, not ${expected}` };
	return { valid: true, messageId: parts[1], action: expected, linkIndex: (action === 'click' ? Number(parts[2]) : undefined) as ValidEmailToken<A>['linkIndex'] };
}

/** `baseUrl` (PUBLIC_URL, with or without a path prefix) without its trailing slashes: the links' common start. */
function receiverRoot(baseUrl: string): string {
	let base: URL;
	try {
		base = new URL(baseUrl);
	} catch {
		throw new TypeError(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(baseUrl.slice(0, 100))}`);
	}
	if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError(`baseUrl must be an http(s) URL, got ${base.protocol}`);
	return `${base.origin}${base.pathname.replace(/\/+$/, '')}`;
}

export interface TrackingUrls {
	/** The 1×1 pixel to embed as `<img src>`. */
	openPixelUrl: string;
	/** The redirect that replaces `links[index]` in the HTML. */
	clickUrl(index: number): string;
	/** The confirmation page for a footer link; the headers' POST target is the same URL. */
	unsubscribeUrl: string;
	/** RFC 8058 one-click unsubscribe headers. Mailbox providers honour them only for an https base URL. */
	listUnsubscribeHeaders: { 'List-Unsubscribe': string; 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' };
}

/**
 * The tracking URLs of one message. `baseUrl` is where the receiver is reached (PUBLIC_URL),
 * with or without a path prefix; `links` are the URLs stored in the message's `links`, so a
 * click URL can only be made for a link the receiver will redirect to.
 */
export function trackingUrls(baseUrl: string, secret: string, messageId: string, links: readonly string[]): TrackingUrls {
	const root = receiverRoot(baseUrl);
	const unsubscribeUrl = `${root}/e/u/${signEmailToken(secret, messageId, 'unsubscribe')}`;
	return {
		openPixelUrl: `${root}/e/o/${signEmailToken(secret, messageId, 'open')}`,
		clickUrl(index: number): string {
			if (!Number.isInteger(index) || index < 0 || index >= links.length) throw new RangeError(`No link at index ${index}; the message has ${links.length} link(s)`);
			return `${root}/e/c/${signEmailToken(secret, messageId, 'click', index)}`;
		},
		unsubscribeUrl,
		listUnsubscribeHeaders: { 'List-Unsubscribe': `<${unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
	};
}

/** The link of a double opt-in confirmation email: a page whose button confirms (GET alone records nothing). */
export function confirmationUrl(baseUrl: string, secret: string, messageId: string): string {
	return `${receiverRoot(baseUrl)}/e/v/${signEmailToken(secret, messageId, 'confirm')}`;
}
