/**
 * The score ledger as a rescore reads it: summed per lead and rule by Postgres, in the order the
 * rows were written, whatever order they were inserted in. Real Postgres.
 */
import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { recordedLedger } from '../../nodes/LeadScorer/store';
import { createTestSite, testPrisma } from '../helpers/db';

describe('recordedLedger', () => {
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
});
