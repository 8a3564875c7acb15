/**
 * The CRM nodes on a site with privacy.encryptPii, run through n8n's execution engine against the
 * test database, with the site's keys in the Tracking CRM API credential and none in the
 * environment: the Lead Scorer stores a lead sealed and rescores it by its address, the Activity
 * Logger logs to it and reads its timeline by its address, the Enricher opens and reseals its phone,
 * the Email Orchestrator enrolls it by its address; a malformed or wrong key stops the node with a
 * NodeOperationError naming the credential field.
 */
import { randomBytes } from 'node:crypto';

import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { isSealed, leadField, openLead, parsePiiKeys, PII_HASH_KEY_ENV, PII_KEYS_ENV, PiiCipher } from '../../lib/pii';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { runWorkflow, type TestCredentials, type WorkflowJson } from '../harness/n8n';

const newKey = () => randomBytes(32).toString('base64');
const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36';

/** One node of this package behind a Manual Trigger; with the Tracking CRM API credential unless `api` is false. */
function workflow(type: string, parameters: INode['parameters'], api = true): WorkflowJson {
	const credentials = { postgres: { id: '1', name: 'CRM database' }, ...(api ? { trackingCrmApi: { id: '2', name: 'Tracking CRM' } } : {}) };
	return {
		name: `${type} on a sealed site`,
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{ id: 'node', name: 'Node', type: `n8n-nodes-tracking-crm.${type}`, typeVersion: 1, position: [200, 0], parameters, credentials },
		],
		connections: { Start: { main: [[{ node: 'Node', type: 'main', index: 0 }]] } },
	};
}

describe('the CRM nodes on a site with privacy.encryptPii, with the keys in the Tracking CRM API credential', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	let clearSite: { id: string; key: string };
	const keys = { encryption: `k1:${newKey()}`, hash: newKey() };
	const keyring = parsePiiKeys(keys.encryption, keys.hash);
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	const api = (fields: IDataObject = {}) => ({ receiverUrl: 'http://127.0.0.1:9', webhookSecret: 'unused-here', piiEncryptionKeys: keys.encryption, piiHashKey: keys.hash, ...fields });
	const credentials = (fields: IDataObject = {}): TestCredentials => ({ postgres: postgresCredential(), trackingCrmApi: api(fields) });
	const cipher = () => new PiiCipher(keyring, site.id);

	const tag = randomBytes(4).toString('hex');
	const person = { email: `lena.k${tag}@firma-${tag}.de`, firstName: `Lena${tag}`, jobTitle: 'Head of Buying', phone: '030 1234567', country: 'DE', anonymousId: `anon-${uuidv7()}` };
	/** The address as a workflow may carry it: another spelling of the same mailbox. */
	const spelled = ` ${person.email.toUpperCase()} `;
	let leadId: string;

	beforeAll(async () => {
		// Every key the nodes use must come from the credential.
		delete process.env[PII_KEYS_ENV];
		delete process.env[PII_HASH_KEY_ENV];
		prisma = testPrisma();
		site = await createTestSite(prisma, 'sealed-nodes');
		clearSite = await createTestSite(prisma, 'clear-nodes');
		const config = {
			site: { key: site.key, name: 'Sealed', domain: `${site.key}.example` },
			tracking: { allowedOrigins: [`https://${site.key}.example`] },
			privacy: { encryptPii: true },
			crm: { leadScoringRules: [{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5, group: 'engagement' }] },
		};
		await prisma.site.update({ where: { id: site.id }, data: { config } });

		const upsert = await runWorkflow(workflow('leadScorer', { operation: 'upsert' }), {
			input: [{ site: site.key, kind: 'lead', lead: { site: site.key, consent: true, ...person }, receivedAt: new Date().toISOString() }],
			credentials: credentials(),
			throwOnError: true,
		});
		leadId = upsert.outputOf('Node')[0].leadId as string;
	});

	afterAll(async () => {
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
		await prisma.$disconnect();
		await disconnectAll();
	});

	it('the Lead Scorer stores the lead sealed with the credential’s keys, and rescores it by its address', async () => {
		const row = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		expect([row.email, row.firstName, row.jobTitle].map((value) => isSealed(value as string))).toEqual([true, true, true]);
		expect(row.emailHash).toBe(emailHash(person.email, cipher()));
		expect(openLead(cipher(), row)).toMatchObject({ email: person.email, firstName: person.firstName, jobTitle: person.jobTitle });

		await prisma.visitorEvent.createMany({
			data: [1, 2].map((n) => ({ siteId: site.id, eventId: uuidv7(), anonymousId: person.anonymousId, type: 'pageview', url: '/pricing', occurredAt: new Date(Date.now() - n * 60_000) })),
		});
		const before = row.score;
		const result = await runWorkflow(workflow('leadScorer', { operation: 'rescore', lead: '={{ $json.email }}' }), { input: [{ site: site.key, email: spelled }], credentials: credentials(), throwOnError: true });
		const [rescored] = result.outputOf('Node');
		expect(rescored.leadId).toBe(leadId);
		expect(rescored.lead).toMatchObject({ email: person.email, firstName: person.firstName });
		const after = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		expect(after.score).toBeCloseTo(before + 2 * 5, 2);
		expect((rescored.scoring as IDataObject).total).toBeCloseTo(after.score, 2);
	});

	it('the Activity Logger logs an activity for the lead named by its address, and reads its timeline so', async () => {
		const log = {
			operation: 'log',
			siteKey: '={{ $json.site }}',
			subject: 'lead',
			lead: '={{ $json.lead }}',
			activityType: 'call',
			description: 'Called back',
			dedupeKey: `call-${tag}`,
		};
		const logged = await runWorkflow(workflow('activityLogger', log), { input: [{ site: site.key, lead: spelled }], credentials: credentials(), throwOnError: true });
		const [activity] = logged.outputOf('Node');
		expect(activity).toMatchObject({ leadId, duplicate: false, type: 'call' });
		expect(await prisma.activity.findUniqueOrThrow({ where: { id: activity.activityId as string } })).toMatchObject({ siteId: site.id, leadId });

		const timeline = await runWorkflow(workflow('activityLogger', { operation: 'getTimeline', siteKey: site.key, lead: person.email }), { credentials: credentials(), throwOnError: true });
		expect(timeline.outputOf('Node')).toEqual([expect.objectContaining({ activityId: activity.activityId, leadId, type: 'call' })]);

		// A lead id needs no keys: no credential, none in the environment.
		const byId = await runWorkflow(workflow('activityLogger', { ...log, dedupeKey: `note-${tag}`, activityType: 'note' }, false), {
			input: [{ site: site.key, lead: leadId }],
			credentials: { postgres: postgresCredential() },
			throwOnError: true,
		});
		expect(byId.outputOf('Node')).toEqual([expect.objectContaining({ leadId, duplicate: false })]);
	});

	it('the Enricher opens the lead and reseals its phone in E.164 with the credential’s keys, and without them says where keys go', async () => {
		// The phone as a lead stored before the Lead Scorer wrote E.164 holds it.
		await prisma.lead.update({ where: { id: leadId }, data: { phone: cipher().seal(person.phone, leadField('phone')) } });
		const parameters = { siteKey: '={{ $json.site }}', lead: '={{ $json.email }}', country: '', userAgent: BROWSER };
		const result = await runWorkflow(workflow('enricher', parameters), { input: [{ site: site.key, email: spelled }], credentials: credentials(), throwOnError: true });
		const [enriched] = result.outputOf('Node');
		expect(enriched.leadId).toBe(leadId);
		expect(enriched.enrichment).toMatchObject({ email: { domain: `firma-${tag}.de` }, phone: { valid: true, e164: '+49301234567' } });
		const row = await prisma.lead.findUniqueOrThrow({ where: { id: leadId } });
		expect(isSealed(row.phone as string)).toBe(true);
		expect(cipher().open(row.phone as string, leadField('phone'))).toBe('+49301234567');
		expect(row.businessId).toBe((await prisma.business.findUniqueOrThrow({ where: { siteId_domain: { siteId: site.id, domain: `firma-${tag}.de` } } })).id);

		// The environment has no keys either: the node names both places they may come from.
		const without = await runWorkflow(workflow('enricher', parameters, false), { input: [{ site: site.key, email: person.email }], credentials: { postgres: postgresCredential() } });
		expect(without.error?.name).toBe('NodeOperationError');
		expect(without.error?.message).toMatch(new RegExp(`^${PII_KEYS_ENV}: is not set.*PII Encryption Keys and PII Hash Key of the node's Tracking CRM API credential`));
	});

	it('the Email Orchestrator enrolls the lead named by its address', async () => {
		const sequenceDefinition = JSON.stringify({ name: `welcome-${tag}`, steps: [{ delayMinutes: 60, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p>' }] });
		const result = await runWorkflow(workflow('emailOrchestrator', { operation: 'enroll', siteKey: site.key, lead: spelled, sequenceSource: 'parameter', sequenceDefinition }), {
			credentials: credentials(),
			throwOnError: true,
		});
		expect(result.outputOf('Node')).toEqual([expect.objectContaining({ enrollment: expect.objectContaining({ leadId, created: true, status: 'active' }) })]);
	});

	it('a malformed or wrong key stops the node with a NodeOperationError naming the credential field; a site that stores in clear needs none', async () => {
		const log = { operation: 'log', siteKey: '={{ $json.site }}', subject: 'lead', lead: person.email, activityType: 'call', description: 'Called back' };
		const malformedKeys = await runWorkflow(workflow('activityLogger', log), { input: [{ site: site.key }], credentials: credentials({ piiEncryptionKeys: 'k1:not-a-key' }) });
		expect(malformedKeys.error?.name).toBe('NodeOperationError');
		expect(malformedKeys.error?.message).toMatch(/^Tracking CRM API credential, PII Encryption Keys: entry 1 \("k1"\) is not a 32-byte key/);
		const malformedHash = await runWorkflow(workflow('leadScorer', { operation: 'rescore', lead: person.email }), { input: [{ site: site.key }], credentials: credentials({ piiHashKey: 'short' }) });
		expect(malformedHash.error?.name).toBe('NodeOperationError');
		expect(malformedHash.error?.message).toMatch(/^Tracking CRM API credential, PII Hash Key: the value is not a 32-byte key/);

		// Well-formed keys that are not the receiver's: the lead is not found by another hash key, and does not open under another encryption key.
		const otherHash = await runWorkflow(workflow('activityLogger', log), { input: [{ site: site.key }], credentials: credentials({ piiHashKey: newKey() }) });
		expect(otherHash.error?.message).toMatch(/^Lead: No lead ".+" on this site.*the PII hash key of this node \(PII Hash Key of its Tracking CRM API credential/);
		const otherKey = await runWorkflow(workflow('enricher', { siteKey: site.key, lead: leadId, country: '', userAgent: BROWSER }), { credentials: credentials({ piiEncryptionKeys: `k1:${newKey()}` }) });
		expect(otherKey.error?.name).toBe('NodeOperationError');
		expect(otherKey.error?.message).toMatch(/does not authenticate under key "k1".*PII Encryption Keys of the node's Tracking CRM API credential/);
		expect(await prisma.lead.findUniqueOrThrow({ where: { id: leadId }, select: { phone: true } })).toEqual({ phone: expect.stringMatching(/^pii1:k1:/) });

		// The same malformed credential on a site that stores in clear: never read.
		await prisma.lead.create({ data: { siteId: clearSite.id, email: person.email, emailHash: emailHash(person.email) } });
		const clear = await runWorkflow(workflow('activityLogger', { ...log, dedupeKey: `clear-${tag}` }), { input: [{ site: clearSite.key }], credentials: credentials({ piiEncryptionKeys: 'k1:not-a-key' }), throwOnError: true });
		expect(clear.outputOf('Node')).toEqual([expect.objectContaining({ duplicate: false, type: 'call' })]);
	});

	it('Send Due without a Tracking CRM API credential says it needs one', async () => {
		const result = await runWorkflow(workflow('emailOrchestrator', { operation: 'sendDue', siteKey: site.key }, false), { credentials: { postgres: postgresCredential() } });
		expect(result.error?.name).toBe('NodeOperationError');
		expect(result.error?.message).toMatch(/^No Tracking CRM API credential: Send Due and Enroll by Trigger and Send sign/);
	});
});
