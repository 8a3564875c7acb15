/**
 * What the workflow scripts share: the six bundled workflows, their test payloads, and a signed
 * delivery to a workflow's CRM Tracker Trigger, as the receiver's outbox sends it.
 */
import { randomUUID } from 'node:crypto';
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

interface WorkflowFile {
	id: string;
	name: string;
	nodes: Array<{ type: string; parameters: Record<string, unknown> }>;
}

export function bundledWorkflows(): BundledWorkflow[] {
	return Object.keys(PAYLOADS).map((number) => {
		const file = readdirMatching(number);
		const json = JSON.parse(readFileSync(path.join(WORKFLOWS_DIR, file), 'utf8')) as WorkflowFile;
		const trigger = json.nodes.find((node) => node.type.endsWith('.crmTrackerTrigger'));
		if (!trigger || typeof trigger.parameters.path !== 'string') throw new Error(`workflows/${file} has no CRM Tracker Trigger with a path`);
		return { number, name: file.replace(/^\d\d-/, '').replace(/\.json$/, ''), file, id: json.id, title: json.name, webhookPath: trigger.parameters.path, payload: PAYLOADS[number] };
	});
}

function readdirMatching(number: string): string {
	const found = readdirSync(WORKFLOWS_DIR).find((file) => file.startsWith(`${number}-`) && file.endsWith('.json'));
	if (!found) throw new Error(`No workflows/${number}-*.json in ${WORKFLOWS_DIR}`);
	return found;
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
	if (!isSignableSite(payload.site)) throw new UsageError('The payload has no site key in "site": a delivery is signed for its site; pass --site (or SITE_KEY) or put "site" into the payload');
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
	if (result.status === 403) return 'the trigger’s Sites parameter does not accept this site (--site / SITE_KEY)';
	if (result.status >= 500) return `the workflow failed: open its execution in n8n (${workflow.title}) for the failing node`;
	return `unexpected answer ${result.status}`;
}

export function option(values: Record<string, string | boolean | undefined>, name: string, env: string, fallback?: string): string | undefined {
	const value = values[name];
	if (typeof value === 'string' && value !== '') return value;
	return process.env[env] || fallback;
}
