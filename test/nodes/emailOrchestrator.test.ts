import type { IDataObject } from 'n8n-workflow';

import { siteConfigSchema, type SiteConfigInput } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { verifyEmailToken } from '../../lib/emailTokens';
import { crmItemRoute } from '../../nodes/EmailOrchestrator/actions/handleCrmItems.operation';
import { disconnectAll } from '../../nodes/shared/database';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { SmtpSink, type ReceivedMail } from '../helpers/smtpSink';

const SECRET = 'test-email-token-secret-0123456789abcdef';
const RECEIVER = 'https://crm.example.test';
const QUIET = { start: '21:00', end: '08:00' };
const STEP_HTML = '<html><body><p>Hi {{firstName}},</p><p><a href="https://shop.example/start?ref=mail&amp;lead={{firstName}}">Get started</a> or read <a href="https://shop.example/docs">the docs</a>.</p></body></html>';

/** Every sequence the tests use; each test has its own site, so their queues never mix. */
const SEQUENCES: NonNullable<NonNullable<SiteConfigInput['crm']>['emailSequences']> = [
	{
		name: 'welcome',
		trigger: { stage: 'lead' },
		quietHours: QUIET,
		steps: [
			{ delayMinutes: 0, subject: 'Welcome, {{firstName}}!', html: STEP_HTML },
			{ delayMinutes: 1440, subject: 'Day two', html: '<p>Still there, {{firstName}}?</p>', text: 'Still there, {{firstName}}? https://shop.example/day2' },
		],
	},
	{ name: 'workdays', trigger: { tag: 'b2b' }, quietHours: QUIET, weekdays: [1, 2, 3, 4, 5], steps: [{ delayMinutes: 0, subject: 'Weekday news', html: '<p>News</p>' }] },
	{ name: 'cap-a', trigger: { event: 'a' }, steps: [{ delayMinutes: 0, subject: 'A', html: '<p>A</p>' }] },
	{ name: 'cap-b', trigger: { event: 'b' }, steps: [{ delayMinutes: 0, subject: 'B', html: '<p>B</p>' }] },
	{ name: 'cap-c', trigger: { event: 'c' }, steps: [{ delayMinutes: 0, subject: 'C', html: '<p>C</p>' }] },
];

type Operation = 'enroll' | 'enrollByTrigger' | 'sendDue' | 'handleEmailEvent' | 'handleCrmItems';

function workflow(operation: Operation, parameters: IDataObject = {}): WorkflowJson {
	return {
		name: 'Email Orchestrator test',
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

const headerOf = (mail: ReceivedMail, name: string) => mail.parsed.headerLines.find((line) => line.key === name.toLowerCase())?.line.replace(/^[^:]+:\s*/, '');
const tokenIn = (url: string, kind: 'o' | 'c' | 'u') => new RegExp(`^${RECEIVER}/e/${kind}/([A-Za-z0-9._-]+)$`).exec(url)?.[1] ?? '';

describe('Email Orchestrator node in the n8n execution engine, sending to a real SMTP server', () => {
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	const credentials = () => ({
		postgres: postgresCredential(),
		trackingCrmApi: { receiverUrl: RECEIVER, webhookSecret: 'unused-here', emailTokenSecret: SECRET },
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

	async function siteWith(name: string, crm: SiteConfigInput['crm'] = {}): Promise<{ id: string; key: string }> {
		const site = await createTestSite(prisma, name);
		const config = siteConfigSchema.parse({
			site: { key: site.key, name, domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			crm: { emailSequences: SEQUENCES, maxEmailsPerDay: 2, ...crm },
			integrations: { emailProvider: { type: 'smtp', fromEmail: 'hello@shop.example', fromName: 'Shop' } },
		});
		await prisma.site.update({ where: { id: site.id }, data: { config } });
		return site;
	}

	async function lead(site: { id: string; key: string }, email: string, timezone = 'Europe/Madrid') {
		return await prisma.lead.create({ data: { siteId: site.id, email, emailHash: emailHash(email), firstName: email.split('@')[0], timezone }, select: { id: true, email: true } });
	}

	async function run(operation: Operation, input: IDataObject[], parameters: IDataObject = {}): Promise<IDataObject[]> {
		const result = await runWorkflow(workflow(operation, parameters), { input, credentials: credentials(), throwOnError: true });
		return result.outputOf('Email Orchestrator');
	}
	const enroll = (site: { key: string }, leadId: string, sequence: string, asOf: string) => run('enroll', [{ site: site.key, leadId }], { sequence, options: { asOf } });
	const sendDue = (site: { key: string }, asOf: string) => run('sendDue', [{ site: site.key }], { options: { asOf } });

	it('with Site Key "*", one scheduled run sends the due steps of every site', async () => {
		// 2020, long before any other test's enrollments, so this run touches only these two sites.
		const asOf = '2020-01-01T11:00:00Z';
		const first = await siteWith('all-sites-a');
		const second = await siteWith('all-sites-b');
		const ana = await lead(first, 'ana@all-a.example');
		const bea = await lead(second, 'bea@all-b.example');
		await enroll(first, ana.id, 'welcome', asOf);
		await enroll(second, bea.id, 'welcome', asOf);

		const sent = await run('sendDue', [{}], { siteKey: '*', options: { asOf } });
		expect(sent.map((item) => [item.outcome, item.leadId]).sort()).toEqual([['sent', ana.id], ['sent', bea.id]].sort());
		expect(await smtp.messages(ana.email)).toHaveLength(1);
		expect(await smtp.messages(bea.email)).toHaveLength(1);
		expect(await run('sendDue', [{}], { siteKey: '*', options: { asOf } })).toEqual([]);
	});

	it('enrolls once and sends each step with tracked links, open pixel and one-click unsubscribe headers', async () => {
		const site = await siteWith('welcome');
		const ana = await lead(site, 'ana@mail.example');
		// 12:00 in Madrid on a Wednesday
		const [first] = await enroll(site, ana.id, 'welcome', '2026-06-10T10:00:00Z');
		expect(first.enrollment).toMatchObject({ created: true, status: 'active', nextStep: 0, nextRunAt: '2026-06-10T10:00:00.000Z' });
		const [again] = await enroll(site, ana.email, 'welcome', '2026-06-10T10:05:00Z');
		expect(again.enrollment).toMatchObject({ created: false, id: (first.enrollment as IDataObject).id, nextRunAt: '2026-06-10T10:00:00.000Z' });

		const sent = await sendDue(site, '2026-06-10T10:00:00Z');
		expect(sent).toEqual([expect.objectContaining({ outcome: 'sent', leadId: ana.id, sequence: 'welcome', step: 0, nextRunAt: '2026-06-11T10:00:00.000Z' })]);

		const [mail, ...others] = await smtp.messages(ana.email);
		expect(others).toHaveLength(0);
		const message = await prisma.emailMessage.findUniqueOrThrow({ where: { id: sent[0].messageId as string } });
		expect(message).toMatchObject({ status: 'sent', idempotencyKey: `${ana.id}:${message.sequenceId}:0`, toEmail: ana.email, subject: 'Welcome, ana!', links: ['https://shop.example/start?ref=mail&lead=ana', 'https://shop.example/docs'] });

		expect(mail.parsed.subject).toBe('Welcome, ana!');
		expect(mail.parsed.from?.value).toEqual([{ address: 'hello@shop.example', name: 'Shop' }]);
		expect(mail.parsed.messageId).toBe(`<${message.id}@shop.example>`);
		expect(headerOf(mail, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
		const unsubscribe = /^<([^>]+)>$/.exec(headerOf(mail, 'List-Unsubscribe') ?? '')?.[1] ?? '';
		expect(verifyEmailToken(SECRET, tokenIn(unsubscribe, 'u'), 'unsubscribe')).toEqual({ valid: true, action: 'unsubscribe', messageId: message.id, linkIndex: undefined });

		const html = String(mail.parsed.html);
		expect(html).toContain('<p>Hi ana,</p>');
		expect(html).not.toContain('https://shop.example');
		const clicks = [...html.matchAll(/<a href="([^"]+)"/g)].map((match) => verifyEmailToken(SECRET, tokenIn(match[1], 'c'), 'click'));
		expect(clicks).toEqual([
			{ valid: true, action: 'click', messageId: message.id, linkIndex: 0 },
			{ valid: true, action: 'click', messageId: message.id, linkIndex: 1 },
		]);
		const pixel = /<img src="([^"]+)" width="1" height="1"/.exec(html)?.[1] ?? '';
		expect(verifyEmailToken(SECRET, tokenIn(pixel, 'o'), 'open')).toMatchObject({ valid: true, messageId: message.id });
		expect(mail.parsed.text).toMatch(new RegExp(`^Hi ana,\\n\\nGet started \\(${RECEIVER}/e/c/c\\.${message.id}\\.0\\.\\S+\\) or read the docs \\(${RECEIVER}/e/c/c\\.${message.id}\\.1\\.\\S+\\)\\.$`));

		// a retried run (same time, nothing due any more) sends nothing
		expect(await sendDue(site, '2026-06-10T10:00:00Z')).toEqual([]);
		expect(await smtp.messages(ana.email)).toHaveLength(1);

		const second = await sendDue(site, '2026-06-11T10:00:00Z');
		expect(second).toEqual([expect.objectContaining({ outcome: 'sent', step: 1, nextRunAt: null })]);
		const [, day2] = await smtp.messages(ana.email);
		expect(day2.parsed.subject).toBe('Day two');
		expect(day2.parsed.text).toMatch(new RegExp(`^Still there, ana\\? ${RECEIVER}/e/c/c\\.${second[0].messageId}\\.0\\.\\S+$`));
		expect(await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id: (first.enrollment as IDataObject).id as string } })).toMatchObject({ status: 'completed', nextRunAt: null });
		expect(await prisma.sequenceEnrollment.count({ where: { siteId: site.id } })).toBe(1);
		expect(await prisma.emailSequenceStep.count({ where: { siteId: site.id, sequence: { name: 'welcome' } } })).toBe(2);
	});

	it('sends nothing to a suppressed lead and unenrolls it', async () => {
		const site = await siteWith('suppressed');
		const erased = await lead(site, 'erased@mail.example');
		const unsubscribed = await lead(site, 'gone@mail.example');
		const fine = await lead(site, 'fine@mail.example');
		await prisma.suppression.create({ data: { siteId: site.id, emailHash: emailHash(' Erased@Mail.example '), reason: 'erased' } });
		await prisma.channelStatus.create({ data: { siteId: site.id, leadId: unsubscribed.id, channel: 'email', status: 'unsubscribed' } });
		for (const person of [erased, unsubscribed, fine]) await enroll(site, person.id, 'welcome', '2026-06-10T10:00:00Z');

		const results = await sendDue(site, '2026-06-10T10:00:00Z');
		const outcomes = Object.fromEntries(results.map((result) => [result.leadId as string, [result.outcome, result.reason]]));
		expect(outcomes).toEqual({ [erased.id]: ['suppressed', 'erased'], [unsubscribed.id]: ['suppressed', 'unsubscribed'], [fine.id]: ['sent', undefined] });
		expect(await smtp.messages(erased.email)).toHaveLength(0);
		expect(await smtp.messages(unsubscribed.email)).toHaveLength(0);
		expect(await smtp.messages(fine.email)).toHaveLength(1);
		expect(await prisma.sequenceEnrollment.findMany({ where: { leadId: { in: [erased.id, unsubscribed.id] } }, select: { status: true, unenrollReason: true } })).toEqual(
			expect.arrayContaining([
				{ status: 'unenrolled', unenrollReason: 'suppressed: erased' },
				{ status: 'unenrolled', unenrollReason: 'suppressed: unsubscribed' },
			]),
		);
	});

	it('never mails twice after a run killed between the SMTP accept and recording it', async () => {
		const site = await siteWith('killed');
		const bo = await lead(site, 'bo@mail.example');
		const [{ enrollment }] = await enroll(site, bo.id, 'welcome', '2026-06-10T10:00:00Z');
		const [first] = await sendDue(site, '2026-06-10T10:00:00Z');
		expect(first.outcome).toBe('sent');
		expect(await smtp.messages(bo.email)).toHaveLength(1);

		// The state a worker killed right after the server's 250 leaves behind: the reservation still
		// says `sending`, and the enrollment is on the same step (due again once its claim lapsed).
		const enrollmentId = (enrollment as IDataObject).id as string;
		await prisma.emailMessage.update({ where: { id: first.messageId as string }, data: { status: 'sending', sentAt: null, smtpMessageId: null } });
		await prisma.sequenceEnrollment.update({ where: { id: enrollmentId }, data: { status: 'active', nextStep: 0, nextRunAt: new Date('2026-06-10T10:00:00Z') } });

		// Within five minutes of the reservation that run may still be talking to the server: the enrollment waits.
		expect(await sendDue(site, '2026-06-10T10:02:00Z')).toEqual([expect.objectContaining({ outcome: 'in-flight', messageId: first.messageId, nextRunAt: '2026-06-10T10:05:00.000Z' })]);
		expect(await prisma.emailMessage.findUniqueOrThrow({ where: { id: first.messageId as string } })).toMatchObject({ status: 'sending' });
		const retried = await sendDue(site, '2026-06-10T10:20:00Z');
		expect(retried).toEqual([expect.objectContaining({ outcome: 'interrupted', messageId: first.messageId, nextRunAt: '2026-06-11T10:20:00.000Z' })]);
		expect(await smtp.messages(bo.email)).toHaveLength(1);
		expect(await prisma.emailMessage.findUniqueOrThrow({ where: { id: first.messageId as string } })).toMatchObject({ status: 'failed', error: expect.stringMatching(/^interrupted mid-send/) });
		expect(await prisma.emailMessage.count({ where: { leadId: bo.id } })).toBe(1);

		// a crash after recording `sent` but before advancing only advances
		await prisma.emailMessage.update({ where: { id: first.messageId as string }, data: { status: 'sent' } });
		await prisma.sequenceEnrollment.update({ where: { id: enrollmentId }, data: { nextStep: 0, nextRunAt: new Date('2026-06-10T10:00:00Z') } });
		expect(await sendDue(site, '2026-06-10T10:30:00Z')).toEqual([expect.objectContaining({ outcome: 'already-sent', messageId: first.messageId })]);
		expect(await smtp.messages(bo.email)).toHaveLength(1);
		expect(await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id: enrollmentId } })).toMatchObject({ nextStep: 1 });
	});

	it('retries a send the server refused, reusing its reservation', async () => {
		const site = await siteWith('refused');
		const person = await lead(site, 'refuse-me@mail.example');
		await enroll(site, person.id, 'welcome', '2026-06-10T10:00:00Z');
		const [refused] = await sendDue(site, '2026-06-10T10:00:00Z');
		expect(refused).toMatchObject({ outcome: 'retry', error: expect.stringMatching(/550/), nextRunAt: '2026-06-10T10:15:00.000Z' });
		expect(await prisma.emailMessage.findUniqueOrThrow({ where: { id: refused.messageId as string } })).toMatchObject({ status: 'failed' });
		const [again] = await sendDue(site, '2026-06-10T10:15:00Z');
		expect(again).toMatchObject({ outcome: 'retry', messageId: refused.messageId });
		expect(await prisma.emailMessage.count({ where: { leadId: person.id } })).toBe(1);
		expect(await smtp.messages(person.email)).toHaveLength(0);
	});

	it('shares the queue between runs started at the same time: each lead gets one email', async () => {
		const site = await siteWith('parallel');
		const people = await Promise.all(Array.from({ length: 6 }, (_, n) => lead(site, `parallel-${n}-${site.key}@mail.example`)));
		for (const person of people) await enroll(site, person.id, 'welcome', '2026-06-10T10:00:00Z');
		const runs = await Promise.all([sendDue(site, '2026-06-10T10:00:00Z'), sendDue(site, '2026-06-10T10:00:00Z'), sendDue(site, '2026-06-10T10:00:00Z')]);
		expect(runs.flat().map((result) => result.outcome)).toEqual(Array(6).fill('sent'));
		for (const person of people) expect(await smtp.messages(person.email)).toHaveLength(1);
	});

	it.each([
		// zone, enrolled at (UTC) = 03:00 local on a DST-change day, expected send (UTC) = 08:00 local
		['Europe/Madrid', '2026-03-29T01:00:00Z', '2026-03-29T06:00:00.000Z'],
		['Europe/Madrid', '2026-10-25T02:00:00Z', '2026-10-25T07:00:00.000Z'],
		['America/New_York', '2026-03-08T07:00:00Z', '2026-03-08T12:00:00.000Z'],
		['America/New_York', '2026-11-01T08:00:00Z', '2026-11-01T13:00:00.000Z'],
	])('quiet hours in %s: a step due at 03:00 local on %s goes out at 08:00 local', async (zone, enrolledAt, expected) => {
		const site = await siteWith('dst');
		const person = await lead(site, `night-${site.key}@mail.example`, zone);
		const [{ enrollment }] = await enroll(site, person.id, 'welcome', enrolledAt);
		expect((enrollment as IDataObject).nextRunAt).toBe(expected);
		const oneMinuteEarly = new Date(new Date(expected).getTime() - 60_000).toISOString();
		expect(await sendDue(site, oneMinuteEarly)).toEqual([]);
		expect(await sendDue(site, expected)).toEqual([expect.objectContaining({ outcome: 'sent' })]);
		expect(await smtp.messages(person.email)).toHaveLength(1);
	});

	it('a step due in quiet hours because the run came late is deferred to the window start', async () => {
		const site = await siteWith('late');
		const person = await lead(site, 'late@mail.example', 'Europe/Madrid');
		await enroll(site, person.id, 'welcome', '2026-06-10T18:30:00Z'); // 20:30 local, inside the window
		// the workflow only ran at 21:30 local
		expect(await sendDue(site, '2026-06-10T19:30:00Z')).toEqual([expect.objectContaining({ outcome: 'deferred', reason: 'outside the send window', nextRunAt: '2026-06-11T06:00:00.000Z' })]);
		expect(await smtp.messages(person.email)).toHaveLength(0);
	});

	it('holds a weekday-only step over the weekend', async () => {
		const site = await siteWith('weekdays');
		const person = await lead(site, 'b2b@mail.example', 'Europe/Madrid');
		// Saturday 2026-03-28 12:00 local; Monday 08:00 is after the spring-forward change
		const [{ enrollment }] = await enroll(site, person.id, 'workdays', '2026-03-28T11:00:00Z');
		expect((enrollment as IDataObject).nextRunAt).toBe('2026-03-30T06:00:00.000Z');
		expect(await sendDue(site, '2026-03-29T12:00:00Z')).toEqual([]);
		expect(await sendDue(site, '2026-03-30T06:00:00Z')).toEqual([expect.objectContaining({ outcome: 'sent', sequence: 'workdays' })]);
	});

	it('caps the emails per lead per 24 hours across sequences', async () => {
		const site = await siteWith('cap');
		const person = await lead(site, 'busy@mail.example', 'UTC');
		for (const sequence of ['cap-a', 'cap-b', 'cap-c']) await enroll(site, person.id, sequence, '2026-06-10T10:00:00Z');
		const results = await sendDue(site, '2026-06-10T10:00:00Z');
		expect(results.map((result) => result.outcome).sort()).toEqual(['deferred', 'sent', 'sent']);
		expect(results.find((result) => result.outcome === 'deferred')).toMatchObject({ reason: 'frequency cap', nextRunAt: '2026-06-11T10:00:00.000Z' });
		expect(await smtp.messages(person.email)).toHaveLength(2);
		expect(await sendDue(site, '2026-06-11T09:59:00Z')).toEqual([]);
		expect(await sendDue(site, '2026-06-11T10:00:00Z')).toEqual([expect.objectContaining({ outcome: 'sent' })]);
		expect(await smtp.messages(person.email)).toHaveLength(3);
	});

	it('unenrolls on unsubscribe, bounce, complaint and conversion events, once', async () => {
		const site = await siteWith('events');
		const person = await lead(site, 'leaving@mail.example');
		const other = await lead(site, 'staying@mail.example');
		for (const sequence of ['welcome', 'cap-a']) await enroll(site, person.id, sequence, '2026-06-10T10:00:00Z');
		await enroll(site, other.id, 'welcome', '2026-06-10T10:00:00Z');
		const event = (type: string, leadId: string | null = person.id) => ({ kind: 'email-event', site: site.key, type, leadId, messageId: '0190a8d2-1c2b-7def-8abc-0123456789ab' });

		expect(await run('handleEmailEvent', [event('open'), event('click', null)])).toEqual([expect.objectContaining({ type: 'open', unenrolled: 0 }), expect.objectContaining({ type: 'click', unenrolled: 0 })]);
		expect(await run('handleEmailEvent', [event('unsubscribe')])).toEqual([expect.objectContaining({ unenrolled: 2 })]);
		expect(await run('handleEmailEvent', [event('unsubscribe')])).toEqual([expect.objectContaining({ unenrolled: 0 })]);
		expect(await prisma.sequenceEnrollment.findMany({ where: { leadId: person.id }, select: { status: true, unenrollReason: true } })).toEqual([
			{ status: 'unenrolled', unenrollReason: 'unsubscribe' },
			{ status: 'unenrolled', unenrollReason: 'unsubscribe' },
		]);
		expect(await prisma.channelStatus.findUniqueOrThrow({ where: { leadId_channel: { leadId: person.id, channel: 'email' } } })).toMatchObject({ status: 'unsubscribed' });
		// a bounce is stronger than an unsubscribe; an unsubscribe never weakens a bounce
		await run('handleEmailEvent', [event('bounce')]);
		await run('handleEmailEvent', [event('unsubscribe')]);
		expect(await prisma.channelStatus.findUniqueOrThrow({ where: { leadId_channel: { leadId: person.id, channel: 'email' } } })).toMatchObject({ status: 'bounced' });
		expect(await prisma.suppression.findMany({ where: { siteId: site.id }, select: { reason: true } })).toEqual([{ reason: 'unsubscribed' }]);

		// a conversion ends no sequence that does not exit on it
		expect(await run('handleEmailEvent', [{ site: site.key, leadId: other.email, occurredAt: '2026-06-10T11:00:00Z', conversions: [{ goal: 'purchase', leadId: other.id }] }], { eventType: 'conversion' })).toEqual([
			expect.objectContaining({ leadId: other.id, unenrolled: 0 }),
		]);
		expect(await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId: other.id } })).toMatchObject({ status: 'active' });
		expect(await sendDue(site, '2026-06-10T12:00:00Z')).toEqual([expect.objectContaining({ leadId: other.id, outcome: 'sent' })]);
	});

	it('Handle CRM Items, as workflow 06 wires it: each item of one delivery handled by its own fields', async () => {
		const site = await siteWith('crm-items', {
			emailSequences: [
				{ name: 'trial', trigger: { stage: 'lead' }, exitOn: { conversions: ['purchase'] }, steps: [{ delayMinutes: 60, subject: 'Trial tips', html: '<p>Tips</p>' }] },
				{ name: 'demo', trigger: { event: 'demo_request' }, steps: [{ delayMinutes: 60, subject: 'Your demo', html: '<p>Soon</p>' }] },
				...SEQUENCES.filter((sequence) => sequence.name === 'cap-a'),
			],
			conversionRules: [
				{ name: 'purchase', event: 'pageview', urlPattern: '/checkout/done' },
				{ name: 'demo-request', event: 'demo_request' },
			],
		});
		const buyer = await lead(site, 'buyer@mail.example');
		const leaving = await lead(site, 'leaving@mail.example');
		await enroll(site, leaving.id, 'cap-a', '2026-06-10T10:00:00Z');
		const later = new Date(Date.now() + 60_000).toISOString();
		const items = [
			// the Lead Scorer's stage change, as 01, 03 and 05 hand it on
			{ site: site.key, kind: 'lead', leadId: buyer.id, stageChange: { from: 'subscriber', to: 'lead' } },
			// the Conversion Detector's converting event, as 02 hands it on
			{ site: site.key, kind: 'event', type: 'pageview', occurredAt: later, conversions: [{ goal: 'purchase', leadId: buyer.id, duplicate: false }] },
			// the receiver's email event
			{ site: site.key, kind: 'email-event', type: 'unsubscribe', leadId: leaving.id, messageId: '0190a8d2-1c2b-7def-8abc-0123456789ab' },
			// a custom event a conversion rule detects and a sequence's trigger names: it starts that sequence
			{ site: site.key, kind: 'event', type: 'custom', name: 'demo_request', occurredAt: later, conversions: [{ goal: 'demo-request', leadId: buyer.id, duplicate: false }] },
		];
		const handled = await run('handleCrmItems', items);
		expect(handled.map((item) => [item.kind, item.leadId, (item.enrollments as IDataObject[] | undefined)?.map((e) => e.sequence), item.unenrolled])).toEqual([
			['lead', buyer.id, ['trial'], undefined],
			['event', buyer.id, [], 1],
			['email-event', leaving.id, undefined, 1],
			['event', buyer.id, ['demo'], 0],
		]);
		expect(await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId: buyer.id, sequence: { name: 'demo' } } })).toMatchObject({ status: 'active' });
		expect(await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId: buyer.id, sequence: { name: 'trial' } } })).toMatchObject({ status: 'unenrolled', unenrollReason: 'conversion: purchase' });
		expect(await prisma.channelStatus.findUniqueOrThrow({ where: { leadId_channel: { leadId: leaving.id, channel: 'email' } } })).toMatchObject({ status: 'unsubscribed' });
		// replayed, nothing more: the enrollment exists, the sequences are ended already
		expect((await run('handleCrmItems', items)).map((item) => [(item.enrollments as IDataObject[] | undefined)?.map((e) => e.created), item.unenrolled])).toEqual([
			[[false], undefined],
			[[], 0],
			[undefined, 0],
			[[false], 0],
		]);
		// A converting event the Conversion Detector had recorded already (a replayed delivery) starts nothing.
		const late = await lead(site, 'late@mail.example');
		const replayed = { ...items[3], conversions: [{ goal: 'demo-request', leadId: late.id, duplicate: true }] };
		expect((await run('handleCrmItems', [replayed])).map((item) => [item.enrollments, item.unenrolled])).toEqual([[undefined, 0]]);
		expect(await prisma.sequenceEnrollment.count({ where: { leadId: late.id } })).toBe(0);
		expect(crmItemRoute({ kind: 'email-event', conversions: [] })).toBe('emailEvent');
		expect(crmItemRoute({ kind: 'event', conversions: [] })).toBe('conversion');
		expect(crmItemRoute({ kind: 'lead', email: 'x@example.com' })).toBe('enroll');
	});

	describe('conversions end the sequences whose exitOn names them, begun before them', () => {
		const EXITING = [
			{ name: 'trial', trigger: { stage: 'lead' }, exitOn: { conversions: ['purchase'] }, steps: [{ delayMinutes: 60, subject: 'Trial tips', html: '<p>Tips</p>' }] },
			{ name: 'news', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 60, subject: 'News', html: '<p>News</p>' }] },
		];
		const RULES = [
			{ name: 'contact-request', event: 'form_submit' },
			{ name: 'purchase', event: 'pageview', urlPattern: '/checkout/done' },
		];
		const ENROLLED = '2026-06-10T10:00:00.000Z';

		it('as workflow 06 wires it, from the Conversion Detector’s items', async () => {
			const site = await siteWith('exit-on', { emailSequences: EXITING, conversionRules: RULES });
			const person = await lead(site, 'buyer@mail.example');
			for (const sequence of ['trial', 'news']) await enroll(site, person.id, sequence, ENROLLED);
			// the Conversion Detector's item: the event with its conversions
			const converted = (occurredAt: string, ...goals: string[]) => ({ kind: 'event', site: site.key, type: 'pageview', occurredAt, conversions: goals.map((goal) => ({ goal, leadId: person.id, duplicate: false })) });
			const unenroll = (item: IDataObject) => run('handleEmailEvent', [item], { eventType: 'conversion', lead: '={{ $json.conversions[0].leadId }}' });
			const statuses = async () => Object.fromEntries((await prisma.sequenceEnrollment.findMany({ where: { leadId: person.id }, include: { sequence: true } })).map((e) => [e.sequence.name, [e.status, e.unenrollReason]]));

			// the form that made the lead, a conversion the sequences do not name, even dated after the enrollment
			expect(await unenroll(converted('2026-06-10T10:05:00Z', 'contact-request'))).toEqual([expect.objectContaining({ unenrolled: 0 })]);
			// a purchase from before the enrollment, or from the same moment, ends nothing
			expect(await unenroll(converted('2026-06-10T09:59:59Z', 'purchase'))).toEqual([expect.objectContaining({ unenrolled: 0 })]);
			expect(await unenroll(converted(ENROLLED, 'contact-request', 'purchase'))).toEqual([expect.objectContaining({ unenrolled: 0 })]);
			expect(await statuses()).toEqual({ trial: ['active', null], news: ['active', null] });
			// a later purchase ends the sequence that exits on it, and only that one; replayed, nothing more
			for (const expected of [1, 0]) expect(await unenroll(converted('2026-06-10T10:00:00.001Z', 'contact-request', 'purchase'))).toEqual([expect.objectContaining({ leadId: person.id, unenrolled: expected })]);
			expect(await statuses()).toEqual({ trial: ['unenrolled', 'conversion: purchase'], news: ['active', null] });
		});

		it('names the parameter a conversion lacks', async () => {
			const site = await siteWith('exit-on-errors', { emailSequences: EXITING, conversionRules: RULES });
			const person = await lead(site, 'unclear@mail.example');
			const attempt = (item: IDataObject) => runWorkflow(workflow('handleEmailEvent', { eventType: 'conversion' }), { input: [{ site: site.key, leadId: person.id, ...item }], credentials: credentials() });
			expect((await attempt({ occurredAt: ENROLLED })).error?.message).toMatch(/^Conversions: names no conversion; give the name of the conversion rule reached/);
			expect((await attempt({ conversions: 'purchase' })).error?.message).toMatch(/^Occurred At: is empty; a conversion needs the time it happened/);
		});
	});

	it('enrolls into a sequence kept in the database, with its settings', async () => {
		const site = await siteWith('database');
		const person = await lead(site, `db-${site.key}@mail.example`, 'America/New_York');
		await prisma.emailSequence.create({
			data: {
				siteId: site.id,
				name: 'stored',
				settings: { quietHours: { start: '20:00', end: '09:30' }, weekdays: [2] },
				steps: { create: [{ siteId: site.id, position: 0, delayMinutes: 60, subject: 'Stored for {{firstName}}', htmlTemplate: '<p>Hello {{firstName}}</p>' }] },
			},
		});
		// Monday 2026-06-08 23:00 local + 60 min = Tuesday 00:00, quiet until 09:30 on that Tuesday
		const [{ enrollment }] = await run('enroll', [{ site: site.key, leadId: person.id }], { sequence: 'stored', sequenceSource: 'database', options: { asOf: '2026-06-09T03:00:00Z' } });
		expect((enrollment as IDataObject).nextRunAt).toBe('2026-06-09T13:30:00.000Z');
		expect(await sendDue(site, '2026-06-09T13:30:00Z')).toEqual([expect.objectContaining({ outcome: 'sent', sequence: 'stored', nextRunAt: null })]);
		const [mail] = await smtp.messages(person.email);
		expect(mail.parsed.subject).toBe(`Stored for db-${site.key}`);
		expect(mail.parsed.text?.trim()).toBe(`Hello db-${site.key}`);
	});

	it('enrolls into a sequence defined in a node parameter and sends it', async () => {
		const site = await siteWith('parameter');
		const person = await lead(site, `param-${site.key}@mail.example`, 'UTC');
		const definition = {
			name: 'from-parameter',
			quietHours: { start: '22:00', end: '07:00' },
			campaign: { name: 'spring', fromEmail: 'news@shop.example', fromName: 'Shop News', replyTo: 'team@shop.example' },
			steps: [
				{ delayMinutes: 30, subject: 'Param for {{firstName}}', html: '<p>Hello {{firstName}}, <a href="https://shop.example/p">look</a></p>' },
				{ delayMinutes: 60, subject: 'Param two', html: '<p>Two</p>' },
			],
		};
		const parameters = { sequenceSource: 'parameter', sequenceDefinition: JSON.stringify(definition), options: { asOf: '2026-06-10T21:45:00Z' } };
		// 21:45 UTC + 30 min falls into the quiet hours: 07:00 the next morning
		const [{ enrollment }] = await run('enroll', [{ site: site.key, leadId: person.id }], parameters);
		expect(enrollment).toMatchObject({ created: true, sequence: 'from-parameter', nextRunAt: '2026-06-11T07:00:00.000Z' });
		const [again] = await run('enroll', [{ site: site.key, leadId: person.email }], parameters);
		expect(again.enrollment).toMatchObject({ created: false, id: (enrollment as IDataObject).id });
		const stored = await prisma.emailSequence.findUniqueOrThrow({ where: { siteId_name: { siteId: site.id, name: 'from-parameter' } }, include: { steps: { orderBy: { position: 'asc' } } } });
		expect(stored.settings).toEqual({ quietHours: { start: '22:00', end: '07:00' } });
		expect(stored.steps.map((step) => [step.position, step.delayMinutes, step.subject])).toEqual([
			[0, 30, 'Param for {{firstName}}'],
			[1, 60, 'Param two'],
		]);

		const campaign = await prisma.emailCampaign.findUniqueOrThrow({ where: { siteId_name: { siteId: site.id, name: 'spring' } } });
		expect(campaign).toMatchObject({ status: 'active', fromEmail: 'news@shop.example', replyTo: 'team@shop.example' });
		expect(stored.campaignId).toBe(campaign.id);

		const [sent] = await sendDue(site, '2026-06-11T07:00:00Z');
		expect(sent).toMatchObject({ outcome: 'sent', sequence: 'from-parameter', nextRunAt: '2026-06-11T08:00:00.000Z' });
		const [mail] = await smtp.messages(person.email);
		expect(mail.parsed.subject).toBe(`Param for param-${site.key}`);
		expect(String(mail.parsed.html)).toMatch(new RegExp(`<a href="${RECEIVER}/e/c/c\\.`));
		// the campaign's sender and reply-to, and the message counted for the campaign
		expect(mail.parsed.from?.value).toEqual([{ address: 'news@shop.example', name: 'Shop News' }]);
		expect(mail.parsed.replyTo?.value).toEqual([{ address: 'team@shop.example', name: '' }]);
		expect(await prisma.emailMessage.findUniqueOrThrow({ where: { id: sent.messageId as string } })).toMatchObject({ campaignId: campaign.id });

		// pausing the campaign in the database holds the next step; archiving it ends the enrollment
		await prisma.emailCampaign.update({ where: { id: campaign.id }, data: { status: 'paused' } });
		expect(await sendDue(site, '2026-06-11T08:00:00Z')).toEqual([expect.objectContaining({ outcome: 'deferred', reason: 'campaign paused', nextRunAt: '2026-06-11T09:00:00.000Z' })]);
		await prisma.emailCampaign.update({ where: { id: campaign.id }, data: { status: 'archived' } });
		expect(await sendDue(site, '2026-06-11T09:00:00Z')).toEqual([expect.objectContaining({ outcome: 'unenrolled', reason: 'campaign archived' })]);
		expect(await smtp.messages(person.email)).toHaveLength(1);
	});

	it('names the field inside a wrong sequence definition', async () => {
		const site = await siteWith('bad-definition');
		const person = await lead(site, `bad-def-${site.key}@mail.example`);
		const attempt = async (sequenceDefinition: string) =>
			(await runWorkflow(workflow('enroll', { sequenceSource: 'parameter', sequenceDefinition }), { input: [{ site: site.key, leadId: person.id }], credentials: credentials() })).error?.message;
		expect(await attempt(JSON.stringify({ name: 'x', steps: [{ delayMinutes: -5, subject: 'S', html: '<p>x</p>' }] }))).toMatch(
			/^Sequence Definition: is not a sequence:\n {2}- steps\[0\]\.delayMinutes: .*got -5/,
		);
		expect(await attempt(JSON.stringify({ name: 'x', steps: [{ delayMinutes: 0, subjct: 'S', html: '<p>x</p>' }] }))).toMatch(/steps\[0\]\.subjct: is not a known field; did you mean "subject"\?/);
		expect(await attempt('{ "name": "x", ')).toMatch(/^Sequence Definition: is not valid JSON/);
		expect(await prisma.emailSequence.count({ where: { siteId: site.id } })).toBe(0);
	});

	describe('Lead Scorer → Email Orchestrator: enrollment by a sequence trigger', () => {
		const TRIGGERED = [
			{
				name: 'onboarding',
				trigger: { stage: 'lead' },
				steps: [
					{ delayMinutes: 0, subject: 'Welcome aboard, {{firstName}}', html: '<p>Hi {{firstName}}</p>' },
					{ delayMinutes: 1440, subject: 'Day two', html: '<p>Two</p>' },
				],
			},
			{ name: 'nurture', trigger: { stage: 'mql' }, steps: [{ delayMinutes: 0, subject: 'For MQLs', html: '<p>MQL</p>' }] },
			{ name: 'vip', trigger: { tag: 'vip' }, steps: [{ delayMinutes: 0, subject: 'VIP', html: '<p>VIP</p>' }] },
			{ name: 'demo', trigger: { event: 'demo_request' }, steps: [{ delayMinutes: 0, subject: 'Your demo', html: '<p>Demo</p>' }] },
		];
		const SCORING = [
			{ id: 'title', field: 'jobTitle' as const, operator: 'exists' as const, score: 15 },
			{ id: 'boss', field: 'jobTitle' as const, operator: 'matches' as const, value: '\\bceo\\b', score: 35 },
		];

		function chain(): WorkflowJson {
			const single = workflow('enrollByTrigger');
			const orchestrator = single.nodes[1];
			return {
				name: 'Lead Scorer → Email Orchestrator',
				nodes: [
					single.nodes[0],
					{ id: 'ls', name: 'Lead Scorer', type: 'n8n-nodes-tracking-crm.leadScorer', typeVersion: 1, position: [200, 0], parameters: {}, credentials: { postgres: { id: '1', name: 'CRM database' } } },
					{ ...orchestrator, position: [400, 100] },
				],
				connections: {
					Start: { main: [[{ node: 'Lead Scorer', type: 'main', index: 0 }]] },
					'Lead Scorer': { main: [[], [{ node: 'Email Orchestrator', type: 'main', index: 0 }]] },
				},
			};
		}

		it('enrolls a lead that reached a stage once, sends the first step at once, and nothing more under replay', async () => {
			const site = await siteWith('trigger', { emailSequences: TRIGGERED, leadScoringRules: SCORING });
			const identify = (name: string, jobTitle?: string) => ({ site: site.key, email: `${name}-${site.key}@mail.example`, firstName: name, timezone: 'UTC', ...(jobTitle ? { jobTitle } : {}) });
			const input = [identify('starter', 'Engineer'), identify('jumper', 'CEO'), identify('stayer')];

			const first = await runWorkflow(chain(), { input, credentials: credentials(), throwOnError: true });
			const changed = first.outputOf('Lead Scorer', 1);
			expect(changed.map((item) => [(item.lead as IDataObject).email, item.stageChange])).toEqual([
				[input[0].email, { from: 'subscriber', to: 'lead' }],
				[input[1].email, { from: 'subscriber', to: 'mql' }],
			]);
			const orchestrated = first.outputOf('Email Orchestrator');
			const enrolled = (item: IDataObject) => (item.enrollments as IDataObject[]).map((e) => [e.sequence, e.created]);
			expect(orchestrated.map(enrolled)).toEqual([
				[['onboarding', true]],
				// jumping from subscriber to MQL passes the lead stage too
				[
					['onboarding', true],
					['nurture', true],
				],
			]);
			expect(orchestrated.map((item) => (item.sends as IDataObject[]).map((send) => [send.sequence, send.step, send.outcome]))).toEqual([
				[['onboarding', 0, 'sent']],
				[
					['onboarding', 0, 'sent'],
					['nurture', 0, 'sent'],
				],
			]);
			expect((await smtp.messages(input[0].email)).map((mail) => mail.parsed.subject)).toEqual(['Welcome aboard, starter']);
			expect((await smtp.messages(input[1].email)).map((mail) => mail.parsed.subject).sort()).toEqual(['For MQLs', 'Welcome aboard, jumper']);
			expect(await smtp.messages(input[2].email)).toEqual([]);

			// the whole chain replayed: no stage changes, so the orchestrator receives nothing
			const replay = await runWorkflow(chain(), { input, credentials: credentials(), throwOnError: true });
			expect(replay.outputOf('Lead Scorer', 1)).toEqual([]);
			// the orchestrator's own step replayed twice with the same stage-changed items (an n8n retry)
			for (let attempt = 0; attempt < 2; attempt++) {
				const again = await run('enrollByTrigger', changed);
				expect(again.map(enrolled)).toEqual([
					[['onboarding', false]],
					[
						['onboarding', false],
						['nurture', false],
					],
				]);
				expect(again.map((item) => item.sends)).toEqual([[], []]);
			}
			expect(await prisma.sequenceEnrollment.count({ where: { siteId: site.id } })).toBe(3);
			expect(await prisma.emailMessage.count({ where: { siteId: site.id } })).toBe(3);
			expect(await smtp.messages(input[0].email)).toHaveLength(1);
			expect(await smtp.messages(input[1].email)).toHaveLength(2);

			// a tag trigger, for a lead item without a stage change; an event trigger from the Event option
			const stayer = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email: input[2].email } });
			await prisma.leadTag.create({ data: { siteId: site.id, leadId: stayer.id, tag: 'vip' } });
			const [tagged] = await run('enrollByTrigger', [{ site: site.key, leadId: stayer.id }]);
			expect(enrolled(tagged)).toEqual([['vip', true]]);
			expect((await smtp.messages(input[2].email)).map((mail) => mail.parsed.subject)).toEqual(['VIP']);
			const [demo] = await run('enrollByTrigger', [{ site: site.key, leadId: stayer.email }], { options: { event: 'demo_request' } });
			expect(enrolled(demo)).toEqual([
				['vip', false],
				['demo', true],
			]);
			expect((await smtp.messages(input[2].email)).map((mail) => mail.parsed.subject)).toEqual(['VIP', 'Your demo']);
		});
	});

	it('passes on a lead no trigger matches even without a sender, and names the missing sender when one is needed', async () => {
		const site = await createTestSite(prisma, 'no-sender');
		const config = siteConfigSchema.parse({
			site: { key: site.key, name: 'No sender', domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			crm: { emailSequences: SEQUENCES },
		});
		await prisma.site.update({ where: { id: site.id }, data: { config } });
		const person = await lead(site, `nobody-${site.key}@mail.example`);
		expect(await run('enrollByTrigger', [{ site: site.key, leadId: person.id }])).toEqual([expect.objectContaining({ enrollments: [], sends: [] })]);
		await prisma.leadTag.create({ data: { siteId: site.id, leadId: person.id, tag: 'b2b' } });
		// Wednesday 12:00 in Madrid: inside the workdays sequence's window
		const failed = await runWorkflow(workflow('enrollByTrigger', { options: { asOf: '2026-06-10T10:00:00Z' } }), { input: [{ site: site.key, leadId: person.id }], credentials: credentials() });
		expect(failed.error?.message).toBe('Options › From Email: is empty, and the site config sets no integrations.emailProvider.fromEmail: set one of them to the sender address');
		const [retried] = await run('enrollByTrigger', [{ site: site.key, leadId: person.id }], { options: { fromEmail: 'ops@shop.example', asOf: '2026-06-10T10:00:00Z' } });
		expect(retried.enrollments).toEqual([expect.objectContaining({ sequence: 'workdays', created: false })]);
		expect(retried.sends).toEqual([expect.objectContaining({ outcome: 'sent' })]);
	});

	it('names the parameter to fix', async () => {
		const site = await siteWith('errors');
		const unknownSequence = await runWorkflow(workflow('enroll', { sequence: 'nope' }), { input: [{ site: site.key, leadId: 'nobody@mail.example' }], credentials: credentials() });
		expect(unknownSequence.error?.message).toMatch(/^Lead: No lead "nobody@mail.example"/);
		const person = await lead(site, 'x@mail.example');
		const missing = await runWorkflow(workflow('enroll', { sequence: 'nope' }), { input: [{ site: site.key, leadId: person.id }], credentials: credentials() });
		expect(missing.error?.message).toBe('Sequence Name: No sequence "nope" in crm.emailSequences of the site config (it has: welcome, workdays, cap-a, cap-b, cap-c)');
		const badType = await runWorkflow(workflow('handleEmailEvent'), { input: [{ site: site.key, type: 'sneeze', leadId: person.id }], credentials: credentials() });
		expect(badType.error?.message).toMatch(/^Event Type: "sneeze" is not an email event/);
	});
});
