import { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod/v4';

import type { PrismaClient } from '../../lib/db';
import { listUnsubscribeUrl, type HeaderField } from '../mail/caught';
import { KEEP_PER_SITE } from '../mail/catcher';
import { openCaught } from '../mail/sealed';
import { isLocalRequest } from '../localOnly';
import { listPage, MAILBOX_CSS, MAILBOX_JS, messagePage, PAGE_CSP, previewDocument, PREVIEW_CSP, type CatcherAddress, type MailboxEntry } from '../mail/mailboxPages';
import type { SiteRegistry } from '../siteRegistry';
import { cleanText, parseInput, parseQuery, quoted, wholeNumber } from './inputs';
import { sendNoRoute, sendProblem } from './problems';

export interface MailboxContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
	/** The running catcher's address; undefined when mail goes out through SMTP_URL. */
	catcher?: CatcherAddress;
}

/** Messages the list page shows; the JSON route may ask for up to a site's whole kept mail. */
const PAGE_SIZE = 200;
const MAX_LIMIT = 1000;

/**
 * Sealed mail (privacy.encryptPii) a `to` look-up opens at most, newest first: five sites' kept
 * mail. A sealed address compares equal to nothing in SQL and the row keeps no hash of it, so the
 * look-up opens the recipients; older sealed mail beyond this is not found by address.
 */
export const SEALED_TO_SCAN = 5 * KEEP_PER_SITE;

/** Sealed rows are those whose first recipient has the sealed shape: the catcher seals all of a row's values or none. */
const SEALED_RECIPIENTS = `SELECT id::text, site_id::text AS "siteId", to_addresses AS "toAddresses" FROM mailbox_messages
	WHERE site_id IS NOT NULL AND ($1::uuid IS NULL OR site_id = $1::uuid) AND to_addresses[1] LIKE 'pii1:%'
	ORDER BY received_at DESC, id DESC LIMIT $2`;

export const idParams = z.object({ id: z.uuid({ error: (issue) => `must be a message id (a UUID) from /mailbox/api/messages (got ${quoted(issue.input)})` }) });

/** As the analytics filters: a named filter with no value is a mistake, not "any"; spaces around an address are no part of it. */
export const listQuery = z.strictObject({
	to: cleanText(z.string().trim().min(1, { error: 'must not be empty: give a recipient address, or leave the parameter out' }).max(320, { error: 'must be at most 320 characters' })).optional(),
	site: cleanText(z.string().trim().min(1, { error: 'must not be empty: give a site key, or leave the parameter out' }).max(64, { error: 'must be at most 64 characters' })).optional(),
	limit: wholeNumber(1, MAX_LIMIT).default(100),
});

const SUMMARY = { id: true, siteId: true, emailMessageId: true, messageId: true, fromAddress: true, toAddresses: true, subject: true, rawSize: true, receivedAt: true, headers: true } as const;

/**
 * The mailbox: what the built-in mail catcher (server/mail/catcher.ts) received, as pages for a
 * person (/mailbox) and as JSON (/mailbox/api/messages) for tests and the demo's panel.
 *
 * A development tool of the embedded default, and the messages hold people's addresses: every
 * route answers only a request from this machine (isLocalRequest: the socket's loopback address,
 * never X-Forwarded-For, no proxy in between, a loopback Host). Any other request gets the
 * receiver's 404, as if there were no mailbox.
 */
export function mailboxRouter({ prisma, sites, catcher }: MailboxContext): Router {
	const router = Router();

	router.use('/mailbox', (req: Request, res: Response, next: NextFunction) => {
		if (!isLocalRequest(req.socket.remoteAddress, req.headers)) {
			// Answered here, whatever the method: the receiver's 405 would name the mailbox's methods.
			// Under router.use, req.path has lost the /mailbox mount: the answer must name the path the client asked for.
			sendNoRoute({ method: req.method, path: req.originalUrl.split('?')[0] }, res);
			return;
		}
		res.set({ 'Cache-Control': 'no-store', 'X-Robots-Tag': 'noindex' });
		next();
	});

	const siteKey = (siteId: string | null) => (siteId ? (sites.byDatabaseId(siteId)?.key ?? null) : null);
	/** `row` opened: its values as they were sent. */
	const entry = (row: { id: string; siteId: string | null; fromAddress: string; toAddresses: string[]; subject: string; rawSize: number; receivedAt: Date; headers: unknown }): MailboxEntry => {
		const opened = openCaught(row.siteId, { toAddresses: row.toAddresses, subject: row.subject, headers: row.headers as HeaderField[] });
		return {
			id: row.id,
			siteKey: siteKey(row.siteId),
			fromAddress: row.fromAddress,
			toAddresses: opened.toAddresses,
			subject: opened.subject,
			receivedAt: row.receivedAt,
			rawSize: row.rawSize,
			unsubscribeUrl: listUnsubscribeUrl(opened.headers),
		};
	};
	const links = (id: string) => ({ url: `/mailbox/messages/${id}`, previewUrl: `/mailbox/messages/${id}/html` });

	/** The sealed messages (of one site, or any) with `to` among their recipients once opened: the newest SEALED_TO_SCAN are looked at. */
	async function sealedTo(to: string, siteId: string | undefined): Promise<string[]> {
		const rows = await prisma.$queryRawUnsafe<Array<{ id: string; siteId: string; toAddresses: string[] }>>(SEALED_RECIPIENTS, siteId ?? null, SEALED_TO_SCAN);
		return rows.filter((row) => openCaught(row.siteId, { toAddresses: row.toAddresses }).toAddresses.includes(to)).map((row) => row.id);
	}

	/** The message a route's :id names, or undefined once a 400 or 404 went out. */
	async function messageOf(req: Request, res: Response) {
		const params = parseInput(idParams, req.params, res, 'invalid_parameter');
		if (!params) return undefined;
		const row = await prisma.mailboxMessage.findUnique({ where: { id: params.id } });
		if (!row) {
			sendProblem(res, 404, 'not_found', 'No caught message has this id; older messages are deleted as new ones arrive', { issues: [{ field: 'id', message: 'names no caught message' }] });
			return undefined;
		}
		const parts = openCaught(row.siteId, { html: row.html, text: row.text, headers: row.headers as HeaderField[] });
		return { ...entry(row), siteId: row.siteId, messageId: row.messageId, emailMessageId: row.emailMessageId, html: parts.html, text: parts.text, headers: parts.headers };
	}

	router.get('/mailbox/mailbox.css', (_req, res) => {
		res.type('text/css').send(MAILBOX_CSS);
	});
	router.get('/mailbox/mailbox.js', (_req, res) => {
		res.type('text/javascript').send(MAILBOX_JS);
	});

	router.get('/mailbox', async (_req, res) => {
		const [rows, total] = await Promise.all([
			prisma.mailboxMessage.findMany({ orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }], take: PAGE_SIZE, select: SUMMARY }),
			prisma.mailboxMessage.count(),
		]);
		res.set('Content-Security-Policy', PAGE_CSP).type('html').send(listPage(rows.map(entry), total, catcher));
	});

	router.get('/mailbox/messages/:id', async (req, res) => {
		const message = await messageOf(req, res);
		if (message) res.set('Content-Security-Policy', PAGE_CSP).type('html').send(messagePage(message));
	});

	router.get('/mailbox/messages/:id/html', async (req, res) => {
		const message = await messageOf(req, res);
		if (!message) return;
		if (!message.html) {
			sendProblem(res, 404, 'no_html_part', 'This message has no HTML part; its text is at /mailbox/api/messages/<id>', { issues: [{ field: 'id', message: 'names a message without HTML' }] });
			return;
		}
		res.set('Content-Security-Policy', PREVIEW_CSP).type('html').send(previewDocument(message.html));
	});

	router.get('/mailbox/api/messages', async (req, res) => {
		const query = parseQuery(listQuery, req, res, 'invalid_parameter');
		if (!query) return;
		const site = query.site === undefined ? undefined : sites.byPublicKey(query.site);
		if (query.site !== undefined && !site) {
			sendProblem(res, 400, 'invalid_parameter', `The site is invalid: ${quoted(query.site)} is no configured site`, { issues: [{ field: 'site', message: 'names no configured site (the key of a site config)' }] });
			return;
		}
		const to = query.to?.toLowerCase();
		// Clear rows by the address itself; sealed ones by their ids, found by opening them.
		const byRecipient = to !== undefined && { OR: [{ toAddresses: { has: to } }, { id: { in: await sealedTo(to, site?.id) } }] };
		const rows = await prisma.mailboxMessage.findMany({
			where: { ...(site && { siteId: site.id }), ...byRecipient },
			orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }],
			take: query.limit,
			select: SUMMARY,
		});
		res.json({
			catcher: catcher ? { host: catcher.host, port: catcher.port } : null,
			messages: rows.map((row) => ({ ...entry(row), siteId: row.siteId, emailMessageId: row.emailMessageId, messageId: row.messageId, ...links(row.id) })),
		});
	});

	router.get('/mailbox/api/messages/:id', async (req, res) => {
		const message = await messageOf(req, res);
		if (message) res.json({ ...message, ...links(message.id) });
	});

	return router;
}
