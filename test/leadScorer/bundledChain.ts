/**
 * The six bundled workflows in n8n's own engine, chained as a real n8n chains them: a delivery to
 * a workflow's trigger path runs that workflow from its CRM Tracker Trigger, and each CRM Hand Off
 * posts to a local webhook server that runs the next workflow and answers when it has finished.
 * So `deliver` resolves once the workflow and every workflow it handed on to are done, and a test
 * decides the order in which the receiver's deliveries arrive.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import type { IDataObject } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { deliveryItems, type Delivery, type Emit } from '../../nodes/CrmTrackerTrigger/delivery';
import { bundledWorkflows } from '../../scripts/workflowTools';
import { runWorkflow, type TestCredentials, type WorkflowJson, type WorkflowRunResult } from '../harness/n8n';
import { postgresCredential, storeEvents } from '../helpers/db';
import { BROWSER_UA } from '../helpers/events';

const ROOT = path.resolve(__dirname, '../..');

/** A tracking event as the receiver stores and delivers it. */
export interface TrackedEvent {
	id: string;
	anonymousId: string;
	sessionId: string | null;
	type: 'pageview' | 'form_submit' | 'click' | 'custom';
	name: string | null;
	url: string;
	path: string;
	title: string | null;
	referrer: string | null;
	relevance: number | null;
	props: Record<string, unknown> | null;
	context: Record<string, unknown> | null;
	userAgent: string | null;
	country: string | null;
	occurredAt: string;
	receivedAt: string;
}

/** One event of a browser on `domain`, at `at`, with the tracker's session id. */
export function trackedEvent(domain: string, anonymousId: string, sessionId: string, type: TrackedEvent['type'], pagePath: string, at: Date): TrackedEvent {
	return {
		id: uuidv7(),
		anonymousId,
		sessionId,
		type,
		name: null,
		url: `https://${domain}${pagePath}`,
		path: pagePath,
		title: null,
		referrer: null,
		relevance: null,
		props: null,
		context: null,
		userAgent: BROWSER_UA,
		country: null,
		occurredAt: at.toISOString(),
		receivedAt: at.toISOString(),
	};
}

/** Stores tracked events as the receiver does on ingest, before any workflow has seen them. */
export async function storeTrackedEvents(prisma: PrismaClient, siteId: string, events: readonly TrackedEvent[]): Promise<void> {
	await storeEvents(
		prisma,
		events.map((event) => ({
			siteId,
			eventId: event.id,
			anonymousId: event.anonymousId,
			sessionKey: event.sessionId,
			type: event.type,
			name: event.name,
			url: event.url,
			path: event.path,
			userAgent: event.userAgent,
			occurredAt: new Date(event.occurredAt),
			receivedAt: new Date(event.receivedAt),
		})),
	);
}

/** The credentials the bundled workflows use: the test database, a webhook secret of `name`, and the SMTP server on `smtpPort`. */
export function chainCredentials(name: string, smtpPort: number): TestCredentials {
	return {
		postgres: postgresCredential(),
		trackingCrmApi: { receiverUrl: 'https://crm.example.test', webhookSecret: `${name}-secret`, emailTokenSecret: `${name}-email-token-secret-0123456789` },
		smtp: { host: '127.0.0.1', port: smtpPort, secure: false, disableStartTls: true, user: '', password: '' },
	};
}

export class BundledChain {
	/** Every run, hand-offs' included, in the order they finished. */
	readonly runs: Array<{ webhookPath: string; run: WorkflowRunResult }> = [];
	private server: Server | undefined;
	private readonly workflows = new Map<string, WorkflowJson>();

	constructor(private readonly credentials: () => TestCredentials) {}

	async start(): Promise<void> {
		this.server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				void this.run(req.url ?? '', JSON.parse(Buffer.concat(chunks).toString('utf8')) as Delivery).then(
					(run) => res.writeHead(run.error ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(run.error ? { message: run.error.message } : { ok: true })),
					(error: Error) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ message: error.message })),
				);
			});
		});
		await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
		const base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhook`;
		for (const workflow of bundledWorkflows()) {
			const json = JSON.parse(readFileSync(path.join(ROOT, 'workflows', workflow.file), 'utf8')) as WorkflowJson;
			for (const node of json.nodes) if (node.type.endsWith('.crmHandOff')) node.parameters = { ...node.parameters, webhookBaseUrl: base };
			this.workflows.set(`/webhook/${workflow.webhookPath}`, json);
		}
	}

	async stop(): Promise<void> {
		this.server?.closeAllConnections();
		await new Promise((resolve) => this.server?.close(resolve));
	}

	/** What the receiver's outbox posts to the workflow of `webhookPath`, run to the end of the chain. */
	async deliver(webhookPath: string, site: { key: string; id: string }, entries: { events?: TrackedEvent[]; leads?: IDataObject[] }): Promise<WorkflowRunResult> {
		return await this.run(`/webhook/${webhookPath}`, {
			site: site.key,
			siteId: site.id,
			destination: webhookPath,
			deliveryId: uuidv7(),
			sentAt: new Date().toISOString(),
			events: entries.events ?? [],
			leads: entries.leads ?? [],
			emailEvents: [],
		} as unknown as Delivery);
	}

	private async run(url: string, body: Delivery): Promise<WorkflowRunResult> {
		const workflow = this.workflows.get(url);
		if (!workflow) throw new Error(`no bundled workflow listens on ${url}`);
		// The items the workflow's trigger emits, in the mode it is configured with.
		const emit = workflow.nodes.find((node) => node.name === 'CRM Tracker Trigger')?.parameters.emit as Emit;
		const input = deliveryItems({ ...body, events: body.events ?? [], leads: body.leads ?? [] }, emit) as IDataObject[];
		const run = await runWorkflow(workflow, { input, startNode: 'CRM Tracker Trigger', mode: 'webhook', credentials: this.credentials() });
		this.runs.push({ webhookPath: url.replace(/^\/webhook\//, ''), run });
		return run;
	}
}
