/**
 * Visit rules count the lead's stored sessions, whichever of the bundled workflows 01 (Visitor
 * Processor, which stores sessions) and 03 (Lead Processor) sees the visitor first: the events are
 * in the database from ingest on, as the receiver stores them, and the deliveries to 01 and 03
 * arrive in either order. Real Postgres, the bundled workflows in n8n's engine.
 */
import type { IDataObject } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { siteConfigSchema } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { disconnectAll } from '../../nodes/shared/database';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { SmtpSink } from '../helpers/smtpSink';
import { BundledChain, chainCredentials, storeTrackedEvents, trackedEvent, type TrackedEvent } from './bundledChain';

const DAY = 86_400_000;
const MINUTE = 60_000;

type Order = '01 then 03' | '03 then 01';

describe('visit rules count stored sessions, whichever of workflows 01 and 03 runs first', () => {
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	let chain: BundledChain;
	let site: { id: string; key: string };
	const domain = () => `${site.key}.example`;

	beforeAll(async () => {
		prisma = testPrisma();
		smtp = await SmtpSink.start();
		chain = new BundledChain(() => chainCredentials('visit-order', smtp.port));
		await chain.start();
		site = await createTestSite(prisma, 'visit-order');
		const config = siteConfigSchema.parse({
			site: { key: site.key, name: 'Visit order', domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			// the example config's repeat-visit rule
			crm: { leadScoringRules: [{ id: 'pageviews', event: 'pageview', score: 1 }, { id: 'return-visits', visits: 2, perVisit: true, score: 3, cap: 12 }] },
		});
		await prisma.site.update({ where: { id: site.id }, data: { config } });
	});
	afterAll(async () => {
		await chain.stop();
		await smtp.stop();
		await prisma.$disconnect();
		await disconnectAll();
	});

	/** A form submission of `anonymousId`'s browser, as the receiver delivers it to 03. */
	function leadDelivery(anonymousId: string, email: string): IDataObject {
		return { kind: 'lead', eventId: uuidv7(), lead: { site: site.key, email, anonymousId, firstName: 'Ana', consent: true }, emailHash: emailHash(email), country: null, receivedAt: new Date().toISOString() };
	}

	const returnVisits = (run: Awaited<ReturnType<BundledChain['deliver']>>) => {
		const [scored] = run.outputOf('CRM Lead Scorer', 0);
		return ((scored.scoring as IDataObject).rules as IDataObject[]).find((rule) => rule.rule === 'return-visits') as IDataObject;
	};

	/**
	 * A new browser's `history`, stored as on ingest, delivered to 01 and its form to 03 in `order`:
	 * the lead as it ends up, and the return-visit rule as 03 scored it.
	 */
	async function visitThenForm(order: Order, history: (anonymousId: string) => TrackedEvent[]) {
		const anonymousId = `anon-${uuidv7()}`;
		const events = history(anonymousId);
		await storeTrackedEvents(prisma, site.id, events);
		const email = `${anonymousId}@visits.example`;
		const toVisitorProcessor = async () => {
			const run = await chain.deliver('crm-visitor-processor', site, { events });
			expect(run.error).toBeUndefined();
		};
		let fromLeadProcessor: IDataObject | undefined;
		const toLeadProcessor = async () => {
			const run = await chain.deliver('crm-lead-processor', site, { leads: [leadDelivery(anonymousId, email)] });
			expect(run.error).toBeUndefined();
			fromLeadProcessor = returnVisits(run);
		};
		if (order === '01 then 03') {
			await toVisitorProcessor();
			await toLeadProcessor();
		} else {
			await toLeadProcessor();
			await toVisitorProcessor();
		}
		const lead = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email } });
		const visitor = await prisma.visitor.findFirstOrThrow({ where: { siteId: site.id, anonymousId }, include: { _count: { select: { sessions: true } } } });
		expect(visitor.leadId).toBe(lead.id);
		const rows = await prisma.leadScore.findMany({ where: { leadId: lead.id }, orderBy: { createdAt: 'asc' } });
		// the recorded deltas still explain the score
		expect(rows.reduce((sum, row) => sum + row.delta, 0)).toBeCloseTo(lead.score, 2);
		const returning = rows.filter((row) => row.rule === 'return-visits');
		return {
			score: lead.score,
			sessions: visitor._count.sessions,
			returnPoints: returning.reduce((sum, row) => sum + row.delta, 0),
			causes: returning.map((row) => row.cause),
			fromLeadProcessor: fromLeadProcessor as IDataObject,
		};
	}

	/** One visit of three events in four minutes whose tracker session id changed midway (a new tab): one session. */
	const oneVisit = (anonymousId: string) => {
		const start = Date.now() - 10 * MINUTE;
		return [
			trackedEvent(domain(), anonymousId, `${anonymousId}-tab1`, 'pageview', '/demo', new Date(start)),
			trackedEvent(domain(), anonymousId, `${anonymousId}-tab2`, 'pageview', '/demo/pricing', new Date(start + 2 * MINUTE)),
			trackedEvent(domain(), anonymousId, `${anonymousId}-tab2`, 'form_submit', '/demo/contact', new Date(start + 4 * MINUTE)),
		];
	};

	/** A visit two days ago and one today, under one tracker session id throughout: two sessions. */
	const twoVisits = (anonymousId: string) => {
		const today = Date.now() - 10 * MINUTE;
		const earlier = today - 2 * DAY;
		return [
			trackedEvent(domain(), anonymousId, `${anonymousId}-s`, 'pageview', '/demo', new Date(earlier)),
			trackedEvent(domain(), anonymousId, `${anonymousId}-s`, 'pageview', '/demo/pricing', new Date(earlier + MINUTE)),
			trackedEvent(domain(), anonymousId, `${anonymousId}-s`, 'pageview', '/demo', new Date(today)),
			trackedEvent(domain(), anonymousId, `${anonymousId}-s`, 'form_submit', '/demo/contact', new Date(today + MINUTE)),
		];
	};

	it('gives one visit no return-visit points, though its events carry two tracker session ids, in either order', async () => {
		for (const order of ['01 then 03', '03 then 01'] as const) {
			const outcome = await visitThenForm(order, oneVisit);
			expect([order, outcome.sessions, outcome.returnPoints, outcome.score]).toEqual([order, 1, 0, 2]);
			expect([order, outcome.fromLeadProcessor.cause]).toEqual([order, order === '01 then 03' ? '1 of 2 visits' : '0 of 2 visits']);
		}
	});

	it('gives a return visit its points once both sessions are stored, the same score in either order', async () => {
		const first = await visitThenForm('01 then 03', twoVisits);
		expect(first).toMatchObject({ sessions: 2, returnPoints: 3, score: 6 });
		expect(first.causes).toEqual([expect.stringMatching(/^2 visits \(visit 2 onwards: 3 each\), latest session [0-9a-f-]{36}$/)]);
		expect(first.fromLeadProcessor).toMatchObject({ points: 3, matches: 1 });

		// 03 first: no session is stored yet, so the form alone scores no visit; the sessions 01
		// stores later rescore the lead
		const second = await visitThenForm('03 then 01', twoVisits);
		expect(second.fromLeadProcessor).toMatchObject({ points: 0, cause: '0 of 2 visits' });
		expect(second).toMatchObject({ sessions: 2, returnPoints: 3, score: first.score });
	});

	it('Rescore Visitor’s Lead rescores the lead of a visitor named by id or anonymous id, passes other visitors through, and names an unknown one', async () => {
		const anonymousId = `anon-${uuidv7()}`;
		const stranger = `anon-${uuidv7()}`;
		const events = [...twoVisits(anonymousId), ...oneVisit(stranger)];
		await storeTrackedEvents(prisma, site.id, events);
		expect((await chain.deliver('crm-visitor-processor', site, { events })).error).toBeUndefined();
		const email = `${anonymousId}@visits.example`;
		// a lead the browser belongs to, not scored yet
		await prisma.lead.create({ data: { siteId: site.id, email, emailHash: emailHash(email) } });
		const lead = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id, email } });
		const visitor = await prisma.visitor.update({ where: { siteId_anonymousId: { siteId: site.id, anonymousId } }, data: { leadId: lead.id } });

		const rescoreVisitor: WorkflowJson = {
			name: 'Rescore Visitor’s Lead',
			nodes: [
				{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
				{ id: 'ls', name: 'Lead Scorer', type: 'n8n-nodes-tracking-crm.leadScorer', typeVersion: 1, position: [200, 0], parameters: { operation: 'rescoreVisitor', siteKey: site.key }, credentials: { postgres: { id: '1', name: 'CRM database' } } },
			],
			connections: { Start: { main: [[{ node: 'Lead Scorer', type: 'main', index: 0 }]] } },
		};
		const run = (input: IDataObject[]) => runWorkflow(rescoreVisitor, { input, credentials: { postgres: postgresCredential() } });
		const items = [{ session: { visitorId: visitor.id }, anonymousId }, { anonymousId }, { anonymousId: stranger, type: 'pageview' }];
		const result = await run(items);
		expect(result.error).toBeUndefined();
		const [byId, byAnonymousId, passed] = result.outputOf('Lead Scorer', 0);
		expect([byId.leadId, byAnonymousId.leadId]).toEqual([lead.id, lead.id]);
		expect(((byId.scoring as IDataObject).rules as IDataObject[]).find((rule) => rule.rule === 'return-visits')).toMatchObject({ points: 3, matches: 1 });
		// the same lead twice: the first item reports what was recorded
		expect([(byId.scoring as IDataObject).rowsWritten, (byAnonymousId.scoring as IDataObject).rowsWritten]).toEqual([2, 0]);
		expect(passed).toEqual(items[2]);
		expect((await prisma.lead.findUniqueOrThrow({ where: { id: lead.id } })).score).toBe(6);

		const unknown = await run([{ anonymousId: 'anon-never-seen' }]);
		expect(unknown.error?.message).toBe('Visitor: No visitor "anon-never-seen" on this site; give the visitor\'s id or the tracker\'s anonymous id');
	});
});
