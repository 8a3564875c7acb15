/**
 * A webhook node's `webhook()` as n8n's webhook server calls it (WebhookService.runWebhook):
 * in n8n-core's WebhookContext, on a real HTTP request and response, with `req.rawBody` set the
 * way n8n's body parser sets it; then, when it emitted items, the workflow run on them from that
 * node in 'webhook' mode, as n8n starts the execution.
 */
import type { Request, Response } from 'express';
import { ExecutionLifecycleHooks, HookContext, WebhookContext } from 'n8n-core';
import { UnexpectedError, Workflow } from 'n8n-workflow';
import type { IWebhookData, IWebhookResponseData, IWorkflowBase, WorkflowActivateMode } from 'n8n-workflow';

import { createAdditionalData, getNodeTypes, runWorkflow, TestCredentialsHelper, type TestCredentials, type WorkflowJson, type WorkflowRunResult } from './n8n';

export interface WebhookRunResult {
	/** What `webhook()` returned: the items it emitted, or that it answered the request itself. */
	response: IWebhookResponseData;
	/** The workflow run on the emitted items; undefined when the node emitted none. */
	run?: WorkflowRunResult;
}

let webhookCounter = 0;

export async function runWebhook(workflowJson: WorkflowJson, nodeName: string, req: Request, res: Response, credentials: TestCredentials): Promise<WebhookRunResult> {
	const nodeTypes = await getNodeTypes();
	const settings = { executionOrder: 'v1' as const, ...workflowJson.settings };
	const workflow = new Workflow({
		id: workflowJson.id ?? 'harness-webhook',
		name: workflowJson.name ?? 'Harness webhook',
		nodes: structuredClone(workflowJson.nodes),
		connections: structuredClone(workflowJson.connections),
		active: true,
		nodeTypes,
		settings,
	});
	const node = workflow.getNode(nodeName);
	if (!node) throw new UnexpectedError(`Node "${nodeName}" is not in the workflow`);
	const nodeType = nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
	const description = nodeType.description.webhooks?.[0];
	if (!nodeType.webhook || !description) throw new UnexpectedError(`Node "${nodeName}" (${node.type}) has no webhook`);

	const executionId = `webhook-${++webhookCounter}`;
	const workflowData: IWorkflowBase = {
		id: workflow.id,
		name: workflow.name ?? '',
		active: true,
		isArchived: false,
		activeVersionId: null,
		createdAt: new Date(),
		updatedAt: new Date(),
		nodes: workflowJson.nodes,
		connections: workflowJson.connections,
		settings,
	};
	const additionalData = {
		...createAdditionalData(executionId, workflow.id, new ExecutionLifecycleHooks('webhook', executionId, workflowData), new TestCredentialsHelper(nodeTypes, { ...credentials })),
		httpRequest: req,
		httpResponse: res,
	};
	const webhookData: IWebhookData = {
		httpMethod: 'POST',
		node: node.name,
		path: String(node.parameters.path ?? ''),
		webhookDescription: description,
		workflowId: workflow.id,
		workflowExecuteAdditionalData: additionalData,
	};
	const context = new WebhookContext(workflow, node, additionalData, 'webhook', webhookData, [], null);
	const response = await nodeType.webhook.call(context);
	const emitted = response.workflowData?.[0];
	if (!emitted) return { response };
	return { response, run: await runWorkflow(workflowJson, { input: emitted, startNode: nodeName, mode: 'webhook', credentials, nodeTypes }) };
}

/**
 * A webhook node's activation as n8n runs it on publishing a workflow
 * (WebhookService.createWebhookIfNotExists): its `checkExists`, then `create` when that says no,
 * in n8n-core's HookContext, for an activation (publishing) or the editor's test listening ('manual'). Resolves when the node may be activated; rejects with its error.
 */
export async function activateWebhook(workflowJson: WorkflowJson, nodeName: string, credentials: TestCredentials, activation: WorkflowActivateMode = 'activate'): Promise<void> {
	const nodeTypes = await getNodeTypes();
	const settings = { executionOrder: 'v1' as const, ...workflowJson.settings };
	const workflow = new Workflow({ id: workflowJson.id ?? 'harness-webhook', name: workflowJson.name ?? 'Harness webhook', nodes: structuredClone(workflowJson.nodes), connections: structuredClone(workflowJson.connections), active: true, nodeTypes, settings });
	const node = workflow.getNode(nodeName);
	if (!node) throw new UnexpectedError(`Node "${nodeName}" is not in the workflow`);
	const nodeType = nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
	const description = nodeType.description.webhooks?.[0];
	const methods = nodeType.webhookMethods?.default;
	if (!description || !methods) throw new UnexpectedError(`Node "${nodeName}" (${node.type}) has no webhook methods`);
	const executionId = `activation-${++webhookCounter}`;
	const workflowData: IWorkflowBase = { id: workflow.id, name: workflow.name ?? '', active: true, isArchived: false, activeVersionId: null, createdAt: new Date(), updatedAt: new Date(), nodes: workflowJson.nodes, connections: workflowJson.connections, settings };
	const additionalData = createAdditionalData(executionId, workflow.id, new ExecutionLifecycleHooks('webhook', executionId, workflowData), new TestCredentialsHelper(nodeTypes, { ...credentials }));
	const webhookData: IWebhookData = { httpMethod: 'POST', node: node.name, path: String(node.parameters.path ?? ''), webhookDescription: description, workflowId: workflow.id, workflowExecuteAdditionalData: additionalData };
	const context = new HookContext(workflow, node, additionalData, 'webhook', activation, webhookData);
	if (!(await methods.checkExists.call(context))) await methods.create.call(context);
}
