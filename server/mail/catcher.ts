import type { AddressInfo } from 'node:net';

import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

import type { PrismaClient } from '../../lib/db';
import { uuidv7s } from '../../lib/ids';
import { siteCipher } from '../../lib/pii';
import type { Logger } from '../logger';
import { caughtMessage, crmMessageIdOf } from './caught';
import { encryptsPii, sealCaught } from './sealed';

/** A larger message is refused (552): a CRM email is a few kilobytes, and the whole message is held in memory to parse it. */
export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** Caught messages kept per site; older ones are deleted as new ones arrive. */
export const KEEP_PER_SITE = 1000;

/** How long a stop waits for an SMTP conversation in progress before cutting it. */
const CLOSE_TIMEOUT_MS = 5000;

export interface MailCatcherOptions {
	prisma: PrismaClient;
	logger: Logger;
	/** Default 127.0.0.1: the catcher is for the receiver's own engine, not for the network. */
	host?: string;
	/** Default 0: a free port, which the result names. */
	port?: number;
	maxMessageBytes?: number;
	keepPerSite?: number;
}

export interface MailCatcher {
	host: string;
	port: number;
	/** Stops accepting connections and waits (at most a few seconds) for conversations in progress. */
	close(): Promise<void>;
}

/** An SMTP reply the client sees: smtp-server answers with an error's responseCode and message. */
function smtpError(responseCode: number, message: string): Error {
	return Object.assign(new Error(message), { responseCode });
}

/**
 * The built-in mail catcher, like Mailpit: a real SMTP server in the receiver's process that
 * takes any message for any recipient, without login or TLS, and stores it in mailbox_messages
 * for /mailbox to show, delivering nothing; a CRM email of a site with privacy.encryptPii is stored
 * sealed (./sealed.ts). The sender is told 250 only once the message is in the database, so an
 * accepted message survives a crash. One writer of mailbox_messages: this (scripts/rotate-pii-key only reseals what it sealed).
 */
export async function startMailCatcher(options: MailCatcherOptions): Promise<MailCatcher> {
	const { prisma, logger, host = '127.0.0.1', port = 0, maxMessageBytes = MAX_MESSAGE_BYTES, keepPerSite = KEEP_PER_SITE } = options;

	async function store(raw: Buffer, recipients: string[]): Promise<void> {
		const message = caughtMessage(await simpleParser(raw, { skipTextToHtml: true }), recipients, raw.length);
		const crmMessageId = crmMessageIdOf(message.messageId);
		const crm = crmMessageId
			? await prisma.emailMessage.findUnique({ where: { id: crmMessageId }, select: { id: true, siteId: true, site: { select: { config: true } } } })
			: null;
		const now = Date.now();
		const siteId = crm?.siteId ?? null;
		// Sealed like the site's email_messages row; without the keys the message is refused (451) rather than kept in clear.
		const cipher = crm ? siteCipher(crm.siteId, encryptsPii(crm.site.config)) : null;
		const { id } = await prisma.mailboxMessage.create({
			data: { ...sealCaught(cipher, message), id: uuidv7s(1, now)[0], siteId, emailMessageId: crm?.id ?? null, receivedAt: new Date(now) },
			select: { id: true },
		});
		logger.info({ id, siteId, emailMessageId: crm?.id, bytes: raw.length }, 'mail caught');
		try {
			const stale = await prisma.mailboxMessage.findMany({ where: { siteId }, orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }], skip: keepPerSite, select: { id: true } });
			if (stale.length > 0) await prisma.mailboxMessage.deleteMany({ where: { id: { in: stale.map((row) => row.id) } } });
		} catch (error) {
			// The message is stored; the next one trims again.
			logger.warn({ err: error }, 'could not delete the oldest caught mail');
		}
	}

	const server = new SMTPServer({
		banner: 'Tracking CRM mail catcher: mail is kept for /mailbox, never delivered',
		logger: false,
		disabledCommands: ['STARTTLS'],
		authOptional: true,
		// A sender configured with a login (any login) must get through too, as with Mailpit.
		allowInsecureAuth: true,
		onAuth: (auth, _session, callback) => callback(null, { user: auth.username ?? 'anyone' }),
		size: maxMessageBytes,
		closeTimeout: CLOSE_TIMEOUT_MS,
		onData(stream, session, callback) {
			const chunks: Buffer[] = [];
			stream.on('data', (chunk: Buffer) => {
				if (!stream.sizeExceeded) chunks.push(chunk);
			});
			stream.on('end', () => {
				if (stream.sizeExceeded) {
					callback(smtpError(552, `Message larger than the mail catcher's limit of ${maxMessageBytes} bytes`));
					return;
				}
				const recipients = session.envelope.rcptTo.map((to) => to.address);
				store(Buffer.concat(chunks), recipients).then(
					() => callback(),
					(error: unknown) => {
						logger.error({ err: error }, 'the mail catcher could not store a message');
						callback(smtpError(451, 'The message could not be stored; try again later'));
					},
				);
			});
		},
	});
	// A client's broken connection is reported here; without a listener it would end the process.
	server.on('error', (error) => logger.warn({ err: error }, 'mail catcher connection error'));

	await new Promise<void>((resolve, reject) => {
		server.server.once('error', reject);
		server.listen(port, host, () => {
			server.server.off('error', reject);
			resolve();
		});
	});
	const address = server.server.address() as AddressInfo;
	return {
		host,
		port: address.port,
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}
