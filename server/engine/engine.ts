/**
 * The embedded engine: the six bundled workflows (workflows/*.json) run in the receiver's process
 * by n8n's own execution engine, with the same node classes a real n8n loads from this package.
 * A delivery enters a workflow the way n8n's webhook server starts one: its CRM Tracker Trigger's
 * `webhook()` verifies and splits it, then `WorkflowExecute` runs the workflow from that node and
 * the delivery has succeeded when the run has (the trigger's "When Last Node Finishes"). CRM Hand
 * Off nodes post to the receiver's /webhook/<path>, which enters the next workflow the same way.
 * Schedule triggers are activated through n8n's own TriggerContext and cron registry.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { Request, Response } from 'express';
import { Container } from '@n8n/di';
import { ExecutionLifecycleHooks, HookContext, InstanceSettings, ScheduledTaskManager, TriggerContext, WebhookContext, WorkflowExecute } from 'n8n-core';
import { createRunExecutionData, Workflow } from 'n8n-workflow';
import type { INode, INodeExecutionData, IRun, IWebhookData, IWorkflowBase, IWorkflowExecuteAdditionalData, IWorkflowSettings, WorkflowExecuteMode } from 'n8n-workflow';

import type { Logger } from '../logger';
import { withoutBom } from '../routes/body';
import { problem, quotedPath } from '../routes/problems';
import { createAdditionalData, InstalledPackageLoader, PackageNodeTypes, StaticCredentialsHelper, type CredentialsByType } from './n8n';

const TRACKER_TRIGGER = 'n8n-nodes-tracking-crm.crmTrackerTrigger';

interface WorkflowFile {
	id: string;
	name: string;
	nodes: INode[];
	connections: Workflow['connectionsBySourceNode'];
	settings?: IWorkflowSettings;
}

/** What a delivery got: the HTTP status and body a real n8n would have answered. */
export interface EngineAnswer {
	status: number;
	body: unknown;
	/** The body is the engine's own refusal, a problem document (the trigger's refusals are the node's JSON). */
	problem?: true;
}

/**
 * The engine's own refusals, in the receiver's problem shape; `code` and `message` are the members
 * of n8n's webhook errors, kept for clients written against n8n's answers.
 */
function refusal(status: number, error: string, message: string, field?: string, fieldMessage?: string): EngineAnswer {
	return { status, problem: true, body: problem(status, error, message, { code: status, ...(field && { issues: [{ field, message: fieldMessage ?? message }] }) }) };
}

export interface EngineOptions {
	/** The n8n package whose nodes run: this repository, built (package.json's `n8n` section, dist/). */
	packageRoot: string;
	/** Folder of the bundled workflow files. */
	workflowsDir: string;
	/** Where this receiver is reached from this process: CRM Hand Off nodes post to `<baseUrl>/webhook/<path>`. */
	baseUrl: string;
	/** Decrypted credentials by type, as the workflows' nodes ask for them. */
	credentials: CredentialsByType;
	logger: Logger;
}

/** A webhook node's response object, as far as the CRM Tracker Trigger uses it: what it answered. */
class RecordedResponse {
	answer: EngineAnswer | undefined;
	private statusCode = 200;

	status(code: number): this {
		this.statusCode = code;
		return this;
	}

	json(body: unknown): this {
		this.answer = { status: this.statusCode, body };
		return this;
	}
}

export class EmbeddedEngine {
	private readonly byPath = new Map<string, { file: WorkflowFile; trigger: INode }>();
	private readonly running = new Set<Promise<unknown>>();
	private readonly deactivations: Array<() => Promise<void> | void> = [];
	private executions = 0;
	private closed = false;

	private constructor(
		private readonly nodeTypes: PackageNodeTypes,
		private readonly files: WorkflowFile[],
		private readonly options: EngineOptions,
	) {
		for (const file of files) {
			for (const node of file.nodes) {
				if (node.type === TRACKER_TRIGGER && !node.disabled) this.byPath.set(String(node.parameters.path), { file, trigger: node });
			}
		}
	}

	static async start(options: EngineOptions): Promise<EmbeddedEngine> {
		const nodeTypes = await PackageNodeTypes.fromLoaders([
			new InstalledPackageLoader(options.packageRoot),
			new InstalledPackageLoader(path.dirname(require.resolve('n8n-nodes-base/package.json'))),
		]);
		const files = readdirSync(options.workflowsDir)
			.filter((name) => name.endsWith('.json'))
			.sort()
			.map((name) => JSON.parse(readFileSync(path.join(options.workflowsDir, name), 'utf8')) as WorkflowFile);
		const engine = new EmbeddedEngine(nodeTypes, files, options);
		// n8n registers crons on its leader only (one main instance of several); this process is the only one.
		Container.get(InstanceSettings).markAsLeader();
		await engine.activateWebhooks();
		await engine.activateSchedules();
		return engine;
	}

	/** The webhook paths of the workflows' CRM Tracker Triggers. */
	get paths(): string[] {
		return [...this.byPath.keys()];
	}

	/** The workflows, for the first-run summary. */
	get workflowNames(): string[] {
		return this.files.map((file) => file.name);
	}

	/**
	 * Runs the workflow whose CRM Tracker Trigger listens on `webhookPath` on a signed delivery, and
	 * answers as n8n's webhook server would: the trigger's refusal (401, 400 …), 500 when the run
	 * failed (the sender retries), 200 when it finished.
	 */
	async deliver(webhookPath: string, rawBody: Buffer | string, headers: IncomingHttpHeaders): Promise<EngineAnswer> {
		const entry = this.byPath.get(webhookPath);
		if (!entry) {
			const known = this.paths.map((path) => `/webhook/${path}`).join(', ');
			return refusal(404, 'no_workflow', `No bundled workflow listens on /webhook/${quotedPath(webhookPath)}; the embedded engine serves ${known}`, 'path', `must be one of ${known}`);
		}
		if (this.closed) return refusal(503, 'engine_stopping', 'The embedded engine is stopping; the delivery is retried');
		const raw = typeof rawBody === 'string' ? Buffer.from(rawBody) : rawBody;
		const text = withoutBom(raw.toString('utf8'));
		if (!text.trim()) return refusal(400, 'empty_body', 'The body is empty; send the signed delivery as JSON', 'body', 'is empty');
		let body: unknown;
		try {
			body = JSON.parse(text);
		} catch (error) {
			return refusal(400, 'invalid_json', `The body is not valid JSON (${(error as Error).message}); send the signed delivery as JSON`, 'body', 'is not valid JSON');
		}
		return await this.track(this.runWebhook(entry.file, entry.trigger, { body, rawBody: raw, headers, method: 'POST', query: {}, params: {} }));
	}

	/** Stops the schedules, waits for the executions in flight and closes the nodes' database pools. */
	async close(): Promise<void> {
		this.closed = true;
		for (const deactivate of this.deactivations.splice(0)) await deactivate();
		// n8n-core registers a schedule's crons under its workflow ("workflow" is its group type), as n8n's own deactivation removes them.
		const crons = Container.get(ScheduledTaskManager);
		for (const file of this.files) crons.deregisterGroup({ type: 'workflow', id: file.id });
		await Promise.allSettled([...this.running]);
		// The package's node bundle (the module the node classes came from) keeps one pool per database.
		const bundle = path.join(this.options.packageRoot, 'dist', 'bundle', 'nodes.js');
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		if (existsSync(bundle)) await (require(bundle) as { disconnectAll?: () => Promise<void> }).disconnectAll?.();
	}

	private async track<T>(work: Promise<T>): Promise<T> {
		this.running.add(work);
		try {
			return await work;
		} finally {
			this.running.delete(work);
		}
	}

	private workflowOf(file: WorkflowFile): Workflow {
		return new Workflow({
			id: file.id,
			name: file.name,
			nodes: structuredClone(file.nodes),
			connections: structuredClone(file.connections),
			active: true,
			nodeTypes: this.nodeTypes,
			settings: { executionOrder: 'v1', ...file.settings },
		});
	}

	private additionalData(file: WorkflowFile, mode: WorkflowExecuteMode): { data: IWorkflowExecuteAdditionalData; hooks: ExecutionLifecycleHooks; executionId: string } {
		const executionId = `embedded-${++this.executions}`;
		const workflowData: IWorkflowBase = {
			id: file.id,
			name: file.name,
			active: true,
			isArchived: false,
			activeVersionId: null,
			createdAt: new Date(0),
			updatedAt: new Date(0),
			nodes: file.nodes,
			connections: file.connections,
			settings: file.settings,
		};
		const hooks = new ExecutionLifecycleHooks(mode, executionId, workflowData);
		const credentials = new StaticCredentialsHelper(this.nodeTypes, { ...this.options.credentials });
		return { data: createAdditionalData(executionId, file.id, hooks, credentials, this.options.baseUrl), hooks, executionId };
	}

	private async runWebhook(file: WorkflowFile, trigger: INode, request: Record<string, unknown>): Promise<EngineAnswer> {
		const workflow = this.workflowOf(file);
		const node = workflow.getNode(trigger.name)!;
		const nodeType = this.nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
		const description = nodeType.description.webhooks?.[0];
		if (!nodeType.webhook || !description) return refusal(500, 'internal', `${node.type} has no webhook`);
		const response = new RecordedResponse();
		const { data } = this.additionalData(file, 'webhook');
		// The trigger reads body, raw body and headers, and answers refusals with status().json().
		const additionalData: IWorkflowExecuteAdditionalData = { ...data, httpRequest: request as unknown as Request, httpResponse: response as unknown as Response };
		const webhookData: IWebhookData = {
			httpMethod: 'POST',
			node: node.name,
			path: String(node.parameters.path),
			webhookDescription: description,
			workflowId: file.id,
			workflowExecuteAdditionalData: additionalData,
		};
		const context = new WebhookContext(workflow, node, additionalData, 'webhook', webhookData, [], null);
		const answered = await nodeType.webhook.call(context);
		const items = answered.workflowData?.[0];
		if (!items) return response.answer ?? { status: 200, body: { ok: true, items: 0 } };
		const run = await this.execute(file, workflow, node, items, 'webhook');
		const error = run.data.resultData.error;
		if (error) return refusal(500, 'workflow_failed', `Workflow "${file.name}" failed: ${error.message}`);
		return { status: 200, body: { ok: true, items: items.length } };
	}

	private async execute(file: WorkflowFile, workflow: Workflow, startNode: INode, items: INodeExecutionData[], mode: WorkflowExecuteMode): Promise<IRun> {
		const { data, hooks, executionId } = this.additionalData(file, mode);
		let finished: IRun | undefined;
		hooks.addHandler('workflowExecuteAfter', (run) => {
			finished = run;
		});
		const runData = createRunExecutionData({ executionData: { nodeExecutionStack: [{ node: startNode, data: { main: [items] }, source: null }], waitingExecutionSource: null } });
		const returned = await new WorkflowExecute(data, mode, runData).processRunExecutionData(workflow);
		const run = finished ?? returned;
		const error = run.data.resultData.error;
		if (error) {
			const failedNode = (error as { node?: { name?: string } }).node?.name;
			this.options.logger.warn({ workflow: file.name, executionId, node: failedNode, error: error.message, description: (error as { description?: string }).description }, 'embedded workflow failed');
		}
		return run;
	}

	/**
	 * Runs each CRM Tracker Trigger's activation check as the editor's test listening does ('manual'):
	 * at once, so a trigger whose settings would refuse every delivery stops the start, naming its
	 * workflow and the field. (n8n 2 publishes in the background; there the trigger only logs it and
	 * answers each delivery trigger_misconfigured. Here the operator is at the console.)
	 */
	private async activateWebhooks(): Promise<void> {
		for (const { file, trigger } of this.byPath.values()) {
			const workflow = this.workflowOf(file);
			const node = workflow.getNode(trigger.name)!;
			const nodeType = this.nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
			const description = nodeType.description.webhooks?.[0];
			const checkExists = nodeType.webhookMethods?.default?.checkExists;
			if (!description || !checkExists) continue;
			const { data } = this.additionalData(file, 'webhook');
			const webhookData: IWebhookData = { httpMethod: 'POST', node: node.name, path: String(node.parameters.path), webhookDescription: description, workflowId: file.id, workflowExecuteAdditionalData: data };
			try {
				await checkExists.call(new HookContext(workflow, node, data, 'webhook', 'manual', webhookData));
			} catch (error) {
				throw new Error(`Workflow "${file.name}" cannot be activated: ${(error as Error).message}`);
			}
		}
	}

	/**
	 * Activates the workflows' schedule triggers as n8n does on publishing: the node's `trigger()`
	 * registers its crons with n8n's scheduler, and each tick it emits runs the workflow from it.
	 * A tick while the previous run of the same workflow is still going is skipped.
	 */
	private async activateSchedules(): Promise<void> {
		for (const file of this.files) {
			for (const fileNode of file.nodes) {
				if (fileNode.disabled || fileNode.type === TRACKER_TRIGGER) continue;
				const workflow = this.workflowOf(file);
				const node = workflow.getNode(fileNode.name)!;
				const nodeType = this.nodeTypes.getByNameAndVersion(node.type, node.typeVersion);
				if (!nodeType.trigger) continue;
				let busy = false;
				const emit = (data: INodeExecutionData[][]) => {
					if (busy || this.closed) return;
					busy = true;
					void this.track(this.execute(file, this.workflowOf(file), node, data[0] ?? [{ json: {} }], 'trigger')).finally(() => {
						busy = false;
					});
				};
				const emitError = (error: Error) => this.options.logger.warn({ workflow: file.name, node: node.name, error: error.message }, 'embedded trigger failed');
				const { data } = this.additionalData(file, 'trigger');
				const context = new TriggerContext(workflow, node, data, 'trigger', 'init', emit, emitError);
				const response = await nodeType.trigger.call(context);
				this.deactivations.push(async () => await response?.closeFunction?.());
			}
		}
	}
}
