import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const RULES = [
	{ name: 'contact-request', event: 'form_submit', urlPattern: '/contact*', value: 50.25, currency: 'EUR' },
	{ name: 'pricing-view', event: 'pageview', urlPattern: '/pricing', value: 3 },
];

/**
 * Visitor Processor → Conversion Detector, both ours, as a team would chain them; with `batch`, as
 * bundled workflows 01 and 02 do: each item one visitor's events.
 */
function workflow(ruleOverrides: INode['parameters'] = {}, options: { continueOnFail?: boolean; batch?: boolean } = {}): WorkflowJson {
	const credentials = { postgres: { id: '1', name: 'CRM database' } };
	const input = options.batch ? { input: 'batch' } : {};
	return {
		name: 'Conversion Detector test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{ id: 'vp', name: 'Visitor Processor', type: 'n8n-nodes-tracking-crm.visitorProcessor', typeVersion: 1, position: [200, 0], parameters: { ...input }, credentials },
			{
				id: 'cd',
				name: 'Conversion Detector',
				type: 'n8n-nodes-tracking-crm.conversionDetector',
				typeVersion: 1,
				position: [400, 0],
				parameters: { ...input, ruleSource: 'node', rules: JSON.stringify(RULES), halfLifeDays: 7, lookbackDays: 90, ...ruleOverrides },
				credentials,
				...(options.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
			},
		],
		connections: {
			Start: { main: [[{ node: 'Visitor Processor', type: 'main', index: 0 }]] },
			'Visitor Processor': { main: [[{ node: 'Conversion Detector', type: 'main', index: 0 }]] },
		},
	};
}

/** The Conversion Detector alone, on events the Visitor Processor has already stored. */
function detectorOnly(parameters: INode['parameters'] = {}, options: { continueOnFail?: boolean; batch?: boolean } = {}): WorkflowJson {
	const cd = workflow(parameters, options);
	cd.nodes = cd.nodes.filter((node) => node.name !== 'Visitor Processor');
	cd.connections = { Start: { main: [[{ node: 'Conversion Detector', type: 'main', index: 0 }]] } };
	return cd;
}

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 8, 1, 12, 0, 0);

describe('Conversion Detector node in the n8n execution engine', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	const credentials = () => ({ postgres: postgresCredential() });

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'conversions');
	});
	afterAll(async () => {
		await prisma.$disconnect();
		await disconnectAll();
	});

	function event(at: number, path: string, extra: IDataObject = {}): IDataObject {
		return { site: site.key, id: uuidv7(), anonymousId: 'anon-journey', type: 'pageview', url: `https://${site.key}.example${path}`, occurredAt: new Date(at).toISOString(), ...extra };
	}

	it('records a conversion with credits for every model that add up to its value, once under replay', async () => {
		// three visits: a paid search click, an organic social visit, then a direct visit that converts
		const journey = [
			event(T0, '/', { url: `https://${site.key}.example/?gclid=abc`, context: { clickIds: { gclid: 'abc' } } }),
			event(T0 + 7 * DAY, '/blog', { referrer: 'https://www.facebook.com/' }),
			event(T0 + 14 * DAY, '/contact'),
			event(T0 + 14 * DAY + 60_000, '/contact', { type: 'form_submit', name: 'contact' }),
		];
		const run = await runWorkflow(workflow(), { input: journey, credentials: credentials(), throwOnError: true });
		const converted = run.outputOf('Conversion Detector', 0);
		const notConverted = run.outputOf('Conversion Detector', 1);
		expect(converted).toHaveLength(1);
		expect(notConverted).toHaveLength(3);
		const [conversion] = converted[0].conversions as IDataObject[];
		expect(conversion).toMatchObject({ goal: 'contact-request', value: '50.2500', currency: 'EUR', duplicate: false, leadId: null });

		const attribution = conversion.attribution as Record<string, Array<{ channel: string; credit: number; value: string }>>;
		expect(Object.keys(attribution).sort()).toEqual(['first_touch', 'last_non_direct', 'last_touch', 'linear', 'position_based', 'time_decay']);
		for (const rows of Object.values(attribution)) {
			expect(rows.reduce((sum, row) => sum + Math.round(Number(row.value) * 10_000), 0)).toBe(502_500);
			expect(rows.reduce((sum, row) => sum + row.credit, 0)).toBeCloseTo(1, 9);
		}
		expect(attribution.first_touch).toEqual([expect.objectContaining({ channel: 'Paid Search', value: '50.2500' })]);
		expect(attribution.last_touch).toEqual([expect.objectContaining({ channel: 'Direct', value: '50.2500' })]);
		expect(attribution.last_non_direct).toEqual([expect.objectContaining({ channel: 'Organic Social', value: '50.2500' })]);
		// linear: 50.25 / 3 = 16.75 each
		expect(attribution.linear.map((row) => row.value)).toEqual(['16.7500', '16.7500', '16.7500']);
		// position-based: 40 % first, 20 % middle, 40 % last = 20.10, 10.05, 20.10
		expect(attribution.position_based.map((row) => row.value)).toEqual(['20.1000', '10.0500', '20.1000']);
		// time decay, half-life 7 days, touches 14, 7 and 0 days before: weights 1/4, 1/2, 1 → 1/7, 2/7, 4/7 of 50.25
		expect(attribution.time_decay.map((row) => row.value)).toEqual(['7.1786', '14.3571', '28.7143']);

		const counts = async () => ({
			conversions: await prisma.conversion.count({ where: { siteId: site.id } }),
			attribution: await prisma.attributionData.count({ where: { siteId: site.id } }),
		});
		const before = await counts();
		expect(before).toEqual({ conversions: 1, attribution: 1 + 1 + 1 + 3 + 3 + 3 });
		const replay = await runWorkflow(workflow(), { input: journey, credentials: credentials(), throwOnError: true });
		expect((replay.outputOf('Conversion Detector', 0)[0].conversions as IDataObject[])[0]).toMatchObject({ conversionId: conversion.conversionId, duplicate: true, attribution });
		expect(await counts()).toEqual(before);
	});

	it('checks a batch of visitors’ events at once: each converting event goes on as an item of its own, once however many executions record it', async () => {
		const visitorEvents = (anonymousId: string, converts: boolean) => {
			const at = T0 + 40 * DAY;
			const events = [event(at, '/', { anonymousId }), event(at + 30_000, '/pricing', { anonymousId }), event(at + 60_000, '/contact', { anonymousId })];
			if (converts) events.push(event(at + 90_000, '/contact', { anonymousId, type: 'form_submit', name: 'contact' }));
			return { site: site.key, kind: 'events', anonymousId, events };
		};
		const input = [visitorEvents('anon-batch-1', true), visitorEvents('anon-batch-2', false), visitorEvents('anon-batch-3', true)];
		// Two executions of the same delivery at once, as two n8n queue-mode workers may run a retried one.
		const runs = await Promise.all([1, 2].map(() => runWorkflow(workflow({}, { batch: true }), { input, credentials: credentials(), throwOnError: true })));
		for (const run of runs) {
			const converted = run.outputOf('Conversion Detector', 0);
			// pricing-view for each visitor's /pricing page view, contact-request for the two forms
			expect(converted.map((item) => [item.anonymousId, item.type, (item.conversions as IDataObject[]).map((c) => c.goal)])).toEqual([
				['anon-batch-1', 'pageview', ['pricing-view']],
				['anon-batch-1', 'form_submit', ['contact-request']],
				['anon-batch-2', 'pageview', ['pricing-view']],
				['anon-batch-3', 'pageview', ['pricing-view']],
				['anon-batch-3', 'form_submit', ['contact-request']],
			]);
			expect(converted.every((item) => item.site === site.key && item.kind === 'event' && item.events === undefined && (item.session as IDataObject).visitorId)).toBe(true);
			expect(run.itemsOf('Conversion Detector', 0).map((item) => item.pairedItem)).toEqual([{ item: 0 }, { item: 0 }, { item: 1 }, { item: 2 }, { item: 2 }]);
			expect(run.outputOf('Conversion Detector', 1)).toEqual([]);
		}
		const ids = runs.map((run) => run.outputOf('Conversion Detector', 0).map((item) => (item.conversions as IDataObject[])[0]));
		expect(ids[0].map((conversion) => conversion.conversionId)).toEqual(ids[1].map((conversion) => conversion.conversionId));
		// Each conversion recorded once: one execution wrote it, the other found it.
		expect(ids[0].map((conversion, n) => [conversion.duplicate, ids[1][n].duplicate].sort())).toEqual(Array(5).fill([false, true]));
		expect(ids[1].every((conversion) => Object.keys(conversion.attribution as object).length === 6)).toBe(true);
		const visitors = ['anon-batch-1', 'anon-batch-2', 'anon-batch-3'];
		expect(await prisma.conversion.count({ where: { siteId: site.id, visitor: { anonymousId: { in: visitors } } } })).toBe(5);
		expect(await prisma.attributionData.count({ where: { siteId: site.id, conversion: { visitor: { anonymousId: { in: visitors } } } } })).toBe(5 * 6);

		const quiet = await runWorkflow(workflow({}, { batch: true }), { input: [{ ...visitorEvents('anon-batch-4', false), events: visitorEvents('anon-batch-4', false).events.slice(0, 1) }], credentials: credentials(), throwOnError: true });
		expect(quiet.outputOf('Conversion Detector', 0)).toEqual([]);
		expect(quiet.outputOf('Conversion Detector', 1)).toEqual([expect.objectContaining({ anonymousId: 'anon-batch-4', events: [expect.objectContaining({ session: expect.any(Object) })] })]);
	});

	it('reads the engagement a session had reached at the event, not what the session did after it, however the events are batched', async () => {
		const engagedPricing = [{ name: 'engaged-pricing', event: 'pageview', urlPattern: '/pricing', minEngagementScore: 40, value: 10 }];
		const at = T0 + 45 * DAY;
		const visit = (anonymousId: string) => [
			event(at, '/', { anonymousId }),
			// Two page views and 10 s: 8 + 5 points, short of 40 however engaged the rest of the visit is.
			event(at + 10_000, '/pricing', { anonymousId }),
			event(at + 20_000, '/features', { anonymousId }),
			event(at + 30_000, '/features', { anonymousId, type: 'scroll', props: { depth: 100 } }),
			event(at + 300_000, '/features', { anonymousId, type: 'engagement', props: { engagedMs: 300_000 } }),
			// Four page views (16), five minutes (30) and a full scroll (15): 61 points by now.
			event(at + 310_000, '/pricing', { anonymousId }),
		];
		const goalsOf = (run: Awaited<ReturnType<typeof runWorkflow>>) =>
			run.outputOf('Conversion Detector', 0).map((item) => [item.url, (item.conversions as IDataObject[]).map((c) => c.goal)]);
		const expected = [[`https://${site.key}.example/pricing`, ['engaged-pricing']]];

		const whole = visit('anon-engaged-whole');
		const oneBatch = await runWorkflow(workflow({ rules: JSON.stringify(engagedPricing) }, { batch: true }), {
			input: [{ site: site.key, kind: 'events', anonymousId: 'anon-engaged-whole', events: whole }],
			credentials: credentials(),
			throwOnError: true,
		});
		expect(goalsOf(oneBatch)).toEqual(expected);
		expect((oneBatch.outputOf('Conversion Detector', 0)[0] as IDataObject).id).toBe(whole[5].id);

		const apart = visit('anon-engaged-apart');
		const runs = [];
		for (const events of [apart.slice(0, 2), apart.slice(2)]) {
			runs.push(
				await runWorkflow(workflow({ rules: JSON.stringify(engagedPricing) }, { batch: true }), {
					input: [{ site: site.key, kind: 'events', anonymousId: 'anon-engaged-apart', events }],
					credentials: credentials(),
					throwOnError: true,
				}),
			);
		}
		expect(runs.flatMap(goalsOf)).toEqual(expected);
		const sessions = await prisma.visitorSession.findMany({ where: { siteId: site.id, visitor: { anonymousId: { in: ['anon-engaged-whole', 'anon-engaged-apart'] } } } });
		expect(sessions.map((session) => session.engagementScore)).toEqual([61, 61]);
	});

	it('names the event of a batch that has no visitor yet', async () => {
		const unseen = event(T0 + 50 * DAY, '/');
		const run = await runWorkflow(detectorOnly({}, { batch: true }), { input: [{ site: site.key, kind: 'events', anonymousId: 'anon-unseen', events: [unseen] }], credentials: credentials() });
		expect(run.error?.message).toBe(`Field "events": [0]: Event ${unseen.id} has no visitor yet; run the CRM Visitor Processor on it before this node`);
	});

	describe('matches the rules against the event as stored, not as the item describes it', () => {
		const conversionsOf = async (eventId: unknown) =>
			(await prisma.conversion.findMany({ where: { siteId: site.id, eventId: String(eventId) }, select: { goal: true, value: true } })).map((row) => [row.goal, row.value.toFixed(4)]);

		it('records no conversion for an item that says a stored page view was a contact form, one event per item or in a batch', async () => {
			const stored = event(T0 + 55 * DAY, '/blog', { anonymousId: 'anon-lie' });
			await runWorkflow(workflow(), { input: [stored], credentials: credentials(), throwOnError: true });
			const lie = { ...stored, type: 'form_submit', name: 'contact', url: `https://${site.key}.example/contact` };

			const perItem = await runWorkflow(detectorOnly(), { input: [lie], credentials: credentials(), throwOnError: true });
			expect(perItem.outputOf('Conversion Detector', 0)).toEqual([]);
			expect(perItem.outputOf('Conversion Detector', 1)).toEqual([lie]);
			const batch = await runWorkflow(detectorOnly({}, { batch: true }), { input: [{ site: site.key, kind: 'events', anonymousId: 'anon-lie', events: [lie] }], credentials: credentials(), throwOnError: true });
			expect(batch.outputOf('Conversion Detector', 0)).toEqual([]);
			expect(await conversionsOf(stored.id)).toEqual([]);
		});

		it('converts a stored contact form named by Event ID on an item that holds nothing else of it', async () => {
			const form = event(T0 + 56 * DAY, '/contact', { anonymousId: 'anon-bare', type: 'form_submit', name: 'contact' });
			await runWorkflow(workflow({ rules: '[]' }), { input: [form], credentials: credentials(), throwOnError: true });

			const bare = { site: site.key, eventId: form.id };
			const run = await runWorkflow(detectorOnly({ eventId: '={{ $json.eventId }}' }), { input: [bare], credentials: credentials(), throwOnError: true });
			expect(run.outputOf('Conversion Detector', 1)).toEqual([]);
			expect(run.outputOf('Conversion Detector', 0)).toEqual([{ ...bare, conversions: [expect.objectContaining({ goal: 'contact-request', value: '50.2500', duplicate: false })] }]);
			expect(await conversionsOf(form.id)).toEqual([['contact-request', '50.2500']]);
		});

		it('still refuses an Event ID that names no stored event', async () => {
			const unseen = event(T0 + 57 * DAY, '/contact', { anonymousId: 'anon-unstored', type: 'form_submit', name: 'contact' });
			const run = await runWorkflow(detectorOnly(), { input: [unseen], credentials: credentials() });
			expect(run.error?.message).toBe(`Event ID: Event ${unseen.id} has no visitor yet; run the CRM Visitor Processor on it before this node`);
		});
	});

	it('names the lead a known visitor is, marks it converted, so the bundled workflow 06 can end its sequences', async () => {
		const lead = await prisma.lead.create({ data: { siteId: site.id, email: 'known@convert.example', emailHash: 'known-hash' }, select: { id: true } });
		await prisma.visitor.updateMany({ where: { siteId: site.id, anonymousId: 'anon-journey' }, data: { leadId: lead.id } });
		const at = T0 + 15 * DAY;
		const run = await runWorkflow(workflow(), { input: [event(at, '/contact'), event(at + 60_000, '/contact', { type: 'form_submit', name: 'contact' })], credentials: credentials(), throwOnError: true });
		expect((run.outputOf('Conversion Detector', 0)[0].conversions as IDataObject[])[0]).toMatchObject({ goal: 'contact-request', duplicate: false, leadId: lead.id });
		expect((await prisma.lead.findUniqueOrThrow({ where: { id: lead.id } })).convertedAt).toEqual(new Date(at + 60_000));
	});

	it('reads the rules from the site config by default', async () => {
		await prisma.site.update({
			where: { id: site.id },
			data: {
				config: {
					site: { key: site.key, name: 'x', domain: `${site.key}.example` },
					tracking: { allowedOrigins: [`https://${site.key}.example`] },
					crm: { conversionRules: [{ name: 'docs-visit', event: 'pageview', urlPattern: '/docs/**', value: 1 }] },
				},
			},
		});
		const run = await runWorkflow(workflow({ ruleSource: 'site' }), { input: [event(T0 + 20 * DAY, '/docs/a/b')], credentials: credentials(), throwOnError: true });
		expect((run.outputOf('Conversion Detector', 0)[0].conversions as IDataObject[])[0]).toMatchObject({ goal: 'docs-visit', value: '1.0000' });
	});

	it('names the parameter when the rules are wrong', async () => {
		const badRules = await runWorkflow(workflow({ rules: '[{"name": "x", "value": "ten"}]' }), { input: [event(T0 + 30 * DAY, '/')], credentials: credentials() });
		expect(badRules.error?.message).toMatch(/Conversion Rules: is not a list of conversion rules:\n {2}- \[0\]\.value: expected a number; got "ten"/);
		const noJson = await runWorkflow(workflow({ rules: '[{' }), { input: [event(T0 + 30 * DAY, '/')], credentials: credentials() });
		expect(noJson.error?.message).toMatch(/Conversion Rules: is not valid JSON/);
		const tooLarge = await runWorkflow(workflow({ rules: '[{"name": "x", "event": "pageview", "value": 1e30}]' }), { input: [event(T0 + 30 * DAY, '/')], credentials: credentials() });
		expect(tooLarge.error?.message).toBe('Conversion Rules: is not a list of conversion rules:\n  - [0].value: does not fit Decimal(14, 4): at most 9999999999.9999; got 1e+30 (number)');
	});

	it('refuses a stored site config it cannot read rather than running on the defaults without the site’s goals', async () => {
		const stored = (await prisma.site.findUniqueOrThrow({ where: { id: site.id } })).config as IDataObject;
		const crm = stored.crm as IDataObject;
		await prisma.site.update({ where: { id: site.id }, data: { config: { ...stored, crm: { ...crm, conversionRules: [{ name: 'docs-visit', urlPattern: 7 }] } } } });
		try {
			const run = await runWorkflow(workflow({ ruleSource: 'site' }), { input: [event(T0 + 21 * DAY, '/docs/a')], credentials: credentials() });
			expect(run.error?.message).toMatch(/The config stored for site "[^"]+" does not fit this version of the CRM nodes \(.*crm\.conversionRules\[0\]\.urlPattern/s);
			expect(run.error?.message).toMatch(/install the same version of n8n-nodes-tracking-crm/);
		} finally {
			await prisma.site.update({ where: { id: site.id }, data: { config: stored as object } });
		}
	});

	describe('bad input', () => {
		const pricing = (anonymousId: string) => event(T0 + 40 * DAY, '/pricing', { anonymousId });

		it('refuses an Event ID that is no UUID in its item alone, and detects the good items beside it', async () => {
			const good = [pricing('anon-beside-1'), pricing('anon-beside-2')];
			await runWorkflow(workflow(), { input: good, credentials: credentials(), throwOnError: true });
			const run = await runWorkflow(detectorOnly({}, { continueOnFail: true }), { input: [good[0], { ...good[0], id: 'not-a-uuid' }, good[1]], credentials: credentials(), throwOnError: true });
			expect(run.outputOf('Conversion Detector', 0).map((item) => [item.id, (item.conversions as IDataObject[])[0].goal])).toEqual([
				[good[0].id, 'pricing-view'],
				[good[1].id, 'pricing-view'],
			]);
			expect(run.outputOf('Conversion Detector', 1)).toEqual([{ error: 'Event ID: is "not-a-uuid": give the id of a tracked event (a UUID), such as {{ $json.id }}' }]);
		});

		it.each([
			['={{ $json.missing }}', 'Event ID: is empty (the expression gave undefined): give the id of a tracked event (a UUID), such as {{ $json.id }}'],
			['={{ $json.context }}', 'Event ID: is an object: give the id of a tracked event (a UUID), such as {{ $json.id }}'],
		])('names the Event ID when its expression %s gives no id', async (eventId, error) => {
			const run = await runWorkflow(detectorOnly({ eventId }), { input: [{ ...pricing('anon-expression'), context: { utm_source: 'x' } }], credentials: credentials() });
			expect(run.error?.message).toBe(error);
		});

		it('when a site’s batch statement fails in the database, reruns its items one by one so only the failing item errors', async () => {
			const events = [pricing('anon-rerun-1'), pricing('anon-rerun-2'), pricing('anon-rerun-3')];
			await runWorkflow(workflow(), { input: events, credentials: credentials(), throwOnError: true });
			await prisma.conversion.deleteMany({ where: { eventId: { in: events.map((one) => String(one.id)) } } });
			await prisma.$executeRawUnsafe(`CREATE OR REPLACE FUNCTION refuse_exploding_conversion() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
			await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_exploding_conversion BEFORE INSERT ON conversions FOR EACH ROW WHEN (NEW.event_id = '${events[1].id}') EXECUTE FUNCTION refuse_exploding_conversion()`);
			try {
				const run = await runWorkflow(detectorOnly({}, { continueOnFail: true }), { input: events, credentials: credentials(), throwOnError: true });
				expect(run.outputOf('Conversion Detector', 0).map((item) => item.id)).toEqual([events[0].id, events[2].id]);
				expect(run.outputOf('Conversion Detector', 1)).toHaveLength(1);
				expect(run.outputOf('Conversion Detector', 1)[0].error).toMatch(/refused by the test/);
				const recorded = await prisma.conversion.findMany({ where: { eventId: { in: events.map((one) => String(one.id)) } }, select: { eventId: true } });
				expect(recorded.map((row) => row.eventId).sort()).toEqual([events[0].id, events[2].id].sort());
			} finally {
				await prisma.$executeRawUnsafe('DROP TRIGGER refuse_exploding_conversion ON conversions');
				await prisma.$executeRawUnsafe('DROP FUNCTION refuse_exploding_conversion()');
			}
		});

		it('names the event of a batch whose id is no UUID', async () => {
			const item = { site: site.key, kind: 'events', anonymousId: 'anon-batch-id', events: [pricing('anon-batch-id'), { ...pricing('anon-batch-id'), id: 'not-a-uuid' }] };
			const run = await runWorkflow(detectorOnly({}, { batch: true }), { input: [item], credentials: credentials() });
			expect(run.error?.message).toBe('Field "events": [1].id is "not-a-uuid": each event needs the id it was tracked under (a UUID)');
		});

		it.each([
			[{ halfLifeDays: -3 }, 'Time-Decay Half-Life (Days): is -3: give a number of 0.01 or more'],
			[{ halfLifeDays: 0 }, 'Time-Decay Half-Life (Days): is 0: give a number of 0.01 or more'],
			[{ halfLifeDays: '={{ "abc" }}' }, 'Time-Decay Half-Life (Days): is "abc": give a number of 0.01 or more'],
			[{ lookbackDays: -1 }, 'Lookback Window (Days): is -1: give a number of 1 or more'],
		])('refuses %j, naming the parameter by its label', async (parameters, error) => {
			const run = await runWorkflow(workflow(parameters), { input: [pricing('anon-settings')], credentials: credentials() });
			expect(run.error?.message).toBe(error);
		});
	});
});
