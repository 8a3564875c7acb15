/**
 * A Send Due run that mails for minutes handles each enrollment at the time it reaches it: the
 * claim's lease, the message's reservation and its send are stamped with that time, not the run's
 * start, so another run never finds a lease or reservation that looks lapsed while this run is
 * still on it. The run's clock is given, advancing three minutes per enrollment as a slow mail
 * server would make it. Real Postgres and a real SMTP server process.
 */
import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { enrollLead } from '../../nodes/EmailOrchestrator/actions/enroll.operation';
import { sendDueSteps } from '../../nodes/EmailOrchestrator/actions/sendDue.operation';
import { clockOf } from '../../nodes/EmailOrchestrator/helpers/context';
import { SequenceResolver } from '../../nodes/EmailOrchestrator/sequences';
import { settleReserved } from '../../nodes/EmailOrchestrator/steps';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { createTestSite, testPrisma } from '../helpers/db';
import { SmtpSink } from '../helpers/smtpSink';

const MINUTE = 60_000;

describe('a long Send Due run', () => {
	let prisma: PrismaClient;
	let smtp: SmtpSink;

	beforeAll(async () => {
		prisma = testPrisma();
		smtp = await SmtpSink.start();
	});
	afterAll(async () => {
		await smtp.stop();
		await prisma.$disconnect();
	});

	it('claims, reserves and sends each enrollment at the time it reaches it', async () => {
		const created = await createTestSite(prisma, 'send-due-clock');
		const config = parseSiteConfig({
			site: { key: created.key, name: 'Clock', domain: `${created.key}.example` },
			tracking: { allowedOrigins: [`https://${created.key}.example`] },
			crm: {
				maxEmailsPerDay: 10,
				emailSequences: [
					{
						name: 'welcome',
						trigger: { event: 'signup' },
						steps: [
							{ delayMinutes: 0, subject: 'Welcome', html: '<p>Hi</p>' },
							{ delayMinutes: 60, subject: 'An hour on', html: '<p>Still there?</p>' },
						],
					},
				],
			},
			integrations: { emailProvider: { type: 'smtp', fromEmail: `hello@${created.key}.example` } },
		});
		await prisma.site.update({ where: { id: created.id }, data: { config } });
		const site = { id: created.id, key: created.key, domain: `${created.key}.example`, config };
		const start = new Date(Date.UTC(2026, 11, 7, 9, 0, 0));
		const sequence = await new SequenceResolver(prisma).byNameIn(site, 'welcome', 'site');
		const leads = [];
		for (const name of ['ana', 'ben', 'cy', 'dee']) {
			const lead = await prisma.lead.create({ data: { siteId: site.id, email: `${name}@clock.example`, emailHash: `hash-${name}-${created.key}`, consentGiven: true } });
			await enrollLead(prisma, site, sequence, { id: lead.id, timezone: null }, start, null);
			leads.push(lead.id);
		}

		let reached = 0;
		const clock = () => new Date(start.getTime() + 3 * MINUTE * reached++);
		const transport = smtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, disableStartTls: true, user: '', password: '' });
		try {
			const sender = { transport, receiverUrl: 'https://crm.example.test', tokenSecret: 'clock-token-secret-of-at-least-32-characters', from: { address: `hello@${site.key}.example` }, keyring: null };
			const reports = await sendDueSteps(prisma, site, sender, clock, 10);
			expect(reports.map((report) => report.outcome)).toEqual(['sent', 'sent', 'sent', 'sent']);
		} finally {
			transport.close();
		}

		const messages = await prisma.emailMessage.findMany({ where: { siteId: site.id }, orderBy: { createdAt: 'asc' } });
		const times = [0, 3, 6, 9].map((minutes) => new Date(start.getTime() + minutes * MINUTE));
		expect(messages.map((message) => message.createdAt)).toEqual(times);
		expect(messages.map((message) => message.sentAt)).toEqual(times);
		// Each next step is an hour after that lead's own send.
		const enrollments = await prisma.sequenceEnrollment.findMany({ where: { siteId: site.id }, orderBy: { nextRunAt: 'asc' } });
		expect(enrollments.map((enrollment) => enrollment.nextRunAt)).toEqual(times.map((time) => new Date(time.getTime() + 60 * MINUTE)));
		// Nine minutes into the run, another run finds the last reservation in flight, not abandoned.
		expect(settleReserved('sending', messages[3].createdAt, times[3]).do).toBe('wait');
		expect(await smtp.messages()).toHaveLength(4);
	});

	it('keeps the As Of time of a backfill, and reads the wall clock anew on a live run', async () => {
		const backfill = clockOf('2026-01-01T00:00:00Z');
		const live = clockOf('');
		const [first, atFirst] = [backfill().getTime(), live().getTime()];
		await new Promise((resolve) => setTimeout(resolve, 30));
		expect(backfill().getTime()).toBe(first);
		expect(first).toBe(Date.UTC(2026, 0, 1));
		expect(live().getTime() - atFirst).toBeGreaterThanOrEqual(25);
		expect(() => clockOf('soon')).toThrow(/is "soon", not a date and time/);
	});
});
