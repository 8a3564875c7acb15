/**
 * PII_HASH_KEY is kept per site with privacy.encryptPii as a fingerprint (lib/piiHashKey.ts): a
 * receiver started with another hash key refuses to start, naming PII_HASH_KEY and the fix, on
 * Postgres and on the embedded database, and when receivers start at once; a database from before
 * fingerprints is checked against its stored leads. A node whose hash key is not the recorded one
 * fails naming the credential's PII Hash Key (or n8n's PII_HASH_KEY) instead of finding no lead or
 * storing it twice. Real Postgres, real receiver, nodes through n8n's execution engine.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { INode } from 'n8n-workflow';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import type { DatabaseOptions } from '../../lib/db';
import { emailHash } from '../../lib/email';
import { leadField, parsePiiKeys, PII_HASH_KEY_ENV, PII_KEYS_ENV, PiiCipher, PiiKeyError } from '../../lib/pii';
import { hashKeyFingerprint, hashKeyPinName, sitesPinnedToOtherHashKey } from '../../lib/piiHashKey';
import { disconnectAll } from '../../nodes/shared/database';
import { createLogger } from '../../server/logger';
import { startReceiver } from '../../server/receiver';
import { checkPiiHashKey } from '../../server/secrets';
import { removeSite, syncSites } from '../../server/sites';
import { postgresCredential, testDbUrl, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

jest.setTimeout(120_000);

const newKey = () => randomBytes(32).toString('base64');
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const encryption = `k1:${newKey()}`;
const first = newKey();
const other = newKey();
const keyringOf = (hash: string) => parsePiiKeys(encryption, hash);
const envOf = (hash: string) => ({ [PII_KEYS_ENV]: encryption, [PII_HASH_KEY_ENV]: hash });

function siteConfig(name: string, encryptPii: boolean): SiteConfig {
	const key = `${name}-${randomBytes(4).toString('hex')}`;
	return parseSiteConfig({ site: { key, name, domain: `${key}.example` }, tracking: { allowedOrigins: [`https://${key}.example`] }, privacy: { cookieConsent: false, encryptPii } });
}

/** The refusal of a start with another hash key: the variable, the site, and the fix. */
const refusal = (siteKey: string) => new RegExp(`^PII_HASH_KEY: is not the key the addresses of site "${siteKey}" were hashed with .*Set PII_HASH_KEY back to that key .*it cannot be rotated`);

describe('the receiver and the PII_HASH_KEY a site was first run with', () => {
	const prisma = testPrisma();
	const siteIds: string[] = [];
	const start = (config: SiteConfig, env: NodeJS.ProcessEnv, database: DatabaseOptions = { url: testDbUrl(), migrate: false }) =>
		startReceiver({ sites: [config], database, settings: { PORT: 0, DISPATCHER: 'off' }, env, logger });
	/** Starts and stops a receiver; the site's id. */
	const run = async (config: SiteConfig, env: NodeJS.ProcessEnv, database?: DatabaseOptions) => {
		const receiver = await start(config, env, database);
		const id = receiver.sites.byPublicKey(config.site.key)!.id;
		await receiver.close();
		return id;
	};
	const pinOf = async (siteId: string) => (await prisma.receiverSecret.findUnique({ where: { name: hashKeyPinName(siteId) } }))?.value;
	/** A lead as the Lead Scorer stores it on a site that seals: the address sealed, found by its keyed hash. */
	const storeLead = async (siteId: string, hash: string) => {
		const cipher = new PiiCipher(keyringOf(hash), siteId);
		const email = `p1.${randomBytes(4).toString('hex')}@example.org`;
		await prisma.lead.create({ data: { siteId, email: cipher.seal(email, leadField('email')), emailHash: emailHash(email, cipher) } });
	};

	afterAll(async () => {
		for (const id of siteIds) await removeSite(prisma, id);
		await prisma.$disconnect();
	});

	it('records the key at the first start of a site that seals, refuses another key with a lead written, and starts again with the first', async () => {
		const config = siteConfig('hash-pin', true);
		const siteId = await run(config, envOf(first));
		siteIds.push(siteId);
		expect(await pinOf(siteId)).toBe(hashKeyFingerprint(keyringOf(first).hashKey));
		await storeLead(siteId, first);

		const refused = start(config, envOf(other));
		await expect(refused).rejects.toBeInstanceOf(PiiKeyError);
		await expect(refused).rejects.toThrow(refusal(config.site.key));
		expect(await pinOf(siteId)).toBe(hashKeyFingerprint(keyringOf(first).hashKey));
		expect(await run(config, envOf(first))).toBe(siteId);
	});

	it('on a database from before fingerprints, a stored lead refuses another key, and the key it was hashed with is recorded', async () => {
		const config = siteConfig('hash-legacy', true);
		const siteId = await run(config, envOf(first));
		siteIds.push(siteId);
		await storeLead(siteId, first);
		await prisma.receiverSecret.delete({ where: { name: hashKeyPinName(siteId) } });

		await expect(start(config, envOf(other))).rejects.toThrow(refusal(config.site.key));
		expect(await pinOf(siteId)).toBeUndefined();
		await run(config, envOf(first));
		expect(await pinOf(siteId)).toBe(hashKeyFingerprint(keyringOf(first).hashKey));
	});

	it('a site that stores in clear needs no hash key and records none; turned to seal later, it records the key of that start', async () => {
		const clear = siteConfig('hash-clear', false);
		const siteId = await run(clear, {});
		siteIds.push(siteId);
		expect(await pinOf(siteId)).toBeUndefined();

		const sealing = { ...clear, privacy: { ...clear.privacy, encryptPii: true } };
		await run(sealing, envOf(other));
		expect(await pinOf(siteId)).toBe(hashKeyFingerprint(keyringOf(other).hashKey));
	});

	it('of receivers starting at once on a new site with different keys, one starts and the other is refused', async () => {
		const config = siteConfig('hash-race', true);
		const siteId = (await syncSites(prisma, [config])).get(config.site.key)!;
		siteIds.push(siteId);
		const starts = await Promise.allSettled([start(config, envOf(first)), start(config, envOf(other))]);
		const started = starts.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
		const refused = starts.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as Error] : []));
		await Promise.all(started.map((receiver) => receiver.close()));
		expect(started).toHaveLength(1);
		expect(refused).toEqual([expect.objectContaining({ message: expect.stringMatching(refusal(config.site.key)) })]);
		const winner = starts[0].status === 'fulfilled' ? first : other;
		expect(await pinOf(siteId)).toBe(hashKeyFingerprint(keyringOf(winner).hashKey));
	});

	it('on the embedded database too', async () => {
		const dataDir = mkdtempSync(path.join(os.tmpdir(), 'hash-pin-'));
		try {
			const config = siteConfig('hash-embedded', true);
			const embedded = { url: null, dataDir };
			await run(config, envOf(first), embedded);
			await expect(start(config, envOf(other), embedded)).rejects.toThrow(refusal(config.site.key));
			await run(config, envOf(first), embedded);
		} finally {
			rmSync(dataDir, { recursive: true, force: true });
		}
	});
});

/** One node of this package behind a Manual Trigger; with the Tracking CRM API credential unless `api` is false. */
function workflow(type: string, parameters: INode['parameters'], api = true): WorkflowJson {
	const credentials = { postgres: { id: '1', name: 'CRM database' }, ...(api ? { trackingCrmApi: { id: '2', name: 'Tracking CRM' } } : {}) };
	return {
		name: `${type} with a hash key`,
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{ id: 'node', name: 'Node', type: `n8n-nodes-tracking-crm.${type}`, typeVersion: 1, position: [200, 0], parameters, credentials },
		],
		connections: { Start: { main: [[{ node: 'Node', type: 'main', index: 0 }]] } },
	};
}

describe('a node whose PII hash key is not the one the receiver recorded for the site', () => {
	const prisma = testPrisma();
	const config = siteConfig('hash-nodes', true);
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	const email = `lena.${randomBytes(4).toString('hex')}@example.org`;
	const credentials = (hash: string) => ({
		postgres: postgresCredential(),
		trackingCrmApi: { receiverUrl: 'http://127.0.0.1:9', webhookSecret: 'unused-here', piiEncryptionKeys: encryption, piiHashKey: hash },
	});
	const log = { operation: 'log', siteKey: config.site.key, subject: 'lead', lead: email, activityType: 'call', description: 'Called back' };
	const leadsOfSite = () => prisma.lead.count({ where: { siteId } });
	let siteId: string;
	let leadId: string;

	beforeAll(async () => {
		delete process.env[PII_KEYS_ENV];
		delete process.env[PII_HASH_KEY_ENV];
		siteId = (await syncSites(prisma, [config])).get(config.site.key)!;
		await checkPiiHashKey(prisma, [{ id: siteId, key: config.site.key, config }], envOf(first));
		const cipher = new PiiCipher(keyringOf(first), siteId);
		leadId = (await prisma.lead.create({ data: { siteId, email: cipher.seal(email, leadField('email')), emailHash: emailHash(email, cipher) }, select: { id: true } })).id;
	});

	afterAll(async () => {
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
		await removeSite(prisma, siteId);
		await prisma.$disconnect();
		await disconnectAll();
	});

	it('reads only the sites whose recorded key is another', async () => {
		expect((await sitesPinnedToOtherHashKey(prisma, keyringOf(first).hashKey)).has(siteId)).toBe(false);
		expect((await sitesPinnedToOtherHashKey(prisma, keyringOf(other).hashKey)).has(siteId)).toBe(true);
	});

	it('fails naming the credential’s PII Hash Key, instead of finding no lead or storing it twice; the recorded key works', async () => {
		const logged = await runWorkflow(workflow('activityLogger', log), { credentials: credentials(other) });
		expect(logged.error?.name).toBe('NodeOperationError');
		expect(logged.error?.message).toMatch(/^Tracking CRM API credential, PII Hash Key: is not the hash key this site's addresses were hashed with .*no lead would be found by its address.*the credential holds the receiver's own PII_ENCRYPTION_KEYS and PII_HASH_KEY/);

		const upsert = { operation: 'upsert' };
		const input = [{ site: config.site.key, kind: 'lead', lead: { site: config.site.key, consent: true, email }, receivedAt: new Date().toISOString() }];
		const stored = await runWorkflow(workflow('leadScorer', upsert), { input, credentials: credentials(other) });
		expect(stored.error?.name).toBe('NodeOperationError');
		expect(stored.error?.message).toMatch(/^Tracking CRM API credential, PII Hash Key: is not the hash key this site's addresses were hashed with/);
		expect(await leadsOfSite()).toBe(1);

		const rescored = await runWorkflow(workflow('leadScorer', { operation: 'rescore', lead: email }), { input, credentials: credentials(other) });
		expect(rescored.error?.name).toBe('NodeOperationError');
		expect(rescored.error?.message).toMatch(/^Tracking CRM API credential, PII Hash Key: is not the hash key this site's addresses were hashed with/);

		const right = await runWorkflow(workflow('activityLogger', log), { credentials: credentials(first), throwOnError: true });
		expect(right.outputOf('Node')).toEqual([expect.objectContaining({ leadId, duplicate: false })]);
		const again = await runWorkflow(workflow('leadScorer', upsert), { input, credentials: credentials(first), throwOnError: true });
		expect(again.outputOf('Node')).toEqual([expect.objectContaining({ leadId })]);
		expect(await leadsOfSite()).toBe(1);
	});

	it('names n8n’s PII_HASH_KEY when the key comes from n8n’s environment', async () => {
		Object.assign(process.env, envOf(other));
		try {
			const logged = await runWorkflow(workflow('activityLogger', log, false), { credentials: { postgres: postgresCredential() } });
			expect(logged.error?.name).toBe('NodeOperationError');
			expect(logged.error?.message).toMatch(/^PII_HASH_KEY: is not the hash key this site's addresses were hashed with .*or as those variables of n8n's environment/);
		} finally {
			delete process.env[PII_KEYS_ENV];
			delete process.env[PII_HASH_KEY_ENV];
		}
	});
});
