/**
 * scripts/deploy-production, built and run as an operator runs it, against two real receivers
 * (dist/server/main.js) on a Postgres database of their own. Its restart command really stops a
 * receiver and starts it again, and notes which of the other receivers answered their health
 * check at that moment: one at a time means the others always do.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort, writeSiteConfig } from '../helpers/builtReceiver';
import { testSiteConfig } from '../helpers/sites';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const ROOT = path.resolve(__dirname, '../..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function run(command: string, args: string[], env: Record<string, string>, timeoutMs = 240_000): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		execFile(command, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: timeoutMs, cwd: ROOT }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
		});
	});
}

const deploy = (args: string[], env: Record<string, string>) => run(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'deploy-production.js'), ...args], env);

describe('scripts/deploy-production', () => {
	const work = mkdtempSync(path.join(tmpdir(), 'crm-deploy-'));
	const restart = path.join(work, 'restart.sh');
	const restartsLog = path.join(work, 'restarts.log');
	let database = { name: '', url: '' };
	let ports: number[] = [];
	let env: Record<string, string> = {};
	const urls = () => ports.map((port) => `http://127.0.0.1:${port}`);
	const restarts = () => (existsSync(restartsLog) ? readFileSync(restartsLog, 'utf8').trim().split('\n').filter(Boolean) : []);

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_deploy');
		ports = [await freePort(), await freePort()];
		writeFileSync(path.join(work, 'ports'), ports.join(' '));
		// Restarts receiver <n>: stops the one running (its pid file), notes whether the others answer
		// /health right now, and starts the built receiver again. BROKEN=<n> starts that one without a
		// readable site config, so it exits at once and never gets healthy.
		writeFileSync(
			restart,
			`#!/usr/bin/env bash
set -euo pipefail
n=$1; dir=${work}; ports=($(cat "$dir/ports")); port=\${ports[$((n - 1))]}
if [[ -f $dir/r$n.pid ]]; then
	pid=$(cat "$dir/r$n.pid"); kill "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
fi
others=""
for i in "\${!ports[@]}"; do
	[[ $((i + 1)) == "$n" ]] && continue
	if curl -fsS -o /dev/null "http://127.0.0.1:\${ports[$i]}/health"; then others+=" $((i + 1)):up"; else others+=" $((i + 1)):down"; fi
done
echo "restart $n, others$others" >> "$dir/restarts.log"
config=$SITE_CONFIG; [[ "\${BROKEN:-}" == "$n" ]] && config=$dir/missing.json
PORT=$port SITE_CONFIG=$config nohup "${process.execPath}" ${path.join(ROOT, 'dist', 'server', 'main.js')} > "$dir/r$n.log" 2>&1 &
echo $! > "$dir/r$n.pid"
`,
		);
		env = { DATABASE_URL: database.url, SITE_CONFIG: writeSiteConfig(testSiteConfig({ endpoints: false })), TEST_WEBHOOK_SECRET: 'deploy-test-secret-0123456789', DISPATCHER: 'off', LOG_LEVEL: 'warn', HOST: '127.0.0.1' };
		// The running installation: both receivers up (each migrates the database at its start).
		for (const n of [1, 2]) expect((await run('bash', [restart, String(n)], env)).code).toBe(0);
		for (const url of urls()) {
			const deadline = Date.now() + 90_000;
			while (!(await fetch(`${url}/health`).then((response) => response.ok, () => false))) {
				if (Date.now() > deadline) throw new Error(`${url} did not start: ${readFileSync(path.join(work, `r${urls().indexOf(url) + 1}.log`), 'utf8')}`);
				await new Promise((resolve) => setTimeout(resolve, 200));
			}
		}
		rmSync(restartsLog, { force: true });
	}, 180_000);

	afterAll(async () => {
		for (const n of [1, 2]) {
			const pidFile = path.join(work, `r${n}.pid`);
			if (!existsSync(pidFile)) continue;
			try {
				process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
			} catch {
				// Already gone.
			}
		}
		await new Promise((resolve) => setTimeout(resolve, 1000));
		if (database.name) await dropTestDatabase(database.name);
		rmSync(work, { recursive: true, force: true });
	});

	const receiverArgs = () => urls().flatMap((url) => ['--receiver', url]);

	it('a dry run prints every command in order and runs none', async () => {
		const result = await deploy(
			[
				'--dry-run',
				...receiverArgs(),
				'--restart-cmd',
				'docker compose up -d --no-deps --force-recreate receiver-{n}',
				'--n8n-cli',
				'docker compose exec -T n8n-main n8n',
				'--restart-n8n',
				'docker compose up -d --no-deps --force-recreate n8n-main n8n-webhook n8n-worker',
				'--health-timeout',
				'30',
			],
			{ DATABASE_URL: database.url },
		);
		expect(result.code).toBe(0);
		const lines = result.output.trim().split('\n');
		expect(lines).toEqual([
			'dry run: the plan, in order; nothing is run',
			'1. migrate    node dist/scripts/migrate.js deploy',
			'2. workflows  scripts/update-workflows --n8n-cli docker compose exec -T n8n-main n8n',
			'              then docker compose up -d --no-deps --force-recreate n8n-main n8n-webhook n8n-worker, then scripts/health-check --skip database,receiver until it passes (at most 30 s)',
			`3.1 receiver 1 (${urls()[0]}): docker compose up -d --no-deps --force-recreate receiver-1`,
			`              then scripts/health-check --receiver ${urls()[0]} --expect-version ${VERSION} --skip database,n8n,workflows until it passes (at most 30 s)`,
			`3.2 receiver 2 (${urls()[1]}): docker compose up -d --no-deps --force-recreate receiver-2`,
			`              then scripts/health-check --receiver ${urls()[1]} --expect-version ${VERSION} --skip database,n8n,workflows until it passes (at most 30 s)`,
			`4. check      scripts/health-check --receiver ${urls()[0]} --expect-version ${VERSION}`,
		]);
		const other = await deploy(['--dry-run', ...receiverArgs(), '--restart-cmd', 'x {n}', '--skip', 'migrate,workflows', '--expect-version', '2.0.0'], {});
		expect(other.output).toContain(`then scripts/health-check --receiver ${urls()[1]} --expect-version 2.0.0 --skip`);
		expect(restarts()).toEqual([]);
	});

	it('migrates, then restarts the receivers one at a time, each healthy before the next goes down', async () => {
		const result = await deploy([...receiverArgs(), '--restart-cmd', `bash ${restart} {n}`, '--skip', 'workflows', '--health-skip', 'n8n,workflows', '--health-timeout', '60'], env);
		expect([result.code, result.output]).toEqual([0, expect.stringContaining('deployed: migrate; receiver 1 restarted; receiver 2 restarted')]);
		// The receivers migrated the database at their start: the step finds nothing left, and says so.
		expect(result.output).toMatch(/no pending migrations/);
		expect(restarts()).toEqual(['restart 1, others 2:up', 'restart 2, others 1:up']);
		for (const url of urls()) expect((await fetch(`${url}/health`)).status).toBe(200);
		console.log(result.output);
	}, 240_000);

	it('stops at a receiver that does not come back, and leaves the ones after it alone', async () => {
		rmSync(restartsLog, { force: true });
		const result = await deploy([...receiverArgs(), '--restart-cmd', `bash ${restart} {n}`, '--skip', 'migrate,workflows', '--health-timeout', '5'], { ...env, BROKEN: '1' });
		expect(result.code).toBe(1);
		expect(result.output).toContain(`deploy stopped at receiver 1 (${urls()[0]}): it did not pass its health check within 5 s of its restart`);
		expect(result.output).toContain(`${urls()[0]} not reachable`);
		expect(result.output).toContain('not done: restart receiver 2; final health check');
		expect(restarts()).toEqual(['restart 1, others 2:up']);
		expect((await fetch(`${urls()[1]}/health`)).status).toBe(200);

		// Put receiver 1 back for what follows.
		expect((await run('bash', [restart, '1'], env)).code).toBe(0);
	}, 120_000);

	it('stops at a receiver that comes back on another version than the one deployed', async () => {
		rmSync(restartsLog, { force: true });
		const result = await deploy([...receiverArgs(), '--restart-cmd', `bash ${restart} {n}`, '--skip', 'migrate,workflows', '--expect-version', '9.9.9', '--health-timeout', '10'], env);
		expect(result.code).toBe(1);
		expect(result.output).toContain(`deploy stopped at receiver 1 (${urls()[0]}): it did not pass its health check within 10 s of its restart; it answers, but not as version 9.9.9`);
		expect(result.output).toContain(`it runs version ${VERSION}, not 9.9.9 (--expect-version)`);
		expect(result.output).toContain('not done: restart receiver 2; final health check');
		expect(restarts()).toEqual(['restart 1, others 2:up']);
	}, 120_000);

	it('stops at a failed step with what was done and what was not', async () => {
		rmSync(restartsLog, { force: true });
		const migrate = await deploy([...receiverArgs(), '--restart-cmd', `bash ${restart} {n}`, '--skip', 'workflows'], { ...env, DATABASE_URL: 'postgresql://postgres@127.0.0.1:9/crm' });
		expect(migrate.code).toBe(1);
		expect(migrate.output).toContain('deploy stopped at migrate: node dist/scripts/migrate.js deploy failed (exit 1); no receiver was restarted, the old version still runs');
		expect(migrate.output).toContain('not done: restart receiver 1; restart receiver 2; final health check');

		const command = await deploy([...receiverArgs(), '--restart-cmd', 'echo stopping receiver {n}; exit 3', '--skip', 'migrate,workflows'], env);
		expect(command.code).toBe(1);
		expect(command.output).toContain(`deploy stopped at receiver 1 (${urls()[0]}): its restart command "echo stopping receiver 1; exit 3" failed (exit 3)\n    stopping receiver 1`);
		expect(restarts()).toEqual([]);
	}, 120_000);

	it('refuses an unclear plan before doing anything', async () => {
		const cases: Array<[string[], Record<string, string>, string]> = [
			[[...receiverArgs(), '--skip', 'workflows'], { DATABASE_URL: database.url }, 'No --restart-cmd (or RESTART_CMD): how is one receiver restarted?'],
			[[...receiverArgs(), '--restart-cmd', 'systemctl restart crm-receiver', '--skip', 'workflows'], { DATABASE_URL: database.url }, 'names no receiver ({n} or {url}): it would restart the same thing 2 times'],
			[['--skip', 'workflows,receivers'], {}, 'No DATABASE_URL: the migrate step'],
			[['--skip', 'backups'], {}, '--skip: unknown step backups; the steps are migrate, workflows, receivers'],
			[['--receiver', 'r1.internal', '--skip', 'migrate,workflows', '--restart-cmd', 'x {n}'], {}, '--receiver r1.internal is not a URL'],
			[['--health-timeout', 'soon', '--skip', 'migrate,workflows,receivers'], {}, '--health-timeout must be a whole number of seconds'],
		];
		for (const [args, extra, message] of cases) {
			const result = await deploy(args, extra);
			expect([args.join(' '), result.code, result.output]).toEqual([args.join(' '), 2, expect.stringContaining(message)]);
		}
		expect(restarts()).toEqual([]);
	}, 60_000);
});
