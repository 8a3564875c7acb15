/**
 * Runs an n8n workflow JSON in-process through n8n-core's real execution engine
 * (`WorkflowExecute`), for Jest tests. No database, no HTTP server, no n8n CLI.
 *
 * What is real: node loading (n8n-core's package loaders, so node type names, description
 * validation and parameter defaults are what an n8n instance gets), expression evaluation,
 * routing between nodes and outputs, error handling. What is stubbed: credential storage
 * (credentials come from the test), sub-workflow calls and the task runner (Code node) throw;
 * binary data stays in memory as base64 on the item (BinaryDataService is never initialised).
 *
 * Usage:
 *   const result = await runWorkflow(workflowJson, { credentials: { myApi: { apiKey: 'k' } } });
 *   expect(result.error).toBeUndefined();
 *   expect(result.outputOf('If', 1)).toEqual([{ ... }]);
 */
import './n8n-env';

import { existsSync } from 'node:fs';
import path from 'node:path';

import { ExecutionLifecycleHooks, LazyPackageDirectoryLoader, UnrecognizedNodeTypeError, WorkflowExecute } from 'n8n-core';
import { createRunExecutionData, UnexpectedError, Workflow } from 'n8n-workflow';
import type {
	ExecutionError,
	ExecutionStatus,
	IConnections,
	IDataObject,
	IExecuteData,
	INode,
	INodeExecutionData,
	INodeType,
	IRun,
	IRunData,
	IVersionedNodeType,
	IWorkflowBase,
	IWorkflowSettings,
	LoadedClass,
	WorkflowExecuteMode,
} from 'n8n-workflow';

import { createAdditionalData, InstalledPackageLoader, loadPackages, PackageNodeTypes, StaticCredentialsHelper, type CredentialsByType } from '../../server/engine/n8n';

// ---------------------------------------------------------------------------------------------
// Node loading
// ---------------------------------------------------------------------------------------------

/** Root of this repository: the n8n community package whose nodes the tests exercise. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

/**
 * A package loader that runs our nodes from TypeScript source.
 *
 * Why a loader subclass rather than registering our classes by hand: every file listed in
 * package.json `n8n.nodes` / `n8n.credentials` still goes through n8n-core's own
 * `loadNodeFromFile` — the same description validation, `<package>.<name>` type naming,
 * special-parameter injection and codex reading that an installed community package gets — and a
 * node missing from package.json is missing here too, as it would be in n8n. The only change is
 * that `dist/<x>.js` resolves to `<x>.ts` when that source exists, so tests need no build and
 * never run stale output. Under Jest, n8n-core's `loadClassInIsolation` uses plain `require`
 * (`NODE_ENV=test`), which is Jest's require, so ts-jest compiles the `.ts` file on the way in.
 */
class SourcePackageLoader extends LazyPackageDirectoryLoader {
	/**
	 * Files that failed to load. Kept instead of thrown so that one node that does not compile
	 * (e.g. mid-edit) only fails the tests that use it; those get this message via getNode.
	 */
	readonly loadErrors: string[] = [];

	override loadNodeFromFile(filePath: string, packageVersion?: string): void {
		try {
			super.loadNodeFromFile(filePath, packageVersion);
		} catch (error) {
			this.loadErrors.push(`${filePath}: ${(error as Error).message}`);
		}
	}

	override loadCredentialFromFile(filePath: string): void {
		try {
			super.loadCredentialFromFile(filePath);
		} catch (error) {
			this.loadErrors.push(`${filePath}: ${(error as Error).message}`);
		}
	}

	protected override resolvePath(file: string): string {
		const resolved = super.resolvePath(file);
		const relative = path.relative(this.directory, resolved);
		const [top, ...rest] = relative.split(path.sep);
		if (top !== 'dist' || !relative.endsWith('.js')) return resolved;
		const source = path.join(this.directory, ...rest).replace(/\.js$/, '.ts');
		return existsSync(source) ? source : resolved;
	}
}

export interface HarnessPackages {
	/**
	 * Package folders whose nodes are loaded from TypeScript source when it exists
	 * (see SourcePackageLoader). Defaults to this repository.
	 */
	sourcePackages?: string[];
	/** Installed packages loaded exactly as n8n does. Defaults to `n8n-nodes-base`. */
	installedPackages?: string[];
}

/** The node and credential types of a set of packages, behind n8n's `INodeTypes` interface. */
export class HarnessNodeTypes extends PackageNodeTypes {
	static async load(packages: HarnessPackages = {}): Promise<HarnessNodeTypes> {
		const sourceDirs = packages.sourcePackages ?? [PROJECT_ROOT];
		const installedDirs = packages.installedPackages ?? [path.dirname(require.resolve('n8n-nodes-base/package.json'))];
		return new HarnessNodeTypes(await loadPackages([...sourceDirs.map((dir) => new SourcePackageLoader(dir)), ...installedDirs.map((dir) => new InstalledPackageLoader(dir))]));
	}

	override getNode(fullType: string): LoadedClass<INodeType | IVersionedNodeType> {
		try {
			return super.getNode(fullType);
		} catch (error) {
			const failed = this.loadErrors;
			if (error instanceof UnrecognizedNodeTypeError && failed.length > 0) {
				throw new UnexpectedError(`${error.message}; files that failed to load:\n  ${failed.join('\n  ')}`);
			}
			throw error;
		}
	}

	/** Node/credential files of the source packages that could not be loaded (see getNode). */
	get loadErrors(): string[] {
		return [...this.loaders.values()].flatMap((loader) => (loader instanceof SourcePackageLoader ? loader.loadErrors : []));
	}
}

let defaultNodeTypes: Promise<HarnessNodeTypes> | undefined;

/**
 * Node types of this repository + n8n-nodes-base, loaded once per test file (Jest's module
 * registry is per file, so this cache is too).
 */
export async function getNodeTypes(): Promise<HarnessNodeTypes> {
	defaultNodeTypes ??= HarnessNodeTypes.load();
	return await defaultNodeTypes;
}

/** Decrypted credential data by credential type name. */
export type TestCredentials = CredentialsByType;
export { StaticCredentialsHelper as TestCredentialsHelper, createAdditionalData };

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

/** The parts of an exported workflow JSON the harness uses; extra fields are ignored. */
export interface WorkflowJson {
	id?: string;
	name?: string;
	nodes: INode[];
	connections: IConnections;
	settings?: IWorkflowSettings;
	staticData?: IDataObject;
	/** Ignored on purpose: pinned data would replace the node output we want to test. */
	pinData?: unknown;
}

/**
 * A workflow read with `import wf from './x.json'` (resolveJsonModule): TypeScript widens
 * literals there (`position: number[]`, connection `type: string`), so it cannot match INode
 * exactly. Accepted as is; n8n's Workflow class checks the shape at run time.
 */
export interface ImportedWorkflowJson {
	id?: string;
	name?: string;
	nodes: readonly object[];
	connections: object;
	settings?: object;
	staticData?: object;
	pinData?: unknown;
}

export interface RunWorkflowOptions {
	/** Decrypted credential data by credential type name, e.g. `{ httpHeaderAuth: { name, value } }`. */
	credentials?: TestCredentials;
	/**
	 * Items the start node emits instead of running its own trigger logic — what a webhook call
	 * or trigger event delivers in a live n8n. Accepts plain JSON objects or full items.
	 */
	input?: Array<IDataObject | INodeExecutionData>;
	/** Start node name; defaults to n8n's own choice (the first trigger, e.g. Manual Trigger). */
	startNode?: string;
	/**
	 * Execution mode. Defaults to 'manual' without `input` (trigger nodes run their manual
	 * behaviour) and 'trigger' with it (see `input`); use 'webhook' for a Webhook start node.
	 */
	mode?: WorkflowExecuteMode;
	/** Reject with the failing node's error instead of returning it in `result.error`. */
	throwOnError?: boolean;
	/** Packages to load node types from; defaults to this repository + n8n-nodes-base. */
	nodeTypes?: HarnessNodeTypes;
}

/** An error as it sits in n8n's run data; see WorkflowRunResult.error. */
export type RecordedError = Pick<ExecutionError, 'message' | 'stack'> & {
	/** Class name of the original error, e.g. 'NodeOperationError'. */
	name?: string;
	description?: string | null;
	node?: INode;
	[key: string]: unknown;
};

export interface WorkflowRunResult {
	/** The full run as n8n stores it. */
	run: IRun;
	status: ExecutionStatus;
	runData: IRunData;
	/** Node names in the order they finished. */
	executedNodes: string[];
	/**
	 * The error that stopped the run, as n8n records it: a plain-object copy of the thrown
	 * NodeOperationError / NodeApiError / ExpressionError (WorkflowExecute spreads it so it can
	 * be stored), so `instanceof` is false — assert on `message` (the UI's title), `description`
	 * and `name` (the class name).
	 */
	error?: RecordedError;
	/** Name of the node that raised `error`, when it came from a node. */
	errorNode?: string;
	/** Static data as the workflow left it (e.g. polling cursors). */
	staticData: IDataObject;
	/**
	 * JSON of the items on one output of a node's run. Throws with the node's error if it failed,
	 * and with the list of nodes that did run if it never ran.
	 */
	outputOf(nodeName: string, outputIndex?: number, runIndex?: number): IDataObject[];
	/** Like outputOf but full items (binary, pairedItem, …). */
	itemsOf(nodeName: string, outputIndex?: number, runIndex?: number): INodeExecutionData[];
}

export class WorkflowRunError extends Error {
	constructor(
		readonly result: WorkflowRunResult,
		cause: RecordedError,
	) {
		super(
			result.errorNode
				? `Node "${result.errorNode}" failed: ${cause.message}`
				: `Workflow failed: ${cause.message}`,
			{ cause },
		);
		this.name = 'WorkflowRunError';
	}
}

let executionCounter = 0;

export async function runWorkflow(
	workflowInput: WorkflowJson | ImportedWorkflowJson,
	options: RunWorkflowOptions = {},
): Promise<WorkflowRunResult> {
	const workflowJson = workflowInput as WorkflowJson;
	const nodeTypes = options.nodeTypes ?? (await getNodeTypes());
	const executionId = String(++executionCounter);
	// Deep copy: n8n mutates nodes (e.g. disables a resumed node) and tests reuse fixtures.
	const nodes = structuredClone(workflowJson.nodes);
	const connections = structuredClone(workflowJson.connections);

	// Without executionOrder the engine falls back to the legacy breadth-first 'v0' order; every
	// workflow created in the n8n 1.x/2.x editor carries 'v1', so hand-written test workflows
	// get that too. An explicit setting in the JSON wins.
	const settings: IWorkflowSettings = { executionOrder: 'v1', ...workflowJson.settings };
	const workflow = new Workflow({
		id: workflowJson.id ?? 'harness-workflow',
		name: workflowJson.name ?? 'Harness workflow',
		nodes,
		connections,
		active: false,
		nodeTypes,
		settings,
		staticData: structuredClone(workflowJson.staticData ?? {}),
	});

	const startNode = options.startNode
		? workflow.getNode(options.startNode)
		: (workflow.getStartNode() ?? soleRootNode(workflow));
	if (!startNode) {
		throw new UnexpectedError(
			options.startNode
				? `Start node "${options.startNode}" is not in the workflow`
				: 'No start node found; pass options.startNode',
		);
	}

	// Two ways a workflow starts in n8n. 'manual': trigger nodes run their manual behaviour
	// (Manual Trigger emits one empty item). Anything else: n8n puts what the trigger/webhook
	// received on the stack as the start node's input, and the engine passes it straight through
	// as that node's output (WorkflowExecute.executeTriggerNode / webhook branch of runNode).
	// That second path is how `input` is fed, with no pinData involved.
	const mode: WorkflowExecuteMode = options.mode ?? (options.input ? 'trigger' : 'manual');
	if (options.input && mode === 'manual') {
		const startType = nodeTypes.getByNameAndVersion(startNode.type, startNode.typeVersion);
		if (startType.trigger || startType.poll) {
			// A trigger in manual mode runs its own manual behaviour and drops the input silently.
			throw new UnexpectedError(
				`options.input is ignored by trigger node "${startNode.name}" in 'manual' mode; use mode 'trigger' or 'webhook'`,
			);
		}
	}
	const startItems: INodeExecutionData[] = options.input
		? options.input.map(toItem)
		: [{ json: {} }];

	const workflowData: IWorkflowBase = {
		id: workflow.id,
		name: workflow.name ?? '',
		active: false,
		isArchived: false,
		activeVersionId: null,
		createdAt: new Date(),
		updatedAt: new Date(),
		nodes,
		connections,
		settings,
	};

	const hooks = new ExecutionLifecycleHooks(mode, executionId, workflowData);
	const executedNodes: string[] = [];
	hooks.addHandler('nodeExecuteAfter', (nodeName) => {
		executedNodes.push(nodeName);
	});
	let finished: { run: IRun; staticData: IDataObject } | undefined;
	hooks.addHandler('workflowExecuteAfter', (run, newStaticData) => {
		finished = { run, staticData: newStaticData };
	});

	const additionalData = createAdditionalData(
		executionId,
		workflow.id,
		hooks,
		new StaticCredentialsHelper(nodeTypes, { ...(options.credentials ?? {}) }),
	);

	const stackEntry: IExecuteData = {
		node: startNode,
		data: { main: [startItems] },
		source: null,
	};
	const runExecutionData = createRunExecutionData({
		executionData: { nodeExecutionStack: [stackEntry], waitingExecutionSource: null },
	});

	const execution = new WorkflowExecute(additionalData, mode, runExecutionData);
	// processRunExecutionData resolves after the workflowExecuteAfter hook has run; the hook is
	// what n8n itself relies on, so its payload is preferred and the return value is the fallback.
	const returned = await execution.processRunExecutionData(workflow);
	const run = finished?.run ?? returned;
	const result = buildResult(run, executedNodes, finished?.staticData ?? workflow.staticData);

	if (options.throwOnError && result.error) {
		throw new WorkflowRunError(result, result.error);
	}
	return result;
}

/**
 * n8n's getStartNode only knows trigger/poll nodes and a fixed list (Manual Trigger, …); a
 * Webhook-started workflow is started by n8n's webhook server instead. Accept the one node
 * nothing feeds into, which is unambiguous for such workflows.
 */
function soleRootNode(workflow: Workflow): INode | undefined {
	const roots = Object.values(workflow.nodes).filter(
		(candidate) =>
			!candidate.disabled &&
			candidate.type !== 'n8n-nodes-base.stickyNote' &&
			workflow.getParentNodes(candidate.name).length === 0,
	);
	return roots.length === 1 ? roots[0] : undefined;
}

function toItem(entry: IDataObject | INodeExecutionData): INodeExecutionData {
	const looksLikeItem =
		typeof entry.json === 'object' &&
		entry.json !== null &&
		Object.keys(entry).every((key) =>
			['json', 'binary', 'pairedItem', 'error', 'metadata'].includes(key),
		);
	return looksLikeItem ? (entry as INodeExecutionData) : { json: entry as IDataObject };
}

function buildResult(run: IRun, executedNodes: string[], staticData: IDataObject): WorkflowRunResult {
	const { runData } = run.data.resultData;
	const error = run.data.resultData.error as RecordedError | undefined;
	const errorNode = error ? errorNodeName(error, runData) : undefined;

	const taskOf = (nodeName: string, runIndex: number) => {
		const task = runData[nodeName]?.[runIndex];
		if (!task) {
			const ran = Object.keys(runData).join(', ') || 'none';
			const why = error ? `; the workflow stopped with: ${error.message}` : '';
			throw new Error(`Node "${nodeName}" has no run #${runIndex} (nodes that ran: ${ran})${why}`);
		}
		if (task.error) {
			throw new Error(`Node "${nodeName}" failed: ${task.error.message}`, { cause: task.error });
		}
		return task;
	};

	const itemsOf = (nodeName: string, outputIndex = 0, runIndex = 0): INodeExecutionData[] =>
		taskOf(nodeName, runIndex).data?.main?.[outputIndex] ?? [];

	return {
		run,
		status: run.status,
		runData,
		executedNodes,
		error,
		errorNode,
		staticData,
		itemsOf,
		outputOf: (nodeName, outputIndex, runIndex) =>
			itemsOf(nodeName, outputIndex, runIndex).map((item) => item.json),
	};
}

function errorNodeName(error: RecordedError, runData: IRunData): string | undefined {
	if (error.node?.name) return error.node.name;
	for (const [name, tasks] of Object.entries(runData)) {
		if (tasks.some((task) => task.error)) return name;
	}
	return undefined;
}
