/**
 * One session, two places its engagement is written: the receiver scores the tracker's summary
 * in the session_end event, the Visitor Processor the session it rebuilds from the stored events
 * into visitor_sessions. The same visit must get the same score and level in both.
 */
import type { IDataObject } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { receiverDeliverySchema, type TrackEvent, type TrackEventType } from '../../lib/contracts';
import { deliveryItems } from '../../nodes/CrmTrackerTrigger/delivery';
import { disconnectAll } from '../../nodes/shared/database';
import type { Receiver } from '../../server/receiver';
import { startSession, updateSession } from '../../tracker/src/rules';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';
import { postgresCredential, testPrisma } from '../helpers/db';
import { batch, post } from '../helpers/events';
import { FakeN8n } from '../helpers/fakeN8n';
import { startTestReceiver, TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const VISITOR_PROCESSOR: WorkflowJson = {
	name: 'Visitor Processor',
	nodes: [
		{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
		{
			id: 'vp',
			name: 'Visitor Processor',
			type: 'n8n-nodes-tracking-crm.visitorProcessor',
			typeVersion: 1,
			position: [200, 0],
			parameters: { siteKey: '={{ $json.site }}', input: 'event' },
			credentials: { postgres: { id: '1', name: 'CRM database' } },
		},
	],
	connections: { Start: { main: [[{ node: 'Visitor Processor', type: 'main', index: 0 }]] } },
};

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

describe('a session’s engagement in its events and in its session row', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	let receiver: Receiver;

	beforeAll(() => n8n.start());
	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		await prisma.$disconnect();
		await disconnectAll();
	});

	// Visits that score low, medium and high by the default thresholds (30 / 60), with and without engagement reports.
	// A step marked 'unsent' is counted by the tracker but never sent (under the site's relevance threshold).
	const visits: Array<[string, Array<[TrackEventType, number, Record<string, number>?, 'unsent'?]>]> = [
		['one page, glanced at', [['pageview', 0]]],
		[
			'two pages, a scroll and a minute of reading',
			[
				['pageview', 0],
				['scroll', 5, { depth: 75 }],
				['pageview', 9],
				['engagement', 60, { engagedMs: 60_000 }],
			],
		],
		[
			'five pages and a form, no engagement reports',
			[
				['pageview', 0],
				['pageview', 30],
				['scroll', 40, { depth: 100 }],
				['pageview', 60],
				['pageview', 120],
				['click', 130],
				['pageview', 200],
				['form_submit', 240],
			],
		],
		[
			'two pages and clicks the site scores under its threshold, which the tracker counts but never sends',
			[
				['pageview', 0],
				['click', 10, undefined, 'unsent'],
				['click', 20, undefined, 'unsent'],
				['download', 25, undefined, 'unsent'],
				['pageview', 40],
				['engagement', 90, { engagedMs: 90_000 }],
			],
		],
	];

	it.each(visits)('%s: the session_end event and the visitor_sessions row agree', async (_label, steps) => {
		const site = testSiteConfig({ n8nUrl: n8n.url });
		const key = site.site.key;
		await receiver?.close();
		receiver = await startTestReceiver([site]);
		const anonymousId = `visitor-${uuidv7()}`;
		const start = Date.now() - 3_600_000;
		const session = startSession(start);
		const events: TrackEvent[] = steps.flatMap(([type, seconds, props, unsent]) => {
			const ts = start + seconds * 1000;
			const url = `https://${key}.example/page-${seconds}`;
			// The tracker's counters, as its emit() keeps them for every event it scores, sent or not.
			updateSession(session, type, ts, url, 4, props);
			return unsent ? [] : [{ id: uuidv7({ msecs: ts }), type, ts, anonymousId, sessionId: session.id, url, relevance: 4, ...(props && { props }) }];
		});
		events.push({ id: uuidv7({ msecs: session.l }), type: 'session_end', ts: session.l, anonymousId, sessionId: session.id, url: session.x ?? events[events.length - 1].url, props: session as unknown as TrackEvent['props'] });
		expect((await post(`${receiver.url}/api/track`, batch(key, events))).status).toBe(202);

		await waitFor(() => n8n.deliveries.filter((delivery) => delivery.signedSite === key).flatMap((delivery) => delivery.body.events).length === events.length, 15_000, 'the delivery');
		const delivered = n8n.deliveries.filter((delivery) => delivery.signedSite === key).map((delivery) => receiverDeliverySchema.parse(delivery.body));
		const input = delivered.flatMap((delivery) => deliveryItems(delivery, 'perEvent')) as IDataObject[];
		await runWorkflow(VISITOR_PROCESSOR, { input, credentials: { postgres: postgresCredential() }, throwOnError: true });

		const sessionEnd = delivered.flatMap((delivery) => delivery.events).find((event) => event.type === 'session_end');
		const rows = await prisma.visitorSession.findMany({ where: { site: { key } }, select: { engagementScore: true, engagementLevel: true } });
		expect(rows).toHaveLength(1);
		expect({ score: sessionEnd?.props?.engagementScore, level: sessionEnd?.props?.engagement }).toEqual({ score: rows[0].engagementScore, level: rows[0].engagementLevel });
	}, 60_000);

	it('the visits cover every level', async () => {
		const levels = await prisma.visitorSession.findMany({ where: { visitor: { anonymousId: { startsWith: 'visitor-' } } }, select: { engagementLevel: true } });
		expect(new Set(levels.map((row) => row.engagementLevel))).toEqual(new Set(['low', 'medium', 'high']));
	});
});
