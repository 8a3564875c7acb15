/**
 * At-least-once delivery, exactly-once effect: the six bundled workflows run in n8n's own engine
 * behind a local webhook server (each hand-off of the chain reaches the next workflow through
 * it), the real receiver delivers a visit, a lead and email opens to them from its outbox, and
 * then the same deliveries arrive again — re-posted under their ids, and re-sent by the receiver
 * after a crash and a timeout. Every CRM table stays exactly as the first delivery left it, and
 * no email goes out twice.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import type { IDataObject } from 'n8n-workflow';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { DELIVERY_HEADER } from '../../lib/signing';
import { deliveryItems, type Delivery, type Emit } from '../../nodes/CrmTrackerTrigger/delivery';
import { disconnectAll } from '../../nodes/shared/database';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { bundledWorkflows } from '../../scripts/workflowTools';
import { getNodeTypes, runWorkflow, type TestCredentials, type WorkflowJson } from '../harness/n8n';
import { batch, pageview, post } from '../helpers/events';
import { TEST_SECRET } from '../helpers/receiver';
import { SmtpSink } from '../helpers/smtpSink';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const ROOT = path.resolve(__dirname, '../..');
const SITE_KEY = 'redelivery-shop';
const EMAIL_TOKEN_SECRET = randomBytes(24).toString('hex');
const DISPATCH_TIMEOUT_MS = 8_000;

interface Arrival {
	path: string;
	deliveryId: string;
	body: Delivery;
	status?: number;
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/**
 * n8n's webhook routing for the bundled workflows, in-process: a POST to /webhook/<path> runs
 * the workflow whose CRM Tracker Trigger has that path, on the items the trigger makes of the
 * delivery, and answers when the last node finishes (the trigger's "lastNode" mode): 200, or 500
 * when the run failed, so the sender retries.
 */
class InProcessN8n {
	readonly arrivals: Arrival[] = [];
	/** Receiver deliveries whose answer is held past the receiver's timeout the first time they arrive. */
	holdFirstAnswer = false;
	private held = new Set<string>();
	private running = 0;
	private server: Server | undefined;
	private workflows = new Map<string, WorkflowJson>();

	constructor(private readonly credentials: () => TestCredentials) {}

	get url(): string {
		return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
	}

	get idle(): boolean {
		return this.running === 0;
	}

	async start(): Promise<void> {
		this.server = createServer((req, res) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.on('end', () => {
				void this.handle(req.url ?? '', String(req.headers[DELIVERY_HEADER]), Buffer.concat(chunks).toString('utf8')).then(({ status, body }) => {
					if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(body);
				});
			});
		});
		await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
		// Each hand-off posts to this server, as it would to n8n's own webhook base.
		for (const workflow of bundledWorkflows()) {
			const json = JSON.parse(readFileSync(path.join(ROOT, 'workflows', workflow.file), 'utf8')) as WorkflowJson;
			for (const node of json.nodes) if (node.type.endsWith('.crmHandOff')) node.parameters = { ...node.parameters, webhookBaseUrl: `${this.url}/webhook` };
			this.workflows.set(`/webhook/${workflow.webhookPath}`, json);
		}
	}

	async stop(): Promise<void> {
		this.server?.closeAllConnections();
		await new Promise((resolve) => this.server?.close(resolve));
	}

	/** Receiver deliveries (not hand-offs), first arrival of each id. */
	receiverDeliveries(): Arrival[] {
		const seen = new Set<string>();
		return this.arrivals.filter((arrival) => !arrival.body.items && !seen.has(arrival.deliveryId) && Boolean(seen.add(arrival.deliveryId)));
	}

	private async handle(url: string, deliveryId: string, raw: string): Promise<{ status: number; body: string }> {
		const workflow = this.workflows.get(url);
		if (!workflow) return { status: 404, body: JSON.stringify({ message: `no workflow listens on ${url}` }) };
		const body = JSON.parse(raw) as Delivery;
		const arrival: Arrival = { path: url, deliveryId, body };
		this.arrivals.push(arrival);
		this.running += 1;
		try {
			const emit = workflow.nodes.find((node) => node.name === 'CRM Tracker Trigger')?.parameters.emit as Emit;
			const input = deliveryItems({ ...body, events: body.events ?? [], leads: body.leads ?? [] }, emit) as IDataObject[];
			const run = input.length ? await runWorkflow(workflow, { input, startNode: 'CRM Tracker Trigger', mode: 'webhook', credentials: this.credentials() }) : undefined;
			arrival.status = run?.error ? 500 : 200;
			if (this.holdFirstAnswer && !body.items && !this.held.has(deliveryId)) {
				this.held.add(deliveryId);
				await new Promise((resolve) => setTimeout(resolve, DISPATCH_TIMEOUT_MS + 1_000));
			}
			return { status: arrival.status, body: JSON.stringify(run?.error ? { message: run.error.message } : { ok: true }) };
		} finally {
			this.running -= 1;
		}
	}
}

/**
 * Columns that record when something was last looked at, not what it is: a replay may move them.
 * `leads.scored_at` is when the lead was last scored, the cursor by which the Lead Scorer rescores
 * the stalest leads first.
 */
const LAST_SEEN: Record<string, string[]> = { leads: ['scored_at'] };

/** Every table but the outbox (the delivery's own bookkeeping) and the migrations' record, row by row. */
/**
 * Every table but the outbox (a work queue that grows with any delivery) and the analytics
 * rollups (analytics_*: derived from the tables compared here by the receiver's rollup job, which
 * folds whenever it likes; test/analytics/rollups.test.ts checks they equal the raw tables).
 */
async function snapshot(prisma: PrismaClient): Promise<Record<string, string[]>> {
	const tables = await prisma.$queryRawUnsafe<Array<{ name: string }>>(
		`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name NOT IN ('outbox', '_prisma_migrations') AND table_name NOT LIKE 'analytics\\_%' ORDER BY 1`,
	);
	const result: Record<string, string[]> = {};
	for (const { name } of tables) {
		const rows = await prisma.$queryRawUnsafe<Array<{ row: string }>>(`SELECT (to_jsonb(t) - $1::text[])::text AS row FROM "${name}" t`, LAST_SEEN[name] ?? []);
		result[name] = rows.map((entry) => entry.row).sort();
	}
	return result;
}

type Row = Record<string, unknown>;

/**
 * Per table, what differs between two snapshots: rows only before, rows only after, and for rows
 * of the same id the columns that changed. Empty when nothing changed.
 */
function changes(before: Record<string, string[]>, after: Record<string, string[]>): Record<string, { gone: Row[]; added: Row[]; changed: Row[] }> {
	const result: Record<string, { gone: Row[]; added: Row[]; changed: Row[] }> = {};
	for (const table of new Set([...Object.keys(before), ...Object.keys(after)])) {
		const was = (before[table] ?? []).filter((row) => !(after[table] ?? []).includes(row)).map((row) => JSON.parse(row) as Row);
		const is = (after[table] ?? []).filter((row) => !(before[table] ?? []).includes(row)).map((row) => JSON.parse(row) as Row);
		if (was.length === 0 && is.length === 0 && (before[table] ?? []).length === (after[table] ?? []).length) continue;
		const ids = (rows: Row[]) => new Set(rows.map((row) => row.id));
		const changed = is
			.filter((row) => row.id !== undefined && ids(was).has(row.id))
			.map((row) => {
				const old = was.find((candidate) => candidate.id === row.id)!;
				const columns = Object.keys(row).filter((column) => JSON.stringify(row[column]) !== JSON.stringify(old[column]));
				return { id: row.id, ...Object.fromEntries(columns.map((column) => [column, [old[column], row[column]]])) };
			});
		result[table] = { gone: was.filter((row) => row.id === undefined || !ids(is).has(row.id)), added: is.filter((row) => row.id === undefined || !ids(was).has(row.id)), changed };
	}
	return result;
}

describe('a re-delivered delivery changes nothing: the bundled workflows in n8n’s engine, fed by the real receiver', () => {
	let database = { name: '', url: '' };
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	let n8n: InProcessN8n;
	let receiver: Receiver;

	const credentials = (): TestCredentials => {
		const url = new URL(database.url);
		return {
			postgres: { host: url.hostname, port: Number(url.port || 5432), database: url.pathname.slice(1), user: decodeURIComponent(url.username || 'postgres'), password: decodeURIComponent(url.password), ssl: 'disable' },
			trackingCrmApi: { receiverUrl: receiver.url, webhookSecret: TEST_SECRET, emailTokenSecret: EMAIL_TOKEN_SECRET },
			smtp: { host: '127.0.0.1', port: smtp.port, secure: false, disableStartTls: true, user: '', password: '' },
		};
	};

	const settled = async () => {
		await waitFor(async () => n8n.idle && (await prisma.outboxMessage.count({ where: { status: 'pending' } })) === 0, 90_000, 'the outbox delivered and the chain idle');
		// A hand-off answered last may still have its own run to finish.
		await new Promise((resolve) => setTimeout(resolve, 300));
		await waitFor(() => n8n.idle, 30_000, 'the chain idle');
	};

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_redelivery');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		smtp = await SmtpSink.start();
		await getNodeTypes();
		n8n = new InProcessN8n(credentials);
		await n8n.start();
		const site = parseSiteConfig({
			site: { key: SITE_KEY, name: 'Redelivery Shop', domain: 'redelivery-shop.example' },
			tracking: { allowedOrigins: ['https://redelivery-shop.example'], relevanceThreshold: 1 },
			privacy: { cookieConsent: false },
			crm: {
				leadScoringRules: [
					{ event: 'pageview', score: 1, cap: 20, group: 'browsing' },
					{ event: 'pageview', urlPattern: '/pricing', score: 5, group: 'intent' },
					{ event: 'form_submit', score: 10 },
				],
				lifecycleStages: [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore: 60 }, { name: 'customer' }],
				conversionRules: [{ name: 'contact-request', event: 'form_submit', value: 50, currency: 'EUR' }],
				emailSequences: [
					{
						name: 'welcome',
						trigger: { stage: 'lead' },
						steps: [
							{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}, read <a href="https://redelivery-shop.example/guide">the guide</a>.</p><p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p>' },
							{ delayMinutes: 4320, subject: 'Day three', html: '<p>Hi {{firstName}}</p>' },
						],
					},
				],
			},
			integrations: {
				n8nUrl: n8n.url,
				webhookSecretEnv: 'TEST_WEBHOOK_SECRET',
				webhookEndpoints: [
					{ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor' },
					{ workflow: 'lead-processor', url: '/webhook/crm-lead-processor' },
					{ workflow: 'email-orchestrator', url: '/webhook/crm-email-orchestrator' },
				],
				emailProvider: { type: 'smtp', fromEmail: 'hello@redelivery-shop.example', fromName: 'Redelivery Shop' },
			},
		});
		receiver = await startReceiver({
			sites: [site],
			database: { url: database.url, migrate: false },
			settings: { PORT: 0, EMAIL_TOKEN_SECRET, DISPATCH_INTERVAL_MS: 50, DISPATCH_BACKOFF_BASE_MS: 50, DISPATCH_BACKOFF_MAX_MS: 400, DISPATCH_TIMEOUT_MS },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
	}, 120_000);

	afterAll(async () => {
		await receiver?.close();
		await n8n?.stop();
		await smtp?.stop();
		await prisma?.$disconnect();
		await disconnectAll();
		if (database.name) await dropTestDatabase(database.name);
	});

	it('leaves every CRM table unchanged when the same deliveries arrive again, re-posted or re-sent after a crash and a timeout', async () => {
		const visitor = 'anon-redelivered';
		const email = `lena+${randomBytes(3).toString('hex')}@redelivery-clinic.example`;
		const landing = pageview(SITE_KEY, visitor, '/?utm_source=newsletter&utm_medium=email&utm_campaign=spring', { referrer: 'https://mail.example.org/' });
		const visit = [landing, pageview(SITE_KEY, visitor, '/pricing'), pageview(SITE_KEY, visitor, '/contact')];
		const submit = pageview(SITE_KEY, visitor, '/contact', { type: 'form_submit', name: 'contact' });
		for (const events of [visit, [submit]]) expect((await post(`${receiver.url}/api/track`, batch(SITE_KEY, events))).status).toBe(202);
		const lead = { site: SITE_KEY, email, anonymousId: visitor, firstName: 'Lena', company: 'Redelivery Clinic', formId: 'contact', consent: true };
		expect((await post(`${receiver.url}/api/lead`, lead)).status).toBe(202);
		await settled();

		// The welcome email went out; its open pixel is loaded twice (a first open and a repeat).
		const [welcome] = await smtp.messages(email);
		expect(welcome).toBeDefined();
		const pixel = /\/e\/o\/[A-Za-z0-9._-]+/.exec(String(welcome.parsed.html))?.[0];
		expect(pixel).toBeDefined();
		for (let load = 0; load < 2; load++) expect((await fetch(`${receiver.url}${pixel}`)).status).toBe(200);
		await settled();

		const first = await snapshot(prisma);
		const delivered = n8n.receiverDeliveries();
		expect(delivered.every((arrival) => arrival.status === 200 && arrival.body.deliveryId === arrival.deliveryId)).toBe(true);
		expect(new Set(delivered.map((arrival) => arrival.path))).toEqual(new Set(['/webhook/crm-visitor-processor', '/webhook/crm-lead-processor', '/webhook/crm-email-orchestrator']));
		// What the first delivery made: the chain ran end to end.
		for (const table of ['visitors', 'visitor_sessions', 'leads', 'businesses', 'activities', 'conversions', 'attribution_data', 'lead_scores', 'sequence_enrollments', 'email_messages', 'email_events']) {
			expect([table, first[table].length > 0]).toEqual([table, true]);
		}
		const mails = (await smtp.messages()).length;

		// The same deliveries again, under the same ids, as n8n sees a sender's retry.
		for (const arrival of delivered) {
			const response = await fetch(`${n8n.url}${arrival.path}`, { method: 'POST', headers: { 'content-type': 'application/json', [DELIVERY_HEADER]: arrival.deliveryId }, body: JSON.stringify(arrival.body) });
			expect([arrival.path, response.status]).toEqual([arrival.path, 200]);
		}
		await settled();
		expect(changes(first, await snapshot(prisma))).toEqual({});

		// The receiver crashed after n8n ran the deliveries and before it recorded them: their rows
		// are due again. n8n now answers each first attempt only after the receiver gave up.
		const resent = n8n.arrivals.length;
		n8n.holdFirstAnswer = true;
		expect(await prisma.outboxMessage.updateMany({ where: { status: 'delivered' }, data: { status: 'pending', nextAttemptAt: new Date(), deliveredAt: null } })).toMatchObject({ count: expect.any(Number) });
		await settled();
		const again = n8n.arrivals.slice(resent).filter((arrival) => !arrival.body.items);
		const ids = new Set(delivered.map((arrival) => arrival.deliveryId));
		expect(again.length).toBeGreaterThanOrEqual(2 * delivered.length);
		expect(again.every((arrival) => ids.has(arrival.deliveryId))).toBe(true);
		for (const arrival of delivered) expect([arrival.deliveryId, again.filter((repeat) => repeat.deliveryId === arrival.deliveryId).length >= 2]).toEqual([arrival.deliveryId, true]);
		expect(changes(first, await snapshot(prisma))).toEqual({});
		expect((await smtp.messages()).length).toBe(mails);
		expect(await prisma.outboxMessage.count({ where: { status: 'dead' } })).toBe(0);
	}, 300_000);
});
