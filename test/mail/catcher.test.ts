import { randomUUID } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';

import { PrismaClient } from '../../lib/db/generated/client';
import { certainlyNotDelivered, smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { createLogger } from '../../server/logger';
import { startMailCatcher, type MailCatcher } from '../../server/mail/catcher';
import { catcherCredential } from '../../server/mail/smtpSettings';
import { createTestSite, testDbUrl, testPrisma } from '../helpers/db';

const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}@catcher.example`;

describe('mail catcher', () => {
	const prisma = testPrisma();
	let catcher: MailCatcher;
	/** The Email Orchestrator's own transport, from the credential the engine gives it. */
	const transport = () => smtpTransport(catcherCredential(catcher.host, catcher.port));

	beforeAll(async () => {
		catcher = await startMailCatcher({ prisma, logger });
	});
	afterAll(async () => {
		await catcher.close();
		await prisma.$disconnect();
	});

	const caught = (to: string) => prisma.mailboxMessage.findMany({ where: { toAddresses: { has: to } }, orderBy: { receivedAt: 'asc' } });

	it('listens on loopback on a free port', () => {
		expect(catcher.host).toBe('127.0.0.1');
		expect(catcher.port).toBeGreaterThan(0);
	});

	it('stores a message before it answers 250, with its parts, envelope and headers', async () => {
		const to = unique('ana');
		const bcc = unique('hidden');
		const info = await transport().sendMail({
			from: { name: 'Shop', address: 'hello@shop.example' },
			to: to.replace('ana', 'Ana'),
			bcc,
			subject: 'Grüße, Ana',
			html: '<p>Hello <a href="https://shop.example/start">start</a></p>',
			text: 'Hello https://shop.example/start',
			headers: { 'List-Unsubscribe': '<https://crm.example/e/u/token>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
			messageId: '<not-a-crm-id@shop.example>',
		});
		expect(info.accepted?.sort()).toEqual([to.replace('ana', 'Ana'), bcc].sort());
		// No waiting: the 250 the client got means the row is committed.
		const [row, ...others] = await caught(to);
		expect(others).toHaveLength(0);
		expect(row).toMatchObject({
			siteId: null,
			emailMessageId: null,
			messageId: '<not-a-crm-id@shop.example>',
			fromAddress: '"Shop" <hello@shop.example>',
			subject: 'Grüße, Ana',
			html: '<p>Hello <a href="https://shop.example/start">start</a></p>',
			text: 'Hello https://shop.example/start',
		});
		// Stored in lower case, so a lookup by address finds it however it was capitalized.
		expect(row.toAddresses.sort()).toEqual([to, bcc].sort());
		expect(row.rawSize).toBeGreaterThan(300);
		expect(row.headers).toEqual(
			expect.arrayContaining([
				{ name: 'List-Unsubscribe', value: '<https://crm.example/e/u/token>' },
				{ name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
				{ name: 'Subject', value: expect.stringMatching(/^=\?UTF-8\?/) },
			]),
		);
	});

	it('files a CRM email under its site by the email_messages id in its Message-ID', async () => {
		const site = await createTestSite(prisma, 'catcher');
		const to = unique('bea');
		const message = await prisma.emailMessage.create({ data: { siteId: site.id, idempotencyKey: randomUUID(), toEmail: to, subject: 'Welcome', status: 'sending' } });
		await transport().sendMail({ from: 'hello@shop.example', to, subject: 'Welcome', html: '<p>Hi</p>', messageId: `<${message.id}@shop.example>` });
		const [row] = await caught(to);
		expect(row).toMatchObject({ siteId: site.id, emailMessageId: message.id, messageId: `<${message.id}@shop.example>` });
	});

	it('accepts any login, as a sender configured for a real server would log in', async () => {
		const to = unique('login');
		const withLogin = smtpTransport({ ...catcherCredential(catcher.host, catcher.port), user: 'anyone', password: 'anything' });
		await withLogin.sendMail({ from: 'hello@shop.example', to, subject: 'Logged in', text: 'ok' });
		expect(await caught(to)).toHaveLength(1);
	});

	it('refuses a message over 10 MB with 552 and stores nothing, then takes the next one', async () => {
		const to = unique('big');
		const error = await transport()
			.sendMail({ from: 'hello@shop.example', to, subject: 'Too big', text: 'x', attachments: [{ filename: 'big.bin', content: Buffer.alloc(8 * 1024 * 1024, 7) }] })
			.then(
				() => undefined,
				(failure: unknown) => failure as { responseCode?: number; message: string },
			);
		// 8 MB of base64 is 10.7 MB on the wire.
		expect(error?.responseCode).toBe(552);
		expect(error?.message).toMatch(/larger than the mail catcher's limit of 10485760 bytes/);
		// The Email Orchestrator reads a refusal as "not delivered", so it may try again later.
		expect(certainlyNotDelivered(error)).toBe(true);
		expect(await caught(to)).toHaveLength(0);

		await transport().sendMail({ from: 'hello@shop.example', to, subject: 'Small', text: 'fits' });
		expect((await caught(to)).map((row) => row.subject)).toEqual(['Small']);
	});

	it('keeps the newest messages of each site and deletes older ones', async () => {
		const small = await startMailCatcher({ prisma, logger, keepPerSite: 3 });
		const site = await createTestSite(prisma, 'catcher-keep');
		const other = await createTestSite(prisma, 'catcher-keep-other');
		const send = async (on: { id: string }, subject: string) => {
			const to = unique('keep');
			const message = await prisma.emailMessage.create({ data: { siteId: on.id, idempotencyKey: randomUUID(), toEmail: to, subject, status: 'sending' } });
			await smtpTransport(catcherCredential(small.host, small.port)).sendMail({ from: 'hello@shop.example', to, subject, text: subject, messageId: `<${message.id}@shop.example>` });
		};
		try {
			await send(other, 'other site');
			for (const n of [1, 2, 3, 4, 5]) await send(site, `number ${n}`);
			const kept = await prisma.mailboxMessage.findMany({ where: { siteId: site.id }, orderBy: { receivedAt: 'asc' }, select: { subject: true } });
			expect(kept.map((row) => row.subject)).toEqual(['number 3', 'number 4', 'number 5']);
			expect(await prisma.mailboxMessage.count({ where: { siteId: other.id } })).toBe(1);
		} finally {
			await small.close();
		}
	});

	it('answers 451 (try later) when the database cannot take the message', async () => {
		const url = new URL(testDbUrl());
		url.pathname = '/no_such_database_for_the_catcher';
		const unreachable = new PrismaClient({ adapter: new PrismaPg({ connectionString: url.toString() }) });
		const failing = await startMailCatcher({ prisma: unreachable, logger });
		try {
			const error = await smtpTransport(catcherCredential(failing.host, failing.port))
				.sendMail({ from: 'hello@shop.example', to: unique('down'), subject: 'Lost?', text: 'no' })
				.then(
					() => undefined,
					(failure: unknown) => failure as { responseCode?: number },
				);
			expect(error?.responseCode).toBe(451);
			expect(certainlyNotDelivered(error)).toBe(true);
		} finally {
			await failing.close();
			await unreachable.$disconnect();
		}
	});

	it('fails to start with the socket error when its port is taken', async () => {
		await expect(startMailCatcher({ prisma, logger, port: catcher.port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
	});
});
