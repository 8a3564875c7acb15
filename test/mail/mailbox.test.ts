// First: playwright-core needs Symbol.dispose from the moment it loads (see the file).

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';

import express from 'express';
import helmet from 'helmet';
import type { IDataObject } from 'n8n-workflow';
import type { Browser, BrowserContext, Page } from 'playwright-core';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { emailHash } from '../../lib/email';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { disconnectAll } from '../../nodes/shared/database';
import { createLogger } from '../../server/logger';
import { startMailCatcher, type MailCatcher } from '../../server/mail/catcher';
import { catcherCredential } from '../../server/mail/smtpSettings';
import { mailboxRouter } from '../../server/routes/mailbox';
import { sendProblem } from '../../server/routes/problems';
import type { Receiver } from '../../server/receiver';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';
import { eventually, launchChromium, servePages, type PageServer } from '../helpers/browser';
import { postgresCredential, testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

const SECRET = 'mailbox-test-email-token-secret-0123456789';
const OUTPUT = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'mail');
const STEP_HTML =
	'<html><head><title>Welcome</title></head><body><h1 style="color:#0b57d0">Hi {{firstName}},</h1><p>Thanks for getting in touch.</p>' +
	'<p><a href="{{properties.landing}}">Get started</a></p><p style="font-size:12px"><a href="{{unsubscribeUrl}}">Unsubscribe</a></p></body></html>';

/** The Email Orchestrator in n8n's engine, as the embedded engine runs it, with the catcher's credential. */
function orchestrator(operation: 'enroll' | 'sendDue', parameters: IDataObject): WorkflowJson {
	return {
		name: 'Mailbox test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'eo',
				name: 'Email Orchestrator',
				type: 'n8n-nodes-tracking-crm.emailOrchestrator',
				typeVersion: 1,
				position: [200, 0],
				parameters: { operation, ...parameters },
				credentials: { postgres: { id: '1', name: 'CRM database' }, trackingCrmApi: { id: '2', name: 'Receiver' }, smtp: { id: '3', name: 'Mail' } },
			},
		],
		connections: { Start: { main: [[{ node: 'Email Orchestrator', type: 'main', index: 0 }]] } },
	};
}

/** A GET from this machine to `address`, with headers a browser could not set (Host among them). */
function rawGet(address: string, port: number, pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
	return new Promise((resolve, reject) => {
		const req = request({ host: address, port, path: pathname, headers }, (res) => {
			let body = '';
			res.setEncoding('utf8');
			res.on('data', (chunk: string) => (body += chunk));
			res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
		});
		req.on('error', reject);
		req.end();
	});
}

/** An address of this machine that is not loopback, so a request to it comes from a non-loopback socket address. */
function externalAddress(): string {
	const address = Object.values(networkInterfaces())
		.flat()
		.find((entry) => entry && entry.family === 'IPv4' && !entry.internal)?.address;
	if (!address) throw new Error('This test needs a network interface with a non-loopback IPv4 address');
	return address;
}

describe('mailbox: what the catcher caught, for a person on this machine', () => {
	const prisma = testPrisma();
	const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
	const key = `mailbox-${randomBytes(4).toString('hex')}`;
	let receiver: Receiver;
	let catcher: MailCatcher;
	let landing: PageServer;
	let mailbox: Server;
	let mailboxUrl: string;
	let browser: Browser;
	let context: BrowserContext;
	let siteId: string;
	const sent: Record<string, { email: string; messageId: string }> = {};

	beforeAll(async () => {
		mkdirSync(OUTPUT, { recursive: true });
		landing = await servePages((pathname) => (pathname === '/start' ? '<!doctype html><title>Landing</title><h1>You made it</h1>' : undefined));
		const site = parseSiteConfig({
			site: { key, name: 'Mailbox Shop', domain: `${key}.example` },
			tracking: { allowedOrigins: [`https://${key}.example`] },
			crm: { emailSequences: [{ name: 'welcome', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}}!', html: STEP_HTML }] }] },
			integrations: { n8nUrl: 'http://127.0.0.1:9', webhookSecretEnv: 'TEST_WEBHOOK_SECRET', emailProvider: { type: 'smtp', fromEmail: 'hello@shop.example', fromName: 'Shop' } },
		});
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', EMAIL_TOKEN_SECRET: SECRET });
		siteId = receiver.sites.byPublicKey(key)!.id;
		catcher = await startMailCatcher({ prisma, logger });

		// Mounted as the receiver mounts its routers: behind helmet, with a proxy trusted, so
		// X-Forwarded-For would decide req.ip; the mailbox must not care.
		const app = express();
		app.set('trust proxy', true);
		app.use(helmet({ crossOriginResourcePolicy: { policy: 'cross-origin' } }));
		app.use(mailboxRouter({ prisma, sites: receiver.sites, catcher }));
		app.use((req, res) => sendProblem(res, 404, 'not_found', `No route for ${req.method} ${req.path}`));
		mailbox = createServer(app);
		await new Promise<void>((resolve) => mailbox.listen(0, '0.0.0.0', resolve));
		mailboxUrl = `http://127.0.0.1:${(mailbox.address() as AddressInfo).port}`;

		const credentials = {
			postgres: postgresCredential(),
			trackingCrmApi: { receiverUrl: receiver.url, webhookSecret: 'unused-here', emailTokenSecret: SECRET },
			smtp: catcherCredential(catcher.host, catcher.port),
		};
		const asOf = new Date().toISOString();
		for (const name of ['Ana', 'Bea']) {
			const email = `${name.toLowerCase()}-${randomBytes(3).toString('hex')}@people.example`;
			const lead = await prisma.lead.create({ data: { siteId, email, emailHash: emailHash(email), firstName: name, properties: { landing: `${landing.origin}/start?ref=mail` } } });
			await runWorkflow(orchestrator('enroll', { sequence: 'welcome', options: { asOf } }), { input: [{ site: key, leadId: lead.id }], credentials, throwOnError: true });
			const result = await runWorkflow(orchestrator('sendDue', { options: { asOf } }), { input: [{ site: key }], credentials, throwOnError: true });
			const [report] = result.outputOf('Email Orchestrator');
			expect(report).toMatchObject({ outcome: 'sent', leadId: lead.id });
			sent[name] = { email, messageId: String(report.messageId) };
		}
		browser = await launchChromium();
		context = await browser.newContext();
	});

	afterAll(async () => {
		await browser?.close();
		await new Promise((resolve) => mailbox?.close(resolve));
		await catcher?.close();
		await receiver?.close();
		await landing?.close();
		await disconnectAll();
		await prisma.$disconnect();
	});

	/** The caught message of a sent CRM email, by the email_messages id the catcher filed it under. */
	const caughtOf = (name: string) => prisma.mailboxMessage.findFirstOrThrow({ where: { emailMessageId: sent[name].messageId } });

	async function newTab(action: () => Promise<void>): Promise<Page> {
		const [tab] = await Promise.all([context.waitForEvent('page'), action()]);
		await tab.waitForLoadState();
		return tab;
	}

	it('files what the Email Orchestrator node sent under its site and CRM message', async () => {
		const row = await caughtOf('Ana');
		expect(row).toMatchObject({ siteId, toAddresses: [sent.Ana.email], subject: 'Welcome, Ana!', fromAddress: '"Shop" <hello@shop.example>' });
		expect(row.html).toContain(`${receiver.url}/e/c/`);
	});

	it('lists the mail and shows a message whose tracked link and unsubscribe link reach the receiver', async () => {
		const page = await context.newPage();
		const refused: string[] = [];
		page.on('console', (message) => {
			if (/Content Security Policy|Refused to/i.test(message.text())) refused.push(message.text());
		});
		await page.goto(`${mailboxUrl}/mailbox`);
		const anaRow = page.locator('#messages tr', { hasText: sent.Ana.email });
		await expect(anaRow.locator('td.subject').textContent()).resolves.toBe('Welcome, Ana!');
		await expect(anaRow.textContent()).resolves.toContain(key);

		await anaRow.getByRole('link', { name: 'Welcome, Ana!' }).click();
		await page.waitForURL(/\/mailbox\/messages\/[0-9a-f-]{36}$/);
		const preview = page.frameLocator('#preview');
		await preview.getByRole('heading', { name: 'Hi Ana,' }).waitFor();
		const unsubscribeUrl = (await page.locator('dd a[target=_blank]').textContent()) ?? '';
		expect(unsubscribeUrl).toMatch(new RegExp(`^${receiver.url}/e/u/u\\.${sent.Ana.messageId}\\.`));
		await expect(page.locator('#headers').textContent()).resolves.toContain('List-Unsubscribe-PostList-Unsubscribe=One-Click');
		await expect(page.locator('#text').textContent()).resolves.toMatch(new RegExp(`Get started \\(${receiver.url}/e/c/`));
		await page.screenshot({ path: path.join(OUTPUT, 'mailbox-message.png'), fullPage: true });

		// Showing the HTML loads its open pixel, as a mail client showing images does.
		await eventually(() => prisma.emailEvent.findMany({ where: { messageId: sent.Ana.messageId, type: 'open' } }), (events) => events.length === 1);

		const landed = await newTab(() => preview.getByRole('link', { name: 'Get started' }).click());
		expect(landed.url()).toBe(`${landing.origin}/start?ref=mail`);
		await expect(landed.title()).resolves.toBe('Landing');
		const clicks = await prisma.emailEvent.findMany({ where: { messageId: sent.Ana.messageId, type: 'click' } });
		expect(clicks.map((event) => event.url)).toEqual([`${landing.origin}/start?ref=mail`]);

		const confirm = await newTab(() => preview.getByRole('link', { name: 'Unsubscribe' }).click());
		expect(confirm.url()).toBe(unsubscribeUrl);
		await confirm.getByRole('button', { name: 'Unsubscribe' }).click();
		await confirm.getByRole('heading', { name: 'You are unsubscribed' }).waitFor();
		await expect(prisma.suppression.count({ where: { siteId, emailHash: emailHash(sent.Ana.email), reason: 'unsubscribed' } })).resolves.toBe(1);
		await page.screenshot({ path: path.join(OUTPUT, 'mailbox-after-clicks.png'), fullPage: true });
		await page.goto(`${mailboxUrl}/mailbox`);
		await page.screenshot({ path: path.join(OUTPUT, 'mailbox-list.png'), fullPage: true });
		// The pages' own script and stylesheet, the preview and its images all pass the pages' policies.
		expect(refused).toEqual([]);
	});

	it('shows new mail on an open list without the reader reloading it', async () => {
		const page = await context.newPage();
		await page.goto(`${mailboxUrl}/mailbox`);
		const subject = `Arrived while open ${randomBytes(3).toString('hex')}`;
		await smtpTransport(catcherCredential(catcher.host, catcher.port)).sendMail({ from: 'hello@shop.example', to: 'reader@people.example', subject, text: 'new' });
		await page.locator('#messages td.subject', { hasText: subject }).waitFor({ timeout: 10_000 });
	});

	it('sends the one-click unsubscribe (RFC 8058 POST) a mail client sends from its button', async () => {
		const page = await context.newPage();
		await page.goto(`${mailboxUrl}/mailbox/messages/${(await caughtOf('Bea')).id}`);
		const done = await newTab(() => page.locator('#one-click-unsubscribe').click());
		await done.getByRole('heading', { name: 'You are unsubscribed' }).waitFor();
		await expect(prisma.suppression.count({ where: { siteId, emailHash: emailHash(sent.Bea.email), reason: 'unsubscribed' } })).resolves.toBe(1);
	});

	it('serves the message HTML in a sandbox with no script', async () => {
		const row = await caughtOf('Ana');
		const response = await fetch(`${mailboxUrl}/mailbox/messages/${row.id}/html`);
		expect(response.status).toBe(200);
		expect(response.headers.get('content-security-policy')).toMatch(/^sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'/);
		await expect(response.text()).resolves.toMatch(/^<html><head><base target="_blank"><title>Welcome<\/title>/);
	});

	it('answers JSON for tests and the demo panel, newest first, by recipient or site', async () => {
		const byRecipient = await (await fetch(`${mailboxUrl}/mailbox/api/messages?to=${encodeURIComponent(sent.Bea.email.toUpperCase())}`)).json();
		expect(byRecipient).toEqual({
			catcher: { host: '127.0.0.1', port: catcher.port },
			messages: [
				expect.objectContaining({
					siteKey: key,
					siteId,
					emailMessageId: sent.Bea.messageId,
					toAddresses: [sent.Bea.email],
					subject: 'Welcome, Bea!',
					unsubscribeUrl: expect.stringMatching(new RegExp(`^${receiver.url}/e/u/`)),
					url: expect.stringMatching(/^\/mailbox\/messages\//),
				}),
			],
		});
		const bySite = await (await fetch(`${mailboxUrl}/mailbox/api/messages?site=${key}`)).json();
		expect(bySite.messages.map((message: { subject: string }) => message.subject)).toEqual(['Welcome, Bea!', 'Welcome, Ana!']);
		const one = await (await fetch(`${mailboxUrl}${byRecipient.messages[0].url.replace('/mailbox/', '/mailbox/api/')}`)).json();
		expect(one).toMatchObject({ subject: 'Welcome, Bea!', html: expect.stringContaining('Hi Bea,'), headers: expect.arrayContaining([{ name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' }]) });
	});

	it.each([
		['/mailbox/messages/42', 400, 'id'],
		['/mailbox/messages/not-a-uuid/html', 400, 'id'],
		['/mailbox/api/messages/%27%3B--', 400, 'id'],
		['/mailbox/api/messages/0199f5a0-0000-7000-8000-000000000000', 404, 'id'],
		['/mailbox/api/messages?limit=0', 400, 'limit'],
		['/mailbox/api/messages?limit=ten', 400, 'limit'],
		['/mailbox/api/messages?limit=1&limit=2', 400, 'limit'],
		['/mailbox/api/messages?site=nobody', 400, 'site'],
		['/mailbox/api/messages?to=a%00b', 400, 'to'],
		['/mailbox/api/messages?page=2', 400, 'page'],
	])('GET %s → %i naming %s', async (pathname, status, field) => {
		const response = await fetch(`${mailboxUrl}${pathname}`);
		expect(response.status).toBe(status);
		const body = (await response.json()) as { issues: Array<{ field: string }> };
		expect(body.issues.map((issue) => issue.field)).toContain(field);
	});

	describe('is not served beyond this machine', () => {
		const port = () => (mailbox.address() as AddressInfo).port;

		it('answers a loopback request', async () => {
			expect((await rawGet('127.0.0.1', port(), '/mailbox', { host: `localhost:${port()}` })).status).toBe(200);
		});

		it.each([
			['/mailbox'],
			['/mailbox/api/messages'],
			['/mailbox/mailbox.js'],
		])('answers %s from a non-loopback address with the receiver’s 404, whatever X-Forwarded-For and Host say', async (pathname) => {
			const answer = await rawGet(externalAddress(), port(), pathname, { host: `127.0.0.1:${port()}`, 'x-forwarded-for': '127.0.0.1' });
			expect(answer.status).toBe(404);
			expect(JSON.parse(answer.body)).toMatchObject({ error: 'not_found' });
			expect(answer.body).not.toContain('@people.example');
		});

		it.each([
			['a proxy on this machine (X-Forwarded-For)', { 'x-forwarded-for': '203.0.113.9' }],
			['a proxy on this machine (Forwarded)', { forwarded: 'for=203.0.113.9' }],
			['a page whose name was re-pointed at 127.0.0.1 (DNS rebinding)', { host: 'attacker.example' }],
		])('refuses a loopback request relayed by %s', async (_via, headers) => {
			expect((await rawGet('127.0.0.1', port(), '/mailbox/api/messages', { host: `127.0.0.1:${port()}`, ...headers })).status).toBe(404);
		});
	});
});
