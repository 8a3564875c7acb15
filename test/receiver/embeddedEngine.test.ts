/**
 * The embedded engine on Postgres with real SMTP: a site without integrations.n8nUrl is run by
 * the receiver's own n8n engine, whose nodes reach DATABASE_URL's Postgres through the
 * credential a real n8n would give them, and SMTP_URL's server gets the mail (no catcher runs).
 */
import { randomBytes } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { PrismaClient } from '../../lib/db';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { BROWSER_UA, post } from '../helpers/events';
import { SmtpSink } from '../helpers/smtpSink';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

jest.setTimeout(90_000);

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

describe('the embedded engine on Postgres, with SMTP_URL', () => {
	// A database of its own: /health judges the whole outbox, which other suites leave rows in.
	let database: { name: string; url: string };
	let prisma: PrismaClient;
	const key = `embedded-${randomBytes(4).toString('hex')}`;
	let sink: SmtpSink;
	let receiver: Receiver;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_embedded_engine');
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		sink = await SmtpSink.start();
		const site = parseSiteConfig({
			site: { key, name: 'Embedded', domain: `${key}.example` },
			tracking: { allowedOrigins: [`https://${key}.example`] },
			privacy: { cookieConsent: false },
			crm: {
				leadScoringRules: [{ event: 'pageview', score: 5 }],
				lifecycleStages: [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 5 }],
				emailSequences: [{ name: 'welcome', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}, <a href="https://example.com/guide">the guide</a>.</p>' }] }],
			},
			integrations: { emailProvider: { type: 'smtp', fromEmail: 'hello@embedded.example', fromName: 'Embedded' } },
		});
		receiver = await startReceiver({
			sites: [site],
			database: { url: database.url },
			settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50, SMTP_URL: `smtp://127.0.0.1:${sink.port}` },
			env: {},
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
	});

	afterAll(async () => {
		await receiver?.close();
		await sink?.stop();
		await prisma?.$disconnect();
		if (database) await dropTestDatabase(database.name);
	});

	it('runs the chain from a visit and a lead to the welcome email, sent through SMTP_URL', async () => {
		expect(receiver.engine?.paths.sort()).toEqual(['crm-activity-logger', 'crm-conversion-detector', 'crm-email-orchestrator', 'crm-enrichment-engine', 'crm-lead-processor', 'crm-visitor-processor']);
		expect(receiver.mailCatcher).toBeUndefined();
		const anonymousId = uuidv7();
		const events = ['/', '/pricing'].map((path, index) => ({ id: uuidv7(), type: 'pageview', ts: Date.now() - 5000 + index * 1000, anonymousId, sessionId: `${anonymousId}-1`, url: `https://${key}.example${path}`, title: path }));
		expect((await post(`${receiver.url}/api/track`, { site: key, events }, { origin: `https://${key}.example` })).status).toBe(202);
		const email = `ana.${randomBytes(3).toString('hex')}@clinic.example`;
		const lead = await post(`${receiver.url}/api/lead`, { site: key, anonymousId, email, firstName: 'Ana', timezone: 'Europe/Madrid' }, { origin: `https://${key}.example` });
		expect(lead.status).toBe(202);

		await until(async () => (await sink.messages(email)).length > 0, 30_000, `the welcome email to ${email}`);
		const [mail] = await sink.messages(email);
		expect(mail.parsed.subject).toBe('Welcome, Ana');

		const stored = await prisma.lead.findFirstOrThrow({ where: { email, site: { key } } });
		expect([stored.lifecycleStage, stored.score, stored.timezone]).toEqual(['lead', 10, 'Europe/Madrid']);
		expect(await prisma.visitorSession.count({ where: { site: { key } } })).toBe(1);
		expect(await prisma.emailMessage.count({ where: { leadId: stored.id, status: 'sent' } })).toBe(1);
		await until(async () => (await prisma.outboxMessage.count({ where: { siteId: stored.siteId, status: { not: 'delivered' } } })) === 0, 10_000, 'an empty outbox');
	});

	it('names the engine where a newcomer looks: /health and the first page', async () => {
		const health = await fetch(`${receiver.url}/health`);
		expect([health.status, await health.json()]).toEqual([200, { status: 'ok', version: expect.any(String), engine: 'embedded n8n engine' }]);
		const home = await fetch(`${receiver.url}/`);
		const page = await home.text();
		expect(home.status).toBe(200);
		expect(page).toContain('Workflows run by: embedded n8n engine');
		expect(page).toContain('href="/demo/"');
		expect(page).not.toContain('href="/mailbox"');
	});

	it('enters a workflow at /webhook/<path> only with the engine’s signature', async () => {
		const unsigned = await fetch(`${receiver.url}/webhook/crm-visitor-processor`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': BROWSER_UA }, body: JSON.stringify({ site: key, events: [], leads: [] }) });
		expect(unsigned.status).toBe(401);
		expect(((await unsigned.json()) as { error: string }).error).toBe('invalid_signature');
		const unknown = await fetch(`${receiver.url}/webhook/no-such-workflow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
		expect(unknown.status).toBe(404);
		expect(((await unknown.json()) as { message: string }).message).toMatch(/No bundled workflow listens on \/webhook\/no-such-workflow/);
	});

	it('answers its own refusals at /webhook/<path> as the other routes do, keeping n8n’s code and message', async () => {
		const long = await fetch(`${receiver.url}/webhook/${'x'.repeat(5000)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
		const unknown = (await long.json()) as { error: string; code: number; message: string; issues: Array<{ field: string }> };
		expect([long.status, long.headers.get('content-type'), unknown.error, unknown.code, unknown.issues[0].field]).toEqual([404, 'application/problem+json; charset=utf-8', 'no_workflow', 404, 'path']);
		expect(unknown.message).toContain(`/webhook/${'x'.repeat(200)};`);
		expect(unknown.message.length).toBeLessThan(600);

		const empty = await fetch(`${receiver.url}/webhook/crm-visitor-processor`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' });
		expect([empty.status, await empty.json()]).toEqual([400, expect.objectContaining({ error: 'empty_body', code: 400, message: 'The body is empty; send the signed delivery as JSON', issues: [{ field: 'body', message: 'is empty' }] })]);
		const broken = await fetch(`${receiver.url}/webhook/crm-visitor-processor`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"site":' });
		expect([broken.status, ((await broken.json()) as { error: string }).error]).toEqual([400, 'invalid_json']);
	});

	it('runs POST /api/test-microworkflow’s signed sample in the embedded engine, at the receiver’s own /webhook/<path>', async () => {
		const adminKey = await createApiKey(prisma, (await prisma.site.findUniqueOrThrow({ where: { key } })).id, 'admin', 'test-workflow');
		const response = await fetch(`${receiver.url}/api/test-microworkflow`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ workflow: 'visitor-processor' }) });
		expect([response.status, await response.json()]).toEqual([200, expect.objectContaining({ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor', status: 200, ok: true, response: { ok: true, items: 1 } })]);
	});
});
