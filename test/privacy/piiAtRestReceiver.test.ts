/**
 * Personal data at rest on a site with privacy.encryptPii, on the receiver's side: a lead posted to
 * the real receiver waits in its outbox (the dispatcher is off, as while n8n is down) with its
 * address, names, phone and properties (a free-text message) sealed, known only by the keyed hash; a pg_dump holds none of them,
 * while a clear site's lead is found in the same dump. The real CRM Tracker Trigger, given the
 * delivery the dispatcher builds from that row, opens it and emits the submission as it was
 * posted. The export answers the clear values; an erased address is refused by its keyed hash.
 * The receiver does not start without the keys.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

import { PrismaPg } from '@prisma/adapter-pg';
import express from 'express';
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { DeliveredLead, SiteConfig } from '../../lib/contracts';
import { PrismaClient } from '../../lib/db';
import { emailHash } from '../../lib/email';
import { isSealed, parsePiiKeys, PiiCipher, PII_HASH_KEY_ENV, PII_KEYS_ENV } from '../../lib/pii';
import { signedHeaders } from '../../lib/signing';
import { payloadOf } from '../../nodes/LeadScorer/payload';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { deliveryBody } from '../../server/outbox/dispatcher';
import { startReceiver, type Receiver } from '../../server/receiver';
import type { WorkflowJson } from '../harness/n8n';
import { runWebhook } from '../harness/webhook';
import { post } from '../helpers/events';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

jest.setTimeout(60_000);

const run = promisify(execFile);
const newKey = () => randomBytes(32).toString('base64');
const SECRET = 'pii-trigger-secret';

function siteConfig(key: string, encryptPii = false): SiteConfig {
	return parseSiteConfig({ site: { key, name: key, domain: `${key}.example` }, tracking: { allowedOrigins: [`https://${key}.example`] }, privacy: { cookieConsent: false, encryptPii } });
}

function person() {
	const tag = randomBytes(4).toString('hex');
	const digits = String(parseInt(tag, 16) % 10_000_000).padStart(7, '0');
	return {
		email: `ana.q${tag}@clinic${tag}.example`,
		firstName: `Ana${tag}`,
		lastName: `Quiroga${tag}`,
		phone: `030 ${digits}`,
		company: `Clinica ${tag}`,
		jobTitle: `Buyer ${tag}`,
		properties: { message: `Please send the offer for clinic ${tag}` },
	};
}

const TRIGGER: WorkflowJson = {
	name: 'Lead trigger',
	nodes: [
		{
			id: 'trigger',
			name: 'CRM Tracker Trigger',
			type: 'n8n-nodes-tracking-crm.crmTrackerTrigger',
			typeVersion: 1,
			position: [0, 0],
			webhookId: '5b0b2f0e-8f2c-4c55-9d0e-3f4f2a1b6c7e',
			parameters: { path: 'crm-leads', emit: 'perEvent', responseMode: 'lastNode', toleranceSeconds: 300 },
			credentials: { trackingCrmApi: { id: '1', name: 'Tracking CRM' } },
		},
		{ id: 'next', name: 'Next', type: 'n8n-nodes-base.noOp', typeVersion: 1, position: [200, 0], parameters: {} },
	],
	connections: { 'CRM Tracker Trigger': { main: [[{ node: 'Next', type: 'main', index: 0 }]] } },
};

describe('a lead of a site with privacy.encryptPii, through the receiver', () => {
	let database: { name: string; url: string };
	let prisma: PrismaClient;
	let receiver: Receiver;
	const sealedKey = `sealed-${randomBytes(4).toString('hex')}`;
	const clearKey = `clear-${randomBytes(4).toString('hex')}`;
	const keys = { [PII_KEYS_ENV]: `k1:${newKey()}`, [PII_HASH_KEY_ENV]: newKey() };
	const keyring = parsePiiKeys(keys[PII_KEYS_ENV], keys[PII_HASH_KEY_ENV]);
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	const config = siteConfig(sealedKey, true);
	const lead = person();
	const control = person();
	let siteId: string;

	beforeAll(async () => {
		// The start checks the receiver's env; its routes read the process' environment, as the nodes of its engine do.
		Object.assign(process.env, keys);
		database = await createTestDatabase('tcrm_pii_receiver');
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		receiver = await startReceiver({
			sites: [config, siteConfig(clearKey)],
			database: { url: database.url },
			settings: { PORT: 0, DISPATCHER: 'off' },
			env: { ...keys },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		siteId = (await prisma.site.findUniqueOrThrow({ where: { key: sealedKey }, select: { id: true } })).id;
		const anonymousId = uuidv7();
		const events = [{ id: uuidv7(), type: 'pageview', ts: Date.now() - 1000, anonymousId, sessionId: `${anonymousId}-1`, url: `https://${sealedKey}.example/pricing`, title: 'Pricing' }];
		expect((await post(`${receiver.url}/api/track`, { site: sealedKey, events }, { origin: `https://${sealedKey}.example` })).status).toBe(202);
		const posted = await post(`${receiver.url}/api/lead`, { site: sealedKey, anonymousId, consent: true, consentVersion: 'nl-1', ...lead }, { origin: `https://${sealedKey}.example` });
		expect(posted).toEqual({ status: 202, json: expect.objectContaining({ stored: true }) });
		expect((await post(`${receiver.url}/api/lead`, { site: clearKey, ...control }, { origin: `https://${clearKey}.example` })).status).toBe(202);
	});

	afterAll(async () => {
		await receiver?.close();
		await prisma?.$disconnect();
		if (database) await dropTestDatabase(database.name);
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
	});

	const storedSubmission = async () => {
		const [row] = await prisma.outboxMessage.findMany({ where: { siteId, destination: 'lead-processor' } });
		return row.payload as unknown as DeliveredLead;
	};

	it('keeps the submission sealed in the outbox under the keyed hash; a pg_dump holds none of it', async () => {
		const cipher = new PiiCipher(keyring, siteId);
		const payload = await storedSubmission();
		expect(payload.emailHash).toBe(emailHash(lead.email, cipher));
		for (const field of ['email', 'firstName', 'lastName', 'phone', 'company', 'jobTitle', 'properties'] as const) expect(isSealed(payload.lead[field] as unknown as string)).toBe(true);
		expect(await prisma.consentRecord.findMany({ where: { siteId }, select: { emailHash: true } })).toEqual([{ emailHash: payload.emailHash }]);

		const { stdout: dump } = await run('pg_dump', ['--data-only', '--no-owner', `--dbname=${database.url}`], { maxBuffer: 512 * 1024 * 1024 });
		const found = (values: string[]) => values.filter((value) => dump.toLowerCase().includes(value.toLowerCase()));
		const valuesOf = (each: ReturnType<typeof person>) => [each.email, each.email.split('@')[0], each.firstName, each.lastName, each.phone, each.company, each.jobTitle, each.properties.message];
		// The clear site's lead is in the dump: the search finds what is there.
		expect(found(valuesOf(control))).toEqual(valuesOf(control));
		expect(found([...valuesOf(lead), emailHash(lead.email), `lead:${emailHash(lead.email).slice(0, 32)}`])).toEqual([]);
	});

	describe('the CRM Tracker Trigger', () => {
		let server: Server;
		let url: string;
		let credential: Record<string, string>;

		beforeAll(async () => {
			const app = express();
			app.use(express.json({ verify: (req, _res, raw) => Object.assign(req, { rawBody: raw }) }));
			app.post('/webhook/crm-leads', (req, res) => {
				runWebhook(TRIGGER, 'CRM Tracker Trigger', req, res, { trackingCrmApi: credential })
					.then(({ run: result }) => {
						if (!res.headersSent) res.status(result?.error ? 500 : 200).json(result?.error ? { error: result.error.message } : result?.outputOf('Next'));
					})
					.catch((error: Error) => res.status(500).json({ error: error.message }));
			});
			server = app.listen(0, '127.0.0.1');
			await new Promise((resolve) => server.once('listening', resolve));
			url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook/crm-leads`;
		});

		beforeEach(() => {
			credential = { receiverUrl: receiver.url, webhookSecret: SECRET, emailTokenSecret: '' };
		});

		afterAll(async () => {
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		});

		const deliver = async (change: (body: Record<string, unknown>) => void = () => {}) => {
			const body = deliveryBody({ site: sealedKey, siteId, destination: 'lead-processor', deliveryId: 'd-1', sentAt: new Date().toISOString() }, [await storedSubmission()], []) as unknown as Record<string, unknown>;
			change(body);
			const text = JSON.stringify(body);
			const response = await fetch(url, { method: 'POST', headers: signedHeaders(SECRET, sealedKey, text, 'd-1'), body: text });
			return { status: response.status, body: (await response.json()) as any };
		};

		it('opens the sealed submission with the keys of the environment and emits it as it was posted', async () => {
			const response = await deliver();
			expect(response.status).toBe(200);
			expect(response.body).toHaveLength(1);
			expect(response.body[0].lead).toMatchObject({ site: sealedKey, ...lead, consent: true });
			// What the Lead Scorer reads of the item.
			expect(payloadOf(response.body[0])).toMatchObject({ email: lead.email, firstName: lead.firstName, phone: lead.phone });
		});

		it('opens it with the keys of its credential, and answers 503 naming the cause when they do not open it', async () => {
			credential = { ...credential, piiEncryptionKeys: keys[PII_KEYS_ENV], piiHashKey: keys[PII_HASH_KEY_ENV] };
			expect((await deliver()).body[0].lead.lastName).toBe(lead.lastName);

			credential = { ...credential, piiEncryptionKeys: `k2:${newKey()}` };
			const wrongKey = await deliver();
			expect(wrongKey.status).toBe(503);
			expect(wrongKey.body.message).toMatch(/lead\.email is sealed with key "k1", which PII_ENCRYPTION_KEYS no longer lists/);

			credential = { ...credential, piiEncryptionKeys: keys[PII_KEYS_ENV] };
			const otherSite = await deliver((body) => (body.siteId = uuidv7()));
			expect(otherSite.status).toBe(503);
			expect(otherSite.body.message).toMatch(/does not authenticate under key "k1": it was altered, or sealed for another site/);
		});

		it('refuses a sealed delivery without its site id, naming the field', async () => {
			const response = await deliver((body) => delete body.siteId);
			expect(response.status).toBe(400);
			expect(response.body).toMatchObject({ error: 'invalid_delivery', field: 'siteId' });
		});
	});

	it('exports the clear submission; an erased address is refused by its keyed hash', async () => {
		const admin = await createApiKey(prisma, siteId, 'admin', 'privacy-officer');
		const headers = { authorization: `Bearer ${admin}` };
		const exported = await fetch(`${receiver.url}/api/privacy/export?email=${encodeURIComponent(lead.email.toUpperCase())}`, { headers });
		expect(exported.status).toBe(200);
		const body = (await exported.json()) as { formSubmissions: Array<{ payload: DeliveredLead }> };
		expect(body.formSubmissions).toHaveLength(1);
		expect(body.formSubmissions[0].payload.lead).toMatchObject(lead);

		const erased = await fetch(`${receiver.url}/api/privacy/erase`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ email: lead.email }) });
		expect(erased.status).toBe(200);
		// Only the keyed hash's suppression is left, so the refusal below is the keyed hash's.
		await prisma.suppression.deleteMany({ where: { siteId, emailHash: emailHash(lead.email) } });
		expect(await prisma.suppression.count({ where: { siteId, reason: 'erased' } })).toBe(1);
		const again = await post(`${receiver.url}/api/lead`, { site: sealedKey, email: lead.email.toUpperCase(), firstName: 'Again' }, { origin: `https://${sealedKey}.example` });
		expect(again).toEqual({ status: 202, json: { stored: false, reason: 'erased' } });
		expect(await prisma.outboxMessage.count({ where: { siteId, destination: 'lead-processor' } })).toBe(0);
	});

	it('does not start without the keys when a site encrypts, naming the variable and the fix', async () => {
		const start = (env: NodeJS.ProcessEnv) => startReceiver({ sites: [config], database: { url: database.url }, settings: { PORT: 0, DISPATCHER: 'off' }, env });
		await expect(start({})).rejects.toThrow(/^PII_ENCRYPTION_KEYS: is not set, and a site has privacy\.encryptPii: true; set it to id:key/);
		await expect(start({ ...keys, [PII_HASH_KEY_ENV]: 'short' })).rejects.toThrow(/^PII_HASH_KEY: the value is not a 32-byte key/);
	});
});
