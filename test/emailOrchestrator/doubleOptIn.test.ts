/**
 * The Email Orchestrator under privacy.requireMarketingConsent and privacy.doubleOptIn. A lead
 * posted to the real receiver (which records its consent) runs through the bundled workflows 03
 * and 06 in n8n's engine to a real SMTP server: with double opt-in the confirmation email goes
 * out and no sequence email before its link is confirmed; the confirmation (the receiver's page
 * and its button) reaches 06 as the receiver's outbox posts it, and 06's scheduled run sends the
 * sequence's first email. Without the consent a site requires, nothing is sent and the enrollment
 * says why.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { IDataObject } from 'n8n-workflow';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { marketingStanding, type RecordedConsent } from '../../lib/consent';
import type { DeliveredEmailEvent, DeliveredLead, SiteConfig, SiteConfigInput } from '../../lib/contracts';
import { emailHash } from '../../lib/email';
import { deliveryItems } from '../../nodes/CrmTrackerTrigger/delivery';
import { consentGate, startAfterConfirmation, type ConsentFacts } from '../../nodes/EmailOrchestrator/consent';
import { disconnectAll } from '../../nodes/shared/database';
import type { Receiver } from '../../server/receiver';
import { PROJECT_ROOT, runWorkflow, type TestCredentials, type WorkflowJson } from '../harness/n8n';
import { postgresCredential, testPrisma } from '../helpers/db';
import { post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { SmtpSink } from '../helpers/smtpSink';
import { BundledChain } from '../leadScorer/bundledChain';

const TOKEN_SECRET = 'double-opt-in-email-token-secret-0123456789';
const DAY = 86_400_000;

function siteConfig(name: string, privacy: SiteConfigInput['privacy']): SiteConfig {
	const key = `${name}-${randomUUID().slice(0, 8)}`;
	return parseSiteConfig({
		site: { key, name: `Shop ${name}`, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		crm: {
			// Every lead with an address reaches the stage "lead" at once, which starts the welcome sequence.
			leadScoringRules: [{ field: 'emailDomain', operator: 'exists', score: 10 }],
			emailSequences: [
				{
					name: 'welcome',
					trigger: { stage: 'lead' },
					steps: [
						{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p>' },
						{ delayMinutes: 1440, subject: 'Day two', html: '<p>Still there?</p>' },
					],
				},
			],
		},
		privacy: { cookieConsent: false, ...privacy },
		integrations: {
			n8nUrl: 'http://127.0.0.1:9',
			webhookSecretEnv: 'TEST_WEBHOOK_SECRET',
			webhookEndpoints: [
				{ workflow: 'lead-processor', url: '/webhook/lead' },
				{ workflow: 'email-orchestrator', url: '/webhook/email' },
			],
			emailProvider: { type: 'smtp', fromEmail: `hello@${key}.example` },
		},
	});
}

describe('the Email Orchestrator asks for the marketing consent a site requires', () => {
	const prisma = testPrisma();
	const doubleOptIn = siteConfig('double-opt-in', {
		requireMarketingConsent: true,
		doubleOptIn: true,
		confirmationEmail: { subject: 'Please confirm, {{firstName}}', validForDays: 7 },
	});
	const consentOnly = siteConfig('consent-only', { requireMarketingConsent: true });
	let smtp: SmtpSink;
	let receiver: Receiver;
	let chain: BundledChain;
	let orchestrator: WorkflowJson;
	const credentials = (): TestCredentials => ({
		postgres: postgresCredential(),
		trackingCrmApi: { receiverUrl: receiver.url, webhookSecret: 'double-opt-in-hand-off-secret', emailTokenSecret: TOKEN_SECRET },
		smtp: { host: '127.0.0.1', port: smtp.port, secure: false, disableStartTls: true, user: '', password: '' },
	});

	beforeAll(async () => {
		smtp = await SmtpSink.start();
		receiver = await startTestReceiver([doubleOptIn, consentOnly], { DISPATCHER: 'off', EMAIL_TOKEN_SECRET: TOKEN_SECRET });
		chain = new BundledChain(credentials);
		await chain.start();
		orchestrator = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'workflows', '06-email-orchestrator.json'), 'utf8')) as WorkflowJson;
	});
	afterAll(async () => {
		await chain?.stop();
		await receiver?.close();
		await smtp?.stop();
		await prisma.$disconnect();
		await disconnectAll();
	});

	const siteOf = (config: SiteConfig) => ({ key: config.site.key, id: receiver.sites.byPublicKey(config.site.key)!.id });
	const subjects = async (email: string) => (await smtp.messages(email)).map((mail) => mail.parsed.subject);

	/** What the receiver's outbox holds for a workflow, as its dispatcher would post it. */
	async function outboxed<T>(siteId: string, destination: string, match: (payload: T) => boolean): Promise<T> {
		const rows = await prisma.outboxMessage.findMany({ where: { siteId, destination }, orderBy: { id: 'asc' } });
		const payloads = rows.map((row) => row.payload as unknown as T).filter(match);
		expect(payloads).toHaveLength(1);
		return payloads[0];
	}

	/** A lead posted to the receiver as a form does, then delivered to 03, which hands it on to 06. */
	async function submitLead(config: SiteConfig, firstName: string, consent: boolean): Promise<{ email: string; leadId: string }> {
		const site = siteOf(config);
		const email = `${firstName.toLowerCase()}-${randomUUID().slice(0, 8)}@mail.example`;
		const lead = { site: site.key, email, firstName, timezone: 'UTC', eventId: randomUUID(), formId: 'newsletter', consent, consentVersion: 'newsletter-2026-11' };
		expect(await post(`${receiver.url}/api/lead`, lead)).toEqual({ status: 202, json: { stored: true, duplicate: false } });
		const payload = await outboxed<DeliveredLead>(site.id, 'lead-processor', (candidate) => candidate.emailHash === emailHash(email));
		const run = await chain.deliver('crm-lead-processor', site, { leads: [payload as unknown as IDataObject] });
		expect(run.error).toBeUndefined();
		const { id } = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email }, select: { id: true } });
		return { email, leadId: id };
	}

	/** 06's schedule branch ("Every Minute" → Send Due Steps), for this site only: other test files share the database. */
	async function scheduledRun(config: SiteConfig): Promise<IDataObject[]> {
		const workflow = structuredClone(orchestrator);
		const sendDue = workflow.nodes.find((node) => node.name === 'Send Due Steps')!;
		sendDue.parameters = { ...sendDue.parameters, siteKey: config.site.key };
		const run = await runWorkflow(workflow, { startNode: 'Every Minute', input: [{}], mode: 'trigger', credentials: credentials() });
		expect(run.error).toBeUndefined();
		return run.outputOf('Send Due Steps', 0);
	}

	/** An email event as the receiver's outbox delivers it to 06's CRM Tracker Trigger. */
	async function deliverToOrchestrator(config: SiteConfig, emailEvent: DeliveredEmailEvent) {
		const site = siteOf(config);
		const input = deliveryItems(
			{ site: site.key, siteId: site.id, destination: 'email-orchestrator', deliveryId: randomUUID(), events: [], leads: [], emailEvents: [emailEvent], items: undefined },
			'perEvent',
		) as IDataObject[];
		const run = await runWorkflow(orchestrator, { input, startNode: 'CRM Tracker Trigger', mode: 'webhook', credentials: credentials() });
		expect(run.error).toBeUndefined();
		return run;
	}

	it('sends the confirmation email first, no sequence email before the link is confirmed, and the first step once it is', async () => {
		const site = siteOf(doubleOptIn);
		const { email, leadId } = await submitLead(doubleOptIn, 'Ada', true);

		// 06 enrolled the lead and asked for the confirmation, and sent nothing of the sequence.
		expect(await subjects(email)).toEqual(['Please confirm, Ada']);
		const enrollment = await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId } });
		expect(enrollment).toMatchObject({ status: 'active', nextStep: 0 });
		expect(enrollment.nextRunAt!.getTime()).toBeGreaterThan(Date.now() + 6 * DAY);
		const [confirmationMail] = await smtp.messages(email);
		expect(confirmationMail.parsed.html).not.toMatch(/\/e\/o\//);

		// The schedule runs and still sends nothing.
		expect(await scheduledRun(doubleOptIn)).toEqual([]);
		expect(await subjects(email)).toEqual(['Please confirm, Ada']);

		// The person opens the link: a page that asks; only its button confirms.
		const link = /https?:\/\/\S+?\/e\/v\/[A-Za-z0-9._-]+/.exec(confirmationMail.parsed.text ?? '')![0];
		expect(link.startsWith(`${receiver.url}/e/v/`)).toBe(true);
		const page = await fetch(link);
		expect(page.status).toBe(200);
		expect(await page.text()).toContain('<form method="post">');
		const confirmations = () => prisma.consentRecord.findMany({ where: { siteId: site.id, emailHash: emailHash(email), source: 'confirmation' } });
		expect(await confirmations()).toEqual([]);
		const confirmed = await fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
		expect(confirmed.status).toBe(200);
		expect(await confirmed.text()).toContain('you are subscribed');
		expect(await fetch(link, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }).then((response) => response.status)).toBe(200);
		const [record] = await confirmations();
		expect(await confirmations()).toHaveLength(1);
		expect(record).toMatchObject({ purpose: 'marketing', state: 'granted', policyVersion: 'newsletter-2026-11', messageId: confirmationMail.parsed.messageId!.slice(1).split('@')[0] });

		// The receiver's outbox tells 06 once; 06 starts the sequence and its schedule sends the first step.
		const event = await outboxed<DeliveredEmailEvent>(site.id, 'email-orchestrator', (payload) => payload.type === 'confirm' && payload.leadId === leadId);
		const handled = await deliverToOrchestrator(doubleOptIn, event);
		expect(handled.outputOf('Handle Delivered Items', 0)).toEqual([expect.objectContaining({ leadId, started: 1 })]);
		expect(await subjects(email)).toEqual(['Please confirm, Ada']);
		const sent = await scheduledRun(doubleOptIn);
		expect(sent).toEqual([expect.objectContaining({ leadId, step: 0, outcome: 'sent' })]);
		expect(await subjects(email)).toEqual(['Please confirm, Ada', 'Welcome, Ada']);
		expect(await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id: enrollment.id } })).toMatchObject({ status: 'active', nextStep: 1 });
	});

	it('sends nothing, not even a confirmation, to a lead who gave no consent, and says why', async () => {
		const { email, leadId } = await submitLead(doubleOptIn, 'Ben', false);
		expect(await subjects(email)).toEqual([]);
		expect(await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId } })).toMatchObject({
			status: 'unenrolled',
			unenrollReason: 'no marketing consent: the site requires it (privacy.requireMarketingConsent) and the lead never gave it',
		});
	});

	it('ends the enrollment of a lead who never confirms once the link’s days are over, having sent only the confirmation', async () => {
		const { email, leadId } = await submitLead(doubleOptIn, 'Cy', true);
		expect(await subjects(email)).toEqual(['Please confirm, Cy']);
		const enrollment = await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId } });
		const workflow: WorkflowJson = {
			name: 'Send Due after the link expired',
			nodes: [
				{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
				{
					id: 'send',
					name: 'Send Due Steps',
					type: 'n8n-nodes-tracking-crm.emailOrchestrator',
					typeVersion: 1,
					position: [200, 0],
					parameters: { operation: 'sendDue', siteKey: doubleOptIn.site.key, batchSize: 50, options: { asOf: new Date(enrollment.nextRunAt!.getTime() + 60_000).toISOString() } },
					credentials: { postgres: { id: '1', name: 'CRM database' }, trackingCrmApi: { id: '2', name: 'Receiver' }, smtp: { id: '3', name: 'Mail' } },
				},
			],
			connections: { Start: { main: [[{ node: 'Send Due Steps', type: 'main', index: 0 }]] } },
		};
		const run = await runWorkflow(workflow, { credentials: credentials() });
		// The run also sends what other leads of the site have due by then: only Cy's outcome is this test's.
		expect(run.outputOf('Send Due Steps', 0).filter((item) => item.leadId === leadId)).toEqual([
			expect.objectContaining({ outcome: 'unconfirmed', reason: 'double opt-in not confirmed within 7 days (privacy.doubleOptIn)' }),
		]);
		expect(await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id: enrollment.id } })).toMatchObject({ status: 'unenrolled', nextRunAt: null });
		expect(await subjects(email)).toEqual(['Please confirm, Cy']);
	});

	it('without double opt-in sends the sequence to a lead who consented at once, and nothing to one who did not', async () => {
		const consented = await submitLead(consentOnly, 'Dee', true);
		expect(await subjects(consented.email)).toEqual(['Welcome, Dee']);

		const refused = await submitLead(consentOnly, 'Eve', false);
		expect(await subjects(refused.email)).toEqual([]);
		const enrollment = await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId: refused.leadId } });
		expect(enrollment).toMatchObject({ status: 'unenrolled', unenrollReason: 'no marketing consent: the site requires it (privacy.requireMarketingConsent) and the lead never gave it' });
		const sends = chain.runs.flatMap(({ run }) => (run.executedNodes.includes('Handle Delivered Items') ? run.outputOf('Handle Delivered Items', 0).filter((item) => Array.isArray(item.sends)) : []));
		expect(sends.filter((item) => item.leadId === refused.leadId).flatMap((item) => item.sends as IDataObject[])).toEqual([
			expect.objectContaining({ outcome: 'no-consent', reason: 'no marketing consent: the site requires it (privacy.requireMarketingConsent) and the lead never gave it' }),
		]);
	});
});

describe('the consent rules', () => {
	const at = (day: number) => new Date(Date.UTC(2026, 10, day, 9));
	const record = (id: string, state: RecordedConsent['state'], source: RecordedConsent['source'], day: number): RecordedConsent => ({ id, state, source, occurredAt: at(day) });
	const grant = record('g1', 'granted', 'form', 1);

	// [case, the lead's marketing records oldest first, double opt-in, where the lead stands]
	const standings: Array<[string, RecordedConsent[], boolean, ReturnType<typeof marketingStanding>]> = [
		['no record: never given', [], true, { status: 'missing' }],
		['a grant is consent', [grant], false, { status: 'granted' }],
		['with double opt-in a grant waits for its confirmation', [grant], true, { status: 'unconfirmed', grantId: 'g1' }],
		['a repeated grant asks about the first one', [grant, record('g2', 'granted', 'api', 2)], true, { status: 'unconfirmed', grantId: 'g1' }],
		['a confirmation confirms', [grant, record('c1', 'granted', 'confirmation', 2)], true, { status: 'granted' }],
		['a withdrawal ends it', [grant, record('c1', 'granted', 'confirmation', 2), record('w1', 'withdrawn', 'unsubscribe', 3)], true, { status: 'withdrawn' }],
		['a grant after a withdrawal must be confirmed again', [grant, record('c1', 'granted', 'confirmation', 2), record('w1', 'withdrawn', 'unsubscribe', 3), record('g3', 'granted', 'form', 4)], true, { status: 'unconfirmed', grantId: 'g3' }],
		['without double opt-in a grant after a withdrawal is consent again', [grant, record('w1', 'withdrawn', 'tracker', 3), record('g3', 'granted', 'form', 4)], false, { status: 'granted' }],
	];
	it.each(standings)('%s', (_case, records, doubleOptIn, expected) => {
		expect(marketingStanding(records, doubleOptIn)).toEqual(expected);
	});

	const now = at(10);
	const facts = (changes: Partial<ConsentFacts>): ConsentFacts => ({
		settings: { requireMarketingConsent: true, doubleOptIn: true, validForDays: 7 },
		standing: { status: 'unconfirmed', grantId: 'g1' },
		confirmation: null,
		now,
		...changes,
	});
	// [case, the facts, what the step may do]
	const gates: Array<[string, ConsentFacts, ReturnType<typeof consentGate>]> = [
		['a site that requires no consent mails anyone', facts({ settings: { requireMarketingConsent: false, doubleOptIn: false, validForDays: 7 }, standing: { status: 'missing' } }), { do: 'proceed' }],
		['a consent given is enough', facts({ standing: { status: 'granted' } }), { do: 'proceed' }],
		['no consent ends the enrollment', facts({ standing: { status: 'missing' } }), { do: 'unenroll', outcome: 'no-consent', reason: 'no marketing consent: the site requires it (privacy.requireMarketingConsent) and the lead never gave it' }],
		['a withdrawn consent ends it', facts({ standing: { status: 'withdrawn' } }), { do: 'unenroll', outcome: 'no-consent', reason: 'no marketing consent: the lead withdrew it (privacy.requireMarketingConsent)' }],
		['an unconfirmed grant asks for its confirmation', facts({}), { do: 'confirm', grantId: 'g1' }],
		['a refused confirmation email is sent again', facts({ confirmation: { reservedAt: at(9), resend: true } }), { do: 'confirm', grantId: 'g1' }],
		['a sent one is waited for until its days are over', facts({ confirmation: { reservedAt: at(9), resend: false } }), { do: 'await', until: at(16), reason: 'awaiting the double opt-in confirmation (privacy.doubleOptIn)' }],
		['then the enrollment ends unconfirmed', facts({ confirmation: { reservedAt: at(3), resend: false } }), { do: 'unenroll', outcome: 'unconfirmed', reason: 'double opt-in not confirmed within 7 days (privacy.doubleOptIn)' }],
	];
	it.each(gates)('%s', (_case, given, expected) => {
		expect(consentGate(given)).toEqual(expected);
	});

	it('starts only the enrollments that waited: not begun, made before the confirmation, the first step timed from it', () => {
		const steps = [
			{ position: 1, delayMinutes: 60 },
			{ position: 0, delayMinutes: 30 },
		];
		const waiting = { nextStep: 0, enrolledAt: at(1), begun: false };
		expect(startAfterConfirmation(waiting, steps, at(2), {}, 'UTC')).toEqual(new Date(at(2).getTime() + 30 * 60_000));
		expect(startAfterConfirmation({ ...waiting, begun: true }, steps, at(2), {}, 'UTC')).toBeNull();
		expect(startAfterConfirmation({ ...waiting, enrolledAt: at(3) }, steps, at(2), {}, 'UTC')).toBeNull();
		expect(startAfterConfirmation({ ...waiting, nextStep: 1 }, steps, at(2), {}, 'UTC')).toBeNull();
	});

	it('refuses settings that would do nothing, naming the field and the fix', () => {
		const config = (privacy: SiteConfigInput['privacy']) => () =>
			parseSiteConfig({ site: { key: 'settings-check', name: 'Check', domain: 'check.example' }, tracking: { allowedOrigins: ['https://check.example'] }, privacy });
		expect(config({ doubleOptIn: true })).toThrow(/privacy\.doubleOptIn: needs privacy\.requireMarketingConsent: true .*set requireMarketingConsent to true/);
		expect(config({ requireMarketingConsent: true, confirmationEmail: { subject: 'Confirm' } })).toThrow(/privacy\.confirmationEmail: is only sent with privacy\.doubleOptIn: true/);
		expect(config({ requireMarketingConsent: true, doubleOptIn: true, confirmationEmail: { html: '<p>Welcome</p>' } })).toThrow(/privacy\.confirmationEmail\.html: must contain \{\{confirmUrl\}\}/);
		expect(config({ requireMarketingConsent: true, doubleOptIn: true, confirmationEmail: { html: '<a href="{{{confirmUrl}}}">Yes</a>', validForDays: 0 } })).toThrow(/privacy\.confirmationEmail\.validForDays/);
		expect(config({ requireMarketingConsent: true, doubleOptIn: true })().privacy).toMatchObject({ requireMarketingConsent: true, doubleOptIn: true });
	});
});
