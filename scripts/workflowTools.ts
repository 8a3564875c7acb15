/**
 * What the workflow scripts share: the six bundled workflows, their content hash and their import
 * into n8n with its CLI, their test payloads, and a signed delivery to a workflow's CRM Tracker
 * Trigger, as the receiver's outbox sends it.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { isSignableSite, signedHeaders } from '../lib/signing';

/** The repository (or installed package) root: scripts run from source (scripts/) and compiled (dist/scripts/). */
export const ROOT = [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..')].find((dir) => existsSync(path.join(dir, 'workflows'))) ?? path.resolve(__dirname, '..', '..');
export const WORKFLOWS_DIR = path.join(ROOT, 'workflows');
export const PAYLOADS_DIR = path.join(ROOT, 'test-payloads');

export interface BundledWorkflow {
	/** "01" … "06" */
	number: string;
	/** The receiver's name for it where it has one (integrations.webhookEndpoints), else the seed's. */
	name: string;
	file: string;
	id: string;
	title: string;
	/** The webhook path of its CRM Tracker Trigger. */
	webhookPath: string;
	/** Its sample payload in test-payloads/. */
	payload: string;
}

const PAYLOADS: Record<string, string> = {
	'01': 'visitor.json',
	'02': 'conversion.json',
	'03': 'lead.json',
	'04': 'activity.json',
	'05': 'enrichment.json',
	'06': 'email.json',
};

export interface NodeJson {
	id?: string;
	name: string;
	type: string;
	parameters: Record<string, unknown>;
	credentials?: Record<string, { id: string; name: string }>;
	[key: string]: unknown;
}

/** A workflow as its file holds it and as `n8n export:workflow` prints it (then with n8n's own fields). */
export interface WorkflowFile {
	id: string;
	name: string;
	nodes: NodeJson[];
	connections: Record<string, unknown>;
	settings?: Record<string, unknown>;
	meta?: Record<string, unknown> | null;
	active?: boolean;
	/** n8n 2.x: the published version, null while unpublished. */
	activeVersionId?: string | null;
	versionId?: string;
	isArchived?: boolean;
	[key: string]: unknown;
}

/** The six workflows of a folder (the package's workflows/ unless another is given), in chain order. */
export function bundledWorkflows(dir = WORKFLOWS_DIR): BundledWorkflow[] {
	return Object.keys(PAYLOADS).map((number) => {
		const file = readdirMatching(dir, number);
		const json = readWorkflowFile(dir, file);
		const trigger = json.nodes.find((node) => node.type.endsWith('.crmTrackerTrigger'));
		if (!trigger || typeof trigger.parameters.path !== 'string') throw new Error(`${path.join(dir, file)} has no CRM Tracker Trigger with a path`);
		return { number, name: file.replace(/^\d\d-/, '').replace(/\.json$/, ''), file, id: json.id, title: json.name, webhookPath: trigger.parameters.path, payload: PAYLOADS[number] };
	});
}

export function readWorkflowFile(dir: string, file: string): WorkflowFile {
	const json = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as WorkflowFile;
	if (typeof json.id !== 'string' || !Array.isArray(json.nodes) || typeof json.connections !== 'object') throw new UsageError(`${path.join(dir, file)} is not an n8n workflow with an id, nodes and connections`);
	return json;
}

function readdirMatching(dir: string, number: string): string {
	let files: string[];
	try {
		files = readdirSync(dir);
	} catch {
		throw new UsageError(`No folder of workflows at ${dir}`);
	}
	const found = files.find((file) => file.startsWith(`${number}-`) && file.endsWith('.json'));
	if (!found) throw new UsageError(`No ${number}-*.json in ${dir}: a folder of workflows holds the six files 01-*.json … 06-*.json`);
	return found;
}

/** Sorted keys all the way down: one text for one content, whatever order n8n wrote it in. */
function canonical(value: unknown): unknown {
	if (Array.isArray(value)) return value.map(canonical);
	if (value && typeof value === 'object') return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]));
	return value;
}

/**
 * What a workflow does — its nodes, connections and settings — as a SHA-256. The credentials
 * its nodes use are left out: they are the installation's choice, kept across updates.
 */
export function contentHash(workflow: Pick<WorkflowFile, 'nodes' | 'connections' | 'settings'>): string {
	const nodes = [...workflow.nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(({ credentials: _credentials, ...node }) => node);
	return createHash('sha256')
		.update(JSON.stringify(canonical({ nodes, connections: workflow.connections, settings: workflow.settings ?? {} })))
		.digest('hex');
}

/** Where the scripts note which file's content a workflow was imported from: its `meta`, which n8n keeps. */
const SOURCE_KEY = 'trackingCrmSource';

export interface WorkflowSource {
	file: string;
	hash: string;
}

export function sourceOf(workflow: WorkflowFile): WorkflowSource | undefined {
	const source = workflow.meta?.[SOURCE_KEY] as Partial<WorkflowSource> | undefined;
	return typeof source?.hash === 'string' && typeof source.file === 'string' ? { file: source.file, hash: source.hash } : undefined;
}

export type UpdateAction = 'unchanged' | 'kept-edited' | 'update' | 'add' | 'needs-force' | 'archived';

/**
 * What scripts/update-workflows does with one workflow, given its file's content hash and n8n's
 * copy. The mark of the content it was imported from tells an edit made in n8n (its content
 * differs from the mark) from a new file (the mark differs from the file).
 */
export function updateAction(fileHash: string, installed: WorkflowFile | undefined, force: boolean): UpdateAction {
	if (!installed) return 'add';
	if (installed.isArchived) return 'archived';
	const installedHash = contentHash(installed);
	if (installedHash === fileHash) return 'unchanged';
	const source = sourceOf(installed);
	if (!source || source.hash === installedHash) return 'update';
	if (source.hash === fileHash) return 'kept-edited';
	return force ? 'update' : 'needs-force';
}

export type CredentialRef = { id: string; name: string };

/**
 * A bundled workflow ready for `n8n import:workflow`, marked with its file's hash. Each node
 * that uses a credential takes the one `credentialOf(node, type)` gives (the installation's
 * choice), else the bundled file's.
 */
export function importable(bundled: BundledWorkflow, json: WorkflowFile, credentialOf: (node: NodeJson, type: string) => CredentialRef | undefined = () => undefined): WorkflowFile {
	const nodes = json.nodes.map((node) =>
		node.credentials
			? { ...node, credentials: Object.fromEntries(Object.entries(node.credentials).map(([type, bundledRef]) => [type, credentialOf(node, type) ?? bundledRef])) }
			: node,
	);
	return { ...json, nodes, meta: { ...(json.meta ?? {}), [SOURCE_KEY]: { file: bundled.file, hash: contentHash(json) } satisfies WorkflowSource } };
}

/** "01", "1", "visitor-processor", "01-visitor-processor" or the webhook path → the workflow. */
export function findWorkflow(reference: string): BundledWorkflow {
	const workflows = bundledWorkflows();
	const wanted = reference.trim().replace(/\.json$/, '').toLowerCase();
	const found = workflows.find(
		(workflow) =>
			workflow.number === wanted.padStart(2, '0') || workflow.name === wanted || `${workflow.number}-${workflow.name}` === wanted || workflow.webhookPath === wanted || workflow.id.toLowerCase() === wanted,
	);
	if (!found) {
		throw new UsageError(`No bundled workflow "${reference}". Use one of: ${workflows.map((workflow) => `${workflow.number} (${workflow.name})`).join(', ')}`);
	}
	return found;
}

export class UsageError extends Error {}

const undoOnStop = new Set<() => void>();
let signalsHandled = false;

/**
 * Registers what a SIGINT or SIGTERM must undo before the script exits (a child process still at
 * work, a half-written file); returns the function that unregisters it once the work is over.
 */
export function onStop(undo: () => void): () => void {
	if (!signalsHandled) {
		signalsHandled = true;
		for (const signal of ['SIGINT', 'SIGTERM'] as const) {
			process.once(signal, () => {
				for (const pending of undoOnStop) pending();
				process.exit(signal === 'SIGINT' ? 130 : 143);
			});
		}
	}
	undoOnStop.add(undo);
	return () => undoOnStop.delete(undo);
}

/** A failure the operator can act on: its message is printed alone, without a stack. */
export class OperatorError extends Error {}

/**
 * Runs a script's main and exits with its code: 2 with the usage for a usage mistake, 1 with the
 * message for an operator's error (n8n or the database unreachable, a bad setting), 1 with the
 * stack for anything unexpected.
 */
export function runScript(main: (argv: string[]) => Promise<number>, usage: string): void {
	main(process.argv.slice(2)).then(
		(code) => process.exit(code),
		(error: unknown) => {
			if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
				console.error(`${(error as Error).message}\n\n${usage}`);
				process.exit(2);
			}
			console.error(error instanceof OperatorError ? error.message : (error as Error).stack);
			process.exit(1);
		},
	);
}

export interface CliRun {
	code: number | null;
	output: string;
}

/**
 * Runs n8n's CLI as the operator gave it (a command, or a prefix such as "npx n8n"); in a process
 * group of its own, so that a stop reaches n8n's process and not only the shell.
 */
export function runN8nCli(cli: string, args: string[]): Promise<CliRun> {
	return new Promise((resolve, reject) => {
		// Registered before the spawn: a stop that arrives while the CLI starts must still reach it
		// (Node runs the handler only after this synchronous code, when the child's group is known).
		const started: { group?: number } = {};
		const forget = onStop(() => {
			try {
				if (started.group) process.kill(-started.group, 'SIGTERM');
			} catch {
				// Already gone.
			}
		});
		const child = spawn('bash', ['-c', `${cli} "$@"`, 'n8n', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
		started.group = child.pid;
		let output = '';
		child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
		child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
		child.once('error', reject);
		child.once('close', (code) => {
			forget();
			resolve({ code, output });
		});
	});
}

export class CliError extends OperatorError {}

/** n8n prints its own errors at length; this says what to do about the common ones. */
export function explainCli(step: string, run: CliRun): string {
	const tail = run.output.trim().split('\n').slice(-15).join('\n');
	if (run.code === 127 || /command not found|ENOENT/.test(run.output)) return `${step}: n8n's CLI was not found. Install n8n, or pass --n8n-cli / set N8N_CLI.\n${tail}`;
	if (/ECONNREFUSED|error initializing DB|connect.*database|password authentication failed|does not exist/i.test(run.output)) {
		return `${step}: n8n could not reach its database. Check n8n's DB_* settings (DB_TYPE, DB_POSTGRESDB_HOST, …) and that the server is up.\n${tail}`;
	}
	return `${step} failed (exit ${run.code}).\n${tail}`;
}

/** `n8n publish:workflow` logs this note only once the version is published. */
export const PUBLISHED_NOTE = /Changes will not take effect if n8n is running/;

/** n8n 2.x publishes a version (activeVersionId); 1.x had only `active`. */
export const isPublished = (workflow: WorkflowFile): boolean => (workflow.activeVersionId !== undefined ? workflow.activeVersionId !== null : workflow.active === true);

/** Every workflow n8n holds, as `n8n export:workflow --all` writes them (none on a new instance). */
export async function exportWorkflows(cli: string, file: string): Promise<WorkflowFile[]> {
	const run = await runN8nCli(cli, ['export:workflow', '--all', `--output=${file}`]);
	if (/No workflows found/.test(run.output)) return [];
	if (run.code !== 0 || !/Successfully exported \d+ workflow/.test(run.output)) throw new CliError(explainCli('n8n export:workflow --all', run));
	return JSON.parse(readFileSync(file, 'utf8')) as WorkflowFile[];
}

/** Publishes the workflow's current version, or the version given. */
export async function publishWorkflow(cli: string, id: string, versionId?: string): Promise<void> {
	const run = await runN8nCli(cli, ['publish:workflow', `--id=${id}`, ...(versionId ? [`--versionId=${versionId}`] : [])]);
	if (!PUBLISHED_NOTE.test(run.output)) throw new CliError(explainCli(`n8n publish:workflow --id=${id}`, run));
}

export async function unpublishWorkflow(cli: string, id: string): Promise<void> {
	const run = await runN8nCli(cli, ['unpublish:workflow', `--id=${id}`]);
	if (!/unpublished successfully/.test(run.output)) throw new CliError(explainCli(`n8n unpublish:workflow --id=${id}`, run));
}

/**
 * Imports a folder of workflow files over workflows n8n may hold already. n8n 2.41's import
 * unpublishes a published workflow it replaces through a permission check that fails from the
 * CLI, so those are unpublished first (a plain update, as publish:workflow is); if the import
 * fails, they are published again at the version they had.
 */
export async function importOver(cli: string, folder: string, count: number, published: WorkflowFile[]): Promise<void> {
	for (const workflow of published) await unpublishWorkflow(cli, workflow.id);
	const run = await runN8nCli(cli, ['import:workflow', '--separate', `--input=${folder}`]);
	if (run.code === 0 && new RegExp(`Successfully imported ${count} workflow`).test(run.output)) return;
	for (const workflow of published) await publishWorkflow(cli, workflow.id, workflow.activeVersionId ?? undefined);
	throw new CliError(explainCli('n8n import:workflow', run));
}

/** Payloads are deliveries (events / leads / emailEvents arrays) or handed-on items ({ items }). */
export function readPayload(file: string, site?: string): Record<string, unknown> {
	const resolved = existsSync(file) ? file : path.join(PAYLOADS_DIR, file);
	if (!existsSync(resolved)) throw new UsageError(`Payload file ${file} not found (also looked in test-payloads/)`);
	let payload: unknown;
	try {
		payload = JSON.parse(readFileSync(resolved, 'utf8'));
	} catch (error) {
		throw new UsageError(`Payload ${resolved} is not valid JSON: ${(error as Error).message}`);
	}
	if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw new UsageError(`Payload ${resolved} must be a JSON object`);
	const body = payload as Record<string, unknown>;
	if (!['events', 'leads', 'emailEvents', 'items'].some((key) => Array.isArray(body[key]))) {
		throw new UsageError(`Payload ${resolved} needs an "events", "leads", "emailEvents" or "items" array`);
	}
	if (!site) return body;
	// The site key is in the delivery, in every handed-on item and in every lead, as the receiver and the hand-off put it.
	const items = body.items as Array<Record<string, unknown>> | undefined;
	const leads = body.leads as Array<{ lead?: Record<string, unknown> }> | undefined;
	return {
		...body,
		site,
		...(items ? { items: items.map((item) => ({ ...item, site })) } : {}),
		...(leads ? { leads: leads.map((entry) => ({ ...entry, lead: { ...entry.lead, site } })) } : {}),
	};
}

export interface DeliveryResult {
	url: string;
	status: number;
	ms: number;
	body: unknown;
}

/**
 * POSTs a payload to a workflow's trigger, signed like the receiver's outbox for the payload's
 * site; n8n answers when the workflow finished.
 */
export async function deliver(n8nUrl: string, webhookPath: string, secret: string, payload: Record<string, unknown>, timeoutMs = 120_000): Promise<DeliveryResult> {
	const url = `${n8nUrl.replace(/\/+$/, '')}/webhook/${webhookPath}`;
	if (!isSignableSite(payload.site)) throw new UsageError('The payload has no site key in "site": a delivery is signed for its site');
	const deliveryId = `tester-${randomUUID()}`;
	const body = JSON.stringify({ events: [], leads: [], destination: webhookPath, sentAt: new Date().toISOString(), ...payload, deliveryId });
	const started = Date.now();
	let response: Response;
	try {
		response = await fetch(url, {
			method: 'POST',
			headers: signedHeaders(secret, payload.site, body, deliveryId),
			body,
			signal: AbortSignal.timeout(timeoutMs),
		});
	} catch (error) {
		throw new UnreachableError(`n8n is not reachable at ${n8nUrl} (${causeOf(error)}). Start n8n, or set N8N_URL / --n8n to where it listens.`);
	}
	const text = await response.text();
	let parsed: unknown = text;
	try {
		parsed = JSON.parse(text);
	} catch {
		// Not JSON: shown as text.
	}
	return { url, status: response.status, ms: Date.now() - started, body: parsed };
}

export class UnreachableError extends OperatorError {}

export function causeOf(error: unknown): string {
	const cause = (error as { cause?: { code?: string; message?: string } }).cause;
	return cause?.code ?? cause?.message ?? (error as Error).message;
}

/** What a failed delivery means, in words an operator can act on. */
export function explainStatus(result: DeliveryResult, workflow: BundledWorkflow): string {
	if (result.status === 404) return `no published workflow listens on /webhook/${workflow.webhookPath}: import and publish the workflows (scripts/import-workflows)`;
	if (result.status === 401) return 'the trigger refused the signature: the secret (CRM_WEBHOOK_SECRET / --secret) differs from the Tracking CRM API credential’s Webhook Secret';
	if (result.status === 400) return `the trigger refused the payload: ${(result.body as { message?: string } | null)?.message ?? 'not a delivery it accepts'}`;
	if (result.status === 403) return 'the trigger’s Sites parameter does not accept the test site: add its key (--test-site, default crm-selftest) there, or leave Sites empty';
	if (result.status >= 500) return `the workflow failed: open its execution in n8n (${workflow.title}) for the failing node`;
	return `unexpected answer ${result.status}`;
}

export function option(values: Record<string, string | boolean | string[] | undefined>, name: string, env: string, fallback?: string): string | undefined {
	const value = values[name];
	if (typeof value === 'string' && value !== '') return value;
	return process.env[env] || fallback;
}
