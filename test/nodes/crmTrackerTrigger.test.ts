/**
 * The CRM Tracker Trigger's webhook in n8n's engine (n8n-core's WebhookContext on a real HTTP
 * request): a delivery is bound to the site it is signed for. A body naming another site, at
 * the top or in any event, lead or handed-on item, is refused before the workflow runs, and the
 * items it emits carry the signed site.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Logger } from '@n8n/backend-common';
import { Container } from '@n8n/di';
import express from 'express';
import { nodeParametersAreStatic, resolveWebhookDescriptionField, webhookDescriptionIsNativelyResolvable, type INode } from 'n8n-workflow';

import { foreignSiteField, signBody, signedHeaders, SITE_HEADER, verifySignature } from '../../lib/signing';
import type { WorkflowJson } from '../harness/n8n';
import { activateWebhook, runWebhook } from '../harness/webhook';
import { CrmTrackerTrigger } from '../../nodes/CrmTrackerTrigger/CrmTrackerTrigger.node';
import { deliveryItems, type Delivery } from '../../nodes/CrmTrackerTrigger/delivery';

const SECRET = 'trigger-test-secret';
const WORKFLOWS = path.join(__dirname, '..', '..', 'workflows');

function workflow(sites: unknown = '', toleranceSeconds: unknown = 300, emit: unknown = 'perEvent', responseMode: unknown = 'lastNode'): WorkflowJson {
	return {
		name: 'Trigger test',
		nodes: [
			{
				id: 'trigger',
				name: 'CRM Tracker Trigger',
				type: 'n8n-nodes-tracking-crm.crmTrackerTrigger',
				typeVersion: 1,
				position: [0, 0],
				webhookId: '4a0b2f0e-8f2c-4c55-9d0e-3f4f2a1b6c7d',
				parameters: { path: 'crm-test', emit: emit as string, responseMode: responseMode as string, toleranceSeconds: toleranceSeconds as number, sites: sites as string },
				credentials: { trackingCrmApi: { id: '1', name: 'Tracking CRM' } },
			},
			{ id: 'next', name: 'Next', type: 'n8n-nodes-base.noOp', typeVersion: 1, position: [200, 0], parameters: {} },
		],
		connections: { 'CRM Tracker Trigger': { main: [[{ node: 'Next', type: 'main', index: 0 }]] } },
	};
}

/** A receiver delivery of site `shop` with one event, one lead and one email event, in the delivery contract's shape. */
function delivery(): Record<string, any> {
	const at = new Date().toISOString();
	return {
		site: 'shop',
		siteId: 'id-shop',
		destination: 'crm-test',
		deliveryId: '41,42',
		sentAt: at,
		events: [
			{
				id: '019aa000-0000-7000-8000-000000000001',
				anonymousId: 'a1',
				sessionId: 's1',
				type: 'custom',
				name: 'demo',
				url: 'https://shop.example/',
				path: '/',
				title: null,
				referrer: null,
				relevance: null,
				props: { site: 'partner-site' },
				context: null,
				userAgent: null,
				country: null,
				occurredAt: at,
				receivedAt: at,
			},
		],
		leads: [
			{
				kind: 'lead',
				eventId: '019aa000-0000-7000-8000-0000000000a1',
				lead: { site: 'shop', email: 'jane@example.com', consent: false },
				emailHash: 'hash-of-jane',
				country: null,
				receivedAt: at,
			},
		],
		emailEvents: [
			{
				kind: 'email-event',
				type: 'open',
				messageId: '019aa000-0000-7000-8000-0000000000e1',
				leadId: null,
				eventId: '019aa000-0000-7000-8000-0000000000e2',
				url: null,
				first: true,
				occurredAt: '2026-11-20T09:00:00.123456+00:00',
			},
		],
	};
}

describe('CRM Tracker Trigger: a delivery is bound to its signed site', () => {
	let server: Server;
	let url: string;
	let sitesParameter: unknown = '';
	let toleranceParameter: unknown = 300;
	let emitParameter: unknown = 'perEvent';
	let runs = 0;

	beforeAll(async () => {
		const app = express();
		// n8n's webhook server keeps the raw bytes beside the parsed body; the signature is over them.
		app.use(express.json({ verify: (req, _res, raw) => Object.assign(req, { rawBody: raw }) }));
		app.post('/webhook/crm-test', (req, res) => {
			runWebhook(workflow(sitesParameter, toleranceParameter, emitParameter), 'CRM Tracker Trigger', req, res, { trackingCrmApi: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret: SECRET, emailTokenSecret: '' } })
				.then(({ run }) => {
					if (res.headersSent) return;
					runs += 1;
					res.status(run?.error ? 500 : 200).json(run?.error ? { error: run.error.message } : run?.outputOf('Next'));
				})
				.catch((error: Error) => res.status(500).json({ error: error.message }));
		});
		server = app.listen(0, '127.0.0.1');
		await new Promise((resolve) => server.once('listening', resolve));
		url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook/crm-test`;
	});

	afterAll(async () => {
		server.closeAllConnections();
		await new Promise((resolve) => server.close(resolve));
	});

	beforeEach(() => {
		sitesParameter = '';
		toleranceParameter = 300;
		emitParameter = 'perEvent';
		runs = 0;
	});

	const send = async (body: string, headers: Record<string, string>) => {
		const response = await fetch(url, { method: 'POST', headers, body });
		return { status: response.status, body: (await response.json()) as any };
	};
	const signedFor = (site: string, body: Record<string, unknown>) => {
		const text = JSON.stringify(body);
		return send(text, signedHeaders(SECRET, site, text, 'd-1'));
	};

	it('runs the workflow on a delivery signed for the site it names; every item carries that site', async () => {
		const response = await signedFor('shop', delivery());
		expect(response.status).toBe(200);
		expect(response.body.map((item: Record<string, unknown>) => [item.kind, item.site, item.siteId])).toEqual([
			['event', 'shop', 'id-shop'],
			['lead', 'shop', 'id-shop'],
			['email-event', 'shop', 'id-shop'],
		]);
		// A visitor's own properties are data, not a site.
		expect(response.body[0].props).toEqual({ site: 'partner-site' });
	});

	it.each([
		['site', (body: Record<string, any>) => (body.site = 'blog')],
		['events[0].site', (body: Record<string, any>) => (body.events[0].site = 'blog')],
		['leads[0].lead.site', (body: Record<string, any>) => (body.leads[0].lead.site = 'blog')],
		['leads[0].siteId', (body: Record<string, any>) => (body.leads[0].siteId = 'id-blog')],
		['emailEvents[0].siteId', (body: Record<string, any>) => (body.emailEvents[0].siteId = 'id-blog')],
		['items[1].site', (body: Record<string, any>) => (body.items = [{ site: 'shop', n: 0 }, { site: 'blog', n: 1 }])],
		['items[0].events[0].site', (body: Record<string, any>) => (body.items = [{ site: 'shop', events: [{ site: 'blog' }] }])],
	])('refuses, before the workflow runs, a body signed for shop whose %s names another site', async (field, change) => {
		const body = delivery();
		change(body);
		const response = await signedFor('shop', body);
		expect(response.status).toBe(400);
		expect(response.body).toMatchObject({ error: 'site_mismatch', field });
		expect(response.body.message).toContain(`${field} names another site than the one the delivery is signed for ("shop", header x-crm-site)`);
		expect(runs).toBe(0);
	});

	it('refuses a signature moved to another site: the site is signed, not only the body', async () => {
		const body = { ...delivery(), site: 'blog', leads: [] };
		const text = JSON.stringify(body);
		const forged = { ...signedHeaders(SECRET, 'shop', text, 'd-1'), [SITE_HEADER]: 'blog' };
		const response = await send(text, forged);
		expect(response.status).toBe(401);
		expect(response.body).toMatchObject({ error: 'invalid_signature', message: expect.stringContaining('signature does not match the body and site') });

		const { [SITE_HEADER]: _dropped, ...unsited } = signedHeaders(SECRET, 'shop', text, 'd-1');
		const missing = await send(text, unsited);
		expect(missing.status).toBe(401);
		expect(missing.body.message).toContain('missing x-crm-site header');
		expect(runs).toBe(0);
	});

	it('emits handed-on items with the signed site, also those that named none', async () => {
		const response = await signedFor('shop', { site: 'shop', siteId: 'id-shop', destination: 'crm-test', deliveryId: 'h-1', sentAt: new Date().toISOString(), events: [], leads: [], items: [{ site: 'shop', n: 0 }, { n: 1 }] });
		expect(response.status).toBe(200);
		expect(response.body.map((item: Record<string, unknown>) => [item.n, item.site])).toEqual([
			[0, 'shop'],
			[1, 'shop'],
		]);
	});

	it.each([
		['events[0].occurredAt', 'must be an ISO 8601 time', (body: Record<string, any>) => (body.events[0].occurredAt = 'yesterday')],
		['events[0].type', 'must be one of pageview', (body: Record<string, any>) => (body.events[0].type = 'visit')],
		['events[0].id', 'must be the event’s id (a UUID)', (body: Record<string, any>) => (body.events[0].id = 'e1')],
		['leads[0].lead.email', 'must be an email address', (body: Record<string, any>) => (body.leads[0].lead.email = 'jane')],
		['leads[0].eventId', 'must be the submission’s event id (a UUID)', (body: Record<string, any>) => (body.leads[0].eventId = 'l1')],
		['emailEvents[0].type', 'must be one of open, click, unsubscribe', (body: Record<string, any>) => (body.emailEvents[0].type = 'bounce')],
		['leads', 'expected an array', (body: Record<string, any>) => (body.leads = { lead: body.leads[0] })],
		['events', 'is required: a delivery holds "events", "leads", "emailEvents" or "items"', (body: Record<string, any>) => ['events', 'leads', 'emailEvents'].forEach((key) => delete body[key])],
		['items[0]', 'expected a record', (body: Record<string, any>) => (body.items = ['not an item'])],
	])('refuses with 400 naming %s a body that is no delivery, before the workflow runs', async (field, message, change) => {
		const body = delivery();
		change(body);
		const response = await signedFor('shop', body);
		expect(response.status).toBe(400);
		expect(response.body).toMatchObject({ error: 'invalid_delivery', field });
		expect(response.body.message).toContain(`${field} ${message}`);
		expect(runs).toBe(0);
	});

	it('refuses every delivery while the Replay Window is no number, rather than accepting old ones', async () => {
		const text = JSON.stringify(delivery());
		const tenDaysAgo = Math.floor(Date.now() / 1000) - 10 * 86400;
		expect((await send(text, signedHeaders(SECRET, 'shop', text, 'd-old', tenDaysAgo))).status).toBe(401);
		for (const value of ['abc', '={{ "abc" }}', 0]) {
			toleranceParameter = value;
			const refused = await send(text, signedHeaders(SECRET, 'shop', text, 'd-old', tenDaysAgo));
			// A 5xx: the sender keeps the delivery and retries it once the workflow is fixed.
			expect(refused.status).toBe(500);
			expect(refused.body).toMatchObject({ error: 'trigger_misconfigured', field: 'Replay Window (Seconds)' });
			expect(refused.body.message).toMatch(
				/^The workflow's CRM Tracker Trigger is misconfigured, so no delivery is accepted until it is fixed in n8n: Replay Window \(Seconds\): is (?:"abc"|0): give a number from 30 to 86400$/,
			);
		}
		expect(runs).toBe(0);
		expect(verifySignature(SECRET, text, signedHeaders(SECRET, 'shop', text, 'd-old', tenDaysAgo), { toleranceSeconds: Number.NaN })).toEqual({ valid: false, reason: 'the replay window is not a number of seconds' });
	});

	it('fails naming Sites when an expression gives it an object, instead of failing in n8n', async () => {
		sitesParameter = '={{ { a: 1 } }}';
		const refused = await signedFor('shop', delivery());
		expect(refused.status).toBe(500);
		expect(refused.body).toMatchObject({ error: 'trigger_misconfigured', field: 'Sites' });
		expect(refused.body.message).toContain('Sites: is an object: give text');
		expect(runs).toBe(0);
	});

	it('fails naming Emit when it is none of its options, instead of emitting per event', async () => {
		emitParameter = 'perSite';
		const refused = await signedFor('shop', delivery());
		expect(refused.status).toBe(500);
		expect(refused.body).toMatchObject({ error: 'trigger_misconfigured', field: 'Emit' });
		expect(refused.body.message).toContain('Emit: is "perSite": give one of "perEvent", "perVisitor", "perBatch"');
		expect(runs).toBe(0);
	});

	it("fails the editor's test listening of a trigger whose settings would refuse every delivery, naming the field", async () => {
		const credentials = { trackingCrmApi: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret: SECRET, emailTokenSecret: '' } };
		await expect(activateWebhook(workflow('', 300, 'perEvent'), 'CRM Tracker Trigger', credentials, 'manual')).resolves.toBeUndefined();
		await expect(activateWebhook(workflow('', 'abc', 'perEvent'), 'CRM Tracker Trigger', credentials, 'manual')).rejects.toThrow('Replay Window (Seconds): is "abc": give a number from 30 to 86400');
		await expect(activateWebhook(workflow('', 300, 'perSite'), 'CRM Tracker Trigger', credentials, 'manual')).rejects.toThrow('Emit: is "perSite": give one of "perEvent", "perVisitor", "perBatch"');
		await expect(activateWebhook(workflow('', 300, 'perEvent', 'whenever'), 'CRM Tracker Trigger', credentials, 'manual')).rejects.toThrow('Respond: is "whenever": give one of "onReceived", "lastNode"');
	});

	it('publishes such a trigger, which n8n 2 does in the background, with the problem in n8n\'s log: its webhook then answers it to the sender', async () => {
		const credentials = { trackingCrmApi: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret: SECRET, emailTokenSecret: '' } };
		const error = jest.spyOn(Container.get(Logger), 'error');
		try {
			await expect(activateWebhook(workflow('', 'abc', 'perEvent'), 'CRM Tracker Trigger', credentials, 'activate')).resolves.toBeUndefined();
			expect(error.mock.calls.map(([message]) => String(message))).toContainEqual(expect.stringContaining('is misconfigured, so no delivery is accepted until it is fixed in n8n: Replay Window (Seconds): is "abc"'));
		} finally {
			error.mockRestore();
		}
	});

	it('with Sites set, refuses a delivery of any other site with 403 naming the parameter', async () => {
		sitesParameter = 'blog, news';
		const refused = await signedFor('shop', delivery());
		expect(refused.status).toBe(403);
		expect(refused.body).toMatchObject({ error: 'site_not_allowed', message: expect.stringContaining('accepts deliveries of blog, news only, not of site "shop"') });
		const accepted = await signedFor('blog', { ...delivery(), site: 'blog', siteId: 'id-blog', leads: [] });
		expect(accepted.status).toBe(200);
		expect(runs).toBe(1);
	});
});

describe('the items a delivery makes', () => {
	const event = (id: number, anonymousId: string) => ({ ...delivery().events[0], id: `019aa000-0000-7000-8000-${String(id).padStart(12, '0')}`, anonymousId });
	const mixed = () => ({ ...delivery(), events: [event(1, 'a'), event(2, 'b'), event(3, 'a'), event(4, 'c'), event(5, 'b')] }) as unknown as Delivery;

	it('one per visitor: each visitor’s events in delivery order, visitors in order of their first event, leads and email events one each', () => {
		const items = deliveryItems(mixed(), 'perVisitor');
		expect(items.map((item) => [item.kind, item.anonymousId, (item.events as Array<{ id: string }> | undefined)?.map((e) => Number(e.id.slice(-12)))])).toEqual([
			['events', 'a', [1, 3]],
			['events', 'b', [2, 5]],
			['events', 'c', [4]],
			['lead', undefined, undefined],
			['email-event', undefined, undefined],
		]);
		expect(items.every((item) => item.site === 'shop' && item.deliveryId === '41,42')).toBe(true);
	});

	it('one per event, or the delivery whole', () => {
		expect(deliveryItems(mixed(), 'perEvent').map((item) => item.kind)).toEqual(['event', 'event', 'event', 'event', 'event', 'lead', 'email-event']);
		// One delivery for both sides: mixed() stamps its events with the time it is called.
		const delivery = mixed();
		expect(deliveryItems(delivery, 'perBatch')).toEqual([expect.objectContaining({ site: 'shop', events: delivery.events })]);
	});
});

describe('n8n answers a delivery without its expression engine', () => {
	it('resolves the webhook description of every bundled trigger from its parameters, as its templates say', () => {
		const [description] = new CrmTrackerTrigger().description.webhooks ?? [];
		expect(webhookDescriptionIsNativelyResolvable(description)).toBe(true);
		for (const file of readdirSync(WORKFLOWS).filter((name) => name.endsWith('.json'))) {
			const trigger = (JSON.parse(readFileSync(path.join(WORKFLOWS, file), 'utf8')) as WorkflowJson).nodes.find((node) => node.type.endsWith('.crmTrackerTrigger')) as INode;
			// n8n reads the body of a version-1 trigger's request only after evaluating an expression.
			expect([file, trigger.typeVersion]).toEqual([file, 2]);
			expect(nodeParametersAreStatic(trigger)).toBe(true);
			expect(resolveWebhookDescriptionField(trigger, description, 'path')).toEqual({ resolved: true, value: trigger.parameters.path });
			expect(resolveWebhookDescriptionField(trigger, description, 'responseMode')).toEqual({ resolved: true, value: trigger.parameters.responseMode });
			// Nobody reads a bundled workflow's answer but its status.
			expect(resolveWebhookDescriptionField(trigger, description, 'responseData')).toEqual({ resolved: true, value: 'noData' });
		}
		// Answering at once, the trigger has no Response Data: n8n answers its own "Workflow was started"
		// (a Response Data there would be sent as the body, as the text "allEntries").
		const immediate = { ...({} as INode), parameters: { path: 'crm-x', responseMode: 'onReceived' } };
		expect(resolveWebhookDescriptionField(immediate, description, 'responseData')).toEqual({ resolved: true, value: undefined });
		// A parameter set by an expression still goes to the engine.
		const dynamic = { ...({} as INode), parameters: { path: '={{ "crm-" + "x" }}', responseMode: 'lastNode' } };
		expect(resolveWebhookDescriptionField(dynamic, description, 'path')).toEqual({ resolved: false });
	});
});

describe('signing rules', () => {
	it('signs the timestamp, the site and the body, and hands back the signed site', () => {
		const headers = signedHeaders(SECRET, 'shop', '{}', 'd', 1_800_000_000);
		expect(headers['x-crm-signature']).toBe(signBody(SECRET, 1_800_000_000, 'shop', '{}'));
		expect(verifySignature(SECRET, '{}', headers, { nowSeconds: 1_800_000_010 })).toEqual({ valid: true, site: 'shop' });
		expect(verifySignature(SECRET, '{}', { ...headers, [SITE_HEADER]: 'shop.x' }, { nowSeconds: 1_800_000_010 })).toEqual({ valid: false, reason: 'x-crm-site is not a site key' });
		expect(() => signBody(SECRET, 1, 'a.b', '{}')).toThrow(/Cannot sign for site "a.b"/);
	});

	it('finds the first field naming another site, and all site ids must agree', () => {
		expect(foreignSiteField(delivery(), 'shop')).toBeUndefined();
		expect(foreignSiteField(delivery(), 'blog')).toBe('site');
		expect(foreignSiteField({ site: 'shop', items: [{ siteId: 'x' }, { siteId: 'y' }] }, 'shop')).toBe('items[1].siteId');
		expect(foreignSiteField({ site: 'shop', items: [{ siteId: 'x' }] }, 'shop', 'id-shop')).toBe('items[0].siteId');
		expect(foreignSiteField({ site: 'shop', leads: [{ lead: { site: null } }] }, 'shop')).toBe('leads[0].lead.site');
		expect(foreignSiteField({ events: [{ props: { site: 'any' }, properties: { siteId: 'any' } }] }, 'shop')).toBeUndefined();
	});
});
