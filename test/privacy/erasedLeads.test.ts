/**
 * Items about a person erased (POST /api/privacy/erase) while they were still on their way through
 * the bundled workflows: the Enricher, the Lead Scorer, the Activity Logger and the Email Orchestrator, run through
 * n8n's execution engine, leave out an item naming the erased lead by its id or its address — no
 * output, no failure, a line in n8n's log — and handle the live lead's item beside it. A reference
 * that names no lead and was never erased still fails, naming the Lead parameter. On a site that
 * stores addresses in clear and on one with privacy.encryptPii.
 */
import { randomBytes } from 'node:crypto';

import { Logger } from '@n8n/backend-common';
import { Container } from '@n8n/di';
import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { leadField, parsePiiKeys, PII_HASH_KEY_ENV, PII_KEYS_ENV, PiiCipher } from '../../lib/pii';
import { disconnectAll } from '../../nodes/shared/database';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { runWorkflow, type TestCredentials, type WorkflowJson } from '../harness/n8n';
import { postgresCredential, testDbUrl, testPrisma } from '../helpers/db';
import { post } from '../helpers/events';

const newKey = () => randomBytes(32).toString('base64');
const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';
const LEFT_OUT = 'item(s) left out: their person was erased (privacy erasure)';

function siteConfig(key: string, encryptPii: boolean): SiteConfig {
	return parseSiteConfig({
		site: { key, name: key, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false, encryptPii },
		// A first step an hour out: enrolling sends nothing, so no mail server is needed.
		crm: { emailSequences: [{ name: 'welcome', trigger: { event: 'signup' }, steps: [{ delayMinutes: 60, subject: 'Welcome', html: '<p>Hi</p>' }] }] },
		integrations: { emailProvider: { type: 'smtp', fromEmail: `hello@${key}.example` } },
	});
}

/** One node of this package behind a Manual Trigger, named as the editor names it. */
function workflow(name: string, type: string, parameters: INode['parameters']): WorkflowJson {
	return {
		name: `${name} after an erasure`,
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'node',
				name,
				type: `n8n-nodes-tracking-crm.${type}`,
				typeVersion: 1,
				position: [200, 0],
				parameters,
				credentials: { postgres: { id: '1', name: 'CRM database' }, trackingCrmApi: { id: '2', name: 'Tracking CRM' }, smtp: { id: '3', name: 'Mail' } },
			},
		],
		connections: { Start: { main: [[{ node: name, type: 'main', index: 0 }]] } },
	};
}

/** A node and operation that take a lead: its parameters, and the item that names a lead by `reference` on site `site`. */
interface Case {
	name: string;
	type: string;
	parameters: INode['parameters'];
	item: (site: string, reference: string) => IDataObject;
}

const byParameter = (site: string, reference: string): IDataObject => ({ site, lead: reference });
/** The CRM items of the workflows carry a lead as `leadId`, or as `email` before it has one. */
const crmItem = (site: string, reference: string, fields: IDataObject = {}): IDataObject => ({ site, ...(reference.includes('@') ? { email: reference } : { leadId: reference }), ...fields });

const CASES: Case[] = [
	{ name: 'CRM Enricher', type: 'enricher', parameters: { siteKey: '={{ $json.site }}', lead: '={{ $json.lead }}', country: '', userAgent: BROWSER }, item: byParameter },
	{
		name: 'CRM Activity Logger (Log Activity)',
		type: 'activityLogger',
		parameters: { operation: 'log', siteKey: '={{ $json.site }}', subject: 'lead', lead: '={{ $json.lead }}', activityType: 'call', description: 'Called back' },
		item: byParameter,
	},
	{
		name: 'CRM Activity Logger (Log CRM Outcome)',
		type: 'activityLogger',
		parameters: { operation: 'logOutcome', siteKey: '={{ $json.site }}' },
		item: (site, reference) => crmItem(site, reference, { scoring: { total: 12, engagement: 10, fit: 2 } }),
	},
	{ name: 'CRM Lead Scorer (Rescore)', type: 'leadScorer', parameters: { operation: 'rescore', siteKey: '={{ $json.site }}', lead: '={{ $json.lead }}' }, item: byParameter },
	{ name: 'CRM Activity Logger (Get Timeline)', type: 'activityLogger', parameters: { operation: 'getTimeline', siteKey: '={{ $json.site }}', lead: '={{ $json.lead }}' }, item: byParameter },
	{
		name: 'CRM Email Orchestrator (Enroll)',
		type: 'emailOrchestrator',
		parameters: { operation: 'enroll', siteKey: '={{ $json.site }}', lead: '={{ $json.lead }}', sequenceSource: 'site', sequence: 'welcome' },
		item: byParameter,
	},
	{
		name: 'CRM Email Orchestrator (Handle Email Event)',
		type: 'emailOrchestrator',
		parameters: { operation: 'handleEmailEvent', siteKey: '={{ $json.site }}', eventType: 'unsubscribe', lead: '={{ $json.lead }}', occurredAt: '' },
		item: byParameter,
	},
	{
		name: 'CRM Email Orchestrator (Enroll by Trigger and Send)',
		type: 'emailOrchestrator',
		parameters: { operation: 'enrollByTrigger', siteKey: '={{ $json.site }}', lead: '={{ $json.lead }}', options: { event: 'signup' } },
		item: byParameter,
	},
	{ name: 'CRM Email Orchestrator (Handle CRM Items)', type: 'emailOrchestrator', parameters: { operation: 'handleCrmItems', siteKey: '={{ $json.site }}' }, item: crmItem },
	{
		name: 'CRM Email Orchestrator (Handle CRM Items, email event)',
		type: 'emailOrchestrator',
		parameters: { operation: 'handleCrmItems', siteKey: '={{ $json.site }}' },
		item: (site, reference) => ({ site, kind: 'email-event', type: 'bounce', leadId: reference }),
	},
];

describe('the CRM nodes after a privacy erasure of a lead still on its way', () => {
	const prisma: PrismaClient = testPrisma();
	const keys = { [PII_KEYS_ENV]: `k1:${newKey()}`, [PII_HASH_KEY_ENV]: newKey() };
	const keyring = parsePiiKeys(keys[PII_KEYS_ENV], keys[PII_HASH_KEY_ENV]);
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	const tag = randomBytes(4).toString('hex');
	const configs = [siteConfig(`erased-clear-${tag}`, false), siteConfig(`erased-sealed-${tag}`, true)];
	const credentials = (): TestCredentials => ({
		postgres: postgresCredential(),
		trackingCrmApi: { receiverUrl: 'http://127.0.0.1:9', webhookSecret: 'unused-here', emailTokenSecret: 'token-secret-of-at-least-32-characters', piiEncryptionKeys: keys[PII_KEYS_ENV], piiHashKey: keys[PII_HASH_KEY_ENV] },
		smtp: { host: '127.0.0.1', port: 9, secure: false, disableStartTls: true, user: '', password: '' },
	});
	let receiver: Receiver;
	const sites = new Map<string, { id: string; gone: { id: string; email: string }; live: { id: string; email: string } }>();
	let info: jest.SpyInstance;

	beforeAll(async () => {
		// The erasure reads a sealed site's keys from the receiver's environment.
		Object.assign(process.env, keys);
		receiver = await startReceiver({
			sites: configs,
			database: { url: testDbUrl(), migrate: false },
			settings: { PORT: 0, DISPATCHER: 'off' },
			env: { ...keys },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		for (const config of configs) {
			const key = config.site.key;
			const id = receiver.sites.byPublicKey(key)!.id;
			const cipher = config.privacy.encryptPii ? new PiiCipher(keyring, id) : null;
			// Stored as the Lead Scorer stores them: sealed, and found by the keyed hash, on the sealed site.
			const lead = async (email: string) => {
				const row = await prisma.lead.create({ data: { siteId: id, email: cipher ? cipher.seal(email, leadField('email')) : email, emailHash: emailHash(email, cipher) }, select: { id: true } });
				return { id: row.id, email };
			};
			const gone = await lead(`gone.${tag}@${key}.example`);
			const live = await lead(`live.${tag}@${key}.example`);
			// The live lead's timeline has an entry to read.
			await prisma.activity.create({ data: { siteId: id, leadId: live.id, type: 'note', description: 'Met at the fair', occurredAt: new Date() } });
			sites.set(key, { id, gone, live });

			const admin = await createApiKey(prisma, id, 'admin', 'privacy-officer');
			const erased = await post(`${receiver.url}/api/privacy/erase`, { email: gone.email }, { authorization: `Bearer ${admin}`, 'content-type': 'application/json' });
			expect(erased).toMatchObject({ status: 200, json: { erased: true, removed: expect.objectContaining({ leads: 1 }) } });
		}
		info = jest.spyOn(Container.get(Logger), 'info');
	});

	afterAll(async () => {
		info?.mockRestore();
		await receiver?.close();
		await disconnectAll();
		await prisma.$disconnect();
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
	});

	const runs = configs.flatMap((config) => CASES.map((each) => [each.name, config.privacy.encryptPii ? 'with privacy.encryptPii' : 'in clear', config.site.key, each] as const));

	it.each(runs)('%s, on a site storing addresses %s: leaves out the erased lead’s items, by id and by address, and handles the live lead’s', async (name, _storage, key, each) => {
		const { gone, live } = sites.get(key)!;
		// The address as a workflow may carry it, in another spelling of the same mailbox; an email event names its lead by id only.
		const byAddress = each.name.endsWith('email event)') ? [] : [each.item(key, ` ${gone.email.toUpperCase()} `)];
		info.mockClear();
		const result = await runWorkflow(workflow(name, each.type, each.parameters), { input: [each.item(key, gone.id), ...byAddress, each.item(key, live.id)], credentials: credentials() });

		expect(result.error).toBeUndefined();
		const items = result.itemsOf(name);
		expect(items.length).toBeGreaterThan(0);
		// Only the live lead's item, paired to it (the last input item), and nothing names the erased lead.
		expect(items.map((item) => item.pairedItem)).toEqual(items.map(() => ({ item: byAddress.length + 1 })));
		expect(items.map((item) => item.json.error)).toEqual(items.map(() => undefined));
		expect(items.map((item) => item.json.leadId ?? (item.json.enrollment as IDataObject | undefined)?.leadId)).toEqual(items.map(() => live.id));
		expect(JSON.stringify(items)).not.toContain(gone.id);
		expect(info.mock.calls.map(([message]) => message).filter((message) => String(message).includes('left out'))).toEqual([`${name}: ${1 + byAddress.length} ${LEFT_OUT}`]);
	});

	it.each(runs)('%s, on a site storing addresses %s: still fails an item naming a lead that never was, naming the Lead parameter', async (name, _storage, key, each) => {
		const { live } = sites.get(key)!;
		const unknown = uuidv7();
		const result = await runWorkflow(workflow(name, each.type, each.parameters), { input: [each.item(key, live.id), each.item(key, unknown)], credentials: credentials() });
		expect(result.error?.message).toBe(`Lead: No lead "${unknown}" on this site; give the lead's id or email address`);
	});

	it('wrote nothing about the erased leads', async () => {
		const gone = [...sites.values()].map((site) => site.gone.id);
		const ofGone = { leadId: { in: gone } };
		expect({
			leads: await prisma.lead.count({ where: { id: { in: gone } } }),
			activities: await prisma.activity.count({ where: ofGone }),
			enrollments: await prisma.sequenceEnrollment.count({ where: ofGone }),
			channelStatuses: await prisma.channelStatus.count({ where: ofGone }),
			tags: await prisma.leadTag.count({ where: ofGone }),
		}).toEqual({ leads: 0, activities: 0, enrollments: 0, channelStatuses: 0, tags: 0 });
	});
});
