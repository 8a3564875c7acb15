/**
 * Runs THIS package inside a real n8n (the cached install of scripts/real-n8n.sh, see
 * docs/real-n8n.md), for end-to-end Jest tests: packs the package, installs it the way n8n
 * installs a community package, imports credentials and workflows into a fresh n8n database,
 * publishes (activates) the workflows and starts `n8n start` on free ports.
 *
 *   const n8n = await startRealN8n({ workflows: [workflow], credentials: [credential] });
 *   await fetch(n8n.webhookUrl('my-path'), { method: 'POST', body });
 *   await n8n.stop();
 *
 * Needs `npm run build` first (npm test does it) and a Postgres server (the one the tests use).
 * Everything n8n prints goes to one log file; every error carries its tail. Set
 * KEEP_REAL_N8N=1 to keep the temp folder and the n8n database after stop().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { IConnections, INode, IWorkflowSettings } from 'n8n-workflow';

import { adminUrl } from '../setup/testDatabase';
import { freePort } from './ports';

/** The repository, from test/helpers (Jest) or dist/test/helpers (compiled benchmarks). */
export const ROOT = [path.resolve(__dirname, '../..'), path.resolve(__dirname, '../../..')].find((dir) => existsSync(path.join(dir, 'scripts', 'real-n8n.sh'))) ?? path.resolve(__dirname, '../..');
export const SCRIPT = path.join(ROOT, 'scripts/real-n8n.sh');

/** A workflow as `n8n import:workflow` takes it; `id` is needed to publish it. */
export interface WorkflowJson {
	id: string;
	name: string;
	nodes: INode[];
	connections: IConnections;
	settings?: IWorkflowSettings;
}

/** A credential as `n8n import:credentials` takes it: `data` in plain text (n8n encrypts it on import). */
export interface CredentialJson {
	id: string;
	name: string;
	type: string;
	data: Record<string, unknown>;
}

export interface StartRealN8nOptions {
	workflows: WorkflowJson[];
	credentials: CredentialJson[];
	/**
	 * Sets up n8n's database instead of importing `workflows` and `credentials`: called before
	 * n8n starts with how to run n8n's CLI against it (a command prefix and its environment),
	 * e.g. to run scripts/import-workflows the way an operator does.
	 */
	prepare?: (cli: { command: string; env: NodeJS.ProcessEnv }) => Promise<void>;
	/**
	 * Webhook paths (as in /webhook/<path>) to wait for before resolving. Default: the literal
	 * `path` parameter of every node that has a `webhookId`. Pass [] to wait for none.
	 */
	webhookPaths?: string[];
	/** Extra environment for every n8n process (e.g. N8N_LOG_LEVEL). */
	env?: Record<string, string>;
}

export interface ExecResult {
	code: number | null;
	signal: NodeJS.Signals | null;
	/** stdout and stderr as they came. */
	output: string;
	stdout: string;
}

export interface RealN8n {
	/** http://127.0.0.1:<port> */
	baseUrl: string;
	/** The production URL of a webhook: <baseUrl>/webhook/<path>. */
	webhookUrl(webhookPath: string): string;
	/** The n8n user folder (holds .n8n/nodes with our package, and .cache/n8n/public/types). */
	userFolder: string;
	/** The n8n database (Postgres), dropped by stop(). */
	database: string;
	logFile: string;
	/** The last lines of the log. */
	logTail(lines?: number): string;
	/** Another n8n CLI command against the same database and user folder (e.g. ['export:nodes', '--output=x.json']). */
	exec(args: string[], timeoutMs?: number): Promise<ExecResult>;
	/** Stops n8n (its whole process group), drops its database and deletes the temp folder. */
	stop(): Promise<void>;
}

export class RealN8nError extends Error {}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `promise` settled within `ms` (the timer is cleared, so it keeps nothing alive). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
	let timer: NodeJS.Timeout | undefined;
	const timeout = new Promise<boolean>((resolve) => {
		timer = setTimeout(() => resolve(false), ms);
	});
	try {
		return await Promise.race([promise.then(() => true), timeout]);
	} finally {
		clearTimeout(timer);
	}
}

export function tailOf(file: string, lines = 60): string {
	let text = '';
	try {
		text = readFileSync(file, 'utf8');
	} catch {
		return '(no log)';
	}
	return text.split('\n').slice(-lines).join('\n').slice(-8000);
}

export { freePort };

/**
 * The environment of n8n and npm: Jest's NODE_OPTIONS (Node 20 flags) is not for them, and
 * Jest's NODE_ENV=test silences n8n's logger (and switches n8n to its own test behaviour).
 */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = { ...process.env };
	// N8N_* of the in-process harness (test/harness/n8n-env.ts: a silent logger, its own user
	// folder) must not leak into the real n8n, whose script keeps any N8N_* already set.
	for (const name of Object.keys(env)) if (name.startsWith('JEST_') || name.startsWith('N8N_')) delete env[name];
	delete env.NODE_OPTIONS;
	delete env.NODE_ENV;
	return { ...env, ...extra };
}

/** Runs a command to its end (or kills its process group after timeoutMs); output goes to the log too. */
export function run(command: string, args: string[], options: { env: NodeJS.ProcessEnv; log: string; timeoutMs: number; cwd?: string }): Promise<ExecResult> {
	return new Promise((resolve, reject) => {
		const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env: options.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
		const chunks: Buffer[] = [];
		const stdout: Buffer[] = [];
		child.stdout.on('data', (chunk: Buffer) => {
			chunks.push(chunk);
			stdout.push(chunk);
		});
		child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
		const timer = setTimeout(() => {
			chunks.push(Buffer.from(`\n[realN8n] timed out after ${options.timeoutMs} ms; killed\n`));
			killGroup(child, 'SIGKILL');
		}, options.timeoutMs);
		child.once('error', (error) => {
			clearTimeout(timer);
			reject(error);
		});
		child.once('close', (code, signal) => {
			clearTimeout(timer);
			const output = Buffer.concat(chunks).toString('utf8');
			appendFileSync(options.log, `\n===== ${[command, ...args].join(' ')} (exit ${code ?? signal}) =====\n${output}`);
			resolve({ code, signal, output, stdout: Buffer.concat(stdout).toString('utf8') });
		});
	});
}

/** Servers still running: killed if the test process exits without stop() (Ctrl-C, a crash). */
const running = new Set<ChildProcess>();
let exitHook = false;
export function track(child: ChildProcess): void {
	running.add(child);
	child.once('exit', () => running.delete(child));
	if (exitHook) return;
	exitHook = true;
	process.once('exit', () => {
		for (const server of running) killGroup(server, 'SIGKILL');
	});
}

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
	if (child.pid === undefined) return;
	try {
		process.kill(-child.pid, signal);
	} catch {
		// Already gone.
	}
}

/** The dist files package.json's `n8n` section points at: without them the package loads nothing. */
export function assertBuilt(): void {
	const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { n8n: { nodes: string[]; credentials: string[] } };
	const missing = [...pkg.n8n.nodes, ...pkg.n8n.credentials].filter((file) => !existsSync(path.join(ROOT, file)));
	if (missing.length) {
		throw new RealN8nError(`The package is not built (missing ${missing.join(', ')}): run \`npm run build\` before these tests (npm test does it).`);
	}
}

export function defaultWebhookPaths(workflows: WorkflowJson[]): string[] {
	return workflows.flatMap((workflow) =>
		workflow.nodes
			.filter((node) => node.webhookId && !node.disabled)
			.map((node) => node.parameters.path)
			.filter((value): value is string => typeof value === 'string' && value !== '' && !value.startsWith('=')),
	);
}

/**
 * Packs this package (npm pack into <work>/pkg) and installs the tarball into `userFolder` the
 * way n8n installs a community package (scripts/real-n8n.sh load-package).
 */
export async function loadThisPackage(work: string, userFolder: string, options: { env: NodeJS.ProcessEnv; log: string; fail: (message: string) => never }): Promise<void> {
	const { env, log, fail } = options;
	await mkdir(path.join(work, 'pkg'), { recursive: true });
	const pack = await run('npm', ['pack', '--json', '--pack-destination', path.join(work, 'pkg')], { env, log, timeoutMs: 120_000 });
	let tarball = '';
	try {
		const parsed = JSON.parse(pack.stdout) as Array<{ filename: string }>;
		tarball = path.join(work, 'pkg', parsed[0].filename);
	} catch {
		// Reported below.
	}
	if (pack.code !== 0 || !tarball || !existsSync(tarball)) fail(`npm pack failed (exit ${pack.code ?? pack.signal}).`);
	appendFileSync(log, `[realN8n] load-package ${tarball} into ${userFolder}\n`);
	const load = await run('bash', [SCRIPT, 'load-package', tarball, userFolder], { env, log, timeoutMs: 300_000 });
	if (load.code !== 0) fail(`scripts/real-n8n.sh load-package failed (exit ${load.code ?? load.signal}).`);
}

export async function startRealN8n(options: StartRealN8nOptions): Promise<RealN8n> {
	assertBuilt();
	const started = Date.now();
	const work = await mkdtemp(path.join(tmpdir(), 'real-n8n-'));
	const log = path.join(tmpdir(), `${path.basename(work)}.log`);
	appendFileSync(log, `[realN8n] temp folder ${work}\n`);
	const note = (message: string) => appendFileSync(log, `[realN8n] +${((Date.now() - started) / 1000).toFixed(1)}s ${message}\n`);
	const fail = (message: string): never => {
		throw new RealN8nError(`${message}\n--- last lines of ${log} ---\n${tailOf(log)}`);
	};

	const userFolder = path.join(work, 'n8n');
	// The import commands run in their own user folder, so they can run while the package is
	// being installed into `userFolder` (same database and encryption key, so n8n agrees).
	const cliFolder = path.join(work, 'cli');
	const database = `n8n_e2e_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
	const pg = new URL(adminUrl());
	const baseEnv: Record<string, string> = {
		DB_TYPE: 'postgresdb',
		DB_POSTGRESDB_HOST: pg.hostname,
		DB_POSTGRESDB_PORT: pg.port || '5432',
		DB_POSTGRESDB_USER: decodeURIComponent(pg.username || 'postgres'),
		DB_POSTGRESDB_PASSWORD: decodeURIComponent(pg.password),
		DB_POSTGRESDB_DATABASE: database,
		N8N_ENCRYPTION_KEY: randomBytes(24).toString('hex'),
		N8N_LISTEN_ADDRESS: '127.0.0.1',
		...options.env,
	};
	const env = childEnv(baseEnv);
	let server: ChildProcess | undefined;
	let databaseCreated = false;
	let stopped = false;

	const cleanup = async (keepLog: boolean): Promise<void> => {
		if (server && server.exitCode === null && server.signalCode === null) {
			const child = server;
			const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
			killGroup(child, 'SIGTERM');
			if (!(await within(exited, 15_000))) {
				appendFileSync(log, '[realN8n] n8n did not stop within 15 s of SIGTERM; SIGKILL\n');
				killGroup(child, 'SIGKILL');
				await within(exited, 5_000);
			}
		}
		// The task runner (a grandchild) may outlive n8n briefly; make sure the group is gone.
		if (server) killGroup(server, 'SIGKILL');
		if (process.env.KEEP_REAL_N8N) return;
		if (databaseCreated) await run('bash', [SCRIPT, 'drop-db', database], { env, log, timeoutMs: 60_000 });
		await rm(work, { recursive: true, force: true });
		if (!keepLog) await rm(log, { force: true });
	};

	const n8nCli = (folder: string, args: string[], timeoutMs = 180_000) => run('bash', [SCRIPT, 'exec', folder, '--', ...args], { env, log, timeoutMs });

	try {
		// 1. n8n itself (idempotent; ~6 minutes the first time).
		note('install');
		const install = await run('bash', [SCRIPT, 'install'], { env, log, timeoutMs: 20 * 60_000 });
		if (install.code !== 0) fail(`Cannot install n8n with scripts/real-n8n.sh install (exit ${install.code ?? install.signal}).`);

		// 2. In parallel: our package into the user folder, and the database with its contents.
		const loadPackage = async () => {
			note('npm pack');
			await loadThisPackage(work, userFolder, { env, log, fail });
			note('package loaded');
		};
		const prepareDatabase = async () => {
			note(`create-db ${database}`);
			const created = await run('bash', [SCRIPT, 'create-db', database], { env, log, timeoutMs: 60_000 });
			if (created.code !== 0) fail(`Cannot create the n8n database ${database} on ${pg.host} (exit ${created.code ?? created.signal}).`);
			databaseCreated = true;
			await mkdir(cliFolder, { recursive: true });
			if (options.prepare) {
				note('prepare');
				await options.prepare({ command: `bash ${SCRIPT} exec ${cliFolder} --`, env });
				note('database ready');
				return;
			}

			// The first n8n command on the new database runs all of n8n's migrations (~5-15 s).
			if (options.credentials.length) {
				const credentialsFile = path.join(work, 'credentials.json');
				await writeFile(credentialsFile, JSON.stringify(options.credentials, null, 2), { mode: 0o600 });
				note('import:credentials');
				const credentials = await n8nCli(cliFolder, ['import:credentials', `--input=${credentialsFile}`]);
				if (!/Successfully imported \d+ credential/.test(credentials.output)) fail(`n8n import:credentials failed (exit ${credentials.code ?? credentials.signal}).`);
			}
			if (!options.workflows.length) return;

			const workflowsFile = path.join(work, 'workflows.json');
			await writeFile(workflowsFile, JSON.stringify(options.workflows, null, 2));
			note('import:workflow');
			const workflows = await n8nCli(cliFolder, ['import:workflow', `--input=${workflowsFile}`]);
			const imported = /Successfully imported (\d+) workflow/.exec(workflows.output);
			if (!imported || Number(imported[1]) !== options.workflows.length) {
				fail(`n8n import:workflow failed (exit ${workflows.code ?? workflows.signal}; expected ${options.workflows.length} workflows).`);
			}

			for (const workflow of options.workflows) {
				note(`publish:workflow ${workflow.id}`);
				const published = await n8nCli(cliFolder, ['publish:workflow', `--id=${workflow.id}`]);
				// The command logs this note only after the version is published.
				if (!/Changes will not take effect if n8n is running/.test(published.output)) {
					fail(`n8n publish:workflow --id=${workflow.id} failed (exit ${published.code ?? published.signal}).`);
				}
			}
			note('database ready');
		};
		const results = await Promise.allSettled([loadPackage(), prepareDatabase()]);
		for (const result of results) if (result.status === 'rejected') throw result.reason;

		// 3. n8n start, in its own process group.
		const port = await freePort();
		const brokerPort = await freePort();
		const baseUrl = `http://127.0.0.1:${port}`;
		note(`n8n start on ${baseUrl} (task broker on ${brokerPort})`);
		const logFd = openSync(log, 'a');
		try {
			server = spawn('bash', [SCRIPT, 'exec', userFolder, '--', 'start'], {
				cwd: ROOT,
				env: childEnv({ ...baseEnv, N8N_PORT: String(port), N8N_RUNNERS_BROKER_PORT: String(brokerPort) }),
				detached: true,
				stdio: ['ignore', logFd, logFd],
			});
		} finally {
			closeSync(logFd);
		}
		track(server);
		let exit: string | undefined;
		server.once('exit', (code, signal) => {
			exit = `exit code ${code ?? signal}`;
			appendFileSync(log, `\n[realN8n] n8n start ended (${exit})\n`);
		});

		const waitUntil = async (what: string, timeoutMs: number, ready: () => Promise<boolean>) => {
			const deadline = Date.now() + timeoutMs;
			for (;;) {
				if (exit) fail(`n8n start ended (${exit}) while waiting for ${what}.`);
				if (await ready().catch(() => false)) return;
				if (Date.now() > deadline) fail(`Timed out after ${timeoutMs / 1000} s waiting for ${what}.`);
				await sleep(250);
			}
		};
		// /healthz answers while n8n still migrates its database, and until then every other route
		// answers 200 "n8n is starting up": readiness waits for the database and the routes.
		await waitUntil(`${baseUrl}/healthz/readiness`, 180_000, async () => (await fetch(`${baseUrl}/healthz/readiness`, { signal: AbortSignal.timeout(2000) })).ok);
		note('readiness ok');

		// A CORS preflight lists the methods registered for a webhook path ("OPTIONS" alone while
		// none is): it runs no workflow, whatever the webhook's method, so polling is harmless.
		const webhookUrl = (webhookPath: string) => `${baseUrl}/webhook/${webhookPath.replace(/^\/+/, '')}`;
		for (const webhookPath of options.webhookPaths ?? defaultWebhookPaths(options.workflows)) {
			await waitUntil(`the webhook ${webhookUrl(webhookPath)} to be registered (is its workflow published?)`, 60_000, async () => {
				const response = await fetch(webhookUrl(webhookPath), { method: 'OPTIONS', headers: { origin: baseUrl }, signal: AbortSignal.timeout(2000) });
				const methods = (response.headers.get('access-control-allow-methods') ?? '').split(',').map((method) => method.trim());
				return response.status !== 404 && methods.some((method) => method && method !== 'OPTIONS');
			});
			note(`webhook ${webhookPath} registered`);
		}
		note('ready');

		return {
			baseUrl,
			webhookUrl,
			userFolder,
			database,
			logFile: log,
			logTail: (lines?: number) => tailOf(log, lines),
			exec: (args: string[], timeoutMs?: number) => n8nCli(userFolder, args, timeoutMs),
			stop: async () => {
				if (stopped) return;
				stopped = true;
				await cleanup(false);
			},
		};
	} catch (error) {
		stopped = true;
		await cleanup(true).catch((cleanupError: unknown) => appendFileSync(log, `[realN8n] cleanup failed: ${String(cleanupError)}\n`));
		if (error instanceof RealN8nError) throw error;
		throw new RealN8nError(`Starting a real n8n failed: ${(error as Error).message}\n--- last lines of ${log} ---\n${tailOf(log)}`);
	}
}
