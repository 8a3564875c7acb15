import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { siteConfigSchema, type SiteConfigInput } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { emailFacts } from '../../nodes/shared/contact';
import { compileScoringRules, scoreLead } from '../../nodes/LeadScorer/scoring';
import { createTestSite, postgresCredential, storeEvents, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const DAY = 86_400_000;
const HOUR = 3_600_000;

const CRM: NonNullable<SiteConfigInput['crm']> = {
	leadScoringRules: [
		{ id: 'pageviews', event: 'pageview', score: 1, cap: 40, group: 'engagement', halfLifeDays: 30 },
		{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5, group: 'engagement' },
		{ id: 'forms', event: 'form_submit', score: 15 },
		{ id: 'careers', event: 'pageview', urlPattern: '/careers/**', score: -3 },
		{ id: 'decision-maker', field: 'jobTitle', operator: 'matches', value: '\\b(ceo|cto|founder|head)\\b', score: 10 },
		{ id: 'free-mail', field: 'freeMail', operator: 'isTrue', score: -5 },
	],
	groupCaps: { engagement: 60 },
	maxScore: 100,
};

function workflow(parameters: INode['parameters'] = {}, options: { continueOnFail?: boolean } = {}): WorkflowJson {
	return {
		name: 'Lead Scorer test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'ls',
				name: 'Lead Scorer',
				type: 'n8n-nodes-tracking-crm.leadScorer',
				typeVersion: 1,
				position: [200, 0],
				parameters,
				credentials: { postgres: { id: '1', name: 'CRM database' } },
				...(options.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
			},
		],
		connections: { Start: { main: [[{ node: 'Lead Scorer', type: 'main', index: 0 }]] } },
	};
}

describe('Lead Scorer node in the n8n execution engine', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	const credentials = () => ({ postgres: postgresCredential() });
	const run = (input: IDataObject[], parameters: INode['parameters'] = {}) => runWorkflow(workflow(parameters), { input, credentials: credentials(), throwOnError: true });

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'leads');
		const config = { site: { key: site.key, name: 'Leads', domain: `${site.key}.example` }, tracking: { allowedOrigins: [`https://${site.key}.example`] }, crm: CRM };
		siteConfigSchema.parse(config);
		await prisma.site.update({ where: { id: site.id }, data: { config } });
	});
	afterAll(async () => {
		await prisma.$disconnect();
		await disconnectAll();
	});

	/** What the CRM Tracker Trigger emits for one `/api/lead` delivery. */
	function leadItem(lead: IDataObject, extra: IDataObject = {}): IDataObject {
		return { site: site.key, siteId: site.id, kind: 'lead', lead: { site: site.key, consent: false, ...lead }, emailHash: 'x', country: null, receivedAt: new Date().toISOString(), eventId: uuidv7(), ...extra };
	}

	/** An anonymous history: `sessions` visits of `perSession` events, stored as the receiver and Visitor Processor leave them. */
	async function anonymousHistory(anonymousId: string, start: number, sessions: number, perSession: number, firstTouch: IDataObject, into = site): Promise<number> {
		const site = into;
		const visitor = await prisma.visitor.create({
			data: { siteId: site.id, anonymousId, firstSeenAt: new Date(start), lastSeenAt: new Date(start + sessions * DAY), firstTouch: { ...firstTouch, at: new Date(start).toISOString() }, sessionCount: sessions },
		});
		const paths = ['/', '/pricing', '/blog/a', '/careers/dev', '/docs'];
		const rows = [];
		for (let s = 0; s < sessions; s++) {
			// the latest session not yet stored by the Visitor Processor: its events are part of the history, but it is no visit yet
			const stored =
				s === sessions - 1
					? null
					: await prisma.visitorSession.create({
							data: { siteId: site.id, visitorId: visitor.id, sessionKey: `${anonymousId}:s${s}`, startedAt: new Date(start + s * DAY), lastActivityAt: new Date(start + s * DAY + (perSession - 1) * 60_000) },
						});
			for (let e = 0; e < perSession; e++) {
				const path = paths[(s + e) % paths.length];
				rows.push({
					siteId: site.id,
					eventId: uuidv7(),
					anonymousId,
					sessionKey: `${anonymousId}-s${s}`,
					visitorId: stored ? visitor.id : null,
					sessionId: stored?.id ?? null,
					type: e === perSession - 1 && s % 2 === 0 ? 'form_submit' : 'pageview',
					url: `https://${site.key}.example${path}`,
					path,
					occurredAt: new Date(start + s * DAY + e * 60_000),
				});
			}
		}
		await storeEvents(prisma, rows);
		return rows.length;
	}

	/** The score of a lead computed from scratch by the pure scorer, from what the database holds. */
	async function scoreFromScratch(leadId: string): Promise<number> {
		const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		const site = { id: lead.siteId };
		const visitors = await prisma.visitor.findMany({ where: { leadId }, select: { id: true, anonymousId: true } });
		const events = await prisma.visitorEvent.findMany({ where: { siteId: site.id, anonymousId: { in: visitors.map((v) => v.anonymousId) } } });
		const sessions = await prisma.visitorSession.findMany({ where: { visitorId: { in: visitors.map((v) => v.id) } } });
		const config = siteConfigSchema.parse((await prisma.site.findUniqueOrThrow({ where: { id: site.id } })).config);
		const mail = emailFacts(lead.email);
		const result = scoreLead(
			compileScoringRules(config.crm),
			events.map((e) => ({ eventId: e.eventId, type: e.type, name: e.name, url: e.url, occurredAt: e.occurredAt.getTime() })),
			{ emailDomain: mail.domain, jobTitle: lead.jobTitle, company: lead.company, country: lead.country, freeMail: mail.freeMail, disposableEmail: mail.disposable },
			(lead.scoredAt as Date).getTime(),
			sessions.map((session) => ({ id: session.id, startedAt: session.startedAt.getTime() })),
		);
		return result.total;
	}

	it('merges the anonymous history of two devices into one lead with a score recomputed from scratch', async () => {
		const start = Date.now() - 40 * DAY;
		const laptop = `anon-laptop-${uuidv7()}`;
		const phone = `anon-phone-${uuidv7()}`;
		const laptopEvents = await anonymousHistory(laptop, start + DAY, 6, 25, { channel: 'Organic Search' });
		const phoneEvents = await anonymousHistory(phone, start, 4, 20, { channel: 'Paid Social' });

		const first = await run([leadItem({ email: 'Jane.Doe+webinar@Gmail.com', anonymousId: laptop, jobTitle: 'Head of Growth', firstName: 'Jane' }, { country: 'DE' })]);
		const [out] = first.outputOf('Lead Scorer', 0);
		const leadId = out.leadId as string;
		const afterFirst = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		expect(afterFirst).toMatchObject({ email: 'janedoe@gmail.com', firstName: 'Jane', country: 'DE', jobTitle: 'Head of Growth' });
		expect(afterFirst.score).toBeCloseTo(await scoreFromScratch(leadId), 2);

		// the same person identifies on the phone with another spelling of the address
		await run([leadItem({ email: 'janedoe@googlemail.com', anonymousId: phone })]);
		const leads = await prisma.lead.findMany({ where: { siteId: site.id, email: 'janedoe@gmail.com' } });
		expect(leads).toHaveLength(1);
		const lead = leads[0];
		expect(lead.id).toBe(leadId);

		const visitors = await prisma.visitor.findMany({ where: { siteId: site.id, anonymousId: { in: [laptop, phone] } } });
		expect(visitors.map((v) => v.leadId)).toEqual([leadId, leadId]);
		const linked = await prisma.visitorEvent.count({ where: { siteId: site.id, anonymousId: { in: visitors.filter((v) => v.leadId === leadId).map((v) => v.anonymousId) } } });
		expect(linked).toBe(laptopEvents + phoneEvents);

		const fromScratch = await scoreFromScratch(leadId);
		expect(lead.score).toBeCloseTo(fromScratch, 2);
		// never two totals added: the group cap holds over the merged history
		expect(lead.engagementScore).toBeLessThanOrEqual(60 + 15 * 5);
		expect(lead.firstTouch).toMatchObject({ channel: 'Paid Social', at: new Date(start).toISOString() });

		// every point is explained: the deltas of lead_scores add up to the score
		const rows = await prisma.leadScore.findMany({ where: { leadId } });
		expect(rows.reduce((sum, row) => sum + row.delta, 0)).toBeCloseTo(lead.score, 2);
		expect(new Set(rows.map((row) => row.rule))).toEqual(new Set(['pageviews', 'pricing', 'forms', 'careers', 'decision-maker', 'free-mail']));
		expect(rows.find((row) => row.rule === 'free-mail')).toMatchObject({ delta: -5, causeKey: '0:match:true' });
	});

	it('scores repeat visits over the merged history of two devices and explains them in lead_scores', async () => {
		const visits = await createTestSite(prisma, 'visits');
		const config = {
			site: { key: visits.key, name: 'Visits', domain: `${visits.key}.example` },
			tracking: { allowedOrigins: [`https://${visits.key}.example`] },
			crm: {
				leadScoringRules: [
					{ id: 'pageviews', event: 'pageview', score: 1, cap: 5 },
					{ id: 'returning', visits: 4, score: 20 },
					{ id: 'each-return', visits: 2, perVisit: true, score: 5, halfLifeDays: 30 },
				],
			},
		};
		siteConfigSchema.parse(config);
		await prisma.site.update({ where: { id: visits.id }, data: { config } });
		const start = Date.now() - 10 * DAY;
		const laptop = `anon-v-laptop-${uuidv7()}`;
		const phone = `anon-v-phone-${uuidv7()}`;
		// 2 and 3 sessions stored: each history's latest visit is not sessionized yet
		await anonymousHistory(laptop, start, 3, 3, { channel: 'Direct' }, visits);
		await anonymousHistory(phone, start + HOUR, 4, 2, { channel: 'Direct' }, visits);
		const item = (email: string, anonymousId: string) => ({ site: visits.key, email, anonymousId });

		const [first] = (await run([item('visits@acme.io', laptop)])).outputOf('Lead Scorer', 0);
		const rules = (out: IDataObject) => Object.fromEntries(((out.scoring as IDataObject).rules as IDataObject[]).map((rule) => [rule.rule, [rule.matches, rule.points]]));
		expect(rules(first).returning).toEqual([0, 0]);
		expect(rules(first)['each-return'][0]).toBe(1);

		const [merged] = (await run([item('visits@acme.io', phone)])).outputOf('Lead Scorer', 0);
		const leadId = merged.leadId as string;
		expect(leadId).toBe(first.leadId);
		// 2 + 3 visits: the threshold of 4 is reached only by the merged history
		expect(rules(merged).returning).toEqual([1, 20]);
		expect(rules(merged)['each-return'][0]).toBe(4);
		const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		expect(lead.score).toBeCloseTo(await scoreFromScratch(leadId), 2);
		const returning = await prisma.leadScore.findMany({ where: { leadId, rule: 'returning' } });
		expect(returning).toEqual([expect.objectContaining({ delta: 20, cause: expect.stringMatching(/^5 visits \(at least 4 visits: 20\), latest session [0-9a-f-]{36}$/) })]);
		const rows = await prisma.leadScore.findMany({ where: { leadId } });
		expect(rows.reduce((sum, row) => sum + row.delta, 0)).toBeCloseTo(lead.score, 2);

		// a replay finds nothing new to explain
		const [replay] = (await run([item('visits@acme.io', phone)])).outputOf('Lead Scorer', 0);
		expect((replay.scoring as IDataObject).rowsWritten).toBe(0);
	});

	it('writes lead_scores and stage transitions once under a 3× replay, and emits a stage change only the first time', async () => {
		const anonymousId = `anon-replay-${uuidv7()}`;
		await anonymousHistory(anonymousId, Date.now() - 3 * DAY, 2, 10, { channel: 'Direct' });
		const items = [
			leadItem({ email: 'replay@acme.io', anonymousId, jobTitle: 'CTO' }),
			leadItem({ email: 'quiet@acme.io' }),
		];
		const runs = [];
		const counts = [];
		for (let attempt = 0; attempt < 3; attempt++) {
			const result = await run(items);
			runs.push({ all: result.outputOf('Lead Scorer', 0), changed: result.outputOf('Lead Scorer', 1) });
			const leadIds = runs[0].all.map((item) => item.leadId as string);
			counts.push({
				scores: await prisma.leadScore.count({ where: { leadId: { in: leadIds } } }),
				transitions: await prisma.leadStageChange.findMany({ where: { leadId: { in: leadIds } }, select: { leadId: true, fromStage: true, toStage: true } }),
			});
		}
		expect(runs.map((r) => r.all.length)).toEqual([2, 2, 2]);
		const [replay] = runs[0].all;
		expect(replay.lead).toMatchObject({ lifecycleStage: 'mql' });
		expect(runs[0].changed.map((item) => (item.lead as IDataObject).email)).toEqual(['replay@acme.io']);
		expect(runs[0].changed[0].stageChange).toEqual({ from: 'subscriber', to: 'mql' });
		expect(runs[1].changed).toEqual([]);
		expect(runs[2].changed).toEqual([]);
		expect(counts[0].transitions).toEqual([{ leadId: replay.leadId, fromStage: 'subscriber', toStage: 'mql' }]);
		expect(counts[1]).toEqual(counts[0]);
		expect(counts[2]).toEqual(counts[0]);
		expect(counts[0].scores).toBeGreaterThan(0);
		expect(runs.map((r) => (r.all[0].scoring as IDataObject).rowsWritten)).toEqual([counts[0].scores, 0, 0]);
	});

	it('rescores by email: new events add a delta row and move the stage on', async () => {
		const anonymousId = `anon-rescore-${uuidv7()}`;
		await anonymousHistory(anonymousId, Date.now() - 2 * DAY, 1, 5, { channel: 'Direct' });
		const [created] = (await run([leadItem({ email: 'grow@beta.io', anonymousId })])).outputOf('Lead Scorer', 0);
		expect(created.lead).toMatchObject({ lifecycleStage: 'lead' });
		const before = await prisma.leadScore.count({ where: { leadId: created.leadId as string } });

		await prisma.visitorEvent.createMany({
			data: Array.from({ length: 3 }, (_, i) => ({ siteId: site.id, eventId: uuidv7(), anonymousId, type: 'form_submit', url: '/contact', occurredAt: new Date(Date.now() - i * HOUR) })),
		});
		const result = await run([{ site: site.key, email: 'GROW@beta.io' }], { operation: 'rescore', lead: '={{ $json.email }}' });
		const [rescored] = result.outputOf('Lead Scorer', 0);
		expect(rescored.leadId).toBe(created.leadId);
		expect(rescored.stageChange).toEqual({ from: 'lead', to: 'mql' });
		expect(result.outputOf('Lead Scorer', 1)).toHaveLength(1);
		const rows = await prisma.leadScore.findMany({ where: { leadId: created.leadId as string, rule: 'forms' }, orderBy: { createdAt: 'asc' } });
		expect(rows.at(-1)).toMatchObject({ delta: 45, causeKey: expect.stringMatching(/^1:\d+:/) });
		expect(await prisma.leadScore.count({ where: { leadId: created.leadId as string } })).toBe(before + 1);
		const { score } = await prisma.lead.findUniqueOrThrow({ where: { id: created.leadId as string } });
		expect(score).toBeCloseTo(await scoreFromScratch(created.leadId as string), 2);
	});

	it('a rescore that finds nothing new only moves the scored time; one that finds a stored score out of step writes it back', async () => {
		const anonymousId = `anon-still-${uuidv7()}`;
		await anonymousHistory(anonymousId, Date.now() - 2 * DAY, 1, 5, { channel: 'Direct' });
		const [created] = (await run([leadItem({ email: 'still@beta.io', anonymousId })])).outputOf('Lead Scorer', 0);
		const leadId = created.leadId as string;
		const stored = () =>
			prisma.lead.findUniqueOrThrow({
				where: { id: leadId },
				select: { score: true, engagementScore: true, fitScore: true, lifecycleStage: true, firstTouch: true, ledgerSummary: true, updatedAt: true, scoredAt: true },
			});
		const rescore = () => run([{ site: site.key, email: 'still@beta.io' }], { operation: 'rescore', lead: '={{ $json.email }}' });
		const first = await stored();
		const rows = await prisma.leadScore.count({ where: { leadId } });
		await new Promise((resolve) => setTimeout(resolve, 5));

		const [again] = (await rescore()).outputOf('Lead Scorer', 0);
		const second = await stored();
		expect(again.scoring).toMatchObject({ total: first.score, rowsWritten: 0 });
		expect({ ...second, scoredAt: null }).toEqual({ ...first, scoredAt: null });
		expect((second.scoredAt as Date).getTime()).toBeGreaterThan((first.scoredAt as Date).getTime());
		expect(await prisma.leadScore.count({ where: { leadId } })).toBe(rows);

		// Scores changed behind the scorer's back, as a hand edit would: the next rescore writes its own.
		await prisma.$executeRawUnsafe('UPDATE leads SET score = 99, fit_score = 99 WHERE id = $1::uuid', leadId);
		await rescore();
		const mended = await stored();
		expect({ score: mended.score, fitScore: mended.fitScore }).toEqual({ score: first.score, fitScore: first.fitScore });
		expect(mended.updatedAt.getTime()).toBeGreaterThan(second.updatedAt.getTime());
		expect(await prisma.leadScore.count({ where: { leadId } })).toBe(rows);
	});

	it('takes flat identify items, stores the phone in E.164 and never merges a browser that belongs to someone else', async () => {
		const anonymousId = `anon-shared-${uuidv7()}`;
		await anonymousHistory(anonymousId, Date.now() - DAY, 1, 3, { channel: 'Direct' });
		const [owner] = (await run([{ site: site.key, email: 'owner@home.io', anonymousId, phone: '030 1234567', country: 'DE' }])).outputOf('Lead Scorer', 0);
		expect(await prisma.lead.findUniqueOrThrow({ where: { id: owner.leadId as string } })).toMatchObject({ phone: '+49301234567', country: 'DE' });
		expect((owner.lead as IDataObject).events).toBe(3);

		const [guest] = (await run([{ site: site.key, email: 'guest@home.io', anonymousId }])).outputOf('Lead Scorer', 0);
		expect(guest.visitorOfOtherLead).toBe(owner.leadId);
		expect(guest.lead).toMatchObject({ visitors: [], events: 0 });
		expect((await prisma.visitor.findUniqueOrThrow({ where: { siteId_anonymousId: { siteId: site.id, anonymousId } } })).leadId).toBe(owner.leadId);
	});

	it('updates a lead’s properties by a later form: its names replace, the others stay, and a replayed form changes nothing', async () => {
		const email = `forms-${uuidv7()}@acme.io`;
		const submit = async (properties: IDataObject) => {
			await run([leadItem({ email, properties })]);
			return prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email }, select: { properties: true, updatedAt: true } });
		};
		const first = await submit({ message: 'Pricing for 10 seats?', plan: 'team' });
		expect(first.properties).toEqual({ message: 'Pricing for 10 seats?', plan: 'team' });
		const second = await submit({ message: 'Can we book a demo?', seats: 25 });
		expect(second.properties).toEqual({ message: 'Can we book a demo?', plan: 'team', seats: 25 });
		expect(second.updatedAt.getTime()).toBeGreaterThan(first.updatedAt.getTime());
		const replayed = await submit({ message: 'Can we book a demo?', seats: 25 });
		expect(replayed).toEqual(second);
		// Two forms of one lead in one batch act as one after the other.
		await run([leadItem({ email, properties: { plan: 'business' } }), leadItem({ email, properties: { plan: 'enterprise', phoneCall: true } })]);
		expect((await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email } })).properties).toEqual({ message: 'Can we book a demo?', plan: 'enterprise', seats: 25, phoneCall: true });
	});

	it('rescores the stalest leads of a site on a schedule, so decay lowers the scores of leads gone quiet', async () => {
		const quiet = await createTestSite(prisma, 'stale');
		const config = {
			site: { key: quiet.key, name: 'Stale', domain: `${quiet.key}.example` },
			tracking: { allowedOrigins: [`https://${quiet.key}.example`] },
			crm: { leadScoringRules: [{ id: 'views', event: 'pageview', score: 4, halfLifeDays: 10 }] },
		};
		siteConfigSchema.parse(config);
		await prisma.site.update({ where: { id: quiet.id }, data: { config } });
		const people = ['old', 'older', 'recent'];
		for (const name of people) await anonymousHistory(`anon-stale-${name}-${quiet.key}`, Date.now() - HOUR, 1, 5, { channel: 'Direct' }, quiet);
		const created = (await run(people.map((name) => ({ site: quiet.key, email: `${name}@stale.io`, anonymousId: `anon-stale-${name}-${quiet.key}` })))).outputOf('Lead Scorer', 0);
		const idOf = Object.fromEntries(created.map((item, n) => [people[n], item.leadId as string]));
		// four views (and a form) about an hour old, 4 points each with a 10-day half-life
		for (const item of created) expect((item.scoring as IDataObject).total).toBeCloseTo(16 * 2 ** (-1 / 240), 1);
		// ten days pass: the events are a half-life old, and the leads were scored at different times
		await prisma.visitorEvent.updateMany({ where: { siteId: quiet.id }, data: { occurredAt: new Date(Date.now() - 10 * DAY - HOUR) } });
		await prisma.lead.update({ where: { id: idOf.old }, data: { scoredAt: new Date(Date.now() - 5 * DAY) } });
		await prisma.lead.update({ where: { id: idOf.older }, data: { scoredAt: new Date(Date.now() - 9 * DAY) } });

		const result = await run([{ site: quiet.key }], { operation: 'rescoreStale', limit: 2 });
		const rescored = result.outputOf('Lead Scorer', 0);
		expect(rescored.map((item) => item.leadId)).toEqual([idOf.older, idOf.old]);
		for (const item of rescored) expect((item.scoring as IDataObject).total).toBeCloseTo(8, 1);
		const rows = await prisma.leadScore.findMany({ where: { leadId: idOf.older }, orderBy: { createdAt: 'asc' } });
		expect(rows.at(-1)).toMatchObject({ rule: 'views', delta: expect.closeTo(-8, 1), cause: expect.stringMatching(/^recomputed \(decay or changed rules\): 4 × pageview/) });
		expect((await prisma.lead.findUniqueOrThrow({ where: { id: idOf.recent } })).score).toBe((created[2].scoring as IDataObject).total);
	});

	it('writes a batch of items as if one ran after the other: repeated leads, a browser claimed twice, and nothing written when an item is bad', async () => {
		const shared = `anon-batch-${uuidv7()}`;
		await anonymousHistory(shared, Date.now() - 2 * DAY, 2, 10, { channel: 'Direct' });
		const items = [
			leadItem({ email: 'Batch.One@acme.io', anonymousId: shared, firstName: 'One', jobTitle: 'CEO' }),
			leadItem({ email: 'batch.two@acme.io', anonymousId: shared }),
			leadItem({ email: 'batch.one@ACME.io', lastName: 'Later' }),
		];
		const bad = await runWorkflow(workflow(), { input: [...items, leadItem({ email: 'broken' })], credentials: credentials() });
		expect(bad.error?.message).toMatch(/Field "lead\.email"/);
		expect(await prisma.lead.count({ where: { siteId: site.id, email: { startsWith: 'batch.' } } })).toBe(0);

		const result = await run(items);
		const [one, two, again] = result.outputOf('Lead Scorer', 0);
		expect(again.leadId).toBe(one.leadId);
		expect(two.leadId).not.toBe(one.leadId);
		expect(two.visitorOfOtherLead).toBe(one.leadId);
		expect(one.lead).toMatchObject({ visitors: [shared], events: 20 });
		expect(await prisma.lead.findUniqueOrThrow({ where: { id: one.leadId as string } })).toMatchObject({ firstName: 'One', lastName: 'Later', jobTitle: 'CEO' });
		// the first item of a lead reports what the run recorded; the repeat finds it recorded
		expect(one.stageChange).toEqual({ from: 'subscriber', to: 'mql' });
		expect(again.stageChange).toBeNull();
		expect((again.scoring as IDataObject).rowsWritten).toBe(0);
		expect((one.scoring as IDataObject).rowsWritten).toBe(await prisma.leadScore.count({ where: { leadId: one.leadId as string } }));
		expect(result.outputOf('Lead Scorer', 1).map((item) => item.leadId)).toEqual([one.leadId]);
		expect((await prisma.lead.findUniqueOrThrow({ where: { id: one.leadId as string } })).score).toBeCloseTo(await scoreFromScratch(one.leadId as string), 2);

		// rescoring a batch by id and by email variants in one run
		const rescored = await run(
			[{ site: site.key, ref: one.leadId }, { site: site.key, ref: 'BATCH.TWO@acme.io' }, { site: site.key, ref: ' Batch.One@ACME.IO ' }],
			{ operation: 'rescore', lead: '={{ $json.ref }}' },
		);
		expect(rescored.outputOf('Lead Scorer', 0).map((item) => item.leadId)).toEqual([one.leadId, two.leadId, one.leadId]);
	});

	it('two executions of the same batch at once record every score row and stage change once', async () => {
		const people = await Promise.all(
			Array.from({ length: 8 }, async (_, n) => {
				const anonymousId = `anon-concurrent-${n}-${uuidv7()}`;
				await anonymousHistory(anonymousId, Date.now() - 3 * DAY, 2, 6, { channel: 'Direct' });
				return leadItem({ email: `concurrent-${n}@acme.io`, anonymousId, jobTitle: n % 2 ? 'CTO' : 'Engineer' });
			}),
		);
		const [a, b] = await Promise.all([run(people), run([...people].reverse())]);
		const emitted = [...a.outputOf('Lead Scorer', 1), ...b.outputOf('Lead Scorer', 1)].map((item) => item.leadId as string);
		const leadIds = a.outputOf('Lead Scorer', 0).map((item) => item.leadId as string);
		const transitions = await prisma.leadStageChange.findMany({ where: { leadId: { in: leadIds } }, select: { leadId: true } });
		expect(transitions.map((row) => row.leadId).sort()).toEqual([...emitted].sort());
		expect(new Set(emitted).size).toBe(emitted.length);
		for (const leadId of leadIds) {
			const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
			const rows = await prisma.leadScore.findMany({ where: { leadId } });
			expect(rows.reduce((sum, row) => sum + row.delta, 0)).toBeCloseTo(lead.score, 2);
			expect(lead.score).toBeCloseTo(await scoreFromScratch(leadId), 2);
		}
	});

	it('writes a large batch by transactions at once, and stores what one transaction at a time stores', async () => {
		const people = 360;
		// The same event ids on both sites: score rows name the event that caused them.
		const eventIds = Array.from({ length: people * 3 }, () => uuidv7());
		const sites = await Promise.all(
			['parts-pooled', 'parts-single'].map(async (name) => {
				const created = await createTestSite(prisma, name);
				const config = { site: { key: created.key, name, domain: `${created.key}.example` }, tracking: { allowedOrigins: [`https://${created.key}.example`] }, crm: CRM };
				await prisma.site.update({ where: { id: created.id }, data: { config } });
				const paths = ['/pricing', '/', '/careers/dev'];
				await storeEvents(
					prisma,
					Array.from({ length: people }, (_, n) =>
						paths.map((path, e) => ({
							siteId: created.id,
							eventId: eventIds[n * 3 + e],
							anonymousId: `browser-${n}`,
							type: e === 2 && n % 4 === 0 ? 'form_submit' : 'pageview',
							url: `https://${created.key}.example${path}`,
							path,
							occurredAt: new Date(Date.now() - (n % 30) * DAY - e * HOUR),
						})),
					).flat(),
				);
				return created;
			}),
		);
		// Every 40th item repeats the lead of an item 39 before it, every 50th names the browser of an earlier item: items
		// far apart in the batch, which must still go into one transaction and act in their order.
		const emailOf = (n: number) => `person-${n}@${n % 3 === 0 ? 'gmail.com' : 'acme.io'}`;
		// One receipt time for every item of both runs: a browser is first seen when its item was received,
		// and a lead lists its browsers in the order it met them.
		const receivedAt = new Date().toISOString();
		const itemsOf = (target: { id: string; key: string }) =>
			Array.from({ length: people }, (_, n) => ({
				site: target.key,
				siteId: target.id,
				kind: 'lead',
				lead: {
					site: target.key,
					consent: true,
					email: emailOf(n % 40 === 39 ? n - 39 : n),
					anonymousId: `browser-${n % 50 === 49 ? (n >= 149 ? n - 149 : n - 1) : n}`,
					jobTitle: n % 2 ? 'CTO' : 'Engineer',
				},
				receivedAt,
			}));
		await prisma.$executeRawUnsafe('CREATE TABLE lead_writers (site_id uuid, pid int, xid bigint)');
		await prisma.$executeRawUnsafe(`CREATE FUNCTION note_lead_writer() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN INSERT INTO lead_writers VALUES (NEW.site_id, pg_backend_pid(), txid_current()); RETURN NEW; END $$`);
		await prisma.$executeRawUnsafe('CREATE TRIGGER note_lead_writer AFTER INSERT ON leads FOR EACH ROW EXECUTE FUNCTION note_lead_writer()');
		try {
			const pooled = await runWorkflow(workflow(), { input: itemsOf(sites[0]), credentials: credentials(), throwOnError: true });
			await disconnectAll();
			const single = await runWorkflow(workflow(), { input: itemsOf(sites[1]), credentials: { postgres: { ...postgresCredential(), maxConnections: 1 } }, throwOnError: true });
			await disconnectAll();

			const writers = async (siteId: string) =>
				(await prisma.$queryRawUnsafe<Array<{ pids: number; transactions: number }>>(`SELECT count(DISTINCT pid)::int AS pids, count(DISTINCT xid)::int AS transactions FROM lead_writers WHERE site_id = $1::uuid`, siteId))[0];
			const atOnce = await writers(sites[0].id);
			expect(atOnce.transactions).toBeGreaterThan(1);
			expect(atOnce.pids).toBeGreaterThan(1);
			expect(await writers(sites[1].id)).toEqual({ pids: 1, transactions: 1 });

			const reported = (result: typeof pooled) => {
				const outputs = result.outputOf('Lead Scorer', 0);
				const emailOf = new Map(outputs.map((item) => [item.leadId as string, (item.lead as IDataObject).email]));
				return outputs.map((item) => ({
					email: (item.lead as IDataObject).email,
					visitors: (item.lead as IDataObject).visitors,
					events: (item.lead as IDataObject).events,
					total: (item.scoring as IDataObject).total,
					rowsWritten: (item.scoring as IDataObject).rowsWritten,
					stageChange: item.stageChange,
					visitorOfOtherLead: item.visitorOfOtherLead === undefined ? undefined : emailOf.get(item.visitorOfOtherLead as string),
				}));
			};
			const stored = async (siteId: string) => ({
				leads: await prisma.lead.findMany({ where: { siteId }, orderBy: { email: 'asc' }, select: { email: true, score: true, lifecycleStage: true, jobTitle: true } }),
				visitors: (await prisma.visitor.findMany({ where: { siteId }, orderBy: { anonymousId: 'asc' }, select: { anonymousId: true, lead: { select: { email: true } } } })).map((visitor) => [visitor.anonymousId, visitor.lead?.email]),
				scores: (await prisma.leadScore.findMany({ where: { siteId }, select: { rule: true, delta: true, causeKey: true, lead: { select: { email: true } } } }))
					.map((row) => `${row.lead.email} ${row.rule} ${row.delta.toFixed(6)} ${row.causeKey}`)
					.sort(),
				stages: (await prisma.leadStageChange.findMany({ where: { siteId }, select: { fromStage: true, toStage: true, lead: { select: { email: true } } } })).map((row) => `${row.lead.email} ${row.fromStage}→${row.toStage}`).sort(),
			});
			expect(reported(pooled)).toEqual(reported(single));
			expect(reported(pooled).filter((item) => item.visitorOfOtherLead)).toHaveLength(7);
			const [pooledRows, singleRows] = [await stored(sites[0].id), await stored(sites[1].id)];
			expect(pooledRows).toEqual(singleRows);
			expect(pooledRows.leads).toHaveLength(people - 9);
			expect(pooledRows.scores.length).toBeGreaterThan(people);
		} finally {
			await prisma.$executeRawUnsafe('DROP TRIGGER note_lead_writer ON leads');
			await prisma.$executeRawUnsafe('DROP FUNCTION note_lead_writer()');
			await prisma.$executeRawUnsafe('DROP TABLE lead_writers');
		}
	});

	it('when the database refuses a batch, writes its items one by one so only the refused item fails', async () => {
		// A row the database refuses although the item is valid (as a constraint added by an operator would).
		await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_lead() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.email = 'refused@acme.io' THEN RAISE EXCEPTION 'leads: % is refused here', NEW.email; END IF; RETURN NEW; END $$`);
		await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_lead BEFORE INSERT OR UPDATE ON leads FOR EACH ROW EXECUTE FUNCTION refuse_lead()`);
		try {
			const items = [leadItem({ email: 'before@acme.io' }), leadItem({ email: 'refused@acme.io' }), leadItem({ email: 'after@acme.io' })];
			const lenient = await runWorkflow(workflow({}, { continueOnFail: true }), { input: items, credentials: credentials(), throwOnError: true });
			const [before, refused, after] = lenient.outputOf('Lead Scorer', 0);
			expect(refused.error).toMatch(/refused@acme\.io is refused here/);
			expect([before.leadId, after.leadId]).toEqual([expect.any(String), expect.any(String)]);
			expect(await prisma.lead.count({ where: { siteId: site.id, email: { in: ['before@acme.io', 'after@acme.io', 'refused@acme.io'] } } })).toBe(2);

			const strict = await runWorkflow(workflow(), { input: [leadItem({ email: 'fine@acme.io' }), leadItem({ email: 'refused@acme.io' })], credentials: credentials() });
			expect(strict.error?.message).toMatch(/refused here/);
			expect((strict.error as { context?: { itemIndex?: number } }).context?.itemIndex).toBe(1);
		} finally {
			await prisma.$executeRawUnsafe('DROP TRIGGER refuse_lead ON leads');
			await prisma.$executeRawUnsafe('DROP FUNCTION refuse_lead()');
		}
	});

	it('names the item field when an item is not a lead, and goes on under Continue On Fail', async () => {
		const bad = await runWorkflow(workflow(), { input: [leadItem({ email: 'not-an-address' })], credentials: credentials() });
		expect(bad.error?.message).toMatch(/Field "lead\.email": The item is not a lead:\n {2}- email: must be an email address/);
		const lenient = await runWorkflow(workflow({}, { continueOnFail: true }), { input: [leadItem({ email: 'nope' }), leadItem({ email: 'fine@acme.io' })], credentials: credentials(), throwOnError: true });
		const out = lenient.outputOf('Lead Scorer', 0);
		expect(out[0].error).toMatch(/lead\.email/);
		expect(out[1].leadId).toEqual(expect.any(String));
		const missing = await runWorkflow(workflow({ operation: 'rescore', lead: 'nobody@acme.io' }), { input: [{ site: site.key }], credentials: credentials() });
		expect(missing.error?.message).toMatch(/Lead: No lead "nobody@acme.io"/);
	});
});
