/**
 * An erasure (POST /api/privacy/erase) and the Lead Scorer storing the same address at the same
 * moment, in either order: once both have committed nothing of the person is left, and the
 * address is never stored again. Before, a lead the scorer had written but not yet committed
 * survived an erasure that answered `erased`, and kept being scored.
 */
import type { IDataObject } from 'n8n-workflow';

import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { disconnectAll } from '../../nodes/shared/database';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { prepareLead, upsertLeads } from '../../nodes/LeadScorer/store';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';
import { postgresCredential, testPrisma } from '../helpers/db';
import { post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const scorer: WorkflowJson = {
	name: 'Lead Scorer during an erasure',
	nodes: [
		{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
		{
			id: 'ls',
			name: 'Lead Scorer',
			type: 'n8n-nodes-tracking-crm.leadScorer',
			typeVersion: 1,
			position: [200, 0],
			parameters: { operation: 'upsert', siteKey: '={{ $json.site }}' },
			credentials: { postgres: { id: '1', name: 'CRM database' } },
		},
	],
	connections: { Start: { main: [[{ node: 'Lead Scorer', type: 'main', index: 0 }]] } },
};

/** Resolves to 'pending' when `promise` has not settled within `ms`. */
const stateAfter = async (promise: Promise<unknown>, ms: number) => await Promise.race([promise.then(() => 'settled'), new Promise((resolve) => setTimeout(() => resolve('pending'), ms))]);

describe('erasure while the Lead Scorer stores the same person', () => {
	const prisma: PrismaClient = testPrisma();
	const config = testSiteConfig();
	let receiver: Receiver;
	let siteId: string;
	let admin: string;
	const leadsOf = (email: string) => prisma.lead.count({ where: { siteId, emailHash: emailHash(email) } });
	const erase = (email: string) => post(`${receiver.url}/api/privacy/erase`, { email }, { authorization: `Bearer ${admin}`, 'content-type': 'application/json' });
	const leadItem = (email: string, anonymousId: string): IDataObject => ({ site: config.site.key, kind: 'lead', lead: { site: config.site.key, email, anonymousId, consent: true }, receivedAt: new Date().toISOString() });

	beforeAll(async () => {
		receiver = await startTestReceiver([config], { DISPATCHER: 'off' });
		siteId = receiver.sites.byPublicKey(config.site.key)!.id;
		admin = await createApiKey(prisma, siteId, 'admin', 'privacy-officer');
	});

	afterAll(async () => {
		await receiver.close();
		await disconnectAll();
		await prisma.$disconnect();
	});

	it('waits for a scoring batch that is storing the address, then erases the lead it stored', async () => {
		const email = 'first.scored@example.com';
		let commit = () => {};
		const held = new Promise<void>((resolve) => (commit = resolve));
		let erasure: ReturnType<typeof erase> | undefined;
		const batch = prisma.$transaction(
			async (tx) => {
				const [outcome] = await upsertLeads(tx, { siteId, config, rules: compileScoringRules(config.crm), now: Date.now() }, [prepareLead({ site: config.site.key, email, anonymousId: 'anon-first', consent: true }, new Date())]);
				expect(outcome?.lead.id).toBeDefined();
				// The lead is written, not committed: the erasure starts now and must wait for it.
				erasure = erase(email);
				expect(await stateAfter(erasure, 500)).toBe('pending');
				await held;
			},
			{ timeout: 30_000 },
		);
		await new Promise((resolve) => setTimeout(resolve, 800));
		commit();
		await batch;
		const answer = await erasure!;
		expect(answer.status).toBe(200);
		expect(answer.json).toMatchObject({ erased: true, removed: expect.objectContaining({ leads: 1, visitors: 1 }) });
		expect(await leadsOf(email)).toBe(0);
		expect(await prisma.visitor.count({ where: { siteId, anonymousId: 'anon-first' } })).toBe(0);
	});

	it('makes a scoring batch wait for an erasure in progress, then leaves the erased address out and stores the others', async () => {
		const erased = 'first.erased@example.com';
		const kept = 'kept.person@example.com';
		let commit = () => {};
		const held = new Promise<void>((resolve) => (commit = resolve));
		let scoring: ReturnType<typeof runWorkflow> | undefined;
		// The erasure's own first steps, held open: the site row's lock, then the suppression it writes.
		const erasure = prisma.$transaction(
			async (tx) => {
				await tx.$queryRawUnsafe(`SELECT 1 FROM sites WHERE id = $1::uuid FOR NO KEY UPDATE`, siteId);
				await tx.suppression.create({ data: { siteId, emailHash: emailHash(erased), channel: 'email', reason: 'erased' } });
				scoring = runWorkflow(scorer, { input: [leadItem(erased, 'anon-erased'), leadItem(kept, 'anon-kept')], credentials: { postgres: postgresCredential() }, throwOnError: true });
				expect(await stateAfter(scoring, 500)).toBe('pending');
				await held;
			},
			{ timeout: 30_000 },
		);
		await new Promise((resolve) => setTimeout(resolve, 800));
		commit();
		await erasure;
		const run = await scoring!;
		expect(run.outputOf('Lead Scorer').map((item) => (item.lead as { email: string }).email)).toEqual([kept]);
		expect(await leadsOf(erased)).toBe(0);
		expect(await leadsOf(kept)).toBe(1);
		expect(await prisma.visitor.count({ where: { siteId, anonymousId: 'anon-erased' } })).toBe(0);
	});

	it('never stores an erased address again, whichever way it arrives', async () => {
		const email = 'erased.before@example.com';
		expect((await erase(email)).status).toBe(200);
		const run = await runWorkflow(scorer, { input: [leadItem(email, 'anon-later')], credentials: { postgres: postgresCredential() }, throwOnError: true });
		expect(run.outputOf('Lead Scorer')).toEqual([]);
		expect(await leadsOf(email)).toBe(0);
	});
});
