/**
 * What a workflow builder meets in the editor of n8n: the Site Key list, the settings that live
 * in the site config, an empty Site Key, and a Postgres credential that points at the wrong
 * database or nowhere. Nodes run through n8n's engine (test/harness/n8n.ts); the site list is
 * loaded through n8n-core's LoadOptionsContext, as the editor's "load options" request does.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';

import { ExecutionLifecycleHooks, LoadOptionsContext } from 'n8n-core';
import { Workflow, type ICredentialDataDecryptedObject, type INode, type INodePropertyOptions, type INodeType } from 'n8n-workflow';

import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { createAdditionalData, getNodeTypes, runWorkflow, TestCredentialsHelper, type WorkflowJson } from '../harness/n8n';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const PACKAGE = 'n8n-nodes-tracking-crm';

function nodeOf(type: string, parameters: INode['parameters'] = {}): INode {
	return {
		id: 'crm',
		name: 'CRM',
		type: `${PACKAGE}.${type}`,
		typeVersion: 1,
		position: [200, 0],
		parameters,
		credentials: { postgres: { id: '1', name: 'CRM database' } },
	};
}

/** Manual Trigger → one CRM node, as a builder first tries a node. */
function workflowOf(node: INode): WorkflowJson {
	return {
		name: 'Builder test',
		nodes: [{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} }, node],
		connections: { Start: { main: [[{ node: node.name, type: 'main', index: 0 }]] } },
	};
}

/** Runs a node's loadOptions method the way n8n's editor backend does (DynamicNodeParametersService). */
async function loadOptions(node: INode, method: string, postgres: ICredentialDataDecryptedObject): Promise<INodePropertyOptions[]> {
	const nodeTypes = await getNodeTypes();
	const workflow = new Workflow({ id: 'w', name: 'Builder test', nodes: [node], connections: {}, active: false, nodeTypes, settings: { executionOrder: 'v1' } });
	const hooks = new ExecutionLifecycleHooks('manual', 'load-options', { id: 'w', name: 'w', active: false, isArchived: false, activeVersionId: null, createdAt: new Date(), updatedAt: new Date(), nodes: [node], connections: {} });
	const additionalData = createAdditionalData('load-options', 'w', hooks, new TestCredentialsHelper(nodeTypes, { postgres }));
	const context = new LoadOptionsContext(workflow, node, additionalData, 'parameters.siteKey');
	const type = nodeTypes.getByNameAndVersion(node.type, node.typeVersion) as INodeType;
	const load = type.methods?.loadOptions?.[method];
	if (!load) throw new Error(`${node.type} has no loadOptions method ${method}`);
	return await load.call(context);
}

async function closedPort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise<void>((resolve) => server.close(() => resolve()));
	return port;
}

describe('CRM nodes as a workflow builder meets them', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	let empty: { name: string; url: string };

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'builder');
		empty = await createTestDatabase('tcrm_empty');
	});
	afterAll(async () => {
		await disconnectAll();
		await prisma.$disconnect();
		await dropTestDatabase(empty.name);
	});

	const emptyDatabase = () => ({ ...postgresCredential(), database: empty.name });

	it('lists the sites of the CRM database for the Site Key, and All Sites for the Email Orchestrator', async () => {
		const options = await loadOptions(nodeOf('leadScorer'), 'getSites', postgresCredential());
		expect(options).toContainEqual({ name: `builder (${site.key})`, value: site.key, description: `${site.key}.example` });
		expect(options.some((option) => option.value === '*')).toBe(false);

		const withAll = await loadOptions(nodeOf('emailOrchestrator'), 'getSitesOrAll', postgresCredential());
		expect(withAll[0]).toMatchObject({ value: '*' });
		expect(withAll.map((option) => option.value)).toContain(site.key);
	});

	it('declares the Site Key as a list of sites that still defaults to the trigger item’s site', async () => {
		const nodeTypes = await getNodeTypes();
		for (const name of ['activityLogger', 'conversionDetector', 'emailOrchestrator', 'enricher', 'leadScorer', 'visitorProcessor']) {
			const { description } = nodeTypes.getByNameAndVersion(`${PACKAGE}.${name}`, 1);
			const siteKey = description.properties.find((property) => property.name === 'siteKey');
			expect({ name, type: siteKey?.type, default: siteKey?.default, method: siteKey?.typeOptions?.loadOptionsMethod }).toEqual({
				name,
				type: 'options',
				default: '={{ $json.site }}',
				method: name === 'emailOrchestrator' ? 'getSitesOrAll' : 'getSites',
			});
		}
	});

	it('names Site Key and the fix when a Manual Trigger gives no site', async () => {
		const result = await runWorkflow(workflowOf(nodeOf('leadScorer', { operation: 'rescoreStale' })), { credentials: { postgres: postgresCredential() } });
		expect(result.error?.message).toBe(
			'Site Key: is empty: pick a site from the list, or map the site key of the trigger’s item (the CRM Tracker Trigger puts it in "site"; Schedule and Manual triggers have none)',
		);
	});

	it('returns the site config’s scoring rules, stages and sequences with Get Site Settings', async () => {
		const result = await runWorkflow(workflowOf(nodeOf('leadScorer', { operation: 'getSettings', siteKey: site.key })), { credentials: { postgres: postgresCredential() } });
		expect(result.error).toBeUndefined();
		const [settings] = result.outputOf('CRM');
		expect(settings).toMatchObject({ site: site.key, leadScoringRules: [], conversionRules: [], emailSequences: [], maxEmailsPerDay: 2 });
		expect((settings.lifecycleStages as Array<{ name: string }>).map((stage) => stage.name)).toEqual(['subscriber', 'lead', 'mql', 'sql', 'customer']);
	});

	it('says a database without CRM tables needs the migrations, in the node and in the site list', async () => {
		const result = await runWorkflow(workflowOf(nodeOf('enricher', { siteKey: site.key, lead: 'jane@example.com' })), { credentials: { postgres: emptyDatabase() } });
		expect(result.error?.message).toBe(
			`The database "${empty.name}" on 127.0.0.1:5432 has no CRM tables: run the migrations (npm run db:migrate with DATABASE_URL pointing at it)`,
		);
		expect(result.error?.message).not.toMatch(/prisma|Invalid/);

		await expect(loadOptions(nodeOf('leadScorer'), 'getSites', emptyDatabase())).rejects.toThrow(`The database "${empty.name}" on 127.0.0.1:5432 has no CRM tables: run the migrations`);
	});

	it('names host and port when the database server cannot be reached', async () => {
		const port = await closedPort();
		const result = await runWorkflow(workflowOf(nodeOf('activityLogger', { operation: 'getTimeline', siteKey: site.key, lead: 'jane@example.com' })), {
			credentials: { postgres: { ...postgresCredential(), port } },
		});
		expect(result.error?.message).toBe(`Cannot reach the database server at 127.0.0.1:${port}`);
		expect((result.error as { description?: string } | undefined)?.description).toMatch(/Check Host and Port of the Postgres credential/);
	});

	it('says the server at host and port is no Postgres when something else answers there, in the node and in the site list', async () => {
		// An HTTP server, as the receiver's port given for the database's would be: it answers the
		// connection and hangs up on Postgres' start-up message.
		const http = createHttpServer((_request, response) => response.end('not postgres'));
		await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
		const { port } = http.address() as AddressInfo;
		try {
			const result = await runWorkflow(workflowOf(nodeOf('activityLogger', { operation: 'getTimeline', siteKey: site.key, lead: 'jane@example.com' })), {
				credentials: { postgres: { ...postgresCredential(), port } },
			});
			expect(result.error?.message).toBe(`The server at 127.0.0.1:${port} closed the connection: it is not a Postgres server, or it stopped`);
			expect((result.error as { description?: string } | undefined)?.description).toMatch(/Check Host and Port of the Postgres credential/);
			await expect(loadOptions(nodeOf('leadScorer'), 'getSites', { ...postgresCredential(), port })).rejects.toThrow(`The server at 127.0.0.1:${port} closed the connection`);
		} finally {
			await new Promise((resolve) => http.close(resolve));
		}
	});

	it('names the user when the server refuses the login, and goes on under Continue On Fail', async () => {
		const node = { ...nodeOf('conversionDetector', { siteKey: site.key, eventId: '0190f0a0-0000-7000-8000-000000000000' }), onError: 'continueRegularOutput' as const };
		const result = await runWorkflow(workflowOf(node), { credentials: { postgres: { ...postgresCredential(), user: 'no_such_crm_user' } } });
		expect(result.error).toBeUndefined();
		expect(result.outputOf('CRM', 1)).toEqual([{ error: expect.stringMatching(/^The database server at 127\.0\.0\.1:5432 refused the login of user "no_such_crm_user"/) }]);
	});
});
