/**
 * The CRM Tracker Trigger and the Activity Logger inside a REAL n8n (2.41, started with
 * `n8n start`, our package installed from its tarball like a community package): signed
 * deliveries run the workflow and log activities, retries add nothing, anything not signed by
 * the receiver is refused before the workflow runs.
 *
 * Needs the cached n8n of scripts/real-n8n.sh (installed on first use, ~6 minutes) and
 * `npm run build`. Nothing is skipped: if n8n cannot be installed or started, this fails.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { PrismaClient } from '../../lib/db/generated/client';
import { SIGNATURE_HEADER, signedHeaders, SITE_HEADER } from '../../lib/signing';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { sleep, startRealN8n, type CredentialJson, type RealN8n, type WorkflowJson } from '../helpers/realN8n';

const PACKAGE = 'n8n-nodes-tracking-crm';
const TRIGGER = `${PACKAGE}.crmTrackerTrigger`;
const LOGGER = `${PACKAGE}.activityLogger`;
const WEBHOOK_PATH = 'crm-test-trigger';
const SECRET = `real-n8n-secret-${randomUUID()}`;

const credentials: () => CredentialJson[] = () => [
	{ id: 'crmTrackingCred1', name: 'Tracking CRM (e2e)', type: 'trackingCrmApi', data: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret: SECRET, emailTokenSecret: 'email-token-secret' } },
	{ id: 'crmPostgresCred1', name: 'CRM database (e2e)', type: 'postgres', data: postgresCredential() },
];

const workflow: WorkflowJson = {
	id: 'crmTriggerE2e001',
	name: 'CRM Tracker Trigger e2e',
	settings: { executionOrder: 'v1' },
	nodes: [
		{
			id: '5f0c4a5e-0d7e-4c8e-9f1a-1b2c3d4e5f60',
			name: 'CRM Tracker Trigger',
			type: TRIGGER,
			typeVersion: 1,
			position: [0, 0],
			webhookId: '0b9d3f3e-6a43-4a57-9b1e-7d8c1f2a3b4c',
			parameters: { path: WEBHOOK_PATH, emit: 'perEvent', responseMode: 'lastNode', toleranceSeconds: 300 },
			credentials: { trackingCrmApi: { id: 'crmTrackingCred1', name: 'Tracking CRM (e2e)' } },
		},
		{
			id: '6a1d5b6f-1e8f-4d9f-8a2b-2c3d4e5f6071',
			name: 'CRM Activity Logger',
			type: LOGGER,
			typeVersion: 1,
			position: [240, 0],
			parameters: {
				operation: 'log',
				siteKey: '={{ $json.site }}',
				subject: 'visitor',
				visitor: '={{ $json.anonymousId }}',
				activityType: 'page_viewed',
				description: '={{ "Viewed " + $json.path }}',
				data: '={{ JSON.stringify({ eventId: $json.id, path: $json.path, deliveryId: $json.deliveryId }) }}',
				occurredAt: '={{ $json.occurredAt }}',
				dedupeKey: '',
			},
			credentials: { postgres: { id: 'crmPostgresCred1', name: 'CRM database (e2e)' } },
		},
	],
	connections: { 'CRM Tracker Trigger': { main: [[{ node: 'CRM Activity Logger', type: 'main', index: 0 }]] } },
};

/** A trigger whose Replay Window is no number: n8n's log and every delivery's answer name the field. */
const MISCONFIGURED_PATH = 'crm-test-misconfigured';
const misconfigured: WorkflowJson = {
	id: 'crmTriggerE2e002',
	name: 'CRM Tracker Trigger misconfigured',
	settings: { executionOrder: 'v1' },
	nodes: [{ ...workflow.nodes[0], id: '7b2e6c70-2f90-4ea0-9b3c-3d4e5f607182', webhookId: '1c0e4f4f-7b54-4b68-8c2f-8e9d2a3b4c5d', parameters: { path: MISCONFIGURED_PATH, emit: 'perEvent', responseMode: 'lastNode', toleranceSeconds: 'abc' } }],
	connections: {},
};

interface Response {
	status: number;
	body: any;
}

async function post(url: string, body: string, headers: Record<string, string>): Promise<Response> {
	const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(30_000) });
	const text = await response.text();
	try {
		return { status: response.status, body: JSON.parse(text) };
	} catch {
		return { status: response.status, body: text };
	}
}

/** The test site's key, known once beforeAll created it. */
let siteKey = '';

/** Headers as the receiver's outbox sends them (lib/signing.ts postSigned), for the test site unless told. */
function signed(body: string, deliveryId: string, options: { secret?: string; timestamp?: number; site?: string } = {}): Record<string, string> {
	return signedHeaders(options.secret ?? SECRET, options.site ?? siteKey, body, deliveryId, options.timestamp);
}

describe('CRM Tracker Trigger in a real n8n', () => {
	let n8n: RealN8n | undefined;
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	let visitorId: string;
	const anonymousId = `anon-real-n8n-${randomUUID().slice(0, 8)}`;
	const deliveryId = randomUUID();
	let delivery: string;

	const activityCount = () => prisma.activity.count({ where: { siteId: site.id, visitorId } });
	const started = (): RealN8n => {
		if (!n8n) throw new Error('n8n did not start (see the beforeAll error above)');
		return n8n;
	};

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'realn8n');
		siteKey = site.key;
		const visitor = await prisma.visitor.create({
			data: { siteId: site.id, anonymousId, firstSeenAt: new Date('2026-11-20T10:00:00Z'), lastSeenAt: new Date('2026-11-20T10:03:00Z') },
		});
		visitorId = visitor.id;
		const events = ['/', '/pricing', '/contact'].map((pagePath, i) => ({
			id: randomUUID(),
			anonymousId,
			sessionId: `${anonymousId}-s1`,
			type: 'pageview',
			path: pagePath,
			url: `https://${site.key}.example${pagePath}`,
			title: `Café – page ${pagePath}`,
			occurredAt: new Date(Date.UTC(2026, 10, 20, 10, i, 0)).toISOString(),
		}));
		// Pretty-printed on purpose: the trigger must check the signature over the raw bytes n8n
		// received (req.rawBody), which a re-serialisation of the parsed body would not match.
		delivery = JSON.stringify({ site: site.key, siteId: site.id, destination: 'n8n', deliveryId, sentAt: new Date().toISOString(), events, leads: [] }, null, 2);

		n8n = await startRealN8n({ workflows: [workflow, misconfigured], credentials: credentials(), webhookPaths: [WEBHOOK_PATH, MISCONFIGURED_PATH] });
	}, 25 * 60_000);

	afterAll(async () => {
		await n8n?.stop();
		await prisma?.$disconnect();
	}, 60_000);

	it('runs the workflow for a signed delivery: HTTP 200 with one item per event, one activity per event', async () => {
		const response = await post(started().webhookUrl(WEBHOOK_PATH), delivery, signed(delivery, deliveryId));
		if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${JSON.stringify(response.body)}\n${started().logTail()}`);
		expect(Array.isArray(response.body)).toBe(true);
		expect(response.body).toHaveLength(3);
		for (const item of response.body) expect(item).toMatchObject({ visitorId, type: 'page_viewed', duplicate: false });

		const rows = await prisma.activity.findMany({ where: { siteId: site.id, visitorId }, orderBy: { occurredAt: 'asc' } });
		expect(rows.map((row) => [row.type, row.description, row.occurredAt.toISOString()])).toEqual([
			['page_viewed', 'Viewed /', '2026-11-20T10:00:00.000Z'],
			['page_viewed', 'Viewed /pricing', '2026-11-20T10:01:00.000Z'],
			['page_viewed', 'Viewed /contact', '2026-11-20T10:02:00.000Z'],
		]);
		expect(rows.every((row) => row.dedupeKey)).toBe(true);
		expect(rows[1].data).toMatchObject({ path: '/pricing', deliveryId });
		expect(response.body.map((item: { activityId: string }) => item.activityId).sort()).toEqual(rows.map((row) => row.id).sort());
	});

	it('adds nothing when the receiver retries the same delivery (signed anew)', async () => {
		const response = await post(started().webhookUrl(WEBHOOK_PATH), delivery, signed(delivery, deliveryId));
		expect(response.status).toBe(200);
		expect(response.body).toHaveLength(3);
		for (const item of response.body) expect(item).toMatchObject({ visitorId, duplicate: true });
		expect(await activityCount()).toBe(3);
	});

	it('refuses unsigned, wrongly signed, tampered and stale deliveries with 401 before the workflow runs', async () => {
		const url = started().webhookUrl(WEBHOOK_PATH);
		const other = JSON.stringify({ ...JSON.parse(delivery), deliveryId: randomUUID() });
		const cases: Array<[string, Record<string, string>, string]> = [
			['unsigned', {}, 'missing x-crm-signature header'],
			['signature without timestamp', { [SIGNATURE_HEADER]: signed(other, 'x')[SIGNATURE_HEADER] }, 'missing x-crm-timestamp header'],
			['signature without site', { ...signed(other, 'x'), [SITE_HEADER]: '' }, 'missing x-crm-site header'],
			['wrong secret', signed(other, 'x', { secret: 'not-the-secret' }), 'signature does not match the body and site'],
			['signature of another body', signed(delivery, 'x'), 'signature does not match the body and site'],
			['signature moved to another site', { ...signed(other, 'x'), [SITE_HEADER]: 'another-site' }, 'signature does not match the body and site'],
			['stale timestamp (10 minutes old, window 5 minutes)', signed(other, 'x', { timestamp: Math.floor(Date.now() / 1000) - 600 }), 'outside the 300 s replay window'],
			['timestamp in the future', signed(other, 'x', { timestamp: Math.floor(Date.now() / 1000) + 600 }), 'outside the 300 s replay window'],
		];
		for (const [name, headers, reason] of cases) {
			const response = await post(url, other, headers);
			expect({ name, status: response.status, error: response.body?.error }).toEqual({ name, status: 401, error: 'invalid_signature' });
			expect(response.body.message).toContain(reason);
		}
		expect(await activityCount()).toBe(3);
	});

	it('refuses with 400, before the workflow runs, a delivery whose body names another site than the one it is signed for', async () => {
		const url = started().webhookUrl(WEBHOOK_PATH);
		const parsed = JSON.parse(delivery);
		const cases: Array<[string, Record<string, unknown>]> = [
			['site', { ...parsed, site: 'another-site', deliveryId: randomUUID() }],
			['events[1].site', { ...parsed, deliveryId: randomUUID(), events: parsed.events.map((event: object, i: number) => (i === 1 ? { ...event, site: 'another-site' } : event)) }],
			['items[0].site', { ...parsed, deliveryId: randomUUID(), events: [], leads: [], items: [{ ...parsed.events[0], site: 'another-site' }] }],
		];
		for (const [field, body] of cases) {
			const text = JSON.stringify(body);
			const response = await post(url, text, signed(text, String(body.deliveryId)));
			expect({ field, status: response.status, body: response.body }).toEqual({ field, status: 400, body: expect.objectContaining({ error: 'site_mismatch', field }) });
			expect(response.body.message).toContain(`names another site than the one the delivery is signed for ("${site.key}"`);
		}
		expect(await activityCount()).toBe(3);
	});

	it('answers every delivery of a trigger that would refuse them all 500 trigger_misconfigured, and logs why, naming the field', async () => {
		const reason = 'Replay Window (Seconds): is "abc": give a number from 30 to 86400';
		const response = await post(started().webhookUrl(MISCONFIGURED_PATH), delivery, signed(delivery, randomUUID()));
		expect(response.status).toBe(500);
		expect(response.body).toMatchObject({ error: 'trigger_misconfigured', field: 'Replay Window (Seconds)' });
		expect(response.body.message).toContain(reason);
		const logged = async () => (await readFile(started().logFile, 'utf8')).includes(reason);
		for (let waited = 0; waited < 30_000 && !(await logged()); waited += 500) await sleep(500);
		expect(await logged()).toBe(true);
		expect(await activityCount()).toBe(3);
	}, 60_000);

	it('loads our node types and credential type into n8n', async () => {
		const file = path.join(started().userFolder, 'export', 'nodes.json');
		const result = await started().exec(['export:nodes', `--output=${file}`]);
		let nodes: Array<{ name: string; credentials?: Array<{ name: string }> }>;
		try {
			nodes = JSON.parse(await readFile(file, 'utf8'));
		} catch (error) {
			throw new Error(`n8n export:nodes wrote no readable ${file} (exit ${result.code ?? result.signal}): ${(error as Error).message}\n${result.output.slice(-4000)}`);
		}
		const ours = nodes.filter((node) => node.name.startsWith(`${PACKAGE}.`)).map((node) => node.name);
		expect(ours).toEqual(expect.arrayContaining([TRIGGER, LOGGER]));
		expect(nodes.find((node) => node.name === TRIGGER)?.credentials).toEqual([expect.objectContaining({ name: 'trackingCrmApi', required: true })]);

		// The credential types n8n serves the editor, written by `n8n start` into the user folder.
		const types = JSON.parse(await readFile(path.join(started().userFolder, '.cache/n8n/public/types/credentials.json'), 'utf8')) as Array<{ name: string; properties: Array<{ name: string }> }>;
		const credential = types.find((type) => type.name === 'trackingCrmApi');
		expect(credential?.properties.map((property) => property.name)).toEqual(['receiverUrl', 'webhookSecret', 'emailTokenSecret', 'piiEncryptionKeys', 'piiHashKey']);
	}, 300_000);
});
