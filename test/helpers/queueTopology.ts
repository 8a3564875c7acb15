/**
 * The production topology of docker-compose.yml, started from plain processes on this machine
 * (no Docker engine runs here): n8n in queue mode from the test cache of scripts/real-n8n.sh —
 * a main process, the compose file's workers (`n8n worker`, two) and its webhook processor
 * (`n8n webhook`) on Redis — and the compose file's two receivers, all on Postgres.
 *
 * Each process gets the environment its compose service gives it (`environment:`, with
 * ${VARIABLES} from .env.example and a value of its own for every secret .env.example leaves
 * empty), changed only where a plain process must differ from a container; each change is in
 * the process's `overrides` and at the top of its log:
 * - service host names → this machine, container ports → free ports (each process its own);
 * - the n8n host name (where the Hand Offs post) → a stand-in of the proxy service with the
 *   Caddyfile's routes for it (/webhook/* to the webhook processor, the rest to main), without TLS;
 * - the databases → one n8n and one CRM database per run, on the test Postgres with its login;
 * - the queue → the local Redis (no password), under a key prefix of its own per run;
 * - the receivers' SITE_CONFIG → the test's site configs.
 * Each n8n process has a host name of its own, as a container has (`unshare --uts`, where the
 * machine allows it): n8n names an instance by it. Every n8n process has this build's package in its user folder, installed the way the compose
 * file's n8n image installs it (scripts/real-n8n.sh load-package); the bundled credentials and
 * workflows are imported and published with n8n's own CLI.
 *
 *   const topology = await startQueueTopology({ sites: ({ webhookProcessorUrl }) => [siteConfig(webhookProcessorUrl)], smtpUrl });
 *   await topology.killWorker(0); // SIGKILL, as a container dying
 *   await topology.stop();
 *
 * Needs `npm run build`, Postgres and Redis. KEEP_REAL_N8N=1 keeps the folders, logs and databases.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import { Client } from 'pg';

import { deployMigrations } from '../../lib/db/migrator';
import { bundleCredentials } from '../../scripts/bundleCredentials';
import { bundledWorkflows, WORKFLOWS_DIR } from '../../scripts/workflowTools';
import { adminUrl, createTestDatabase, dropTestDatabase } from '../setup/testDatabase';
import { ComposeError, operatorVariables, parseEnvFile, readCompose, type ComposeModel, type ComposeService } from './compose';
import { assertBuilt, childEnv, freePort, killGroup, loadThisPackage, RealN8nError, ROOT, run, SCRIPT, sleep, tailOf, track, within } from './realN8n';

// ---------------------------------------------------------------------------------------------
// The topology
// ---------------------------------------------------------------------------------------------

/** The compose services this topology starts, by the names the compose file gives them. */
export const SERVICES = { postgres: 'postgres', redis: 'redis', main: 'n8n-main', worker: 'n8n-worker', webhook: 'n8n-webhook', receivers: ['receiver-1', 'receiver-2'], proxy: 'proxy' } as const;

export interface StartQueueTopologyOptions {
	/** Default: docker-compose.yml and .env.example of the repository. */
	composeFile?: string;
	envFile?: string;
	/**
	 * The site configs the receivers load (their SITE_CONFIG), given the URL of the webhook
	 * processor here (what a site config's integrations.n8nUrl names in the stack).
	 */
	sites: (n8n: { webhookProcessorUrl: string }) => Promise<unknown[]> | unknown[];
	/** The SMTP server of the bundled "CRM SMTP" credential (smtp://host:port?starttls=off). */
	smtpUrl: string;
	/**
	 * How many n8n-worker processes to start; default: the compose file's deploy.replicas. A
	 * benchmark compares one worker with two (`docker compose up --scale n8n-worker=N`).
	 */
	workers?: number;
}

export interface TopologyProcess {
	/** n8n-main, n8n-worker-1, n8n-webhook, receiver-1 … */
	name: string;
	service: string;
	/** Where it answers: its HTTP server (n8n main, webhook processor, receivers) or its health server (workers). */
	url: string;
	logFile: string;
	/** The environment it runs with. */
	env: Record<string, string>;
	/** Its variables that differ from what the compose file gives the service, each with the reason. */
	overrides: string[];
	/** Whether it is still running. */
	alive(): boolean;
}

/** What n8n's own logs say about the queue: each line names an execution id. */
export interface QueueLog {
	/** Executions the webhook processor and main put on the queue ("Enqueued execution <id>"). */
	enqueued: string[];
	/** Per worker, the executions it started and finished ("Worker started/finished execution <id>"). */
	workers: Array<{ worker: string; started: string[]; finished: string[] }>;
}

export interface N8nExecution {
	id: string;
	workflowId: string;
	mode: string;
	status: string;
	startedAt: Date | null;
	stoppedAt: Date | null;
	/** Set when n8n let the execution go (a run its workflow's settings do not keep); its pruner then removes the row and its data. */
	deletedAt: Date | null;
}

export interface QueueTopology {
	compose: ComposeModel;
	/** Variables .env.example leaves empty (the secrets), given a value of their own for this run. */
	generatedSecrets: string[];
	/** The CRM database (the receivers' and the nodes'), dropped by stop(). */
	crmDatabaseUrl: string;
	main: TopologyProcess;
	webhook: TopologyProcess;
	workers: TopologyProcess[];
	receivers: TopologyProcess[];
	/** SIGKILLs a worker's whole process group, as the engine or the kernel kills a container. */
	killWorker(index: number): Promise<void>;
	queueLog(): QueueLog;
	/**
	 * n8n's execution records (execution_entity): those queued or running, the failed, and the
	 * successful where a workflow's settings keep them. Which worker ran one is only in the logs.
	 */
	executions(): Promise<N8nExecution[]>;
	/** The last lines of every process's log, for failure messages. */
	logTails(lines?: number): string;
	/** The folder of every process's log. */
	logFolder: string;
	/**
	 * Stops every process, drops both databases, deletes the queue's Redis keys and the temp
	 * folder; the logs too unless `keepLogs` (a failed test keeps them to read).
	 */
	stop(options?: { keepLogs?: boolean }): Promise<void>;
}

interface Endpoint {
	protocol: 'http:' | 'https:' | null;
	host: string;
	port: number;
}

/** One RESP command to Redis; returns the first line of the reply. */
function redisCommand(url: URL, args: string[]): Promise<string> {
	return new Promise((resolve, reject) => {
		const socket = connect(Number(url.port || 6379), url.hostname);
		let reply = '';
		socket.setTimeout(10_000, () => socket.destroy(new Error(`Redis at ${url.host} did not answer within 10 s`)));
		socket.on('data', (chunk) => {
			reply += chunk.toString('utf8');
			const end = reply.indexOf('\r\n');
			if (end < 0) return;
			socket.end();
			if (reply.startsWith('-')) reject(new Error(`Redis: ${reply.slice(1, end)}`));
			else resolve(reply.slice(0, end));
		});
		socket.once('error', reject);
		socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
	});
}

const DELETE_PREFIX = "local keys = redis.call('KEYS', ARGV[1]) for i = 1, #keys, 1000 do redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys))) end return #keys";

/** URLs (http, postgres, redis …) inside `value` whose host has an endpoint here, pointed at it. */
function pointUrlsAtProcesses(value: string, endpoints: Map<string, Endpoint>): string {
	return value.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"',]+/gi, (whole) => {
		let url: URL;
		try {
			url = new URL(whole);
		} catch {
			return whole;
		}
		const endpoint = endpoints.get(url.hostname);
		if (!endpoint) return whole;
		const local = new URL(`${endpoint.protocol ?? url.protocol}//${endpoint.host}:${endpoint.port}`);
		local.pathname = url.pathname;
		local.search = url.search;
		local.username = url.username;
		local.password = url.password;
		const text = local.toString();
		// URL writes a bare origin with a trailing "/" the original may not have had.
		return whole.endsWith('/') || url.pathname !== '/' || url.search ? text : text.replace(/\/$/, '');
	});
}

/**
 * The compose environment of one process with a plain-process run's changes: `own` replaces or
 * adds variables (ports, databases, the queue prefix …), `drop` removes some, and any other
 * value holding a URL whose host has an endpoint here is pointed at it.
 */
function localEnvironment(service: ComposeService, own: Record<string, { value: string; why: string }>, drop: Record<string, string>, endpoints: Map<string, Endpoint>): { env: Record<string, string>; overrides: string[] } {
	const env: Record<string, string> = {};
	const overrides: string[] = [];
	for (const [key, value] of Object.entries(service.environment)) {
		if (drop[key]) {
			overrides.push(`${key}: unset (${drop[key]})`);
		} else if (!own[key]) {
			env[key] = pointUrlsAtProcesses(value, endpoints);
			if (env[key] !== value) overrides.push(`${key}: ${shown(key, value)} → ${shown(key, env[key])} (its host is a process here)`);
		}
	}
	for (const [key, { value, why }] of Object.entries(own)) {
		env[key] = value;
		if (service.environment[key] !== value) overrides.push(`${key}: ${key in service.environment ? shown(key, service.environment[key]) : '(not set)'} → ${shown(key, value)} (${why})`);
	}
	return { env, overrides };
}

/** A value as the logs show it: secrets, and the passwords in URLs, masked. */
function shown(key: string, value: string): string {
	if (/PASSWORD|SECRET|_KEY$/.test(key)) return value ? '***' : '""';
	return value.replace(/(\/\/[^:/@\s]*:)[^@\s]+@/g, '$1***@');
}

/** The n8n CLI arguments of a compose n8n service (its image runs `n8n <command>`). */
function n8nArgs(service: ComposeService): string[] {
	const args = service.command[0] === 'n8n' ? service.command.slice(1) : service.command;
	if (args.length === 0) throw new ComposeError(`services.${service.name} has no command; the n8n services say which n8n process they are (start, worker, webhook)`);
	return args;
}

/**
 * The proxy service's routes for the n8n host (deploy/Caddyfile): /webhook/* to the webhook
 * processor, everything else to main. Plain HTTP: TLS is Caddy's, and not what is tested here.
 */
async function startN8nProxy(webhook: string, main: string): Promise<{ url: string; close(): Promise<void> }> {
	const server = createServer((req, res) => {
		const target = new URL(req.url ?? '/', /^\/webhook\//.test(req.url ?? '') ? webhook : main);
		const upstream = request(target, { method: req.method, headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-forwarded-proto': 'https', 'x-forwarded-host': req.headers.host ?? '' } }, (answer) => {
			res.writeHead(answer.statusCode ?? 502, answer.headers);
			answer.pipe(res);
		});
		upstream.once('error', () => {
			if (!res.headersSent) res.writeHead(502);
			res.end();
		});
		res.once('close', () => upstream.destroy());
		req.pipe(upstream);
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

export async function startQueueTopology(options: StartQueueTopologyOptions): Promise<QueueTopology> {
	assertBuilt();
	const composeFile = options.composeFile ?? path.join(ROOT, 'docker-compose.yml');
	const envFile = options.envFile ?? path.join(ROOT, '.env.example');
	for (const file of [composeFile, envFile]) if (!existsSync(file)) throw new ComposeError(`${file} is missing: the topology is started from it`);
	const { variables, generated } = operatorVariables(parseEnvFile(readFileSync(envFile, 'utf8'), envFile).variables);
	// Compose would warn and use "": the run would then silently differ from what the file means.
	const compose = readCompose(composeFile, variables, ({ name, operator, where }) => {
		if (operator === undefined && !Object.hasOwn(variables, name)) throw new ComposeError(`${where}: \${${name}} is used, ${envFile} does not set it and no default is given`);
	});
	const missing = [SERVICES.postgres, SERVICES.redis, SERVICES.main, SERVICES.worker, SERVICES.webhook, ...SERVICES.receivers, SERVICES.proxy].filter((name) => !compose.services[name]);
	if (missing.length) throw new ComposeError(`${composeFile} has no service ${missing.join(', ')}; the topology needs ${Object.values(SERVICES).flat().join(', ')}`);
	const replicas = compose.services[SERVICES.worker].replicas;
	if (!(replicas >= 2)) throw new ComposeError(`${composeFile} runs ${replicas} ${SERVICES.worker} replica(s) (deploy.replicas); queue mode is proven with two`);
	const workerCount = options.workers ?? replicas;
	if (!(Number.isInteger(workerCount) && workerCount >= 1)) throw new RangeError(`startQueueTopology: workers must be a whole number ≥ 1, got ${workerCount}`);
	const n8nHost = compose.services[SERVICES.proxy].environment.N8N_HOST;
	if (!n8nHost) throw new ComposeError(`services.${SERVICES.proxy} has no N8N_HOST: the n8n host name its Caddyfile serves`);

	const started = Date.now();
	const work = await mkdtemp(path.join(tmpdir(), 'queue-topology-'));
	// Logs live apart from the work folder: they are kept when the start or a test fails.
	const logs = `${work}-logs`;
	await mkdir(logs, { recursive: true });
	const log = path.join(logs, 'topology.log');
	const note = (message: string) => appendFileSync(log, `[topology] +${((Date.now() - started) / 1000).toFixed(1)}s ${message}\n`);
	const fail = (message: string): never => {
		throw new RealN8nError(`${message}\n--- last lines of ${log} ---\n${tailOf(log)}`);
	};
	note(`${composeFile} with the variables of ${envFile}; generated: ${generated.join(', ') || 'none'}`);
	if (workerCount !== replicas) note(`${workerCount} ${SERVICES.worker} process(es) instead of the compose file's ${replicas} (the workers option, as --scale ${SERVICES.worker}=${workerCount})`);

	const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
	const queuePrefix = `tcrm-topology-${runId}`;
	const redisUrl = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
	const pg = new URL(adminUrl());
	const pgLogin = { user: decodeURIComponent(pg.username || 'postgres'), password: decodeURIComponent(pg.password) };
	const databases: string[] = [];
	const processes: Array<{ process: TopologyProcess; child: ChildProcess }> = [];
	let proxy: { url: string; close(): Promise<void> } | undefined;
	let stopped = false;

	/** Stops everything and removes what the run made; the logs only when `keepLogs` is false. */
	const stopAll = async (keepLogs: boolean) => {
		// Receivers first, so no delivery is cut by n8n going away; then n8n.
		const stop = async ({ process: entry, child }: (typeof processes)[number]) => {
			if (child.exitCode !== null || child.signalCode !== null) return;
			const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
			killGroup(child, 'SIGTERM');
			if (!(await within(exited, 15_000))) {
				note(`${entry.name} did not stop within 15 s of SIGTERM; SIGKILL`);
				killGroup(child, 'SIGKILL');
				await within(exited, 5_000);
			}
		};
		const isReceiver = (entry: (typeof processes)[number]) => (SERVICES.receivers as readonly string[]).includes(entry.process.service);
		await Promise.all(processes.filter(isReceiver).map(stop));
		await Promise.all(processes.filter((entry) => !isReceiver(entry)).map(stop));
		for (const { child } of processes) killGroup(child, 'SIGKILL');
		await proxy?.close();
		if (process.env.KEEP_REAL_N8N) return;
		await redisCommand(redisUrl, ['EVAL', DELETE_PREFIX, '0', `${queuePrefix}:*`]).catch((error: unknown) => note(`cleaning Redis failed: ${String(error)}`));
		for (const name of databases) await dropTestDatabase(name).catch((error: unknown) => note(`dropping ${name} failed: ${String(error)}`));
		await rm(work, { recursive: true, force: true });
		if (!keepLogs) await rm(logs, { recursive: true, force: true });
	};

	try {
		const install = await run('bash', [SCRIPT, 'install'], { env: childEnv({}), log, timeoutMs: 20 * 60_000 });
		if (install.code !== 0) fail(`Cannot install n8n with scripts/real-n8n.sh install (exit ${install.code ?? install.signal}).`);

		const crm = await createTestDatabase('tcrm_topology');
		databases.push(crm.name);
		const n8nDb = await createTestDatabase('n8n_topology');
		databases.push(n8nDb.name);

		// Where each service is reached here. The n8n host name leads to the proxy, as inside the stack.
		const ports = { main: await freePort(), webhook: await freePort(), workers: [] as number[], receivers: [] as number[] };
		for (let index = 0; index < workerCount; index++) ports.workers.push(await freePort());
		for (const _ of SERVICES.receivers) ports.receivers.push(await freePort());
		const local = (port: number) => `http://127.0.0.1:${port}`;
		proxy = await startN8nProxy(local(ports.webhook), local(ports.main));
		const endpoints = new Map<string, Endpoint>([
			[SERVICES.postgres, { protocol: null, host: pg.hostname, port: Number(pg.port || 5432) }],
			[SERVICES.redis, { protocol: null, host: redisUrl.hostname, port: Number(redisUrl.port || 6379) }],
			[SERVICES.main, { protocol: null, host: '127.0.0.1', port: ports.main }],
			[SERVICES.webhook, { protocol: null, host: '127.0.0.1', port: ports.webhook }],
			...SERVICES.receivers.map((name, index): [string, Endpoint] => [name, { protocol: null, host: '127.0.0.1', port: ports.receivers[index] }]),
			[n8nHost, { protocol: 'http:', host: '127.0.0.1', port: Number(new URL(proxy.url).port) }],
		]);

		// What every n8n process shares: its database and its queue.
		const n8nOwn: Record<string, { value: string; why: string }> = {
			DB_POSTGRESDB_HOST: { value: pg.hostname, why: 'the test Postgres' },
			DB_POSTGRESDB_PORT: { value: pg.port || '5432', why: 'the test Postgres' },
			DB_POSTGRESDB_USER: { value: pgLogin.user, why: 'the test Postgres login' },
			DB_POSTGRESDB_PASSWORD: { value: pgLogin.password, why: 'the test Postgres login' },
			DB_POSTGRESDB_DATABASE: { value: n8nDb.name, why: "this run's n8n database" },
			QUEUE_BULL_REDIS_HOST: { value: redisUrl.hostname, why: 'the local Redis' },
			QUEUE_BULL_REDIS_PORT: { value: redisUrl.port || '6379', why: 'the local Redis' },
			QUEUE_BULL_PREFIX: { value: queuePrefix, why: "this run's queue, apart from every other run's" },
			N8N_LISTEN_ADDRESS: { value: '127.0.0.1', why: 'this machine only' },
		};
		const n8nDrop = (service: ComposeService): Record<string, string> => (service.environment.QUEUE_BULL_REDIS_PASSWORD ? { QUEUE_BULL_REDIS_PASSWORD: 'the local Redis has no password' } : {});
		const n8nProcess = (name: string, service: ComposeService, own: Record<string, { value: string; why: string }>, url: string) => {
			const { env, overrides } = localEnvironment(service, { ...n8nOwn, ...own }, n8nDrop(service), endpoints);
			return { name, service: service.name, url, env, overrides, logFile: path.join(logs, `${name}.log`) };
		};
		const main = n8nProcess(SERVICES.main, compose.services[SERVICES.main], { N8N_PORT: { value: String(ports.main), why: 'a free port' } }, local(ports.main));
		const webhook = n8nProcess(SERVICES.webhook, compose.services[SERVICES.webhook], { N8N_PORT: { value: String(ports.webhook), why: 'a free port' } }, local(ports.webhook));
		const workers = ports.workers.map((port, index) =>
			n8nProcess(
				`${SERVICES.worker}-${index + 1}`,
				compose.services[SERVICES.worker],
				{
					QUEUE_HEALTH_CHECK_ACTIVE: { value: 'true', why: "each worker's /healthz on a port of its own" },
					QUEUE_HEALTH_CHECK_PORT: { value: String(port), why: 'a free port per worker' },
					N8N_WORKER_SERVER_ADDRESS: { value: '127.0.0.1', why: 'this machine only' },
				},
				local(port),
			),
		);

		// The receivers' site configs, pointed at this n8n's webhook processor.
		const sitesFolder = path.join(work, 'sites');
		await mkdir(sitesFolder, { recursive: true });
		const sites = await options.sites({ webhookProcessorUrl: local(ports.webhook) });
		for (const [index, site] of sites.entries()) await writeFile(path.join(sitesFolder, `site-${index + 1}.json`), JSON.stringify(site, null, 2));
		const receivers = SERVICES.receivers.map((name, index) => {
			const service = compose.services[name];
			const database = new URL(crm.url);
			// The compose file's connection options (sslmode, limits …) stay.
			if (service.environment.DATABASE_URL) database.search = new URL(service.environment.DATABASE_URL).search;
			const { env, overrides } = localEnvironment(
				service,
				{
					DATABASE_URL: { value: database.toString(), why: "this run's CRM database on the test Postgres, with its login" },
					PORT: { value: String(ports.receivers[index]), why: 'a free port' },
					HOST: { value: '127.0.0.1', why: 'this machine only' },
					SITE_CONFIG: { value: sitesFolder, why: "the test's sites, whose n8nUrl is this n8n" },
				},
				{},
				endpoints,
			);
			return { name, service: name, url: local(ports.receivers[index]), env, overrides, logFile: path.join(logs, `${name}.log`) };
		});

		// A process gets nothing of this test process's environment but PATH and HOME.
		const bare = (env: Record<string, string>): NodeJS.ProcessEnv => ({
			PATH: process.env.PATH,
			HOME: process.env.HOME,
			...(process.env.TRACKING_CRM_CACHE ? { TRACKING_CRM_CACHE: process.env.TRACKING_CRM_CACHE } : {}),
			...env,
		});
		const n8nCli = (folder: string, args: string[]) => run('bash', [SCRIPT, 'exec', folder, '--', ...args], { env: bare(main.env), log, timeoutMs: 180_000 });

		// In parallel: the package into one folder every n8n process links to (the n8n image of the
		// compose file has it in ~/.n8n/nodes); the CRM database migrated; n8n's database with the
		// bundled credentials and workflows, published, as an operator does with n8n's CLI.
		const packageFolder = path.join(work, 'package');
		const loadPackage = async () => {
			await loadThisPackage(work, packageFolder, { env: childEnv({}), log, fail });
			note('package loaded');
		};
		const migrateCrm = async () => {
			await deployMigrations(new PrismaPg({ connectionString: crm.url }));
			note('CRM database migrated');
		};
		const prepareN8n = async () => {
			const cliFolder = path.join(work, 'cli');
			await mkdir(cliFolder, { recursive: true });
			const receiver = receivers[0].env;
			const credentials = bundleCredentials({ DATABASE_URL: receiver.DATABASE_URL, CRM_WEBHOOK_SECRET: receiver.CRM_WEBHOOK_SECRET, EMAIL_TOKEN_SECRET: receiver.EMAIL_TOKEN_SECRET, PUBLIC_URL: receiver.PUBLIC_URL, SMTP_URL: options.smtpUrl });
			const credentialsFile = path.join(work, 'credentials.json');
			await writeFile(credentialsFile, JSON.stringify(credentials), { mode: 0o600 });
			note('import:credentials (n8n migrates its database)');
			const imported = await n8nCli(cliFolder, ['import:credentials', `--input=${credentialsFile}`]);
			if (!/Successfully imported \d+ credential/.test(imported.output)) fail(`n8n import:credentials failed (exit ${imported.code ?? imported.signal}).`);
			const workflows = bundledWorkflows();
			const importedWorkflows = await n8nCli(cliFolder, ['import:workflow', '--separate', `--input=${WORKFLOWS_DIR}`]);
			if (Number(/Successfully imported (\d+) workflow/.exec(importedWorkflows.output)?.[1]) !== workflows.length) fail(`n8n import:workflow failed (exit ${importedWorkflows.code ?? importedWorkflows.signal}).`);
			// Each publish is a whole n8n CLI start; they write different rows, so they run side by side.
			const published = await Promise.all(workflows.map((workflow) => n8nCli(cliFolder, ['publish:workflow', `--id=${workflow.id}`])));
			published.forEach((result, index) => {
				if (!/Changes will not take effect if n8n is running/.test(result.output)) fail(`n8n publish:workflow --id=${workflows[index].id} failed (exit ${result.code ?? result.signal}).`);
			});
			note('n8n database ready: credentials and the six workflows, published');
		};
		const prepared = await Promise.allSettled([loadPackage(), migrateCrm(), prepareN8n()]);
		for (const result of prepared) if (result.status === 'rejected') throw result.reason;

		const exits = new Map<string, string>();
		const launch = (entry: Omit<TopologyProcess, 'alive'>, command: string, args: string[]): TopologyProcess => {
			appendFileSync(entry.logFile, `[topology] ${entry.name}: ${[command, ...args].join(' ')}\n[topology] the compose environment with these changes:\n${entry.overrides.map((line) => `  ${line}`).join('\n')}\n`);
			const fd = openSync(entry.logFile, 'a');
			let child: ChildProcess;
			try {
				child = spawn(command, args, { cwd: ROOT, env: bare(entry.env), detached: true, stdio: ['ignore', fd, fd] });
			} finally {
				closeSync(fd);
			}
			track(child);
			child.once('exit', (code, signal) => {
				exits.set(entry.name, `exit ${code ?? signal}`);
				appendFileSync(entry.logFile, `\n[topology] ${entry.name} ended (exit ${code ?? signal})\n`);
			});
			const topologyProcess: TopologyProcess = { ...entry, alive: () => child.exitCode === null && child.signalCode === null };
			processes.push({ process: topologyProcess, child });
			return topologyProcess;
		};
		// In a container n8n takes its host name for its instance id (hostId); on one machine the
		// workers would share it and look like one instance to n8n's registry. Each gets a host
		// name of its own, as a container has, where the machine allows a UTS namespace.
		const ownHostNames = spawnSync('unshare', ['--uts', 'true'], { stdio: 'ignore' }).status === 0;
		if (!ownHostNames) note('unshare --uts is not allowed here: the n8n processes share this host name (and n8n hostId)');
		const startN8n = async (entry: Omit<TopologyProcess, 'alive'>, args: string[]) => {
			const userFolder = path.join(work, entry.name);
			await mkdir(path.join(userFolder, '.n8n'), { recursive: true });
			await symlink(path.join(packageFolder, '.n8n', 'nodes'), path.join(userFolder, '.n8n', 'nodes'));
			// Every n8n process starts a task broker (5679 in its container); here each needs its own port.
			entry.env.N8N_RUNNERS_BROKER_PORT = String(await freePort());
			entry.overrides.push(`N8N_RUNNERS_BROKER_PORT: (not set) → ${entry.env.N8N_RUNNERS_BROKER_PORT} (a free port per process)`);
			note(`${entry.name}: n8n ${args.join(' ')}`);
			const n8n = ['bash', SCRIPT, 'exec', userFolder, '--', ...args];
			return ownHostNames ? launch(entry, 'unshare', ['--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', entry.name, ...n8n]) : launch(entry, n8n[0], n8n.slice(1));
		};
		const waitFor = async (entry: TopologyProcess, what: string, timeoutMs: number, ready: () => Promise<boolean>) => {
			const deadline = Date.now() + timeoutMs;
			for (;;) {
				if (exits.has(entry.name)) fail(`${entry.name} ended (${exits.get(entry.name)}) while waiting for ${what}.\n--- ${entry.logFile} ---\n${tailOf(entry.logFile, 40)}`);
				if (await ready().catch(() => false)) return;
				if (Date.now() > deadline) fail(`Timed out after ${timeoutMs / 1000} s waiting for ${what}.\n--- ${entry.logFile} ---\n${tailOf(entry.logFile, 40)}`);
				await sleep(250);
			}
		};
		const healthy = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;

		// The CLI has migrated n8n's database, which is what the others wait for main to do: all start together.
		const [mainProcess, webhookProcess, ...workerProcesses] = await Promise.all([
			startN8n(main, n8nArgs(compose.services[SERVICES.main])),
			startN8n(webhook, n8nArgs(compose.services[SERVICES.webhook])),
			...workers.map((worker) => startN8n(worker, n8nArgs(compose.services[SERVICES.worker]))),
		]);
		await Promise.all(
			[mainProcess, webhookProcess, ...workerProcesses].map((entry) => waitFor(entry, `${entry.url}/healthz/readiness`, 180_000, healthy(`${entry.url}/healthz/readiness`))),
		);
		note('n8n main, webhook processor and workers ready');
		// A CORS preflight lists the methods registered for a path and runs no workflow.
		for (const workflow of bundledWorkflows()) {
			const url = `${proxy.url}/webhook/${workflow.webhookPath}`;
			await waitFor(webhookProcess, `the webhook ${url} (is its workflow published?)`, 60_000, async () => {
				const response = await fetch(url, { method: 'OPTIONS', headers: { origin: proxy!.url }, signal: AbortSignal.timeout(2000) });
				const methods = (response.headers.get('access-control-allow-methods') ?? '').split(',').map((method) => method.trim());
				return response.status !== 404 && methods.some((method) => method && method !== 'OPTIONS');
			});
		}
		note('every bundled webhook answers at the webhook processor, through the proxy');

		const receiverProcesses: TopologyProcess[] = [];
		for (const receiver of receivers) {
			const receiverProcess = launch(receiver, process.execPath, [path.join(ROOT, 'dist', 'server', 'main.js')]);
			await waitFor(receiverProcess, `${receiverProcess.url}/health`, 60_000, healthy(`${receiverProcess.url}/health`));
			receiverProcesses.push(receiverProcess);
		}
		note('ready');

		const readLog = (file: string) => readFileSync(file, 'utf8');
		return {
			compose,
			generatedSecrets: generated,
			crmDatabaseUrl: crm.url,
			main: mainProcess,
			webhook: webhookProcess,
			workers: workerProcesses,
			receivers: receiverProcesses,
			killWorker: async (index: number) => {
				const entry = processes.find(({ process: candidate }) => candidate === workerProcesses[index]);
				if (!entry) throw new Error(`no worker ${index}`);
				const exited = new Promise<void>((resolve) => (entry.process.alive() ? entry.child.once('exit', () => resolve()) : resolve()));
				note(`SIGKILL ${entry.process.name}`);
				killGroup(entry.child, 'SIGKILL');
				await exited;
			},
			queueLog: () => ({
				enqueued: [mainProcess, webhookProcess].flatMap((entry) => [...readLog(entry.logFile).matchAll(/Enqueued execution (\d+)/g)].map((match) => match[1])),
				workers: workerProcesses.map((worker) => {
					const lines = [...readLog(worker.logFile).matchAll(/Worker (started|finished) execution (\d+)/g)];
					return { worker: worker.name, started: lines.filter((line) => line[1] === 'started').map((line) => line[2]), finished: lines.filter((line) => line[1] === 'finished').map((line) => line[2]) };
				}),
			}),
			executions: async () => {
				const client = new Client({ connectionString: n8nDb.url });
				await client.connect();
				try {
					const { rows } = await client.query<Omit<N8nExecution, 'id'> & { id: string | number }>('SELECT id, "workflowId", mode, status, "startedAt", "stoppedAt", "deletedAt" FROM execution_entity ORDER BY id');
					return rows.map((row) => ({ ...row, id: String(row.id) }));
				} finally {
					await client.end();
				}
			},
			logTails: (lines = 30) => [log, ...processes.map(({ process: entry }) => entry.logFile)].map((file) => `--- ${path.basename(file)} ---\n${tailOf(file, lines)}`).join('\n'),
			logFolder: logs,
			stop: async ({ keepLogs = false } = {}) => {
				if (stopped) return;
				stopped = true;
				await stopAll(keepLogs);
			},
		};
	} catch (error) {
		stopped = true;
		await stopAll(true).catch((stopError: unknown) => note(`stopping failed: ${String(stopError)}`));
		if (error instanceof RealN8nError || error instanceof ComposeError) throw error;
		throw new RealN8nError(`Starting the queue-mode topology failed: ${(error as Error).message}\n--- last lines of ${log} ---\n${tailOf(log)}\n(logs kept in ${logs})`);
	}
}
