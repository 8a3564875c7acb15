#!/usr/bin/env node
/** One look at the whole system: the CRM database, the receiver, n8n and the six workflows' webhooks. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { describePostgresUrl, openDatabase } from '../lib/db';
import { bundledWorkflows, causeOf, option, ROOT, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/health-check [options]

Checks, and prints one line each:
  database   DATABASE_URL answers and every migration in prisma/migrations is applied
  receiver   GET <receiver>/health answers 200 (ok, not degraded); with an admin key, also the
             site's database, outbox and n8n details the receiver gives that key
  n8n        GET <n8n>/healthz/readiness answers 200 (its database connected and migrated)
  01 … 06    each bundled workflow's webhook is registered in n8n (it is imported and published)
A check that does not apply prints "skipped" and fails nothing: the database one without
DATABASE_URL, and n8n's when the receiver's /health says it runs the workflows in its embedded
engine and forwards to no n8n (the default setup of npm start).
Exit code 0 when none fails, 1 when any fails, 2 on bad usage.

Options:
  --receiver <url>   the receiver (env RECEIVER_URL, default http://127.0.0.1:3000)
  --api-key <key>    an admin key of a site (env CRM_API_KEY; made with scripts/api-key), so
                     the receiver's answer includes that site's details; without one, only
                     ok or degraded is printed
  --expect-version <version>
                     the receiver check fails unless its /health reports this version
                     (scripts/deploy-production passes the version it deploys)
  --n8n <url>        n8n's base URL (env N8N_URL, default http://127.0.0.1:5678)
  --database <url>   the CRM database (env DATABASE_URL); without one, the database check is
                     skipped (the receiver then runs on its embedded database, which its
                     /health reports)
  --skip <names>     comma-separated checks to leave out, e.g. --skip receiver,workflows
  --json             print the results as JSON
  -h, --help         this text`;

interface Check {
	name: string;
	status: 'ok' | 'failed' | 'skipped';
	detail: string;
}

const passed = (ok: boolean): Check['status'] => (ok ? 'ok' : 'failed');

/** A URL the checks can fetch, or the option's mistake in words, before anything is asked. */
function httpUrl(value: string, source: string): string {
	let url: URL | undefined;
	try {
		url = new URL(value);
	} catch {
		// Not a URL at all: said below.
	}
	if (url?.protocol !== 'http:' && url?.protocol !== 'https:') throw new UsageError(`${source} "${value}" is not a valid URL; expected e.g. http://127.0.0.1:3000`);
	return value.replace(/\/+$/, '');
}

async function fetchWithin(url: string, init: RequestInit = {}): Promise<Response> {
	return await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
}

async function checkDatabase(url: string): Promise<Check> {
	const where = describePostgresUrl(url);
	const expected = readdirSync(path.join(ROOT, 'prisma', 'migrations'), { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => entry.name);
	try {
		const db = await openDatabase({ url, migrate: false });
		try {
			const applied = await db.prisma.$queryRawUnsafe<Array<{ migration_name: string }>>('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL');
			const names = new Set(applied.map((row) => row.migration_name));
			const pending = expected.filter((name) => !names.has(name));
			return pending.length
				? { name: 'database', status: 'failed', detail: `${where}: ${pending.length} migration(s) not applied (${pending.join(', ')}); run npm run db:migrate` }
				: { name: 'database', status: 'ok', detail: `${where}: reachable, ${expected.length} migrations applied` };
		} finally {
			await db.close();
		}
	} catch (error) {
		const message = (error as Error).message;
		// Prisma wraps the driver's words in a multi-line report; the line that says why is enough.
		const why = /Can't reach database server[^`\n]*|password authentication failed[^`\n]*|database "[^"]+" does not exist/.exec(message)?.[0] ?? causeOf(error);
		const detail = /_prisma_migrations/.test(message) ? 'reachable but never migrated; run npm run db:migrate' : `not reachable (${why}); is Postgres up and DATABASE_URL right?`;
		return { name: 'database', status: 'failed', detail: `${where}: ${detail}` };
	}
}

interface HealthDetails {
	status?: string;
	version?: string;
	/** What runs the workflows: "n8n", "embedded n8n engine", both joined by " + ", or "none". */
	engine?: string;
	error?: string;
	message?: string;
	database?: { ok?: boolean; kind?: string };
	outbox?: { pending?: number; dead?: number; oldestPendingAgeSeconds?: number | null; lastError?: string | null } | null;
	n8n?: Array<{ url: string; ok: boolean; error?: string }>;
}

/** The receiver's own words, shortened to one line: its status and, given a key, the site's details. */
function describeHealth(body: HealthDetails): string {
	if (body.error) return `${body.error}: ${body.message ?? ''}`;
	const parts = [body.status ?? ''];
	if (body.database) parts.push(`database ${body.database.ok ? 'ok' : 'unreachable'} (${body.database.kind})`);
	if (body.outbox) {
		const { pending, dead, oldestPendingAgeSeconds, lastError } = body.outbox;
		parts.push(`outbox ${pending} pending, ${dead} dead${oldestPendingAgeSeconds ? `, oldest ${oldestPendingAgeSeconds} s` : ''}${lastError ? `, last error: ${lastError}` : ''}`);
	}
	for (const target of body.n8n ?? []) parts.push(`n8n ${target.url} ${target.ok ? 'reachable' : `not reachable (${target.error})`}`);
	return parts.join('; ');
}

/** The receiver's check, and what its /health says runs the workflows (unknown when it did not answer). */
async function checkReceiver(url: string, apiKey: string | undefined, expectedVersion: string | undefined): Promise<{ check: Check; engine?: string }> {
	let response: Response;
	try {
		response = await fetchWithin(`${url}/health`, apiKey ? { headers: { authorization: `Bearer ${apiKey}` } } : {});
	} catch (error) {
		return { check: { name: 'receiver', status: 'failed', detail: `${url} not reachable (${causeOf(error)}); start it with npm start` } };
	}
	const body = (await response.json().catch(() => ({}))) as HealthDetails;
	const answer = `${url}/health → ${response.status} ${describeHealth(body)}`.slice(0, 600);
	if (expectedVersion !== undefined && body.version !== expectedVersion) {
		return { check: { name: 'receiver', status: 'failed', detail: `${answer}; it runs version ${body.version ?? '(none given)'}, not ${expectedVersion} (--expect-version)` }, engine: body.engine };
	}
	const hint = apiKey ? '' : ' (give --api-key for the site details)';
	return { check: { name: 'receiver', status: passed(response.ok), detail: answer + hint }, engine: body.engine };
}

/** Whether a receiver's engine, as its /health names it, forwards to an n8n ("n8n" alone or beside the embedded engine). */
const forwardsToN8n = (engine: string): boolean => engine.split(' + ').includes('n8n');

async function checkN8n(url: string): Promise<Check> {
	try {
		// /healthz answers while n8n still migrates its database and every other route answers "starting up".
		const response = await fetchWithin(`${url}/healthz/readiness`);
		return { name: 'n8n', status: passed(response.ok), detail: `${url}/healthz/readiness → ${response.status}` };
	} catch (error) {
		return { name: 'n8n', status: 'failed', detail: `${url} not reachable (${causeOf(error)}); start n8n or set N8N_URL` };
	}
}

/** A CORS preflight lists the methods registered on a webhook path and runs no workflow. */
async function checkWebhook(n8nUrl: string, workflow: ReturnType<typeof bundledWorkflows>[number]): Promise<Check> {
	const url = `${n8nUrl}/webhook/${workflow.webhookPath}`;
	const name = `${workflow.number} ${workflow.name}`;
	try {
		const response = await fetchWithin(url, { method: 'OPTIONS', headers: { origin: n8nUrl } });
		const methods = (response.headers.get('access-control-allow-methods') ?? '').split(',').map((method) => method.trim());
		const registered = response.status !== 404 && methods.includes('POST');
		return { name, status: passed(registered), detail: registered ? `POST /webhook/${workflow.webhookPath} registered` : `/webhook/${workflow.webhookPath} not registered: import and publish it (scripts/import-workflows), then restart n8n` };
	} catch (error) {
		return { name, status: 'failed', detail: `n8n not reachable (${causeOf(error)})` };
	}
}

const LABELS: Record<Check['status'], string> = { ok: 'ok     ', failed: 'FAIL   ', skipped: 'skipped' };

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			receiver: { type: 'string' },
			'api-key': { type: 'string' },
			'expect-version': { type: 'string' },
			n8n: { type: 'string' },
			database: { type: 'string' },
			skip: { type: 'string' },
			json: { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const known = ['database', 'receiver', 'n8n', 'workflows'];
	const skip = new Set((values.skip ?? '').split(',').map((name) => name.trim()).filter(Boolean));
	const unknown = [...skip].filter((name) => !known.includes(name));
	if (unknown.length) throw new UsageError(`--skip: unknown check ${unknown.join(', ')}; known: ${known.join(', ')}`);
	const receiverUrl = httpUrl(option(values, 'receiver', 'RECEIVER_URL', 'http://127.0.0.1:3000')!, '--receiver (RECEIVER_URL)');
	const n8nUrl = httpUrl(option(values, 'n8n', 'N8N_URL', 'http://127.0.0.1:5678')!, '--n8n (N8N_URL)');
	const databaseUrl = option(values, 'database', 'DATABASE_URL');
	const apiKey = option(values, 'api-key', 'CRM_API_KEY');

	const checks: Check[] = [];
	if (!skip.has('database')) checks.push(databaseUrl ? await checkDatabase(databaseUrl) : { name: 'database', status: 'skipped', detail: 'no DATABASE_URL (the receiver’s /health reports its embedded database)' });
	let engine: string | undefined;
	if (!skip.has('receiver')) {
		const receiver = await checkReceiver(receiverUrl, apiKey, values['expect-version']);
		checks.push(receiver.check);
		engine = receiver.engine;
	}
	const withoutN8n = engine !== undefined && !forwardsToN8n(engine);
	const noN8n = (name: string): Check => ({ name, status: 'skipped', detail: `the receiver forwards to no n8n (its /health: engine "${engine}")` });
	if (!skip.has('n8n')) checks.push(withoutN8n ? noN8n('n8n') : await checkN8n(n8nUrl));
	if (!skip.has('workflows')) for (const workflow of bundledWorkflows()) checks.push(withoutN8n ? noN8n(`${workflow.number} ${workflow.name}`) : await checkWebhook(n8nUrl, workflow));

	if (values.json) console.log(JSON.stringify(checks, null, 2));
	else for (const check of checks) console.log(`${LABELS[check.status]}  ${check.name.padEnd(22)} ${check.detail}`);
	return checks.some((check) => check.status === 'failed') ? 1 : 0;
}

runScript(main, USAGE);
