/**
 * A person's browser erased (POST /api/privacy/erase) while a delivery of its events was on its way
 * to n8n: the real receiver delivers to a stand-in n8n that keeps what it got, the Lead Scorer makes
 * the lead of the form and links the browser, the person is erased, and then the deliveries run
 * through n8n's engine. The Visitor Processor does not store the erased browser's events again and
 * leaves their items out; Rescore Visitor's Lead and the Activity Logger leave out items naming
 * the browser; what the browser sends after the erasure is a new visit; the erasure waits for a
 * Visitor Processor storing the browser's events.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Logger } from '@n8n/backend-common';
import { Container } from '@n8n/di';
import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import type { SiteConfig } from '../../lib/contracts';
import type { ReceiverDelivery } from '../../lib/contracts/delivery';
import type { PrismaClient } from '../../lib/db/generated/client';
import { deliveryItems } from '../../nodes/CrmTrackerTrigger/delivery';
import { disconnectAll } from '../../nodes/shared/database';
import { lockBrowsers } from '../../nodes/shared/events';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { runWorkflow, type TestCredentials, type WorkflowJson } from '../harness/n8n';
import { postgresCredential, testDbUrl, testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const LEFT_OUT = 'item(s) left out: their person was erased (privacy erasure)';

/** n8n as the receiver sees it: every delivery answered 200 and kept, by webhook path. */
class StandInN8n {
	readonly deliveries: Array<{ path: string; body: ReceiverDelivery }> = [];
	private server: Server | undefined;

	get url(): string {
		return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
	}

	async start(): Promise<void> {
		this.server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				this.deliveries.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ReceiverDelivery });
				res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
			});
		});
		await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
	}

	async close(): Promise<void> {
		await new Promise((resolve) => this.server?.close(resolve));
	}

	/** The items the CRM Tracker Trigger makes of every delivery to `path` so far (one per event or lead). */
	itemsTo(path: string): IDataObject[] {
		return this.deliveries.filter((delivery) => delivery.path === path).flatMap((delivery) => deliveryItems(delivery.body, 'perEvent') as IDataObject[]);
	}
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
	const deadline = Date.now() + 20_000;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

/** One node of this package behind a Manual Trigger. */
function workflow(name: string, type: string, parameters: INode['parameters']): WorkflowJson {
	return {
		name: `${name} after an erasure`,
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{ id: 'node', name, type: `n8n-nodes-tracking-crm.${type}`, typeVersion: 1, position: [200, 0], parameters, credentials: { postgres: { id: '1', name: 'CRM database' } } },
		],
		connections: { Start: { main: [[{ node: name, type: 'main', index: 0 }]] } },
	};
}

const VISITOR_PROCESSOR = workflow('CRM Visitor Processor', 'visitorProcessor', {});
const LEAD_SCORER = workflow('CRM Lead Scorer', 'leadScorer', {});
const RESCORE_VISITOR = workflow('CRM Lead Scorer', 'leadScorer', { operation: 'rescoreVisitor', siteKey: '={{ $json.site }}', visitor: '={{ $json.visitor }}' });
const LOG_VISITOR_ACTIVITY = workflow('CRM Activity Logger', 'activityLogger', {
	operation: 'log',
	siteKey: '={{ $json.site }}',
	subject: 'visitor',
	visitor: '={{ $json.visitor }}',
	activityType: 'note',
	description: 'Asked about prices',
});

describe('a browser erased while a delivery of its events was on its way', () => {
	const prisma: PrismaClient = testPrisma();
	const n8n = new StandInN8n();
	const credentials = (): TestCredentials => ({ postgres: postgresCredential() });
	const tag = randomBytes(4).toString('hex');
	const [gone, live, held] = ['gone', 'live', 'held'].map((who) => ({ anonymousId: `${who}-${tag}`, email: `${who}.${tag}@clinic.example` }));
	let site: SiteConfig;
	let siteId: string;
	let receiver: Receiver;
	let admin: string;
	let info: jest.SpyInstance;
	/** The deliveries of the gone and live browsers' first events, as n8n got them before the erasure. */
	let inFlight: IDataObject[];
	let goneVisitorId: string;

	const origin = () => ({ origin: `https://${site.site.key}.example` });
	const erase = (email: string) => post(`${receiver.url}/api/privacy/erase`, { email }, { authorization: `Bearer ${admin}`, 'content-type': 'application/json' });
	const eventsOf = (anonymousId: string) => prisma.visitorEvent.count({ where: { siteId, anonymousId } });
	const leftOut = () => info.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('left out'));

	beforeAll(async () => {
		await n8n.start();
		site = testSiteConfig({ n8nUrl: n8n.url });
		receiver = await startReceiver({
			sites: [site],
			database: { url: testDbUrl(), migrate: false },
			settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50 },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		admin = await createApiKey(prisma, siteId, 'admin', 'privacy-officer');
		const key = site.site.key;
		for (const person of [gone, live, held]) {
			const events = ['/', '/pricing'].map((path) => pageview(key, person.anonymousId, path));
			expect((await post(`${receiver.url}/api/track`, batch(key, events), origin())).status).toBe(202);
			expect((await post(`${receiver.url}/api/lead`, { site: key, anonymousId: person.anonymousId, email: person.email, consent: true, consentVersion: 'v1' }, origin())).status).toBe(202);
		}
		await waitFor(() => n8n.itemsTo('/webhook/visitor').length === 6 && n8n.itemsTo('/webhook/lead').length === 3, 'the deliveries');
		// Workflow 03's Lead Scorer makes the leads and links their browsers, as it would have before the erasure.
		expect((await runWorkflow(LEAD_SCORER, { input: n8n.itemsTo('/webhook/lead'), credentials: credentials() })).error).toBeUndefined();
		goneVisitorId = (await prisma.visitor.findUniqueOrThrow({ where: { siteId_anonymousId: { siteId, anonymousId: gone.anonymousId } } })).id;
		inFlight = n8n.itemsTo('/webhook/visitor').filter((item) => item.anonymousId !== held.anonymousId);

		const erased = await erase(gone.email);
		expect(erased).toMatchObject({ status: 200, json: { erased: true, removed: expect.objectContaining({ leads: 1, visitors: 1, visitor_events: 3 }) } });
		info = jest.spyOn(Container.get(Logger), 'info');
	}, 60_000);

	afterAll(async () => {
		info?.mockRestore();
		await receiver?.close();
		await n8n.close();
		await disconnectAll();
		await prisma.$disconnect();
	});

	it('keeps no anonymous id of the browser, only a hash of it and the deleted visitor’s id', async () => {
		const tombstones = await prisma.erasedVisitor.findMany({ where: { siteId, visitorId: goneVisitorId } });
		expect(tombstones).toHaveLength(1);
		expect(JSON.stringify(tombstones)).not.toContain(gone.anonymousId);
	});

	it('Visitor Processor: does not store the erased browser’s events again, leaves their items out, and processes the other browser’s', async () => {
		info.mockClear();
		const result = await runWorkflow(VISITOR_PROCESSOR, { input: inFlight, credentials: credentials() });
		expect(result.error).toBeUndefined();
		const items = result.outputOf('CRM Visitor Processor');
		expect(items.map((item) => item.anonymousId)).toEqual([live.anonymousId, live.anonymousId]);
		expect(items.map((item) => (item.session as IDataObject).pageviews)).toEqual([2, 2]);
		expect(await eventsOf(gone.anonymousId)).toBe(0);
		expect(await prisma.visitor.count({ where: { siteId, anonymousId: gone.anonymousId } })).toBe(0);
		expect(leftOut()).toEqual([`CRM Visitor Processor: 2 ${LEFT_OUT}`]);
	});

	it('Rescore Visitor’s Lead and Log Activity: leave out items naming the erased browser, by anonymous id and by visitor id, and still fail one naming a browser that never was', async () => {
		const key = site.site.key;
		for (const [name, erasedFlow] of [
			['CRM Lead Scorer', RESCORE_VISITOR],
			['CRM Activity Logger', LOG_VISITOR_ACTIVITY],
		] as const) {
			info.mockClear();
			const result = await runWorkflow(erasedFlow, {
				input: [
					{ site: key, visitor: gone.anonymousId },
					{ site: key, visitor: goneVisitorId },
					{ site: key, visitor: live.anonymousId },
				],
				credentials: credentials(),
			});
			expect(result.error).toBeUndefined();
			expect(result.outputOf(name).map((item) => item.visitor)).toEqual([live.anonymousId]);
			expect(leftOut()).toEqual([`${name}: 2 ${LEFT_OUT}`]);

			const never = `never-${tag}`;
			const failed = await runWorkflow(erasedFlow, { input: [{ site: key, visitor: never }], credentials: credentials() });
			expect(failed.error?.message).toContain(`No visitor "${never}" on this site`);
		}
		expect(await prisma.activity.count({ where: { siteId, visitorId: goneVisitorId } })).toBe(0);
	});

	it('stores what the browser sends after the erasure as a new visit', async () => {
		const key = site.site.key;
		const before = n8n.itemsTo('/webhook/visitor').length;
		expect((await post(`${receiver.url}/api/track`, batch(key, [pageview(key, gone.anonymousId, '/blog')]), origin())).status).toBe(202);
		await waitFor(() => n8n.itemsTo('/webhook/visitor').length === before + 1, 'the new delivery');
		const result = await runWorkflow(VISITOR_PROCESSOR, { input: n8n.itemsTo('/webhook/visitor').slice(before), credentials: credentials() });
		expect(result.error).toBeUndefined();
		expect(result.outputOf('CRM Visitor Processor').map((item) => (item.session as IDataObject).entryPage)).toEqual(['/blog']);
		expect(await eventsOf(gone.anonymousId)).toBe(1);
	});

	it('waits for a Visitor Processor storing the browser’s events before erasing it', async () => {
		let release = () => {};
		const released = new Promise<void>((resolve) => (release = resolve));
		let locked = () => {};
		const holding = new Promise<void>((resolve) => (locked = resolve));
		const storing = prisma.$transaction(
			async (tx) => {
				await lockBrowsers(tx, siteId, [held.anonymousId]);
				locked();
				await released;
				// What a Visitor Processor would store under the lock: the erasure that waited deletes it too.
				await tx.visitorEvent.create({ data: { siteId, eventId: uuidv7(), anonymousId: held.anonymousId, type: 'pageview', occurredAt: new Date() } });
			},
			{ timeout: 20_000 },
		);
		await holding;
		let answered = false;
		const erasure = erase(held.email).then((answer) => {
			answered = true;
			return answer;
		});
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect(answered).toBe(false);
		release();
		await storing;
		expect(await erasure).toMatchObject({ status: 200, json: { removed: expect.objectContaining({ visitor_events: 4 }) } });
		expect(await eventsOf(held.anonymousId)).toBe(0);
	});
});
