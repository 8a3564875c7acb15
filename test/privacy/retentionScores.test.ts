/**
 * Leads keep their scores when the retention job (server/retention) deletes their old events and
 * visits: a later rescore or upsert of the lead, run by the Lead Scorer in n8n's execution engine,
 * gives the points the whole history would give at that time (decay included), and the lead
 * page's score explanation still adds up to the score.
 */
import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { siteConfigSchema, type SiteConfigInput } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { recordedRules, rescore, type LinkedVisitor } from '../../nodes/LeadScorer/rescore';
import { compileScoringRules, scoreLead, type RuleScore, type ScoringEvent, type Visit } from '../../nodes/LeadScorer/scoring';
import type { LeadScoringRule } from '../../lib/contracts/siteConfig';
import { emailFacts } from '../../nodes/shared/contact';
import { disconnectAll } from '../../nodes/shared/database';
import { hundredths, scoreExplanation } from '../../server/analytics/leads';
import { runRetention } from '../../server/retention/retention';
import { createTestSite, postgresCredential, storeEvents, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const DAY = 86_400_000;
const MINUTE = 60_000;
const RETENTION_DAYS = 30;

const CRM: NonNullable<SiteConfigInput['crm']> = {
	leadScoringRules: [
		{ id: 'views', event: 'pageview', score: 2, halfLifeDays: 60 },
		{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5 },
		{ id: 'forms', event: 'form_submit', score: 10 },
		{ id: 'returning', visits: 3, score: 8 },
		{ id: 'each-visit', visits: 1, perVisit: true, score: 1, halfLifeDays: 30 },
		{ id: 'work', field: 'emailDomain', operator: 'equals', value: 'acme.io', score: 15 },
	],
	lifecycleStages: [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore: 60 }, { name: 'customer' }],
};

function workflow(parameters: INode['parameters']): WorkflowJson {
	return {
		name: 'Lead Scorer after retention',
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
			},
		],
		connections: { Start: { main: [[{ node: 'Lead Scorer', type: 'main', index: 0 }]] } },
	};
}

describe('lead scores after the retention job deleted old events and visits', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	let config: ReturnType<typeof siteConfigSchema.parse>;
	const run = async (input: IDataObject[], parameters: INode['parameters'] = {}) =>
		(await runWorkflow(workflow(parameters), { input, credentials: { postgres: postgresCredential() }, throwOnError: true })).outputOf('Lead Scorer', 0);

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'retained-scores');
		config = siteConfigSchema.parse({
			site: { key: site.key, name: 'Retained scores', domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			privacy: { dataRetention: RETENTION_DAYS },
			crm: CRM,
		});
		await prisma.site.update({ where: { id: site.id }, data: { config } });
	});
	afterAll(async () => {
		await prisma.$disconnect();
		await disconnectAll();
	});

	const leadItem = (email: string, anonymousId: string): IDataObject => ({
		site: site.key,
		siteId: site.id,
		kind: 'lead',
		lead: { site: site.key, consent: false, email, anonymousId },
		emailHash: 'x',
		country: null,
		receivedAt: new Date().toISOString(),
		eventId: uuidv7(),
	});

	/** A browser seen first at `firstSeen`: a visitor row, as the Visitor Processor leaves it. */
	const browser = async (anonymousId: string, firstSeen: number) =>
		prisma.visitor.create({ data: { siteId: site.id, anonymousId, firstSeenAt: new Date(firstSeen), lastSeenAt: new Date(firstSeen) } });

	/** One processed visit of a browser: its session and its events a minute apart from `start`. */
	async function visit(visitor: { id: string; anonymousId: string }, start: number, events: Array<[type: string, path: string]>): Promise<void> {
		const session = await prisma.visitorSession.create({
			data: { siteId: site.id, visitorId: visitor.id, sessionKey: `${visitor.anonymousId}:${start}`, startedAt: new Date(start), lastActivityAt: new Date(start + (events.length - 1) * MINUTE) },
		});
		await storeEvents(
			prisma,
			events.map(([type, path], index) => ({
				siteId: site.id,
				eventId: uuidv7(),
				anonymousId: visitor.anonymousId,
				sessionKey: session.sessionKey,
				visitorId: visitor.id,
				sessionId: session.id,
				type,
				url: `https://${site.key}.example${path}`,
				path,
				occurredAt: new Date(start + index * MINUTE),
			})),
		);
	}

	/** The lead's whole history as stored now: its browsers' events and visits, for the pure scorer. */
	async function storedHistory(leadId: string): Promise<{ events: ScoringEvent[]; visits: Visit[] }> {
		const visitors = await prisma.visitor.findMany({ where: { siteId: site.id, leadId }, select: { id: true, anonymousId: true } });
		const events = await prisma.visitorEvent.findMany({ where: { siteId: site.id, anonymousId: { in: visitors.map((visitor) => visitor.anonymousId) } } });
		const sessions = await prisma.visitorSession.findMany({ where: { siteId: site.id, visitorId: { in: visitors.map((visitor) => visitor.id) } } });
		return {
			events: events.map((event) => ({ eventId: event.eventId, type: event.type, name: event.name, url: event.url, occurredAt: event.occurredAt.getTime() })),
			visits: sessions.map((session) => ({ id: session.id, startedAt: session.startedAt.getTime() })),
		};
	}

	/** The points of each rule the pure scorer gives `history` at the lead's last scoring time. */
	async function expectedRules(leadId: string, history: { events: ScoringEvent[]; visits: Visit[] }): Promise<Record<string, number>> {
		const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		const mail = emailFacts(lead.email);
		const score = scoreLead(compileScoringRules(config.crm), history.events, { emailDomain: mail.domain, freeMail: mail.freeMail, disposableEmail: mail.disposable }, (lead.scoredAt as Date).getTime(), history.visits);
		return Object.fromEntries(score.rules.map((rule) => [rule.rule, hundredths(rule.points)]));
	}

	const pointsOf = (output: IDataObject) => Object.fromEntries(((output.scoring as IDataObject).rules as unknown as RuleScore[]).map((rule) => [rule.rule, hundredths(rule.points)]));
	const total = (rules: Record<string, number>) => hundredths(Object.values(rules).reduce((sum, points) => sum + points, 0));
	/** The ledger rounds each rule to hundredths; a rule carried from it may differ from the pure scorer by one. */
	const near = (rules: Record<string, number>) => Object.fromEntries(Object.entries(rules).map(([rule, points]) => [rule, expect.closeTo(points, 1)]));

	/** Ten days pass for the lead's rows: what happened, and when it was scored, moves that far into the past. */
	async function tenDaysPass(leadId: string, anonymousIds: string[]): Promise<void> {
		const shift = `interval '10 days'`;
		await prisma.$executeRawUnsafe(`UPDATE visitor_events SET occurred_at = occurred_at - ${shift} WHERE site_id = $1::uuid AND anonymous_id = ANY($2::text[])`, site.id, anonymousIds);
		await prisma.$executeRawUnsafe(
			`UPDATE visitor_sessions SET started_at = started_at - ${shift}, last_activity_at = last_activity_at - ${shift} WHERE site_id = $1::uuid AND visitor_id IN (SELECT id FROM visitors WHERE anonymous_id = ANY($2::text[]))`,
			site.id,
			anonymousIds,
		);
		await prisma.$executeRawUnsafe(`UPDATE visitors SET first_seen_at = first_seen_at - ${shift}, last_seen_at = last_seen_at - ${shift} WHERE site_id = $1::uuid AND anonymous_id = ANY($2::text[])`, site.id, anonymousIds);
		await prisma.$executeRawUnsafe(`UPDATE lead_scores SET occurred_at = occurred_at - ${shift} WHERE lead_id = $1::uuid`, leadId);
		// The rows moved outside the scorer: the lead's summary of them is dropped, and summed anew from them.
		await prisma.$executeRawUnsafe(`UPDATE leads SET scored_at = scored_at - ${shift}, ledger_summary = NULL WHERE id = $1::uuid`, leadId);
	}

	/** The lead page's explanation: each rule's ledger rows summed; they must add up to the lead's score. */
	async function explained(leadId: string): Promise<{ rules: Record<string, number>; score: number }> {
		const rules = Object.fromEntries((await scoreExplanation(prisma, site.id, leadId)).map((rule) => [rule.rule, rule.points]));
		const { score } = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		return { rules, score };
	}

	it('keeps the points of the deleted history, less decay, through a rescore, the next upsert and a merge with another browser', async () => {
		const laptop = await browser(`laptop-${uuidv7()}`, Date.now() - 35 * DAY);
		await visit(laptop, Date.now() - 35 * DAY, [['pageview', '/'], ['pageview', '/pricing'], ['form_submit', '/pricing']]);
		await visit(laptop, Date.now() - 32 * DAY, [['pageview', '/docs'], ['pageview', '/pricing']]);
		await visit(laptop, Date.now() - 3 * DAY, [['pageview', '/'], ['pageview', '/blog']]);
		const email = `ana.${uuidv7().slice(-6)}@acme.io`;

		const [created] = await run([leadItem(email, laptop.anonymousId)]);
		const leadId = created.leadId as string;
		const scoredWhole = pointsOf(created);
		expect(scoredWhole).toEqual(await expectedRules(leadId, await storedHistory(leadId)));
		expect(scoredWhole).toMatchObject({ pricing: 10, forms: 10, returning: 8, work: 15 });

		await tenDaysPass(leadId, [laptop.anonymousId]);
		const whole = await storedHistory(leadId);
		const [result] = await runRetention(prisma, [{ id: site.id, key: site.key, config }]);
		expect([result.error, result.rows.visitor_events, result.rows.visitor_sessions]).toEqual([null, 5, 2]);
		const left = await storedHistory(leadId);
		expect([left.events.length, left.visits.length]).toEqual([2, 1]);
		const phone = await browser(`phone-${uuidv7()}`, Date.now() - 2 * DAY);
		await visit(phone, Date.now() - 2 * DAY, [['pageview', '/pricing'], ['pageview', '/docs']]);

		// A rescore now: the whole history scored at this time, decay included, though only the last visit is stored.
		const [rescored] = await run([{ site: site.key, email }], { operation: 'rescore', lead: '={{ $json.email }}' });
		const afterRescore = pointsOf(rescored);
		const wholeNow = await expectedRules(leadId, whole);
		expect(afterRescore).toEqual(near(wholeNow));
		expect(afterRescore).toMatchObject({ pricing: 10, forms: 10, returning: 8, work: 15 });
		// Decay, and only decay, lowered the score.
		expect(total(afterRescore)).toBeLessThan(total(scoredWhole));
		expect(total(afterRescore)).toBeGreaterThan(total(await expectedRules(leadId, left)));
		expect(await explained(leadId)).toEqual({ rules: afterRescore, score: total(afterRescore) });

		// A rescore that finds nothing new records nothing.
		const [again] = await run([{ site: site.key, email }], { operation: 'rescore', lead: '={{ $json.email }}' });
		expect([pointsOf(again), (again.scoring as IDataObject).rowsWritten]).toEqual([afterRescore, 0]);

		// A new visit and the next upsert: the new visit adds its points to the deleted history's.
		await visit(laptop, Date.now() - 5 * MINUTE, [['pageview', '/pricing'], ['form_submit', '/pricing']]);
		const [upserted] = await run([leadItem(email, laptop.anonymousId)]);
		const withNewVisit = [...whole.events, ...(await storedHistory(leadId)).events.filter((event) => !whole.events.some((old) => old.eventId === event.eventId))];
		const visitsNow = [...whole.visits, ...(await storedHistory(leadId)).visits.filter((session) => !whole.visits.some((old) => old.id === session.id))];
		const afterUpsert = pointsOf(upserted);
		expect(afterUpsert).toEqual(near(await expectedRules(leadId, { events: withNewVisit, visits: visitsNow })));
		expect(afterUpsert).toMatchObject({ pricing: 15, forms: 20, returning: 8 });
		expect(await explained(leadId)).toEqual({ rules: afterUpsert, score: total(afterUpsert) });

		// The same person on a phone, browsing since before the lead's latest scores: its history joins the lead's, the deleted history still counts.
		const [merged] = await run([leadItem(email, phone.anonymousId)]);
		expect(merged.leadId).toBe(leadId);
		const phoneHistory = await storedHistory(leadId);
		const mergedHistory = {
			events: [...withNewVisit, ...phoneHistory.events.filter((event) => !withNewVisit.some((seen) => seen.eventId === event.eventId))],
			visits: [...visitsNow, ...phoneHistory.visits.filter((session) => !visitsNow.some((seen) => seen.id === session.id))],
		};
		const afterMerge = pointsOf(merged);
		expect(afterMerge).toEqual(near(await expectedRules(leadId, mergedHistory)));
		expect(afterMerge).toMatchObject({ pricing: 20, forms: 20, returning: 8 });
		expect(await explained(leadId)).toEqual({ rules: afterMerge, score: total(afterMerge) });
	});
});

describe('which evidence a rescore takes from the ledger', () => {
	const NOW = Date.UTC(2026, 10, 20, 12);
	const cutoff = NOW - RETENTION_DAYS * DAY;
	const lead = { id: 'a', email: 'ana@acme.io', company: null, jobTitle: null, country: null, source: null, phone: null, lifecycleStage: 'subscriber', firstTouch: null, score: 0, engagementScore: 0, fitScore: 0 };
	const stages = [{ name: 'subscriber', minScore: 0 }];
	/** One browser, first seen `firstSeen` days ago. */
	const browserSeen = (firstSeen: number): LinkedVisitor[] => [{ id: 'v1', anonymousId: 'laptop', leadId: 'a', firstTouch: null, firstSeenAt: NOW - firstSeen * DAY }];
	/** An event `age` days old on `path`, stored as it happened. */
	const view = (eventId: string, age: number, path: string): ScoringEvent => ({ eventId, type: 'pageview', url: `https://acme.io${path}`, occurredAt: NOW - age * DAY, storedAt: NOW - age * DAY });
	const session = (id: string, age: number): Visit => ({ id, startedAt: NOW - age * DAY, storedAt: NOW - age * DAY });
	/** A rule's ledger: one row written `age` days ago, with the points and evidence it recorded. */
	const ledger = (rule: string, delta: number, evidence: string, age: number) =>
		recordedRules([{ leadId: 'a', rule, sum: delta, rows: 1, causeKey: `0:${evidence}`, occurredAt: NOW - age * DAY, createdAt: NOW - age * DAY }]).get('a');
	const points = (rules: LeadScoringRule[], history: { events?: ScoringEvent[]; visits?: Visit[]; visitors: LinkedVisitor[]; recorded: ReturnType<typeof ledger> }) =>
		rescore({ lead, tags: [], events: [], visits: [], ...history }, { rules: compileScoringRules({ leadScoringRules: rules }), stages, now: NOW, cutoff }).score.rules[0];

	// [case, rules now, browser first seen (days ago), events stored, the ledger's row, points and matches now]
	const cases: Array<[string, LeadScoringRule[], number, ScoringEvent[], ReturnType<typeof ledger>, { points: number; matches: number }]> = [
		['a cut history keeps the points of its deleted events', [{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5 }], 50, [view('e2', 20, '/pricing')], ledger('pricing', 10, '2:e2', 5), { points: 10, matches: 2 }],
		[
			'an edited rule applies to a history that was not cut',
			[{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5 }],
			40,
			[view('e1', 40, '/pricing/old'), view('e2', 20, '/pricing')],
			ledger('pricing', 10, '2:e2', 5),
			{ points: 5, matches: 1 },
		],
		['of a browser first seen after the cutoff nothing can be gone: its rows count as they are', [{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5 }], 25, [view('e2', 20, '/pricing')], ledger('pricing', 10, '2:e2', 5), { points: 5, matches: 1 }],
		['deleted events of a negative rule still count against the lead', [{ id: 'careers', event: 'pageview', urlPattern: '/careers', score: -3 }], 50, [view('e2', 20, '/careers')], ledger('careers', -6, '2:e2', 5), { points: -6, matches: 2 }],
		['decay goes on from when the ledger recorded the points', [{ id: 'views', event: 'pageview', score: 4, halfLifeDays: 10 }], 50, [], ledger('views', 8, '2:e2', 10), { points: 4, matches: 2 }],
	];
	it.each(cases)('%s', (_, rules, firstSeen, events, recorded, expected) => {
		expect(points(rules, { events, visitors: browserSeen(firstSeen), recorded })).toMatchObject({ points: expect.closeTo(expected.points, 5), matches: expected.matches });
	});

	it('counts the deleted visits of a visit rule, dated by the latest visit still stored', () => {
		const rules: LeadScoringRule[] = [{ id: 'returning', visits: 3, score: 8, halfLifeDays: 10 }];
		const recorded = ledger('returning', 8, '3:s3', 1);
		// All three visits gone: the ledger's points, decayed for the day since.
		expect(points(rules, { visitors: browserSeen(50), recorded })).toMatchObject({ points: expect.closeTo(8 * 2 ** -0.1, 5), matches: 1, causeKey: '3:s3' });
		// A new visit: four visits, the latest ten days old.
		expect(points(rules, { events: [view('e9', 10, '/')], visits: [{ ...session('s4', 10), storedAt: NOW }], visitors: browserSeen(50), recorded })).toMatchObject({
			points: expect.closeTo(4, 5),
			causeKey: '4:s4',
		});
	});

	it('takes a session a late event merged into another for a merge, not a deletion, when the history was not cut', () => {
		const rules: LeadScoringRule[] = [{ id: 'each-visit', visits: 1, perVisit: true, score: 1 }];
		const visits = [session('s1', 40), session('s3', 20)];
		expect(points(rules, { events: [view('e1', 40, '/'), view('e3', 20, '/')], visits, visitors: browserSeen(40), recorded: ledger('each-visit', 3, '3:s3', 5) })).toMatchObject({ points: 2, matches: 2 });
	});
});
