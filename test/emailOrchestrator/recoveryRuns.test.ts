/**
 * Send Due makes up the stage-triggered enrollments the live path missed. The Lead Scorer (03)
 * records a stage move once and reports it once, so a hand-off to the Email Orchestrator (06) lost
 * after 03 committed is never repeated by a replay; the recorded move is what Send Due finds.
 * Real Postgres and SMTP, the nodes and bundled workflow 03 in n8n's engine.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import type { IDataObject } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { siteConfigSchema, type SiteConfigInput } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { deliveryItems, type Delivery } from '../../nodes/CrmTrackerTrigger/delivery';
import { disconnectAll } from '../../nodes/shared/database';
import { PROJECT_ROOT, runWorkflow, type WorkflowJson } from '../harness/n8n';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { SmtpSink } from '../helpers/smtpSink';

const MINUTE = 60_000;
const DAY = 86_400_000;
type Sequences = NonNullable<NonNullable<SiteConfigInput['crm']>['emailSequences']>;

const WELCOME: Sequences[number] = {
	name: 'welcome',
	trigger: { stage: 'lead' },
	steps: [
		{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p>' },
		{ delayMinutes: 1440, subject: 'Day two', html: '<p>Still there?</p>' },
	],
};
const NURTURE: Sequences[number] = { name: 'nurture', trigger: { stage: 'mql' }, steps: [{ delayMinutes: 0, subject: 'Ready for more, {{firstName}}?', html: '<p>More</p>' }] };

function sendDueWorkflow(siteKey: string, asOf: string): WorkflowJson {
	return {
		name: 'Send Due test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'send',
				name: 'Send Due Steps',
				type: 'n8n-nodes-tracking-crm.emailOrchestrator',
				typeVersion: 1,
				position: [200, 0],
				parameters: { operation: 'sendDue', siteKey, batchSize: 50, options: { asOf } },
				credentials: { postgres: { id: '1', name: 'CRM database' }, trackingCrmApi: { id: '2', name: 'Receiver' }, smtp: { id: '3', name: 'Mail' } },
			},
		],
		connections: { Start: { main: [[{ node: 'Send Due Steps', type: 'main', index: 0 }]] } },
	};
}

describe('Send Due enrolls leads whose recorded stage move a lost hand-off never reported', () => {
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	const credentials = () => ({
		postgres: postgresCredential(),
		trackingCrmApi: { receiverUrl: 'https://crm.example.test', webhookSecret: 'recovery-hand-off-secret', emailTokenSecret: 'recovery-email-token-secret-0123456789abcdef' },
		smtp: { host: '127.0.0.1', port: smtp.port, secure: false, disableStartTls: true, user: '', password: '' },
	});

	beforeAll(async () => {
		prisma = testPrisma();
		smtp = await SmtpSink.start();
	});
	afterAll(async () => {
		await smtp.stop();
		await prisma.$disconnect();
		await disconnectAll();
	});

	async function siteWith(name: string, emailSequences: Sequences, crm: SiteConfigInput['crm'] = {}): Promise<{ id: string; key: string }> {
		const site = await createTestSite(prisma, name);
		const config = siteConfigSchema.parse({
			site: { key: site.key, name, domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			crm: { emailSequences, ...crm },
			integrations: { emailProvider: { type: 'smtp', fromEmail: 'hello@recovery.example' } },
		});
		await prisma.site.update({ where: { id: site.id }, data: { config } });
		return site;
	}

	/** The sequence row as the Email Orchestrator finds it once it has existed since `since`; the config sync fills in its steps. */
	async function existingSince(site: { id: string }, name: string, since: Date): Promise<string> {
		return (await prisma.emailSequence.create({ data: { siteId: site.id, name, createdAt: since }, select: { id: true } })).id;
	}

	async function leadWithMove(site: { id: string }, email: string, from: string, to: string, at: Date): Promise<{ id: string; email: string }> {
		const lead = await prisma.lead.create({ data: { siteId: site.id, email, emailHash: emailHash(email), firstName: email.split('@')[0], timezone: 'UTC', lifecycleStage: to }, select: { id: true, email: true } });
		await prisma.leadStageChange.create({ data: { siteId: site.id, leadId: lead.id, fromStage: from, toStage: to, scoreAt: 10, occurredAt: at } });
		return lead;
	}

	async function sendDue(siteKey: string, asOf: Date): Promise<IDataObject[]> {
		const result = await runWorkflow(sendDueWorkflow(siteKey, asOf.toISOString()), { credentials: credentials(), throwOnError: true });
		return result.outputOf('Send Due Steps');
	}

	const enrollmentsOf = async (leadId: string) =>
		await prisma.sequenceEnrollment.findMany({ where: { leadId }, orderBy: { enrolledAt: 'asc' }, select: { id: true, status: true, nextStep: true, nextRunAt: true, enrolledAt: true, sequence: { select: { name: true } } } });

	it('after 03 stored a lead and its hand-off to 06 failed, the replay tells 06 nothing; Send Due enrolls the lead and sends its welcome once', async () => {
		const site = await siteWith('lost-hand-off', [WELCOME], { leadScoringRules: [{ field: 'company', operator: 'exists', score: 10 }] });
		// 06's webhook: down for the first delivery, up for the replay; 05's always up.
		const posted: Record<string, IDataObject[][]> = { 'crm-email-orchestrator': [], 'crm-enrichment-engine': [] };
		let emailOrchestratorUp = false;
		const server: Server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				const target = (req.url ?? '').replace(/^\/webhook\//, '');
				if (target === 'crm-email-orchestrator' && !emailOrchestratorUp) return void res.writeHead(503).end('{"message":"down"}');
				posted[target]?.push(((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { items?: IDataObject[] }).items ?? []) as IDataObject[]);
				res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
			});
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		try {
			const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
			const workflow = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'workflows', '03-lead-processor.json'), 'utf8')) as WorkflowJson;
			for (const node of workflow.nodes) if (node.type.endsWith('.crmHandOff')) node.parameters = { ...node.parameters, webhookBaseUrl: base };
			const email = `ana-${site.key}@mail.example`;
			const delivery = {
				site: site.key,
				siteId: site.id,
				destination: 'crm-lead-processor',
				deliveryId: uuidv7(),
				events: [],
				leads: [{ kind: 'lead', eventId: uuidv7(), lead: { site: site.key, email, firstName: 'Ana', company: 'Clinica Sol', timezone: 'UTC', consent: true }, emailHash: emailHash(email), country: null, receivedAt: new Date().toISOString() }],
			} as unknown as Delivery;
			const deliver = async () =>
				await runWorkflow(workflow, { input: deliveryItems(delivery, 'perEvent') as IDataObject[], startNode: 'CRM Tracker Trigger', mode: 'webhook', credentials: credentials() });

			// 06's schedule ran before the lead came, as on any running system: the welcome sequence exists
			expect(await sendDue(site.key, new Date())).toEqual([]);
			const first = await deliver();
			expect(first.error?.message).toMatch(/answered 503/);
			const lead = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email }, select: { id: true, lifecycleStage: true } });
			expect(lead.lifecycleStage).toBe('lead');
			const [move] = await prisma.leadStageChange.findMany({ where: { leadId: lead.id } });
			expect(move).toMatchObject({ fromStage: 'subscriber', toStage: 'lead' });

			// the outbox's retry of the same delivery, 06 up again: 03 finds the move recorded and reports no stage change
			emailOrchestratorUp = true;
			const replay = await deliver();
			expect(replay.error).toBeUndefined();
			expect(replay.outputOf('CRM Lead Scorer', 1)).toEqual([]);
			expect(posted['crm-email-orchestrator']).toEqual([]);
			expect(await enrollmentsOf(lead.id)).toEqual([]);

			// 06's next scheduled run, past the grace left to the live path
			const runAt = new Date(move.occurredAt.getTime() + MINUTE);
			const [recovered, sent, ...rest] = await sendDue(site.key, runAt);
			expect(rest).toEqual([]);
			expect(recovered).toMatchObject({ site: site.key, outcome: 'recovered', recovered: 1, enrollments: [expect.objectContaining({ leadId: lead.id, sequence: 'welcome', created: true })] });
			expect(sent).toMatchObject({ outcome: 'sent', leadId: lead.id, sequence: 'welcome', step: 0 });
			expect(await enrollmentsOf(lead.id)).toEqual([
				expect.objectContaining({ status: 'active', nextStep: 1, enrolledAt: move.occurredAt, sequence: { name: 'welcome' }, nextRunAt: new Date(runAt.getTime() + DAY) }),
			]);
			expect((await smtp.messages(email)).map((mail) => mail.parsed.subject)).toEqual(['Welcome, Ana']);

			// the next run, and one at the same time again: nothing made up, nothing sent twice
			expect(await sendDue(site.key, new Date(runAt.getTime() + MINUTE))).toEqual([]);
			expect(await sendDue(site.key, runAt)).toEqual([]);
			expect(await smtp.messages(email)).toHaveLength(1);
		} finally {
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		}
	});

	it('leaves a lead with an enrollment of any status alone, and checks suppression on what it makes up as any send does', async () => {
		const site = await siteWith('enrolled-any-status', [WELCOME]);
		const now = new Date();
		const welcomeId = await existingSince(site, 'welcome', new Date(now.getTime() - 30 * DAY));
		const moved = new Date(now.getTime() - 10 * MINUTE);
		const enrolled: Record<string, { id: string; email: string }> = {};
		for (const status of ['active', 'completed', 'unenrolled'] as const) {
			const lead = await leadWithMove(site, `${status}-${site.key}@mail.example`, 'subscriber', 'lead', moved);
			await prisma.sequenceEnrollment.create({ data: { siteId: site.id, sequenceId: welcomeId, leadId: lead.id, status, nextStep: 1, nextRunAt: status === 'active' ? new Date(now.getTime() + DAY) : null, enrolledAt: moved } });
			enrolled[status] = lead;
		}
		const fresh = await leadWithMove(site, `fresh-${site.key}@mail.example`, 'subscriber', 'lead', moved);
		const unsubscribed = await leadWithMove(site, `gone-${site.key}@mail.example`, 'subscriber', 'lead', moved);
		await prisma.channelStatus.create({ data: { siteId: site.id, leadId: unsubscribed.id, channel: 'email', status: 'unsubscribed' } });
		const before = await prisma.sequenceEnrollment.findMany({ where: { leadId: { in: Object.values(enrolled).map((lead) => lead.id) } }, orderBy: { id: 'asc' } });

		const results = await sendDue(site.key, now);
		expect(results[0]).toMatchObject({ outcome: 'recovered', recovered: 2 });
		expect((results[0].enrollments as IDataObject[]).map((enrollment) => enrollment.leadId).sort()).toEqual([fresh.id, unsubscribed.id].sort());
		expect(Object.fromEntries(results.slice(1).map((result) => [result.leadId as string, result.outcome]))).toEqual({ [fresh.id]: 'sent', [unsubscribed.id]: 'suppressed' });
		expect(await prisma.sequenceEnrollment.findMany({ where: { leadId: { in: Object.values(enrolled).map((lead) => lead.id) } }, orderBy: { id: 'asc' } })).toEqual(before);
		expect(await enrollmentsOf(unsubscribed.id)).toEqual([expect.objectContaining({ status: 'unenrolled' })]);
		for (const lead of [...Object.values(enrolled), unsubscribed]) expect(await smtp.messages(lead.email)).toEqual([]);
		expect(await smtp.messages(fresh.email)).toHaveLength(1);
		expect(await sendDue(site.key, now)).toEqual([]);
	});

	it('ignores moves beyond the look-back and moves from before the sequence existed', async () => {
		const site = await siteWith('old-moves', [WELCOME, NURTURE]);
		const now = new Date();
		const ago = (ms: number) => new Date(now.getTime() - ms);
		await existingSince(site, 'welcome', ago(2 * DAY));
		await existingSince(site, 'nurture', ago(30 * DAY));
		const beforeWelcome = await leadWithMove(site, `early-${site.key}@mail.example`, 'subscriber', 'lead', ago(3 * DAY));
		const tooOld = await leadWithMove(site, `old-${site.key}@mail.example`, 'lead', 'mql', ago(8 * DAY));
		const recent = await leadWithMove(site, `recent-${site.key}@mail.example`, 'subscriber', 'mql', ago(DAY));

		const [recovered, ...sends] = await sendDue(site.key, now);
		expect((recovered.enrollments as IDataObject[]).map((enrollment) => [enrollment.leadId, enrollment.sequence])).toEqual([
			[recent.id, 'welcome'],
			[recent.id, 'nurture'],
		]);
		expect(sends.map((send) => [send.leadId, send.sequence, send.outcome])).toEqual([
			[recent.id, 'welcome', 'sent'],
			[recent.id, 'nurture', 'sent'],
		]);
		expect(await enrollmentsOf(beforeWelcome.id)).toEqual([]);
		expect(await enrollmentsOf(tooOld.id)).toEqual([]);
		expect(await smtp.messages(beforeWelcome.email)).toEqual([]);
		expect(await smtp.messages(tooOld.email)).toEqual([]);
	});

	it('with Site Key "*", as workflow 06’s schedule runs it, makes up and sends for a site with no step due before, once', async () => {
		// 2019, before every other test's enrollments and moves, so this run touches only this site.
		const asOf = new Date('2019-03-06T12:00:00Z');
		const site = await siteWith('all-sites-recovery', [{ ...WELCOME, steps: [WELCOME.steps[0]] }]);
		await existingSince(site, 'welcome', new Date('2019-01-01T00:00:00Z'));
		const moved = new Date('2019-03-06T11:00:00Z');
		const lead = await leadWithMove(site, `star-${site.key}@mail.example`, 'subscriber', 'lead', moved);

		const results = await sendDue('*', asOf);
		expect(results.map((result) => [result.site, result.outcome, result.recovered ?? result.leadId])).toEqual([
			[site.key, 'recovered', 1],
			[site.key, 'sent', lead.id],
		]);
		expect(await enrollmentsOf(lead.id)).toEqual([expect.objectContaining({ status: 'completed', enrolledAt: moved })]);
		expect(await sendDue('*', asOf)).toEqual([]);
		expect(await smtp.messages(lead.email)).toHaveLength(1);
	});
});
