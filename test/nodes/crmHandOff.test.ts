/**
 * The CRM Hand Off node in n8n's execution engine: items go to the next workflow's trigger as
 * signed deliveries that the CRM Tracker Trigger's own checks accept, in order and in batches;
 * a failing or missing next workflow fails the item with a message naming the URL.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { INodeParameters } from 'n8n-workflow';

import { foreignSiteField, verifySignature } from '../../lib/signing';
import { deliveryItems, type Delivery } from '../../nodes/CrmTrackerTrigger/delivery';
import { handOffUrl } from '../../nodes/CrmHandOff/handOff';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const SECRET = 'hand-off-test-secret';

interface Received {
	path: string;
	body: Delivery;
	valid: boolean;
	/** The site the delivery is signed for, when the signature holds. */
	signedSite?: string;
	/** Where the body names another site than the signed one (the trigger refuses it then). */
	foreign?: string;
}

function workflow(parameters: INodeParameters, options: { continueOnFail?: boolean } = {}): WorkflowJson {
	return {
		name: 'Hand Off test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'handOff',
				name: 'CRM Hand Off',
				type: 'n8n-nodes-tracking-crm.crmHandOff',
				typeVersion: 1,
				position: [200, 0],
				parameters,
				credentials: { trackingCrmApi: { id: '1', name: 'Tracking CRM' } },
				...(options.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
			},
		],
		connections: { Start: { main: [[{ node: 'CRM Hand Off', type: 'main', index: 0 }]] } },
	};
}

const credentials = (webhookSecret = SECRET) => ({ trackingCrmApi: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret, emailTokenSecret: '' } });

describe('CRM Hand Off node', () => {
	let server: Server;
	let base: string;
	const received: Received[] = [];
	let answer = 200;
	/** A site whose deliveries the next workflow fails. */
	let failingSite: string | undefined;

	beforeAll(async () => {
		server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				const raw = Buffer.concat(chunks).toString('utf8');
				const check = verifySignature(SECRET, raw, req.headers);
				const body = JSON.parse(raw) as Delivery;
				received.push({ path: req.url ?? '', body, valid: check.valid, ...(check.valid ? { signedSite: check.site, foreign: foreignSiteField(body as never, check.site) } : {}) });
				if (req.url?.endsWith('/crm-unpublished')) {
					// n8n's answer for a path no published workflow listens on, stack trace and all.
					res.writeHead(404, { 'content-type': 'application/json' });
					res.end(JSON.stringify({ code: 404, message: 'The requested webhook "POST crm-unpublished" is not registered.', hint: 'Publish the workflow', stacktrace: 'Error: The requested webhook…\n    at TestWebhooks.getWebhookMethods (/usr/lib/node_modules/n8n/dist/webhooks/test-webhooks.js:1:1)' }));
					return;
				}
				const status = check.valid ? (check.site === failingSite ? 500 : answer) : 401;
				res.writeHead(status, { 'content-type': 'application/json' });
				res.end(JSON.stringify(check.valid ? { ok: status < 300 } : { error: 'invalid_signature' }));
			});
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	});

	afterAll(async () => {
		await new Promise((resolve) => server.close(resolve));
	});

	beforeEach(() => {
		received.length = 0;
		answer = 200;
		failingSite = undefined;
	});

	it('posts the items in order, in signed deliveries the trigger turns back into the same items', async () => {
		const input = Array.from({ length: 5 }, (_, i) => ({ site: 'shop', siteId: 'site-1', kind: 'event', n: i, session: { level: i % 2 ? 'high' : 'low' } }));
		const result = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook`, batchSize: 2 }), { input, credentials: credentials(), throwOnError: true });

		expect(received.map((delivery) => delivery.path)).toEqual(['/webhook/crm-next', '/webhook/crm-next', '/webhook/crm-next']);
		expect(received.map((delivery) => [delivery.valid, delivery.signedSite, delivery.foreign])).toEqual(Array(3).fill([true, 'shop', undefined]));
		expect(received.map((delivery) => delivery.body.items?.length)).toEqual([2, 2, 1]);
		const emitted = received.flatMap((delivery) => deliveryItems(delivery.body, 'perEvent'));
		expect(emitted.map((item) => item.n)).toEqual([0, 1, 2, 3, 4]);
		expect(emitted[3]).toMatchObject({ site: 'shop', siteId: 'site-1', kind: 'event', session: { level: 'high' } });
		expect(new Set(received.map((delivery) => delivery.body.deliveryId)).size).toBe(3);
		// The node passes its items on, each paired to its input.
		expect(result.outputOf('CRM Hand Off')).toEqual(input);
		expect(result.itemsOf('CRM Hand Off').map((item) => item.pairedItem)).toEqual(input.map((_, item) => ({ item })));
	});

	it('signs each site’s items apart: one delivery per site, in order within each, none carrying another site', async () => {
		const input = [
			{ site: 'shop', siteId: 'site-1', n: 0 },
			{ site: 'blog', siteId: 'site-2', n: 1 },
			{ site: 'shop', siteId: 'site-1', n: 2 },
			{ site: 'shop', siteId: 'site-1', n: 3 },
		];
		const result = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook`, batchSize: 2 }), { input, credentials: credentials(), throwOnError: true });

		expect(received.map((delivery) => [delivery.signedSite, delivery.body.site, delivery.body.siteId, delivery.foreign, delivery.body.items?.map((item) => item.n)])).toEqual([
			['shop', 'shop', 'site-1', undefined, [0, 2]],
			['shop', 'shop', 'site-1', undefined, [3]],
			['blog', 'blog', 'site-2', undefined, [1]],
		]);
		expect(result.outputOf('CRM Hand Off')).toEqual(input);
	});

	it('refuses an item without a site key before sending anything, naming the item', async () => {
		const result = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook` }), { input: [{ site: 'shop' }, { n: 1 }], credentials: credentials() });
		expect(result.status).toBe('error');
		expect(result.error?.message).toContain('Item 1 has no site key in "site"');
		expect(received).toHaveLength(0);
	});

	it('with Continue On Fail, hands on the items that name a site and fails only the one that does not', async () => {
		const input = [
			{ site: 'shop', n: 0 },
			{ n: 1 },
			{ site: 'shop', n: 2 },
		];
		const result = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook` }, { continueOnFail: true }), { input, credentials: credentials(), throwOnError: true });
		expect(received.flatMap((delivery) => delivery.body.items?.map((item) => item.n))).toEqual([0, 2]);
		const output = result.outputOf('CRM Hand Off');
		expect(output[0]).toEqual(input[0]);
		expect(output[1].error).toMatch(/^Item 1 has no site key in "site"/);
		expect(output[2]).toEqual(input[2]);
	});

	it.each([
		[{ batchSize: 0 }, 'Items per Delivery: is 0: give a whole number from 1 to 1000'],
		[{ batchSize: -3 }, 'Items per Delivery: is -3: give a whole number from 1 to 1000'],
		[{ batchSize: '={{ "abc" }}' }, 'Items per Delivery: is "abc": give a whole number from 1 to 1000'],
		[{ timeoutSeconds: 0 }, 'Timeout (Seconds): is 0: give a number from 1 to 3600'],
		[{ target: '={{ $json }}' }, 'Target: is an object: give text (map one field of the item, such as {{ $json.email }}, not a whole object)'],
		[{ target: '={{ $json.nope }}' }, 'Target is empty: give the webhook path of the next workflow’s CRM Tracker Trigger (e.g. crm-conversion-detector) or its full URL'],
	])('refuses %p before sending anything, naming the field and the fix', async (parameters, message) => {
		const result = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook`, ...parameters }), { input: [{ site: 'shop', n: 0 }], credentials: credentials() });
		expect(result.status).toBe('error');
		expect(result.error?.message).toBe(message);
		expect(received).toHaveLength(0);
	});

	it('with Continue On Fail, fails every item with a wrong setting, and only the items of a delivery the next workflow refused', async () => {
		const bad = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook`, batchSize: 0 }, { continueOnFail: true }), {
			input: [{ site: 'shop', n: 0 }, { site: 'shop', n: 1 }],
			credentials: credentials(),
			throwOnError: true,
		});
		expect(bad.outputOf('CRM Hand Off')).toEqual(Array(2).fill({ error: 'Items per Delivery: is 0: give a whole number from 1 to 1000' }));
		expect(received).toHaveLength(0);

		failingSite = 'blog';
		const input = [{ site: 'shop', n: 0 }, { site: 'blog', n: 1 }, { site: 'shop', n: 2 }];
		const refused = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook` }, { continueOnFail: true }), { input, credentials: credentials(), throwOnError: true });
		expect(received.map((delivery) => delivery.signedSite)).toEqual(['shop', 'blog']);
		expect(refused.outputOf('CRM Hand Off')).toEqual([input[0], { error: `The next workflow at ${base}/webhook/crm-next answered 500: {"ok":false}` }, input[2]]);
	});

	it('fails when the next workflow fails, naming its URL and answer', async () => {
		answer = 500;
		const result = await runWorkflow(workflow({ target: `${base}/webhook/crm-broken` }), { input: [{ site: 'shop', n: 1 }], credentials: credentials() });
		expect(result.status).toBe('error');
		expect(result.errorNode).toBe('CRM Hand Off');
		expect(result.error?.message).toContain(`${base}/webhook/crm-broken answered 500`);
		expect(received).toHaveLength(1);
	});

	it('quotes the message of n8n\'s answer for an unpublished workflow, not its stack trace', async () => {
		const result = await runWorkflow(workflow({ target: `${base}/webhook/crm-unpublished` }), { input: [{ site: 'shop' }], credentials: credentials() });
		expect(result.error?.message).toBe(`The next workflow at ${base}/webhook/crm-unpublished answered 404: The requested webhook "POST crm-unpublished" is not registered.`);
		expect((result.error as { description?: string } | undefined)?.description).toMatch(/import and publish it/);
	});

		it('a secret the next trigger does not know is refused there and fails here', async () => {
		const result = await runWorkflow(workflow({ target: 'crm-next', webhookBaseUrl: `${base}/webhook` }), { input: [{ site: 'shop' }], credentials: credentials('another-secret') });
		expect(received.map((delivery) => delivery.valid)).toEqual([false]);
		expect(result.error?.message).toContain('answered 401');
	});

	it('an unreachable next workflow fails the run with a message naming the URL', async () => {
		const closed = createServer();
		await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
		const port = (closed.address() as AddressInfo).port;
		await new Promise((resolve) => closed.close(resolve));
		const result = await runWorkflow(workflow({ target: `http://127.0.0.1:${port}/webhook/crm-next` }), { input: [{ site: 'shop' }], credentials: credentials() });
		expect(result.status).toBe('error');
		expect(result.error?.message).toContain(`http://127.0.0.1:${port}/webhook/crm-next could not be reached`);
	});

	it('an empty target is a parameter error that says what to give', async () => {
		const result = await runWorkflow(workflow({ target: ' ' }), { input: [{ site: 'shop' }], credentials: credentials() });
		expect(result.error?.message).toMatch(/Target is empty: give the webhook path/);
		expect(received).toHaveLength(0);
	});

	it('builds the target URL from a path and this instance’s webhook base', () => {
		expect(handOffUrl('crm-conversion-detector', 'http://127.0.0.1:5678/webhook/')).toBe('http://127.0.0.1:5678/webhook/crm-conversion-detector');
		expect(handOffUrl('/webhook/crm-a', 'http://h:1/webhook')).toBe('http://h:1/webhook/crm-a');
		expect(handOffUrl('https://n8n.example.com/webhook/crm-a', 'http://ignored')).toBe('https://n8n.example.com/webhook/crm-a');
	});
});
