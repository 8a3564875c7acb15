/**
 * The six bundled workflows as data: every node type and version exists (ours from source,
 * n8n's from n8n-nodes-base), every parameter our nodes are given is one they declare, the
 * chain's hand-offs reach a trigger of the bundle, every CRM node has its error path, the
 * receiver's endpoints in the example config point at the right triggers, and every workflow
 * has a test payload in the shape its trigger accepts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { INode, IConnections } from 'n8n-workflow';

import { loadSiteConfig } from '../../lib/config/siteConfig';
import { readsItemOnly } from '../../nodes/shared/descriptions';
import { CREDENTIAL_IDS } from '../../scripts/bundleCredentials';
import { bundledWorkflows, readPayload } from '../../scripts/workflowTools';
import { getNodeTypes } from '../harness/n8n';

const ROOT = path.resolve(__dirname, '../..');
const PACKAGE = 'n8n-nodes-tracking-crm';

interface WorkflowFile {
	id: string;
	name: string;
	nodes: INode[];
	connections: IConnections;
	settings: Record<string, unknown>;
}

const workflows = bundledWorkflows().map((workflow) => ({ ...workflow, json: JSON.parse(readFileSync(path.join(ROOT, 'workflows', workflow.file), 'utf8')) as WorkflowFile }));
const crmNodes = (json: WorkflowFile) => json.nodes.filter((node) => node.type.startsWith(`${PACKAGE}.`));

describe('bundled workflows', () => {
	it('are the seed’s six, in order, with unique ids and trigger paths', () => {
		expect(workflows.map((workflow) => workflow.file)).toEqual([
			'01-visitor-processor.json',
			'02-conversion-detector.json',
			'03-lead-processor.json',
			'04-activity-logger.json',
			'05-enrichment-engine.json',
			'06-email-orchestrator.json',
		]);
		expect(new Set(workflows.map((workflow) => workflow.id)).size).toBe(6);
		expect(new Set(workflows.map((workflow) => workflow.webhookPath)).size).toBe(6);
		// n8n's ids are 16 characters; import:workflow keeps them, so Execute/publish by id works.
		for (const workflow of workflows) expect(workflow.id).toMatch(/^[A-Za-z0-9]{16}$/);
	});

	it.each(workflows.map((workflow) => [workflow.file, workflow] as const))('%s: every node exists and gets only parameters it declares', async (_file, workflow) => {
		const nodeTypes = await getNodeTypes();
		for (const node of workflow.json.nodes) {
			const type = nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
			expect(type.description).toBeDefined();
			if (!node.type.startsWith(`${PACKAGE}.`)) continue;
			const declared = new Set(type.description.properties.map((property) => property.name));
			for (const name of Object.keys(node.parameters)) expect([node.name, name, declared.has(name)]).toEqual([node.name, name, true]);
			for (const [credentialType, reference] of Object.entries(node.credentials ?? {})) {
				expect(type.description.credentials?.map((credential) => credential.name)).toContain(credentialType);
				expect(reference.id).toBe(CREDENTIAL_IDS[credentialType as keyof typeof CREDENTIAL_IDS]);
			}
			for (const credential of type.description.credentials ?? []) if (credential.required) expect(node.credentials?.[credential.name]).toBeDefined();
		}
	});

	it('connect only nodes that exist', () => {
		for (const { json } of workflows) {
			const names = new Set(json.nodes.map((node) => node.name));
			for (const [source, outputs] of Object.entries(json.connections)) {
				expect(names.has(source)).toBe(true);
				for (const output of outputs.main ?? []) for (const target of output ?? []) expect([json.name, target.node, names.has(target.node)]).toEqual([json.name, target.node, true]);
			}
		}
	});

	it('hand on only to triggers of the bundle, so the chain is 01 → 02 → 04, 03 → 05 → 04, 01/02/03/05 → 06', () => {
		const paths = new Map(workflows.map((workflow) => [workflow.webhookPath, workflow.number]));
		const edges = workflows.flatMap((workflow) =>
			workflow.json.nodes.filter((node) => node.type === `${PACKAGE}.crmHandOff`).map((node) => `${workflow.number}→${paths.get(String(node.parameters.target))}`),
		);
		expect(edges.sort()).toEqual(['01→02', '01→06', '02→04', '02→06', '03→05', '03→06', '05→04', '05→06']);
	});

	it('route every CRM node’s failures to an error path that fails the delivery, never to silence', () => {
		for (const { json } of workflows) {
			for (const node of crmNodes(json).filter((candidate) => !/crmTrackerTrigger|crmHandOff/.test(candidate.type))) {
				expect([node.name, node.onError]).toEqual([node.name, 'continueErrorOutput']);
				const outputs = json.connections[node.name]?.main ?? [];
				const errorOutput = outputs[outputs.length - 1] ?? [];
				const targets = errorOutput.map((connection) => json.nodes.find((candidate) => candidate.name === connection.node)!);
				expect([node.name, targets.map((target) => target.type)]).toEqual([node.name, ['n8n-nodes-base.stopAndError']]);
			}
		}
	});

	it('give the CRM nodes no expression for n8n to evaluate: each one reads fields of the item, which the nodes read themselves', () => {
		// n8n 2 evaluates an expression in a sandbox, at a cost larger than a node's work on an item (docs/deployment.md#scaling).
		const evaluated = workflows.flatMap(({ file, json }) =>
			crmNodes(json).flatMap((node) =>
				Object.entries(node.parameters)
					.filter(([, value]) => typeof value === 'string' && value.startsWith('=') && !readsItemOnly(value))
					.map(([name, value]) => `${file} ${node.name}.${name}: ${String(value)}`),
			),
		);
		expect(evaluated).toEqual([]);
		expect(workflows.flatMap(({ json }) => crmNodes(json).flatMap((node) => Object.values(node.parameters).filter((value) => readsItemOnly(value)))).length).toBeGreaterThan(10);
	});

	it('answer the receiver when the last node finishes, so a failure makes it retry', () => {
		for (const { json } of workflows) {
			const trigger = json.nodes.find((node) => node.type === `${PACKAGE}.crmTrackerTrigger`)!;
			expect(trigger.parameters.responseMode).toBe('lastNode');
			expect(trigger.webhookId).toMatch(/^[0-9a-f-]{36}$/);
		}
	});

	it('are the targets of the example site config’s webhook endpoints', () => {
		const config = loadSiteConfig(path.join(ROOT, 'config', 'site.example.json'));
		const paths = new Set(workflows.map((workflow) => `/webhook/${workflow.webhookPath}`));
		expect(config.integrations.webhookEndpoints.length).toBeGreaterThan(0);
		for (const endpoint of config.integrations.webhookEndpoints) expect([endpoint.workflow, paths.has(endpoint.url)]).toEqual([endpoint.workflow, true]);
	});

	it('each have a test payload their trigger accepts', () => {
		for (const workflow of workflows) {
			const payload = readPayload(workflow.payload, 'site-x');
			const entries = ['events', 'leads', 'emailEvents', 'items'].flatMap((key) => (Array.isArray(payload[key]) ? (payload[key] as unknown[]) : []));
			expect([workflow.payload, entries.length > 0]).toEqual([workflow.payload, true]);
			expect(payload.site).toBe('site-x');
		}
	});
});
