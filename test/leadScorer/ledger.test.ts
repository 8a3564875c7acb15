/**
 * The score ledger as a rescore reads it: each lead's summary that the Lead Scorer keeps beside it
 * with every row it writes, and for a lead without one, its rows summed per rule by Postgres, in the
 * order they were written, whatever order they were inserted in. Real Postgres.
 */
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { Prisma, type PrismaClient } from '../../lib/db/generated/client';
import { recordedOfSummary } from '../../nodes/LeadScorer/rescore';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { recordedLedger, rescoreLeads } from '../../nodes/LeadScorer/store';
import { createTestSite, storeEvents, testPrisma } from '../helpers/db';

const DAY = 86_400_000;

describe('the score ledger as a rescore reads it', () => {
	let prisma: PrismaClient;

	beforeAll(() => {
		prisma = testPrisma();
	});
	afterAll(async () => {
		await prisma.$disconnect();
	});

	it('sums each lead\'s rows per rule and takes the evidence and times of the latest, ties on the scoring time going to the later write', async () => {
		const site = await createTestSite(prisma, 'ledger');
		const lead = (name: string) => prisma.lead.create({ data: { siteId: site.id, email: `${name}@ledger.io`, emailHash: uuidv7() } });
		const [a, b, c] = [await lead('a'), await lead('b'), await lead('c')];
		const at = (minutes: number) => new Date(Date.UTC(2026, 10, 1) + minutes * 60_000);
		const row = (leadId: string, rule: string, delta: number, causeKey: string, occurredAt: Date, createdAt: Date) => ({ siteId: site.id, leadId, rule, delta, scoreAfter: 0, cause: rule, causeKey, occurredAt, createdAt });
		// Inserted out of their written order: the physical order of the rows must not decide.
		await prisma.leadScore.createMany({
			data: [
				row(a.id, 'pricing', -1.5, '2:2@e2', at(60), at(61)),
				row(a.id, 'pricing', 5, '0:1@e1', at(0), at(1)),
				row(a.id, 'pricing', 5, '1:2@e2', at(60), at(60)),
				row(a.id, 'demo', 30, '0:1@e9', at(30), at(30)),
				row(b.id, 'pricing', 5, '0:1@e7', at(10), at(10)),
				row(c.id, 'pricing', 5, '0:1@e8', at(10), at(10)),
			],
		});

		const recorded = await recordedLedger(prisma, [a.id, b.id]);

		expect(Object.fromEntries([...recorded].map(([leadId, rules]) => [leadId, Object.fromEntries(rules)]))).toEqual({
			[a.id]: {
				pricing: { sum: 8.5, rows: 3, evidence: '2@e2', written: { at: at(60).getTime(), storedAt: at(61).getTime() } },
				demo: { sum: 30, rows: 1, evidence: '1@e9', written: { at: at(30).getTime(), storedAt: at(30).getTime() } },
			},
			[b.id]: { pricing: { sum: 5, rows: 1, evidence: '1@e7', written: { at: at(10).getTime(), storedAt: at(10).getTime() } } },
		});
	});

	it('keeps each lead\'s rows summed beside it through new evidence, decay, a replay and an edited rule; a lead without a summary gets one from its rows', async () => {
		const { id: siteId, key } = await createTestSite(prisma, 'ledger-summary');
		const configOf = (pricingScore: number) =>
			parseSiteConfig({
				site: { key, name: 'Ledger summary', domain: `${key}.example` },
				tracking: { allowedOrigins: [`https://${key}.example`] },
				crm: {
					leadScoringRules: [
						{ id: 'pageviews', event: 'pageview', score: 3, cap: 9, halfLifeDays: 14 },
						{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: pricingScore, halfLifeDays: 7 },
						{ id: 'forms', event: 'form_submit', score: 20 },
					],
				},
			});
		const start = Date.UTC(2026, 10, 1);
		const leads: string[] = [];
		for (const name of ['ana', 'ben', 'cy']) {
			const lead = await prisma.lead.create({ data: { siteId, email: `${name}@summary.io`, emailHash: uuidv7() } });
			const anonymousId = `summary-${name}-${uuidv7()}`;
			await prisma.visitor.create({ data: { siteId, anonymousId, leadId: lead.id, firstSeenAt: new Date(start), lastSeenAt: new Date(start) } });
			const paths = name === 'cy' ? ['/'] : ['/', '/pricing', '/pricing', '/docs'];
			await storeEvents(prisma, paths.map((path, n) => ({ siteId, eventId: uuidv7(), anonymousId, type: 'pageview', path, url: `https://${key}.example${path}`, occurredAt: new Date(start + n * 60_000) })));
			leads.push(lead.id);
		}
		const score = (pricingScore: number, days: number) =>
			prisma.$transaction((tx) => rescoreLeads(tx, { siteId, config: configOf(pricingScore), rules: compileScoringRules(configOf(pricingScore).crm), now: start + days * DAY }, leads));
		/** Each lead's stored summary, and its rows summed by Postgres: the same when the summary is right. */
		const both = async () => {
			const rows = await recordedLedger(prisma, leads);
			const stored = await prisma.lead.findMany({ where: { id: { in: leads } }, select: { id: true, ledgerSummary: true } });
			return {
				summary: Object.fromEntries(stored.map((lead) => [lead.id, Object.fromEntries(recordedOfSummary(lead.ledgerSummary) ?? [])])),
				rows: Object.fromEntries(leads.map((id) => [id, Object.fromEntries(rows.get(id) ?? [])])),
			};
		};
		const rowCount = () => prisma.leadScore.count({ where: { leadId: { in: leads } } });

		await score(10, 1);
		let { summary, rows } = await both();
		expect(summary).toEqual(rows);
		expect(summary[leads[0]].pricing).toMatchObject({ rows: 1, sum: expect.any(Number) });

		// Time passes: the decaying rules write a row each, which the summary adds in.
		await score(10, 15);
		({ summary, rows } = await both());
		expect(summary).toEqual(rows);
		expect(summary[leads[0]].pricing.rows).toBe(2);

		// A replay at the same time finds nothing to add, and changes nothing.
		const before = await rowCount();
		await score(10, 15);
		expect(await rowCount()).toBe(before);
		expect((await both()).summary).toEqual(summary);

		// The site doubles the pricing rule: the change is recorded as one more row.
		await score(20, 15);
		({ summary, rows } = await both());
		expect(summary).toEqual(rows);
		expect(summary[leads[0]].pricing.rows).toBe(3);

		// A lead scored before the summary existed holds null: its rows are summed once and stored.
		await prisma.$executeRawUnsafe(`UPDATE leads SET ledger_summary = NULL WHERE id = ANY($1::uuid[])`, leads);
		expect(await prisma.lead.count({ where: { id: { in: leads }, ledgerSummary: { not: Prisma.DbNull } } })).toBe(0);
		const beforeNull = await rowCount();
		await score(20, 15);
		expect(await rowCount()).toBe(beforeNull);
		({ summary, rows } = await both());
		expect(summary).toEqual(rows);
		expect(summary[leads[0]].pricing.rows).toBe(3);
	});
});
