/**
 * The demo's contact form is both the lead (workflow 03 enrolls it in the welcome sequence) and a
 * conversion (01 → 02 → 06's "Handle Delivered Items"). The welcome sequence ends only on the
 * conversions its exitOn names, reached after the enrollment: the form keeps it running, a later
 * purchase ends it. Real Postgres and SMTP, the bundled workflows in n8n's engine.
 */
import type { IDataObject } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { siteConfigSchema } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, testPrisma } from '../helpers/db';
import { SmtpSink } from '../helpers/smtpSink';
import { BundledChain, chainCredentials, storeTrackedEvents, trackedEvent } from '../leadScorer/bundledChain';

const MINUTE = 60_000;

describe('a lead made by a form that is also a conversion keeps its welcome sequence; a conversion its exitOn names ends it', () => {
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	let chain: BundledChain;
	let site: { id: string; key: string };

	beforeAll(async () => {
		prisma = testPrisma();
		smtp = await SmtpSink.start();
		chain = new BundledChain(() => chainCredentials('form-conversion', smtp.port));
		await chain.start();
		site = await createTestSite(prisma, 'form-conversion');
		const config = siteConfigSchema.parse({
			site: { key: site.key, name: 'Form conversion', domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			crm: {
				leadScoringRules: [{ event: 'form_submit', score: 10 }],
				conversionRules: [
					{ name: 'contact-request', event: 'form_submit', urlPattern: '/demo/contact*', value: 50, currency: 'EUR' },
					{ name: 'purchase', event: 'pageview', urlPattern: '/demo/checkout/done', value: 90, currency: 'EUR' },
				],
				emailSequences: [
					{
						name: 'welcome',
						trigger: { stage: 'lead' },
						exitOn: { conversions: ['purchase'] },
						steps: [
							{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p>' },
							{ delayMinutes: 1440, subject: 'Day two', html: '<p>Still there?</p>' },
						],
					},
				],
			},
			integrations: { emailProvider: { type: 'smtp', fromEmail: 'hello@form-conversion.example' } },
		});
		await prisma.site.update({ where: { id: site.id }, data: { config } });
	});
	afterAll(async () => {
		await chain.stop();
		await smtp.stop();
		await prisma.$disconnect();
		await disconnectAll();
	});

	/** What 06 did with the conversions delivered to it in the runs since `from`. */
	const unenrollments = (from: number) =>
		chain.runs
			.slice(from)
			.filter(({ webhookPath, run }) => webhookPath === 'crm-email-orchestrator' && run.executedNodes.includes('Handle Delivered Items'))
			.flatMap(({ run }) => run.outputOf('Handle Delivered Items', 0))
			.filter((item) => Array.isArray(item.conversions))
			.map((item) => ({ leadId: item.leadId, unenrolled: item.unenrolled, goals: (item.conversions as IDataObject[]).map((conversion) => conversion.goal) }));

	it('sends the welcome email and keeps the sequence through the form’s own conversion, then ends it on a purchase', async () => {
		const anonymousId = `anon-${uuidv7()}`;
		const email = `ana-${site.key}@mail.example`;
		const domain = `${site.key}.example`;
		const now = Date.now();
		// the browser's clock runs 5 minutes fast: its form is dated after the enrollment the form starts, so
		// only the sequence's exitOn keeps the form's conversion from ending it
		const visit = [
			trackedEvent(domain, anonymousId, `${anonymousId}-s`, 'pageview', '/demo/contact', new Date(now - MINUTE)),
			trackedEvent(domain, anonymousId, `${anonymousId}-s`, 'form_submit', '/demo/contact', new Date(now + 5 * MINUTE)),
		];
		await storeTrackedEvents(prisma, site.id, visit);

		// the form's lead reaches 03 before its events reach 01: 02 then finds the conversion's lead
		const lead = await chain.deliver('crm-lead-processor', site, {
			leads: [{ kind: 'lead', eventId: uuidv7(), lead: { site: site.key, email, anonymousId, firstName: 'Ana', timezone: 'UTC', consent: true }, emailHash: emailHash(email), country: null, receivedAt: new Date().toISOString() }],
		});
		expect(lead.error).toBeUndefined();
		const leadId = (await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email } })).id;
		const enrollment = await prisma.sequenceEnrollment.findFirstOrThrow({ where: { leadId } });
		expect(enrollment).toMatchObject({ status: 'active', nextStep: 1 });
		expect(enrollment.enrolledAt.getTime()).toBeLessThan(now + 5 * MINUTE);
		expect((await smtp.messages(email)).map((mail) => mail.parsed.subject)).toEqual(['Welcome, Ana']);

		const before = chain.runs.length;
		const events = await chain.deliver('crm-visitor-processor', site, { events: visit });
		expect(events.error).toBeUndefined();
		expect(await prisma.conversion.findMany({ where: { siteId: site.id }, select: { goal: true, leadId: true } })).toEqual([{ goal: 'contact-request', leadId }]);
		expect(unenrollments(before)).toEqual([{ leadId, unenrolled: 0, goals: ['contact-request'] }]);
		expect(await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id: enrollment.id } })).toMatchObject({ status: 'active', nextStep: 1, unenrollReason: null });

		// later the lead buys: the conversion the welcome sequence exits on
		const purchase = [trackedEvent(domain, anonymousId, `${anonymousId}-s`, 'pageview', '/demo/checkout/done', new Date(now + 10 * MINUTE))];
		await storeTrackedEvents(prisma, site.id, purchase);
		const later = chain.runs.length;
		expect((await chain.deliver('crm-visitor-processor', site, { events: purchase })).error).toBeUndefined();
		expect(unenrollments(later)).toEqual([{ leadId, unenrolled: 1, goals: ['purchase'] }]);
		expect(await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id: enrollment.id } })).toMatchObject({ status: 'unenrolled', unenrollReason: 'conversion: purchase', nextRunAt: null });
		expect(await smtp.messages(email)).toHaveLength(1);
	});
});
