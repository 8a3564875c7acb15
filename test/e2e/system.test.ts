/**
 * The whole system where users run it: a REAL n8n 2.x (scripts/real-n8n.sh, cached outside the
 * repository) with THIS package installed from its tarball the way n8n installs a community
 * package, the six bundled workflows imported and published with n8n's own CLI, the receiver
 * forwarding to them, a real Chromium browsing the receiver's demo site with the tracker, and a
 * real SMTP server process receiving the sequence's first email.
 *
 * Then, in Postgres: sessions with engagement levels, a conversion with attribution, a scored and
 * enriched lead with its timeline, and an email whose one-click unsubscribe link works.
 * Nothing is skipped: if n8n cannot be installed or started, this fails.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';

import type { Browser } from 'playwright-core';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import type { Receiver } from '../../server/receiver';
import { SELF_TEST_SITE } from '../../scripts/selfTestSite';
import { bundledWorkflows } from '../../scripts/workflowTools';
import { closeTab, eventually, launchChromium, visitorContext } from '../helpers/browser';
import { PrismaPg } from '@prisma/adapter-pg';

import { PrismaClient as Client } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { createLogger } from '../../server/logger';
import { startReceiver } from '../../server/receiver';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';
import { startRealN8n, type RealN8n } from '../helpers/realN8n';
import { TEST_SECRET } from '../helpers/receiver';
import { SmtpSink } from '../helpers/smtpSink';

const ROOT = path.resolve(__dirname, '../..');
const EMAIL_TOKEN_SECRET = randomBytes(24).toString('hex');
const SITE_KEY = 'nat-pets';
const LEAD_EMAIL = `ana.garcia+e2e@clinica-${randomBytes(3).toString('hex')}.es`;

/** A compiled script of scripts/ (npm test builds them), with the environment an operator would set. */
function script(name: string, args: string[], env: Record<string, string>, timeoutMs = 180_000): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, [path.join(ROOT, 'dist', 'scripts', `${name}.js`), ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: timeoutMs }, (error, stdout, stderr) => {
			const killed = error?.killed ? `\n[killed after ${timeoutMs / 1000} s]` : '';
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}${killed}` });
		});
	});
}

async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise((resolve) => server.close(resolve));
	return port;
}

function siteConfig(receiverUrl: string, n8nUrl: string) {
	return parseSiteConfig({
		site: { key: SITE_KEY, name: 'NAT-PETS', domain: 'nat-pets.com' },
		tracking: { allowedOrigins: [receiverUrl], relevanceThreshold: 1 },
		privacy: { cookieConsent: false },
		crm: {
			leadScoringRules: [
				{ event: 'pageview', score: 1, cap: 20, group: 'browsing' },
				{ event: 'pageview', urlPattern: '/demo/pricing', score: 5, group: 'intent' },
				{ event: 'form_submit', score: 10 },
				{ field: 'freeMail', operator: 'isTrue', score: -5 },
			],
			lifecycleStages: [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore: 60 }, { name: 'sql', minScore: 90 }, { name: 'customer' }],
			// Any form is a contact request: the demo's form (/demo/contact) and the payload's (/contact).
			conversionRules: [{ name: 'contact-request', event: 'form_submit', value: 50, currency: 'EUR' }],
			emailSequences: [
				{
					name: 'welcome',
					trigger: { stage: 'lead' },
					steps: [
						{
							delayMinutes: 0,
							subject: 'Welcome to NAT-PETS, {{firstName}}',
							html: '<p>Hi {{firstName}},</p><p>Here is our <a href="https://nat-pets.com/guide">care guide</a>.</p><p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p>',
						},
						{ delayMinutes: 4320, subject: 'How can we help your pet?', html: '<p>Hi {{firstName}}, <a href="https://nat-pets.com/pricing">see our plans</a>.</p>' },
					],
				},
			],
		},
		integrations: {
			n8nUrl,
			webhookSecretEnv: 'TEST_WEBHOOK_SECRET',
			webhookEndpoints: [
				{ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor' },
				{ workflow: 'lead-processor', url: '/webhook/crm-lead-processor' },
				{ workflow: 'email-orchestrator', url: '/webhook/crm-email-orchestrator' },
			],
			emailProvider: { type: 'smtp', fromEmail: 'hello@nat-pets.com', fromName: 'NAT-PETS' },
		},
	});
}

describe('the whole system in a real n8n', () => {
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	let n8n: RealN8n;
	let receiver: Receiver;
	let browser: Browser;
	let receiverUrl: string;
	let timer: NodeJS.Timeout | undefined;
	let imported = { code: -1, output: '' };
	let database = { name: '', url: '' };

	beforeAll(async () => {
		// A CRM database of its own: workflow 06's schedule sends the due steps of every site in
		// it, and must not touch the other suites' sites in the run's shared database.
		database = await createTestDatabase('tcrm_e2e');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new Client({ adapter: new PrismaPg({ connectionString: database.url }) });
		const receiverPort = await freePort();
		receiverUrl = `http://127.0.0.1:${receiverPort}`;
		smtp = await SmtpSink.start();
		n8n = await startRealN8n({
			workflows: [],
			credentials: [],
			webhookPaths: bundledWorkflows().map((workflow) => workflow.webhookPath),
			// As an operator does: the credentials from the receiver's settings, the workflows
			// imported and published with n8n's own CLI, by scripts/import-workflows.
			prepare: async (cli) => {
				const settings = {
					DATABASE_URL: database.url,
					CRM_WEBHOOK_SECRET: TEST_SECRET,
					RECEIVER_URL: receiverUrl,
					EMAIL_TOKEN_SECRET,
					SMTP_URL: `smtp://127.0.0.1:${smtp.port}?starttls=off`,
				};
				// One n8n CLI start per workflow to publish: minutes on a busy machine.
				imported = await script('import-workflows', ['--credentials', '--n8n-cli', cli.command], { ...(cli.env as Record<string, string>), ...settings }, 15 * 60_000);
				if (imported.code !== 0) throw new Error(`scripts/import-workflows failed:\n${imported.output}`);
			},
			// The hand-offs reach the next workflow through this instance's own URL.
			env: { N8N_HOST: '127.0.0.1' },
		});
		receiver = await startReceiver({
			sites: [siteConfig(receiverUrl, n8n.baseUrl)],
			database: { url: database.url, migrate: false },
			settings: { PORT: receiverPort, EMAIL_TOKEN_SECRET, DISPATCH_INTERVAL_MS: 50, DISPATCH_BACKOFF_BASE_MS: 50, DISPATCH_BACKOFF_MAX_MS: 400 },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		browser = await launchChromium();
	}, 30 * 60_000);

	afterAll(async () => {
		clearInterval(timer);
		await browser?.close();
		await receiver?.close();
		await n8n?.stop();
		await smtp?.stop();
		await prisma?.$disconnect();
		if (database.name) await dropTestDatabase(database.name);
	});

	it('turns a visit into sessions, a conversion, a scored and enriched lead with a timeline, and a welcome email', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		// A campaign landing, a long pricing page, an SPA, then the contact form.
		await page.goto(`${receiverUrl}/demo/?utm_source=newsletter&utm_medium=email&utm_campaign=autumn`);
		// Consent: without it the tracker never turns a form into a lead.
		await page.click('#consent-yes');
		await page.click('text=See the plans');
		await page.waitForURL(/\/demo\/pricing/);
		await page.mouse.wheel(0, 2000);
		await page.waitForTimeout(1500);
		await page.click('nav >> text=App');
		await page.waitForURL(/\/demo\/app$/);
		await page.click('#step-2');
		await page.click('#step-3');
		await page.click('#back');
		await page.waitForTimeout(500);
		await page.click('nav >> text=Contact');
		await page.waitForURL(/\/demo\/contact/);
		await page.fill('input[name=firstName]', 'Ana');
		await page.fill('input[name=email]', LEAD_EMAIL);
		await page.fill('input[name=company]', 'Clínica Veterinaria');
		await page.check('input[name=consent]');
		await Promise.all([page.waitForURL(/\/demo\/thanks/), page.click('button[type=submit]')]);
		await page.waitForTimeout(500);
		await closeTab(page);
		await context.close();

		const site = await prisma.site.findUniqueOrThrow({ where: { key: SITE_KEY } });
		// On a timeout: what reached the receiver, what the outbox made of it, and n8n's last words.
		let diagnosis = '';
		const failures = () => `${diagnosis}\n--- n8n log ---\n${n8n.logTail(60)}`;
		const diagnose = async () => {
			const events = await prisma.visitorEvent.count({ where: { siteId: site.id } });
			const outbox = await prisma.outboxMessage.findMany({ where: { siteId: site.id }, select: { destination: true, status: true, attempts: true, lastError: true } });
			diagnosis = `visitor_events: ${events}; outbox: ${JSON.stringify(outbox).slice(0, 3000)}`;
		};
		diagnosis = 'no diagnosis yet';
		timer = setInterval(() => void diagnose().catch(() => undefined), 2000);

		// 01: sessions with engagement levels, from the stored events.
		const sessions = await eventually(
			() => prisma.visitorSession.findMany({ where: { siteId: site.id } }),
			(rows) => rows.length > 0 && rows.every((row) => row.engagementLevel !== null) && rows.reduce((sum, row) => sum + row.pageviews, 0) >= 6,
			120_000,
		).catch((error: Error) => Promise.reject(new Error(`${error.message}\n${failures()}`)));
		const events = await prisma.visitorEvent.count({ where: { siteId: site.id } });

		// 02: the contact form is a conversion, credited to the campaign touch.
		const conversion = await eventually(
			() => prisma.conversion.findFirst({ where: { siteId: site.id, goal: 'contact-request' }, include: { attributions: true } }),
			(row) => row !== null && row.attributions.length > 0,
			120_000,
		).catch((error: Error) => Promise.reject(new Error(`${error.message}\n${failures()}`)));

		// 03 + 05: one lead, scored from its merged history, enriched; 04: its timeline.
		const lead = await eventually(
			() => prisma.lead.findFirst({ where: { siteId: site.id }, include: { tags: true, visitors: true } }),
			(row) => row !== null && row.score > 0 && row.tags.length > 0,
			120_000,
		).catch((error: Error) => Promise.reject(new Error(`${error.message}\n${failures()}`)));
		const activities = await eventually(
			() => prisma.activity.findMany({ where: { siteId: site.id, OR: [{ leadId: lead!.id }, { visitorId: { in: lead!.visitors.map((visitor) => visitor.id) } }] } }),
			(rows) => rows.some((row) => row.type === 'conversion') && rows.some((row) => row.leadId === lead!.id),
			120_000,
		);

		// 06: the welcome email, tracked, with a one-click unsubscribe that works.
		const mails = await eventually(() => smtp.messages(lead!.email), (list) => list.length > 0, 120_000).catch((error: Error) => Promise.reject(new Error(`${error.message}\n${failures()}`)));
		const mail = mails[0].parsed;
		const header = (name: string) => mail.headerLines.find((line) => line.key === name)?.line.replace(/^[^:]+:\s*/, '');
		expect(mail.subject).toBe('Welcome to NAT-PETS, Ana');
		expect(header('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
		const unsubscribeUrl = /<(https?:[^>]+)>/.exec(header('list-unsubscribe') ?? '')?.[1];
		expect(unsubscribeUrl?.startsWith(`${receiverUrl}/`)).toBe(true);
		expect(String(mail.html)).toContain(`${receiverUrl}/e/c/`);
		const unsubscribed = await fetch(unsubscribeUrl!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
		expect(unsubscribed.status).toBeLessThan(300);
		const channel = await eventually(
			() => prisma.channelStatus.findFirst({ where: { siteId: site.id, leadId: lead!.id, channel: 'email' } }),
			(row) => row?.status === 'unsubscribed',
			60_000,
		);

		expect(sessions.some((session) => ['low', 'medium', 'high'].includes(session.engagementLevel ?? ''))).toBe(true);
		expect(conversion!.attributions.map((row) => row.model)).toEqual(expect.arrayContaining(['first_touch', 'last_touch', 'linear']));
		expect(lead!.email).toBe(LEAD_EMAIL.toLowerCase());
		expect(lead!.visitors.length).toBeGreaterThan(0);
		expect(lead!.lifecycleStage).not.toBe('subscriber');
		expect(lead!.tags.map((tag) => tag.tag)).toContain('company-domain');
		expect(channel!.status).toBe('unsubscribed');

		const summary = {
			events,
			sessions: sessions.length,
			engagementLevels: sessions.map((session) => session.engagementLevel),
			conversions: await prisma.conversion.count({ where: { siteId: site.id } }),
			attributionRows: conversion!.attributions.length,
			leads: await prisma.lead.count({ where: { siteId: site.id } }),
			leadScore: lead!.score,
			leadStage: lead!.lifecycleStage,
			tags: lead!.tags.map((tag) => tag.tag),
			activities: activities.map((activity) => activity.type),
			emails: (await smtp.messages()).length,
		};
		console.log(`end-to-end summary ${JSON.stringify(summary)}`);
	}, 10 * 60_000);

	it('import-workflows created the credentials and published the six workflows with n8n’s CLI', () => {
		expect(imported.output).toContain('credentials: CRM database, Tracking CRM API, CRM SMTP');
		expect(imported.output).toContain('imported 6 workflows');
		for (const path of ['crm-visitor-processor', 'crm-conversion-detector', 'crm-lead-processor', 'crm-activity-logger', 'crm-enrichment-engine', 'crm-email-orchestrator']) {
			expect(imported.output).toContain(`published, POST /webhook/${path}`);
		}
	});

	it('health-check passes, and n8n-node-tester runs each of the six workflows with its payload', async () => {
		const env = { N8N_URL: n8n.baseUrl, CRM_WEBHOOK_SECRET: TEST_SECRET, RECEIVER_URL: receiverUrl, DATABASE_URL: database.url };
		const health = await script('health-check', [], env);
		expect([health.code, health.output]).toEqual([0, expect.stringMatching(/ok +06 email-orchestrator +POST/)]);
		expect(health.output).not.toContain('FAIL');

		const runs: string[] = [];
		for (const workflow of ['01', '02', '03', '04', '05', '06']) {
			const run = await script('n8n-node-tester', ['test', workflow], env);
			runs.push(run.output.split('\n').slice(0, 2).join(' | '));
			expect([workflow, run.code, run.output]).toEqual([workflow, 0, expect.stringMatching(/→ 200 in \d+ ms/)]);
		}
		console.log(`n8n-node-tester:\n${runs.join('\n')}`);

		// The payloads name the real site; the tester writes them into its test site only.
		const lead = await prisma.lead.findFirst({ where: { site: { key: SELF_TEST_SITE }, email: 'ana.garcia+pets@example-vet.es' }, include: { tags: true } });
		expect(lead?.tags.map((tag) => tag.tag)).toContain('company-domain');
		const conversion = await prisma.conversion.findFirst({ where: { site: { key: SELF_TEST_SITE }, eventId: '019aa000-0000-7000-8000-000000000005' } });
		expect(conversion?.goal).toBe('contact-request');
		expect(await prisma.lead.count({ where: { site: { key: SITE_KEY }, email: 'ana.garcia+pets@example-vet.es' } })).toBe(0);

		const all = await script('run-all-tests', [], env);
		expect([all.code, all.output]).toEqual([0, expect.stringContaining('6 of 6 workflows passed')]);
		const unsigned = await script('n8n-node-tester', ['test', '01', '--secret', 'not-the-secret'], env);
		expect([unsigned.code, unsigned.output]).toEqual([1, expect.stringContaining('the trigger refused the signature')]);
		const down = await script('health-check', ['--n8n', 'http://127.0.0.1:9', '--skip', 'receiver,database'], env);
		expect([down.code, down.output]).toEqual([1, expect.stringContaining('not reachable')]);
	}, 10 * 60_000);
});
