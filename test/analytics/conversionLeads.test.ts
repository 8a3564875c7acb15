/**
 * A conversion the Conversion Detector recorded before the Lead Scorer linked its browser to a
 * lead (the contact form that makes the lead is itself the conversion, and both workflows run at
 * once) is the lead's: the lead page's first conversion and last activity, and the campaign
 * figures' conversions after an email, count it. Before, the row's lead_id stayed null and the
 * lead looked as if it had never converted.
 */
import { randomUUID } from 'node:crypto';

import { emailPerformance } from '../../server/analytics/campaigns';
import { leadProfile, leadTimeline } from '../../server/analytics/leads';
import { createTestSite, testPrisma } from '../helpers/db';

const at = (iso: string) => new Date(iso);

describe('a conversion recorded before its browser joined a lead', () => {
	const prisma = testPrisma();
	afterAll(() => prisma.$disconnect());

	it("is the lead's conversion on its page and in the campaign figures", async () => {
		const site = await createTestSite(prisma, 'conversion-lead');
		const visitor = await prisma.visitor.create({ data: { siteId: site.id, anonymousId: 'anon-form', firstSeenAt: at('2026-12-01T09:00:00Z'), lastSeenAt: at('2026-12-01T09:05:00Z') } });
		// Recorded while the browser was no lead yet: no lead_id.
		await prisma.conversion.create({ data: { siteId: site.id, visitorId: visitor.id, goal: 'contact-request', eventId: randomUUID(), occurredAt: at('2026-12-01T09:05:00Z') } });
		const lead = await prisma.lead.create({ data: { siteId: site.id, email: 'late.link@example.com', emailHash: 'late-link', createdAt: at('2026-12-01T09:05:01Z') } });
		// Mailed before a second conversion of the same browser, also recorded without the lead.
		await prisma.emailMessage.create({
			data: { siteId: site.id, leadId: lead.id, idempotencyKey: 'late-link:welcome', toEmail: 'late.link@example.com', subject: 'Welcome', status: 'sent', sentAt: at('2026-12-02T08:00:00Z') },
		});
		await prisma.conversion.create({ data: { siteId: site.id, visitorId: visitor.id, goal: 'purchase', eventId: randomUUID(), occurredAt: at('2026-12-03T10:00:00Z') } });
		const range = { from: at('2026-12-01T00:00:00Z'), to: at('2026-12-05T00:00:00Z'), interval: 'day' as const };

		const unlinked = await leadProfile(prisma, site.id, lead.id);
		expect(unlinked?.convertedAt).toBeNull();
		expect((await emailPerformance(prisma, site.id, range)).total.converted).toBe(0);

		// The Lead Scorer links the browser to the lead.
		await prisma.visitor.update({ where: { id: visitor.id }, data: { leadId: lead.id } });
		const linked = await leadProfile(prisma, site.id, lead.id);
		expect(linked?.convertedAt?.toISOString()).toBe('2026-12-01T09:05:00.000Z');
		expect(linked?.lastActivityAt.toISOString()).toBe('2026-12-03T10:00:00.000Z');
		expect((await emailPerformance(prisma, site.id, range)).total).toMatchObject({ sent: 1, converted: 1 });
		const { entries } = await leadTimeline(prisma, site.id, lead.id, 50);
		expect(entries.filter((entry) => entry.kind === 'conversion').map((entry) => entry.data.goal)).toEqual(['purchase', 'contact-request']);
	});
});
