import { existsSync } from 'node:fs';
import path from 'node:path';

import type { INode, IConnections } from 'n8n-workflow';

import {
	HarnessNodeTypes,
	PROJECT_ROOT,
	WorkflowRunError,
	getNodeTypes,
	runWorkflow,
} from './harness/n8n';
import type { WorkflowJson } from './harness/n8n';

const FIXTURE_PACKAGE = path.join(__dirname, 'harness', 'fixtures', 'n8n-nodes-harness-fixture');

function node(name: string, type: string, typeVersion: number, parameters: INode['parameters'] = {}): INode {
	return { id: name, name, type, typeVersion, position: [0, 0], parameters };
}

function chain(...names: string[]): IConnections {
	const connections: IConnections = {};
	for (let i = 0; i < names.length - 1; i++) {
		connections[names[i]] = { main: [[{ node: names[i + 1], type: 'main', index: 0 }]] };
	}
	return connections;
}

/** ManualTrigger → Set (score, source) → If (score >= 50) → Hot / Cold (NoOp). */
const scoringWorkflow: WorkflowJson = {
	name: 'Scoring',
	nodes: [
		node('Start', 'n8n-nodes-base.manualTrigger', 1),
		node('Assign', 'n8n-nodes-base.set', 3.4, {
			mode: 'manual',
			includeOtherFields: true,
			assignments: {
				assignments: [
					{ id: 'a1', name: 'score', value: '={{ $json.score ?? 75 }}', type: 'number' },
					{ id: 'a2', name: 'source', value: 'harness', type: 'string' },
				],
			},
			options: {},
		}),
		node('Is hot', 'n8n-nodes-base.if', 2.2, {
			conditions: {
				options: { caseSensitive: true, leftValue: '', typeValidation: 'strict', version: 2 },
				conditions: [
					{
						id: 'c1',
						leftValue: '={{ $json.score }}',
						rightValue: 50,
						operator: { type: 'number', operation: 'gte' },
					},
				],
				combinator: 'and',
			},
			options: {},
		}),
		// Under executionOrder 'v1' sibling branches run in canvas order, top one first.
		{ ...node('Hot', 'n8n-nodes-base.noOp', 1), position: [600, 0] },
		{ ...node('Cold', 'n8n-nodes-base.noOp', 1), position: [600, 200] },
	],
	connections: {
		...chain('Start', 'Assign', 'Is hot'),
		'Is hot': {
			main: [
				[{ node: 'Hot', type: 'main', index: 0 }],
				[{ node: 'Cold', type: 'main', index: 0 }],
			],
		},
	},
	// Exported workflows often carry pinned data; the harness must not let it replace real output.
	pinData: { Assign: [{ json: { score: 0, pinned: true } }] },
};

describe('n8n harness: built-in nodes through the real WorkflowExecute', () => {
	it('runs ManualTrigger → Set → If in manual mode (one empty trigger item)', async () => {
		const result = await runWorkflow(scoringWorkflow);

		expect(result.error).toBeUndefined();
		expect(result.status).toBe('success');
		expect(result.outputOf('Assign')).toEqual([{ score: 75, source: 'harness' }]);
		expect(result.outputOf('Is hot', 0)).toEqual([{ score: 75, source: 'harness' }]);
		expect(result.outputOf('Is hot', 1)).toEqual([]);
		expect(result.executedNodes).toEqual(['Start', 'Assign', 'Is hot', 'Hot']);
	});

	it('feeds input items as the trigger output and routes them to both If branches', async () => {
		const result = await runWorkflow(scoringWorkflow, {
			input: [
				{ name: 'Ada', score: 80 },
				{ name: 'Bob', score: 20 },
				{ json: { name: 'Cy', score: 50 } },
			],
		});

		expect(result.error).toBeUndefined();
		expect(result.outputOf('Start')).toEqual([
			{ name: 'Ada', score: 80 },
			{ name: 'Bob', score: 20 },
			{ name: 'Cy', score: 50 },
		]);
		expect(result.outputOf('Is hot', 0)).toEqual([
			{ name: 'Ada', score: 80, source: 'harness' },
			{ name: 'Cy', score: 50, source: 'harness' },
		]);
		expect(result.outputOf('Is hot', 1)).toEqual([{ name: 'Bob', score: 20, source: 'harness' }]);
		expect(result.outputOf('Hot').map((item) => item.name)).toEqual(['Ada', 'Cy']);
		expect(result.outputOf('Cold').map((item) => item.name)).toEqual(['Bob']);
		// executionOrder 'v1' (the editor's default): branches run in canvas order, Hot is on top.
		expect(result.executedNodes).toEqual(['Start', 'Assign', 'Is hot', 'Hot', 'Cold']);
		// Item lineage is kept, which is what $('Start').item in later nodes relies on.
		expect(result.itemsOf('Is hot', 1)[0].pairedItem).toMatchObject({ item: 1 });
	});

	it('refuses input that a trigger in manual mode would silently drop', async () => {
		await expect(
			runWorkflow(scoringWorkflow, { input: [{ score: 1 }], mode: 'manual' }),
		).rejects.toThrow(/input is ignored by trigger node "Start"/);
	});

	it('starts a Webhook workflow with the request as input', async () => {
		const result = await runWorkflow(
			{
				nodes: [
					{
						...node('Webhook', 'n8n-nodes-base.webhook', 2, {
							httpMethod: 'POST',
							path: 'lead',
							options: {},
						}),
						webhookId: '6f0c6a52-0000-4000-8000-000000000001',
					},
					node('Pick', 'n8n-nodes-base.set', 3.4, {
						assignments: {
							assignments: [
								{ id: 'p1', name: 'email', value: '={{ $json.body.email }}', type: 'string' },
							],
						},
						options: {},
					}),
				],
				connections: chain('Webhook', 'Pick'),
			},
			{
				mode: 'webhook',
				input: [{ headers: {}, params: {}, query: {}, body: { email: 'ada@example.com' } }],
			},
		);

		expect(result.error).toBeUndefined();
		expect(result.outputOf('Pick')).toEqual([{ email: 'ada@example.com' }]);
	});

	it('does not mutate the workflow JSON, so a fixture can be run repeatedly', async () => {
		const before = JSON.stringify(scoringWorkflow);
		await runWorkflow(scoringWorkflow, { input: [{ score: 1 }] });
		expect(JSON.stringify(scoringWorkflow)).toBe(before);
	});

	it("surfaces a failing node's error message", async () => {
		const failing: WorkflowJson = {
			nodes: [
				node('Start', 'n8n-nodes-base.manualTrigger', 1),
				node('Stop', 'n8n-nodes-base.stopAndError', 1, { errorMessage: 'Lead has no email' }),
				node('After', 'n8n-nodes-base.noOp', 1),
			],
			connections: chain('Start', 'Stop', 'After'),
		};

		const result = await runWorkflow(failing);
		expect(result.status).toBe('error');
		expect(result.error?.message).toBe('Lead has no email');
		expect(result.errorNode).toBe('Stop');
		expect(() => result.outputOf('Stop')).toThrow('Node "Stop" failed: Lead has no email');
		expect(() => result.outputOf('After')).toThrow(/has no run #0.*Lead has no email/);

		await expect(runWorkflow(failing, { throwOnError: true })).rejects.toThrow(
			'Node "Stop" failed: Lead has no email',
		);
	});

	it('reports an unknown node type clearly', async () => {
		await expect(
			runWorkflow({
				nodes: [
					node('Start', 'n8n-nodes-base.manualTrigger', 1),
					node('Mystery', 'n8n-nodes-tracking-crm.doesNotExist', 1),
				],
				connections: chain('Start', 'Mystery'),
			}),
		).rejects.toThrow('Unrecognized node type: n8n-nodes-tracking-crm.doesNotExist');
	});
});

describe('n8n harness: community nodes from TypeScript source', () => {
	let fixtureTypes: HarnessNodeTypes;

	beforeAll(async () => {
		fixtureTypes = await HarnessNodeTypes.load({ sourcePackages: [PROJECT_ROOT, FIXTURE_PACKAGE] });
	});

	it('loads this repository and n8n-nodes-base under their real package names', async () => {
		const types = await getNodeTypes();
		expect(types.packageNames).toEqual(['n8n-nodes-tracking-crm', 'n8n-nodes-base']);
		expect(types.getByNameAndVersion('n8n-nodes-base.set', 3.4).description.name).toBe('set');
	});

	it('runs an unbuilt .ts node as <package>.<nodeName>, with credentials and their defaults', async () => {
		// package.json lists dist/…js, which was never built: only the .ts source exists.
		expect(existsSync(path.join(FIXTURE_PACKAGE, 'dist'))).toBe(false);
		expect(fixtureTypes.getKnownTypes()).toHaveProperty(['n8n-nodes-harness-fixture.harnessProbe']);

		const result = await runWorkflow(
			{
				nodes: [
					node('Start', 'n8n-nodes-base.manualTrigger', 1),
					{
						...node('Probe', 'n8n-nodes-harness-fixture.harnessProbe', 1, {
							value: '={{ $json.n }}',
							useCredentials: true,
						}),
						credentials: { harnessProbeApi: { id: '1', name: 'Probe account' } },
					},
				],
				connections: chain('Start', 'Probe'),
			},
			{
				nodeTypes: fixtureTypes,
				input: [{ n: 2 }, { n: 21 }],
				credentials: { harnessProbeApi: { apiKey: 'k-123' } },
			},
		);

		expect(result.error).toBeUndefined();
		expect(result.outputOf('Probe')).toEqual([
			{ doubled: 4, authorization: 'Bearer k-123' },
			{ doubled: 42, authorization: 'Bearer k-123' },
		]);
	});

	it("returns a community node's NodeOperationError as is", async () => {
		const result = await runWorkflow(
			{
				nodes: [
					node('Start', 'n8n-nodes-base.manualTrigger', 1),
					node('Probe', 'n8n-nodes-harness-fixture.harnessProbe', 1, {
						failWith: '=Cannot score {{ $json.who }}',
					}),
				],
				connections: chain('Start', 'Probe'),
			},
			{ nodeTypes: fixtureTypes, input: [{ who: 'Ada' }] },
		);

		// n8n records errors as plain copies (as it stores them), so match by name, not instanceof.
		expect(result.error?.name).toBe('NodeOperationError');
		expect(result.error?.message).toBe('Cannot score Ada');
		expect(result.errorNode).toBe('Probe');
	});

	it('names the missing credential type when a test forgets it', async () => {
		const promise = runWorkflow(
			{
				nodes: [
					node('Start', 'n8n-nodes-base.manualTrigger', 1),
					{
						...node('Probe', 'n8n-nodes-harness-fixture.harnessProbe', 1, { useCredentials: true }),
						credentials: { harnessProbeApi: { id: '1', name: 'Probe account' } },
					},
				],
				connections: chain('Start', 'Probe'),
			},
			{ nodeTypes: fixtureTypes, throwOnError: true },
		);
		await expect(promise).rejects.toThrow(WorkflowRunError);
		await expect(promise).rejects.toThrow(/no credentials of type "harnessProbeApi"/);
	});
});
