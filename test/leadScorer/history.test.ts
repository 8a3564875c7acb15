/**
 * What a rescore reads about a lead, from real Postgres: its tags, its browsers in the order it met
 * them, each browser's events (linked to a visitor or not yet) and the sessions the Visitor
 * Processor stored. Each part is read back through the score it gives.
 */
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { rescoreLeads } from '../../nodes/LeadScorer/store';
import { createTestSite, storeEvents, testPrisma } from '../helpers/db';

const DAY = 86_400_000;

describe('a rescore reads the lead\'s history from the database', () => {
	let prisma: PrismaClient;

	beforeAll(() => {
		prisma = testPrisma();
	});
	afterAll(async () => {
		await prisma.$disconnect();
	});

	it('scores its tags, the events of each of its browsers and its stored sessions, and lists its browsers in the order it met them', async () => {
		const { id: siteId, key } = await createTestSite(prisma, 'history');
		const config = parseSiteConfig({
			site: { key, name: 'History', domain: `${key}.example` },
			tracking: { allowedOrigins: [`https://${key}.example`] },
			crm: {
				leadScoringRules: [
					{ id: 'pageviews', event: 'pageview', score: 1 },
					{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5 },
					{ id: 'demo', event: 'demo_request', score: 40 },
					{ id: 'returning', visits: 2, score: 7 },
					{ id: 'vip', field: 'tag', operator: 'contains', value: 'vip', score: 3 },
				],
			},
		});
		const now = Date.UTC(2026, 10, 20);
		const lead = await prisma.lead.create({ data: { siteId, email: 'ana@history.io', emailHash: uuidv7() } });
		await prisma.leadTag.createMany({ data: ['newsletter', 'vip'].map((tag) => ({ siteId, leadId: lead.id, tag })) });
		// The phone was met first although its id sorts last.
		const browsers = [
			{ anonymousId: 'z-phone', firstSeenAt: now - 3 * DAY },
			{ anonymousId: 'a-laptop', firstSeenAt: now - DAY },
		];
		for (const { anonymousId, firstSeenAt } of browsers) {
			const visitor = await prisma.visitor.create({ data: { siteId, anonymousId, leadId: lead.id, firstSeenAt: new Date(firstSeenAt), lastSeenAt: new Date(firstSeenAt) } });
			await prisma.visitorSession.create({
				data: { siteId, visitorId: visitor.id, sessionKey: uuidv7(), startedAt: new Date(firstSeenAt), lastActivityAt: new Date(firstSeenAt), pageviews: 1, eventCount: 1, durationSeconds: 0, isBounce: true, engagementLevel: 'low', channel: 'Direct' },
			});
		}
		const event = (anonymousId: string, type: string, path: string, name: string | null = null) => ({
			siteId,
			eventId: uuidv7(),
			anonymousId,
			type,
			name,
			path,
			url: `https://${key}.example${path}`,
			occurredAt: new Date(now - DAY),
		});
		// Found by the browser's anonymous id, whether the Visitor Processor has linked them to its visitor yet or not (these are not).
		await storeEvents(prisma, [event('z-phone', 'pageview', '/'), event('z-phone', 'pageview', '/pricing'), event('a-laptop', 'pageview', '/pricing'), event('a-laptop', 'custom', '/demo', 'demo_request')]);
		// A browser of another lead, and an event of a browser of nobody: neither is the lead's.
		await prisma.visitor.create({ data: { siteId, anonymousId: 'other', firstSeenAt: new Date(now), lastSeenAt: new Date(now) } });
		await storeEvents(prisma, [event('other', 'pageview', '/pricing'), event('nobody', 'custom', '/demo', 'demo_request')]);

		const outcomes = await prisma.$transaction((tx) => rescoreLeads(tx, { siteId, config, rules: compileScoringRules(config.crm), now }, [lead.id]));
		const outcome = outcomes.get(lead.id);

		expect(outcome?.lead.visitors).toEqual(['z-phone', 'a-laptop']);
		expect(outcome?.lead.events).toBe(4);
		expect(Object.fromEntries(outcome?.score.rules.map((rule) => [rule.rule, rule.points]) ?? [])).toEqual({ pageviews: 3, pricing: 10, demo: 40, returning: 7, vip: 3 });
		expect(outcome?.lead.score).toBe(63);
	});
});
