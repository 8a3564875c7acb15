import type { INode } from 'n8n-workflow';

import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const LOGGER = 'n8n-nodes-tracking-crm.activityLogger';

function workflow(parameters: INode['parameters'], options: { continueOnFail?: boolean } = {}): WorkflowJson {
	return {
		name: 'Activity Logger test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'logger',
				name: 'Activity Logger',
				type: LOGGER,
				typeVersion: 1,
				position: [200, 0],
				parameters,
				credentials: { postgres: { id: '1', name: 'CRM database' } },
				...(options.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
			},
		],
		connections: { Start: { main: [[{ node: 'Activity Logger', type: 'main', index: 0 }]] } },
	};
}

const credentials = () => ({ postgres: postgresCredential() });

describe('Activity Logger node in the n8n execution engine', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	let leadId: string;
	let visitorId: string;

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'activity');
		const lead = await prisma.lead.create({ data: { siteId: site.id, email: 'ana@shop.example', emailHash: 'f'.repeat(64) } });
		leadId = lead.id;
		const visitor = await prisma.visitor.create({
			data: { siteId: site.id, anonymousId: 'anon-activity-1', leadId, firstSeenAt: new Date('2026-11-01T09:00:00Z'), lastSeenAt: new Date('2026-11-01T09:05:00Z') },
		});
		visitorId = visitor.id;
	});

	afterAll(async () => {
		await prisma.$disconnect();
		await disconnectAll();
	});

	const logParameters = {
		operation: 'log',
		siteKey: '={{ $json.site }}',
		subject: '={{ $json.subject }}',
		lead: '={{ $json.lead }}',
		visitor: '={{ $json.anonymousId }}',
		activityType: '={{ $json.type }}',
		description: '={{ $json.description }}',
		data: '={{ JSON.stringify($json.data) }}',
		occurredAt: '={{ $json.occurredAt }}',
		dedupeKey: '',
	};

	it('writes activities for a lead and a visitor, and writes nothing more when the same items run again', async () => {
		const input = [
			{ site: site.key, subject: 'lead', lead: 'ANA@shop.example', type: 'form_submitted', description: 'Sent the contact form', data: { form: 'contact' }, occurredAt: '2026-11-01T09:04:00.000Z' },
			{ site: site.key, subject: 'visitor', anonymousId: 'anon-activity-1', type: 'page_viewed', description: 'Visited /pricing', data: { path: '/pricing' }, occurredAt: '2026-11-01T09:01:00.000Z' },
		];
		const first = await runWorkflow(workflow(logParameters), { input, credentials: credentials(), throwOnError: true });
		const written = first.outputOf('Activity Logger');
		expect(written).toHaveLength(2);
		expect(written.map((row) => row.duplicate)).toEqual([false, false]);
		expect(written[0]).toMatchObject({ leadId, type: 'form_submitted' });
		expect(written[1]).toMatchObject({ visitorId, type: 'page_viewed' });
		// The input's fields go on beside what was logged, so the next CRM node finds the site key.
		expect(written[0]).toMatchObject({ site: site.key, subject: 'lead', lead: 'ANA@shop.example', description: 'Sent the contact form', data: { form: 'contact' } });
		expect(written[1]).toMatchObject({ site: site.key, anonymousId: 'anon-activity-1' });
		expect(first.itemsOf('Activity Logger').map((item) => item.pairedItem)).toEqual([{ item: 0 }, { item: 1 }]);

		const retry = await runWorkflow(workflow(logParameters), { input, credentials: credentials(), throwOnError: true });
		expect(retry.outputOf('Activity Logger').map((row) => row.duplicate)).toEqual([true, true]);
		expect(retry.outputOf('Activity Logger').map((row) => row.activityId)).toEqual(written.map((row) => row.activityId));
		expect(await prisma.activity.count({ where: { siteId: site.id } })).toBe(2);
	});

	it('returns the lead timeline with the activities of its visitors, newest first', async () => {
		const result = await runWorkflow(
			workflow({ operation: 'getTimeline', siteKey: site.key, lead: leadId, limit: 10, types: '' }),
			{ credentials: credentials(), throwOnError: true },
		);
		const timeline = result.outputOf('Activity Logger');
		expect(timeline.map((entry) => entry.type)).toEqual(['form_submitted', 'page_viewed']);
		expect(timeline[1]).toMatchObject({ description: 'Visited /pricing', data: { path: '/pricing' }, occurredAt: '2026-11-01T09:01:00.000Z' });

		const filtered = await runWorkflow(
			workflow({ operation: 'getTimeline', siteKey: site.key, lead: 'ana@shop.example', limit: 10, types: 'page_viewed' }),
			{ credentials: credentials(), throwOnError: true },
		);
		expect(filtered.outputOf('Activity Logger').map((entry) => entry.type)).toEqual(['page_viewed']);
	});

	it('fails with the item and parameter named, and writes nothing for the bad item', async () => {
		const before = await prisma.activity.count({ where: { siteId: site.id } });
		const result = await runWorkflow(workflow(logParameters), {
			input: [{ site: site.key, subject: 'lead', lead: leadId, type: 'Not A Type', description: 'x', data: {}, occurredAt: '2026-11-02T00:00:00Z' }],
			credentials: credentials(),
		});
		expect(result.error?.message).toMatch(/Activity Type: "Not A Type" is not an activity type/);
		expect(result.error?.name).toBe('NodeOperationError');
		expect(await prisma.activity.count({ where: { siteId: site.id } })).toBe(before);

		const unknownSite = await runWorkflow(workflow(logParameters), {
			input: [{ site: 'no-such-site', subject: 'lead', lead: leadId, type: 'x', description: 'x', data: {} }],
			credentials: credentials(),
		});
		expect(unknownSite.error?.message).toMatch(/Site Key: No site with key "no-such-site"/);
	});

	it('keeps going under "continue on fail" and reports the failing item', async () => {
		const result = await runWorkflow(workflow(logParameters, { continueOnFail: true }), {
			input: [
				{ site: site.key, subject: 'lead', lead: 'nobody@shop.example', type: 'note', description: 'x', data: {} },
				{ site: site.key, subject: 'lead', lead: leadId, type: 'note', description: 'Called back', data: {}, occurredAt: '2026-11-03T10:00:00Z' },
			],
			credentials: credentials(),
			throwOnError: true,
		});
		const out = result.outputOf('Activity Logger');
		expect(out[0]).toEqual({ error: 'Lead: No lead "nobody@shop.example" on this site; give the lead\'s id or email address' });
		expect(out[1]).toMatchObject({ leadId, type: 'note', duplicate: false });
	});

	it('never reads another site\'s lead', async () => {
		const other = await createTestSite(prisma, 'other');
		const result = await runWorkflow(
			workflow({ operation: 'getTimeline', siteKey: other.key, lead: leadId, limit: 10, types: '' }),
			{ credentials: credentials() },
		);
		expect(result.error?.message).toMatch(/No lead ".*" on this site/);
	});

	describe('Log CRM Outcome', () => {
		/** The parameters bundled workflow 04 gave Log Activity before it had this operation: the rows must stay the same. */
		const expressionParameters = {
			operation: 'log',
			siteKey: '={{ $json.site }}',
			subject: '={{ $json.leadId || $json.email ? "lead" : "visitor" }}',
			lead: '={{ $json.leadId || $json.email }}',
			visitor: '={{ $json.anonymousId }}',
			activityType: '={{ $json.conversions ? "conversion" : ($json.stageChange ? "stage_changed" : "lead_scored") }}',
			description:
				'={{ $json.conversions ? "Converted: " + $json.conversions.map(c => c.goal + (c.value ? " (" + c.value + (c.currency ? " " + c.currency : "") + ")" : "")).join(", ") : ($json.stageChange ? "Stage " + $json.stageChange.from + " → " + $json.stageChange.to + " at score " + $json.scoring.total : "Score " + $json.scoring.total + ($json.enrichment && $json.enrichment.tags.length ? " · " + $json.enrichment.tags.join(", ") : "")) }}',
			data: '={{ JSON.stringify($json.conversions ? { eventId: $json.id, conversions: $json.conversions.map(c => ({ id: c.conversionId, goal: c.goal, value: c.value, currency: c.currency })) } : { score: $json.scoring.total, engagement: $json.scoring.engagement, fit: $json.scoring.fit, stageChange: $json.stageChange, tags: $json.enrichment ? $json.enrichment.tags : [] }) }}',
			occurredAt: '',
			dedupeKey:
				'={{ $json.conversions ? "conversion:" + $json.conversions.map(c => c.conversionId).join(",") : ($json.stageChange ? "stage:" + ($json.leadId || $json.email) + ":" + $json.stageChange.to : "scored:" + ($json.leadId || $json.email) + ":" + $json.scoring.total) }}',
		};

		/** Items as the Conversion Detector (02) and the Lead Scorer (03, 05) hand them to workflow 04. */
		const outcomes = (siteKey: string, lead: string) => [
			{
				site: siteKey,
				kind: 'event',
				id: '0193a1b2-0000-7000-8000-000000000001',
				anonymousId: 'anon-outcome-1',
				conversions: [
					{ conversionId: 'c-1', goal: 'contact', value: 10, currency: 'EUR', leadId: lead },
					{ conversionId: 'c-2', goal: 'signup' },
				],
			},
			{ site: siteKey, kind: 'event', id: '0193a1b2-0000-7000-8000-000000000002', leadId: lead, conversions: [{ conversionId: 'c-3', goal: 'demo', value: 50 }] },
			{ site: siteKey, kind: 'lead', leadId: lead, scoring: { total: 42, engagement: 30, fit: 12 }, stageChange: { from: 'subscriber', to: 'mql' } },
			{ site: siteKey, kind: 'lead', email: 'ana@shop.example', scoring: { total: 42, engagement: 30, fit: 12 }, enrichment: { tags: ['b2b', 'saas'] } },
			{ site: siteKey, kind: 'lead', leadId: lead, scoring: { total: 7, engagement: 7, fit: 0 }, enrichment: { tags: [] } },
		];

		/** The site's activities by description, its lead's id (different on each site) written as "lead". */
		const storedRows = async (siteId: string) =>
			(await prisma.activity.findMany({ where: { siteId }, orderBy: { description: 'asc' }, select: { type: true, description: true, data: true, dedupeKey: true, leadId: true, visitorId: true } })).map((row) => ({
				...row,
				dedupeKey: row.leadId === null ? row.dedupeKey : row.dedupeKey?.replace(row.leadId, 'lead'),
				leadId: row.leadId === null ? null : 'lead',
				visitorId: row.visitorId === null ? null : 'visitor',
			}));

		it('writes the rows the expressions of workflow 04 wrote, without one expression, and nothing more on a retry', async () => {
			const before = await createTestSite(prisma, 'outcome-expressions');
			const after = await createTestSite(prisma, 'outcome-items');
			for (const target of [before, after]) {
				const lead = await prisma.lead.create({ data: { siteId: target.id, email: 'ana@shop.example', emailHash: 'e'.repeat(64) } });
				await prisma.visitor.create({ data: { siteId: target.id, anonymousId: 'anon-outcome-1', firstSeenAt: new Date('2026-11-01T09:00:00Z'), lastSeenAt: new Date('2026-11-01T09:05:00Z') } });
				const parameters = target === before ? expressionParameters : { operation: 'logOutcome', siteKey: '={{ $json.site }}' };
				const run = await runWorkflow(workflow(parameters), { input: outcomes(target.key, lead.id), credentials: credentials(), throwOnError: true });
				expect(run.outputOf('Activity Logger').map((row) => [row.type, row.duplicate])).toEqual([
					['conversion', false],
					['conversion', false],
					['stage_changed', false],
					['lead_scored', false],
					['lead_scored', false],
				]);
			}
			const rows = await storedRows(after.id);
			expect(rows).toEqual(await storedRows(before.id));
			expect(rows.map((row) => row.description)).toEqual(['Converted: contact (10 EUR), signup', 'Converted: demo (50)', 'Score 42 · b2b, saas', 'Score 7', 'Stage subscriber → mql at score 42']);
			expect(rows[0]).toMatchObject({ visitorId: 'visitor', leadId: null, data: { eventId: '0193a1b2-0000-7000-8000-000000000001', conversions: [{ id: 'c-1', goal: 'contact', value: 10, currency: 'EUR' }, { id: 'c-2', goal: 'signup' }] } });
			expect(rows[4]).toMatchObject({ leadId: 'lead', data: { score: 42, engagement: 30, fit: 12, stageChange: { from: 'subscriber', to: 'mql' }, tags: [] } });

			const lead = await prisma.lead.findFirstOrThrow({ where: { siteId: after.id } });
			const retry = await runWorkflow(workflow({ operation: 'logOutcome', siteKey: '={{ $json.site }}' }), { input: outcomes(after.key, lead.id), credentials: credentials(), throwOnError: true });
			expect(retry.outputOf('Activity Logger').map((row) => row.duplicate)).toEqual([true, true, true, true, true]);
			expect(await prisma.activity.count({ where: { siteId: after.id } })).toBe(5);
		});

		it('names the missing field of an item that reports no outcome, and writes nothing for it', async () => {
			const target = await createTestSite(prisma, 'outcome-bad');
			const result = await runWorkflow(workflow({ operation: 'logOutcome', siteKey: '={{ $json.site }}' }), {
				input: [{ site: target.key, kind: 'lead', leadId: leadId, note: 'no scoring here' }],
				credentials: credentials(),
			});
			expect(result.error?.name).toBe('NodeOperationError');
			expect(result.error?.message).toMatch(/scoring.*is missing: Log CRM Outcome takes items of the Conversion Detector/);
			expect(await prisma.activity.count({ where: { siteId: target.id } })).toBe(0);
		});
	});
});

