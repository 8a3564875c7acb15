/**
 * A due step whose template does not render (stored before templates were checked, or edited in
 * the database) fails alone: Send Due reports it, holds it for an hour and goes on with the other
 * due enrollments, instead of failing the run and stumbling on it at every scheduled run. Real
 * Postgres and a real SMTP server process.
 */
import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { enrollLead } from '../../nodes/EmailOrchestrator/actions/enroll.operation';
import { sendDueSteps } from '../../nodes/EmailOrchestrator/actions/sendDue.operation';
import { SequenceResolver } from '../../nodes/EmailOrchestrator/sequences';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { createTestSite, testPrisma } from '../helpers/db';
import { SmtpSink } from '../helpers/smtpSink';

describe('a due step whose template does not render', () => {
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

	it('is reported and held while the other due steps go out', async () => {
		const created = await createTestSite(prisma, 'broken-template');
		const config = parseSiteConfig({
			site: { key: created.key, name: 'Broken', domain: `${created.key}.example` },
			tracking: { allowedOrigins: [`https://${created.key}.example`] },
			crm: {
				maxEmailsPerDay: 10,
				emailSequences: [
					{ name: 'broken', trigger: { event: 'signup' }, steps: [{ delayMinutes: 0, subject: 'Broken', html: '<p>Hi</p>' }] },
					{ name: 'fine', trigger: { event: 'signup' }, steps: [{ delayMinutes: 0, subject: 'Fine', html: '<p>Hi {{firstName}}</p>' }] },
				],
			},
			integrations: { emailProvider: { type: 'smtp', fromEmail: `hello@${created.key}.example` } },
		});
		await prisma.site.update({ where: { id: created.id }, data: { config } });
		const site = { id: created.id, key: created.key, domain: `${created.key}.example`, config };
		const sequences = new SequenceResolver(prisma);
		const broken = await sequences.byNameIn(site, 'broken', 'site');
		const fine = await sequences.byNameIn(site, 'fine', 'site');
		const now = new Date(Date.UTC(2026, 11, 7, 9, 0, 0));
		const lead = await prisma.lead.create({ data: { siteId: site.id, email: `ana@${created.key}.example`, emailHash: `hash-ana-${created.key}`, firstName: 'Ana', consentGiven: true } });
		await enrollLead(prisma, site, broken, { id: lead.id, timezone: null }, now, null);
		await enrollLead(prisma, site, fine, { id: lead.id, timezone: null }, new Date(now.getTime() + 1000), null);
		// As a version that did not check templates stored it, or an edit in the database.
		await prisma.emailSequenceStep.updateMany({ where: { sequenceId: broken.id }, data: { htmlTemplate: '<p>{{> footer}}</p>' } });

		const transport = smtpTransport({ host: '127.0.0.1', port: smtp.port, secure: false, disableStartTls: true, user: '', password: '' });
		let reports;
		try {
			const sender = { transport, receiverUrl: 'https://crm.example.test', tokenSecret: 'broken-template-token-secret-of-32-characters', from: { address: `hello@${site.key}.example` }, keyring: null };
			reports = await sendDueSteps(prisma, site, sender, () => new Date(now.getTime() + 60_000), 10);
		} finally {
			transport.close();
		}

		expect(reports.map((report) => [report.sequence, report.outcome])).toEqual([
			['broken', 'failed'],
			['fine', 'sent'],
		]);
		const later = new Date(now.getTime() + 60_000 + 60 * 60_000);
		expect(reports[0]).toMatchObject({
			error: `Sequence "broken", steps[0]: its HTML uses the partial {{> footer}}: sequences have no partials; write its content into the template. Correct it in the site config or the Sequence Definition; the step is tried again at ${later.toISOString()}.`,
			nextRunAt: later.toISOString(),
		});
		const held = await prisma.sequenceEnrollment.findFirstOrThrow({ where: { sequenceId: broken.id, leadId: lead.id } });
		expect(held).toMatchObject({ status: 'active', nextStep: 0, nextRunAt: later });
		expect(await prisma.emailMessage.count({ where: { sequenceId: broken.id } })).toBe(0);
		const mails = await smtp.messages();
		expect(mails.map((mail) => mail.parsed.subject)).toEqual(['Fine']);
	});
});
