import { type Request, type Response, Router } from 'express';

import type { DeliveredEmailEvent } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { CONFIRMATION_KEY_PREFIX } from '../../lib/consent';
import { emailHash } from '../../lib/email';
import { verifyEmailToken, type EmailTokenAction, type EmailTokenCheck } from '../../lib/emailTokens';
import { MESSAGE_RECIPIENT_FIELD, siteCipher } from '../../lib/pii';
import { consentInsertStatement } from '../consent/records';
import type { Logger } from '../logger';
import { enqueueStatement, jsonbPayload } from '../outbox/enqueue';
import type { SiteRegistry } from '../siteRegistry';
import { readBodyFor } from './body';
import { RETRY_AFTER_SECONDS, sendProblem } from './problems';

interface EmailContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
	logger: Logger;
	/** EMAIL_TOKEN_SECRET; without it no token can be checked and every email route answers 503. */
	tokenSecret: string | undefined;
}

/** The smallest common transparent 1×1 GIF (42 bytes). */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const ORCHESTRATOR = 'email-orchestrator';

/**
 * An open or a click as ONE statement: the event, the message's first-open/first-click stamp
 * and the outbox row for the Email Orchestrator commit together or not at all. A click is
 * recorded only when the token's link index names an http(s) URL the message really contained,
 * so the answer's `url` is also the only place the redirect may go. The stamp's
 * `IS NULL` guard is re-checked under the row lock, so two simultaneous first opens stamp once.
 *
 * $1 message id, $2 ids of the sites this receiver serves, $3 ids of the sites that forward to
 * the Email Orchestrator, $4 (click only) the link index.
 */
function engagementStatement(type: 'open' | 'click'): string {
	const stamp = type === 'open' ? 'first_opened_at' : 'first_clicked_at';
	const url = type === 'click' ? 'links ->> $4::int' : 'NULL::text';
	const recordable = type === 'click' ? `url ~* '^https?://'` : 'true';
	return `
WITH message AS (
	SELECT id, site_id, lead_id, ${url} AS url FROM email_messages
	WHERE id = $1::uuid AND site_id IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid)
), target AS (
	SELECT * FROM message WHERE ${recordable}
), stamped AS (
	UPDATE email_messages m SET ${stamp} = now() FROM target
	WHERE m.id = target.id AND m.${stamp} IS NULL
	RETURNING m.id
), event AS (
	INSERT INTO email_events (id, site_id, message_id, type, url, occurred_at)
	SELECT gen_random_uuid(), site_id, id, '${type}'::email_event_type, url, now() FROM target
	RETURNING id, site_id, message_id, occurred_at
), outboxed AS (
	${enqueueStatement(
		{
			siteId: 'e.site_id',
			destination: `'${ORCHESTRATOR}'`,
			partitionKey: "COALESCE('lead:' || t.lead_id, 'message:' || t.id)",
			payload: jsonbPayload<DeliveredEmailEvent>({
				kind: "'email-event'",
				type: `'${type}'`,
				messageId: 't.id',
				leadId: 't.lead_id',
				eventId: 'e.id',
				url: 't.url',
				first: 'EXISTS (SELECT 1 FROM stamped)',
				occurredAt: 'e.occurred_at',
			}),
		},
		'FROM event e JOIN target t ON t.id = e.message_id WHERE e.site_id IN (SELECT jsonb_array_elements_text($3::jsonb)::uuid)',
	)}
)
SELECT (SELECT count(*) FROM message)::int AS found, (SELECT url FROM target) AS url`;
}

const RECORD_OPEN = engagementStatement('open');
const RECORD_CLICK = engagementStatement('click');

/**
 * A one-click unsubscribe as ONE statement: channel status, suppression, event, the withdrawal of
 * marketing consent it is, and outbox row. Only a change of state (channel still subscribed, or
 * address not yet suppressed) records an event and a withdrawal and notifies n8n, so a repeated
 * POST, or the unsubscribe link of an older email of the same person, adds nothing. A bounced or
 * complained channel keeps that stronger status.
 *
 * $1 message id, $2 email hash of the recipient, $3 ids of the sites that forward to the Email
 * Orchestrator.
 */
const RECORD_UNSUBSCRIBE = `
WITH message AS (
	SELECT id, site_id, lead_id FROM email_messages WHERE id = $1::uuid
), channel AS (
	INSERT INTO channel_statuses (id, site_id, lead_id, channel, status, reason, changed_at)
	SELECT gen_random_uuid(), site_id, lead_id, 'email', 'unsubscribed'::channel_state, 'one-click unsubscribe', now()
	FROM message WHERE lead_id IS NOT NULL
	ON CONFLICT (lead_id, channel) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at
		WHERE channel_statuses.status = 'subscribed'
	RETURNING 1
), suppressed AS (
	INSERT INTO suppressions (id, site_id, email_hash, channel, reason, created_at)
	SELECT gen_random_uuid(), site_id, $2, 'email', 'unsubscribed'::suppression_reason, now() FROM message
	ON CONFLICT (site_id, email_hash, channel) DO NOTHING
	RETURNING 1
), event AS (
	INSERT INTO email_events (id, site_id, message_id, type, occurred_at)
	SELECT gen_random_uuid(), site_id, id, 'unsubscribe'::email_event_type, now() FROM message
	WHERE EXISTS (SELECT 1 FROM channel) OR EXISTS (SELECT 1 FROM suppressed)
	RETURNING id, site_id, message_id, occurred_at
), withdrawn AS (
	${consentInsertStatement(
		{
			siteId: 'm.site_id',
			anonymousId: 'NULL',
			emailHash: '$2',
			purpose: "'marketing'",
			state: "'withdrawn'",
			source: "'unsubscribe'",
			pageUrl: 'NULL',
			formId: 'NULL',
			policyVersion: 'NULL',
			messageId: 'm.id',
			dedupeKey: "'unsubscribe:' || m.id",
		},
		'FROM message m WHERE EXISTS (SELECT 1 FROM event)',
	)}
), outboxed AS (
	${enqueueStatement(
		{
			siteId: 'e.site_id',
			destination: `'${ORCHESTRATOR}'`,
			partitionKey: "COALESCE('lead:' || m.lead_id, 'message:' || m.id)",
			payload: jsonbPayload<DeliveredEmailEvent>({
				kind: "'email-event'",
				type: "'unsubscribe'",
				messageId: 'm.id',
				leadId: 'm.lead_id',
				eventId: 'e.id',
				occurredAt: 'e.occurred_at',
			}),
		},
		'FROM event e JOIN message m ON m.id = e.message_id WHERE e.site_id IN (SELECT jsonb_array_elements_text($3::jsonb)::uuid)',
	)}
)
SELECT (SELECT count(*) FROM message)::int AS found, (SELECT count(*) FROM event)::int AS recorded`;

/**
 * A double opt-in confirmed as ONE statement: the marketing grant it is (under the policy version
 * of the grant it confirms; deduplicated per message, so a second click records nothing) and the
 * outbox row that tells the Email Orchestrator to start the lead's waiting sequences.
 *
 * $1 message id, $2 ids of the sites this receiver serves, $3 ids of the sites that forward to the
 * Email Orchestrator.
 */
const RECORD_CONFIRMATION = `
WITH message AS (
	SELECT m.id, m.site_id, m.lead_id, l.email_hash FROM email_messages m JOIN leads l ON l.id = m.lead_id
	WHERE m.id = $1::uuid AND m.site_id IN (SELECT jsonb_array_elements_text($2::jsonb)::uuid) AND starts_with(m.idempotency_key, '${CONFIRMATION_KEY_PREFIX}')
), recorded AS (
	${consentInsertStatement(
		{
			siteId: 'm.site_id',
			anonymousId: 'NULL',
			emailHash: 'm.email_hash',
			purpose: "'marketing'",
			state: "'granted'",
			source: "'confirmation'",
			pageUrl: 'NULL',
			formId: 'NULL',
			policyVersion: `(SELECT r.policy_version FROM consent_records r
				WHERE r.site_id = m.site_id AND r.email_hash = m.email_hash AND r.purpose = 'marketing' AND r.state = 'granted'
				ORDER BY r.occurred_at DESC, r.created_at DESC LIMIT 1)`,
			messageId: 'm.id',
			dedupeKey: "'confirm:' || m.id",
		},
		'FROM message m',
	)}
), outboxed AS (
	${enqueueStatement(
		{
			siteId: 'r.site_id',
			destination: `'${ORCHESTRATOR}'`,
			partitionKey: "'lead:' || m.lead_id",
			payload: jsonbPayload<DeliveredEmailEvent>({
				kind: "'email-event'",
				type: "'confirm'",
				messageId: 'm.id',
				leadId: 'm.lead_id',
				eventId: 'r.id',
				occurredAt: 'r.occurred_at',
			}),
		},
		'FROM recorded r CROSS JOIN message m WHERE r.site_id IN (SELECT jsonb_array_elements_text($3::jsonb)::uuid)',
	)}
)
SELECT (SELECT site_id FROM message) AS "siteId", (SELECT count(*) FROM recorded)::int AS recorded`;

function escapeHtml(text: string): string {
	return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** People, not programs, read these answers: a small HTML page, never cached or indexed. */
function sendPage(res: Response, status: number, title: string, body: string): void {
	res
		.status(status)
		.set({ 'Cache-Control': 'no-store', 'X-Robots-Tag': 'noindex' })
		.type('html')
		.send(
			`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
				`<title>${escapeHtml(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;line-height:1.5}` +
				`button{font-size:1rem;padding:.5rem 1.25rem;cursor:pointer}</style></head><body><h1>${escapeHtml(title)}</h1>${body}</body></html>`,
		);
}

const paragraph = (text: string) => `<p>${escapeHtml(text)}</p>`;

/**
 * RFC 8058 has mailbox providers POST `List-Unsubscribe=One-Click`, form-encoded or as
 * multipart; our own confirmation form sends the same. An empty body is accepted too, as some
 * clients send none.
 */
function isOneClickBody(body: string): boolean {
	const text = body.trim();
	if (!text) return true;
	if (/name="?List-Unsubscribe"?[^]*?\r?\n\r?\nOne-Click\b/i.test(text)) return true;
	return new URLSearchParams(text).get('List-Unsubscribe') === 'One-Click';
}

/** A form a mail client could not send is answered with a page, like every other answer of these links. */
const readFormBody = (requirement: string) =>
	readBodyFor('text', { limitBytes: 4 * 1024, send: requirement }, (res, status, _type, message) => sendPage(res, status, 'Request not understood', paragraph(`${message}.`)));

export function emailRouter(context: EmailContext): Router {
	const router = Router();
	const { prisma, sites, logger, tokenSecret } = context;
	// The registry is fixed for the receiver's lifetime, so these lists are too.
	const servedIds = sites.all().map((site) => site.id);
	const served = JSON.stringify(servedIds);
	const forwarding = JSON.stringify(
		sites
			.all()
			.filter((site) => site.endpoints.has(ORCHESTRATOR))
			.map((site) => site.id),
	);

	/** The token's check, or undefined once a 503 went out because no secret is configured. */
	function check<A extends EmailTokenAction>(req: Request, res: Response, action: A): EmailTokenCheck<A> | undefined {
		if (!tokenSecret) {
			sendProblem(res, 503, 'email_tracking_disabled', 'Email tracking is off: set EMAIL_TOKEN_SECRET (at least 32 characters, the same value the Email Orchestrator uses)');
			return undefined;
		}
		return verifyEmailToken(tokenSecret, String(req.params.token), action);
	}

	function sendPixel(res: Response): void {
		res.status(200).set({ 'Content-Type': 'image/gif', 'Cache-Control': 'no-store, no-cache, must-revalidate, private', 'Content-Length': String(PIXEL.length) }).end(PIXEL);
	}

	// Link scanners and prefetchers probe with HEAD; a probe is not a person opening or clicking.
	router.head(['/e/o/:token', '/e/c/:token'], (_req, res) => {
		res.status(204).set('Cache-Control', 'no-store').end();
	});

	router.get('/e/o/:token', async (req, res) => {
		const token = check(req, res, 'open');
		if (!token) return;
		// The pixel always answers with the image: a broken image in a mailbox helps nobody, and
		// a bad token simply records nothing.
		if (token.valid) {
			try {
				await prisma.$queryRawUnsafe(RECORD_OPEN, token.messageId, served, forwarding);
			} catch (error) {
				logger.error({ err: error }, 'recording an email open failed');
			}
		}
		sendPixel(res);
	});

	router.get('/e/c/:token', async (req, res) => {
		const token = check(req, res, 'click');
		if (!token) return;
		if (!token.valid) {
			sendPage(res, 400, 'This link is not valid', paragraph(`The link could not be followed: ${token.reason}.`));
			return;
		}
		let result: { found: number; url: string | null };
		try {
			[result] = await prisma.$queryRawUnsafe<Array<{ found: number; url: string | null }>>(RECORD_CLICK, token.messageId, served, forwarding, token.linkIndex);
		} catch (error) {
			logger.error({ err: error }, 'recording an email click failed');
			res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
			sendPage(res, 503, 'Please try again', paragraph('The link could not be followed right now. Please try again in a moment.'));
			return;
		}
		if (result.found === 0) {
			sendPage(res, 404, 'This link is no longer available', paragraph('The email this link belongs to is not known here any more.'));
			return;
		}
		if (!result.url) {
			sendPage(res, 400, 'This link is not valid', paragraph(`The link could not be followed: link ${token.linkIndex} is not a web link of this email.`));
			return;
		}
		res.set('Cache-Control', 'no-store').redirect(302, result.url);
	});

	/** The message an unsubscribe token names, with the hash its suppression is keyed by. */
	async function recipient(messageId: string) {
		const message = await prisma.emailMessage.findFirst({
			where: { id: messageId, siteId: { in: servedIds } },
			select: { id: true, siteId: true, toEmail: true, lead: { select: { emailHash: true } } },
		});
		if (!message) return message;
		const site = sites.byDatabaseId(message.siteId);
		// A message whose lead is gone is suppressed by the hash of its recipient, sealed on a site with privacy.encryptPii.
		const hashOfRecipient = () => {
			const cipher = siteCipher(message.siteId, site?.config.privacy.encryptPii ?? false);
			return emailHash(cipher ? cipher.open(message.toEmail, MESSAGE_RECIPIENT_FIELD) : message.toEmail, cipher);
		};
		return { ...message, emailHash: message.lead?.emailHash ?? hashOfRecipient(), siteName: site?.config.site.name ?? 'this sender' };
	}

	const notFound = (res: Response) =>
		sendPage(res, 404, 'This link is no longer available', paragraph('The email this unsubscribe link belongs to is not known here any more. Reply to the email to ask the sender to stop.'));
	const unavailable = (res: Response) =>
		sendPage(res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS)), 503, 'Please try again', paragraph('Your request could not be handled right now. Please try again in a moment.'));

	// GET only asks: mail scanners follow links, and following a link must not unsubscribe anyone.
	router.get('/e/u/:token', async (req, res) => {
		const token = check(req, res, 'unsubscribe');
		if (!token) return;
		if (!token.valid) {
			sendPage(res, 400, 'This unsubscribe link is not valid', paragraph(`The link could not be used: ${token.reason}.`));
			return;
		}
		let message: Awaited<ReturnType<typeof recipient>>;
		let unsubscribed: boolean;
		try {
			message = await recipient(token.messageId);
			unsubscribed = message !== null && (await prisma.suppression.count({ where: { siteId: message.siteId, emailHash: message.emailHash, channel: 'email', reason: 'unsubscribed' } })) > 0;
		} catch (error) {
			logger.error({ err: error }, 'reading an email message failed');
			unavailable(res);
			return;
		}
		if (!message) {
			notFound(res);
			return;
		}
		// Asked again after unsubscribing, the person learns it took: asking once more would say it had not.
		if (unsubscribed) {
			sendPage(res, 200, 'You are unsubscribed', paragraph(`You will not receive emails from ${message.siteName} any more.`));
			return;
		}
		sendPage(
			res,
			200,
			'Unsubscribe',
			paragraph(`Stop receiving emails from ${message.siteName}?`) +
				`<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
		);
	});

	router.post(
		'/e/u/:token',
		readFormBody('List-Unsubscribe=One-Click, UTF-8, at most 4 KB'),
		async (req, res) => {
			const token = check(req, res, 'unsubscribe');
			if (!token) return;
			if (!token.valid) {
				sendPage(res, 400, 'This unsubscribe link is not valid', paragraph(`The link could not be used: ${token.reason}.`));
				return;
			}
			if (!isOneClickBody(typeof req.body === 'string' ? req.body : '')) {
				sendPage(res, 400, 'Request not understood', paragraph('The request body must be List-Unsubscribe=One-Click (RFC 8058) or empty.'));
				return;
			}
			try {
				const message = await recipient(token.messageId);
				if (!message) {
					notFound(res);
					return;
				}
				const [result] = await prisma.$queryRawUnsafe<Array<{ found: number; recorded: number }>>(RECORD_UNSUBSCRIBE, message.id, message.emailHash, forwarding);
				// Erased between the read and the write: the address is suppressed by the erasure anyway.
				if (result.found === 0) {
					notFound(res);
					return;
				}
			} catch (error) {
				logger.error({ err: error }, 'recording an unsubscribe failed');
				unavailable(res);
				return;
			}
			sendPage(res, 200, 'You are unsubscribed', paragraph('You will not receive these emails any more.'));
		},
	);

	const siteName = (siteId: string) => sites.byDatabaseId(siteId)?.config.site.name ?? 'this sender';

	/** The confirmation email a confirm token names, and whether it was confirmed already. */
	async function confirmation(messageId: string) {
		const message = await prisma.emailMessage.findFirst({
			where: { id: messageId, siteId: { in: servedIds }, idempotencyKey: { startsWith: CONFIRMATION_KEY_PREFIX }, leadId: { not: null } },
			select: { id: true, siteId: true },
		});
		if (!message) return null;
		const confirmed = await prisma.consentRecord.count({ where: { siteId: message.siteId, dedupeKey: `confirm:${message.id}` } });
		return { ...message, confirmed: confirmed > 0, siteName: siteName(message.siteId) };
	}

	const confirmedPage = (res: Response, name: string) =>
		sendPage(res, 200, 'Thank you, you are subscribed', paragraph(`Your subscription to ${name} is confirmed. You can unsubscribe with the link in any of its emails.`));
	const unknownConfirmation = (res: Response) =>
		sendPage(res, 404, 'This link is no longer available', paragraph('The email this confirmation link belongs to is not known here any more. Sign up again to receive the emails.'));

	// GET only asks, as for unsubscribes: mail scanners follow links, and a scanner must not subscribe anyone.
	router.get('/e/v/:token', async (req, res) => {
		const token = check(req, res, 'confirm');
		if (!token) return;
		if (!token.valid) {
			sendPage(res, 400, 'This confirmation link is not valid', paragraph(`The link could not be used: ${token.reason}.`));
			return;
		}
		let message: Awaited<ReturnType<typeof confirmation>>;
		try {
			message = await confirmation(token.messageId);
		} catch (error) {
			logger.error({ err: error }, 'reading a confirmation email failed');
			unavailable(res);
			return;
		}
		if (!message) {
			unknownConfirmation(res);
			return;
		}
		if (message.confirmed) {
			confirmedPage(res, message.siteName);
			return;
		}
		sendPage(res, 200, 'Confirm your subscription', paragraph(`Do you want to receive emails from ${message.siteName}?`) + `<form method="post"><button type="submit">Yes, subscribe me</button></form>`);
	});

	router.post(
		'/e/v/:token',
		readFormBody('a form of at most 4 KB'),
		async (req, res) => {
			const token = check(req, res, 'confirm');
			if (!token) return;
			if (!token.valid) {
				sendPage(res, 400, 'This confirmation link is not valid', paragraph(`The link could not be used: ${token.reason}.`));
				return;
			}
			let siteId: string | null;
			try {
				[{ siteId }] = await prisma.$queryRawUnsafe<Array<{ siteId: string | null; recorded: number }>>(RECORD_CONFIRMATION, token.messageId, served, forwarding);
			} catch (error) {
				logger.error({ err: error }, 'recording a confirmation failed');
				unavailable(res);
				return;
			}
			if (!siteId) {
				unknownConfirmation(res);
				return;
			}
			confirmedPage(res, siteName(siteId));
		},
	);

	return router;
}
