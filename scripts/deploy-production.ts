#!/usr/bin/env node
/** Deploys a new version step by step: migrate, update n8n's workflows, restart the receivers one at a time with a health check after each. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { onStop, OperatorError, option, ROOT, runScript, UsageError } from './workflowTools';

/** The version in this folder, which the deploy puts in place: the receivers' /health must report it. */
const PACKAGE_VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const USAGE = `Usage: scripts/deploy-production [options]

Deploys the version in this folder (built: npm ci && npm run build) to a running installation,
one step at a time, and stops at the first step that fails. It builds no image: with docker
compose, build them first (docker compose build), and restart with commands that start the
new image (docker compose up -d --no-deps --force-recreate …; docker compose restart keeps
the old container and its old image).

  1. migrate    apply the new migrations to the CRM database (DATABASE_URL), before any
                receiver runs the new code
  2. workflows  bring n8n's bundled workflows up to date in place (scripts/update-workflows),
                then restart n8n with --restart-n8n, whether or not a workflow changed (its
                image carries this version's nodes, which must meet the migrated database),
                and wait for its workflows' webhooks (scripts/health-check)
  3. receivers  restart the receivers one at a time with --restart-cmd, and after each wait
                until scripts/health-check passes for it, its /health reporting the version
                deployed, before touching the next, so the others keep taking traffic
  4. check      scripts/health-check of the whole system

Options:
  --receiver <url>        a receiver, in restart order; repeat for each (env RECEIVER_URLS,
                          comma-separated; default http://127.0.0.1:3000)
  --restart-cmd <command> restarts one receiver on the new version; {n} is its number (1, 2,
                          …), {url} its URL:
                            'docker compose up -d --no-deps --force-recreate receiver-{n}'
                            'sudo systemctl restart crm-receiver@{n}'
                          (env RESTART_CMD)
  --expect-version <v>    the version each restarted receiver's /health must report (default
                          ${PACKAGE_VERSION}, this folder's package.json)
  --restart-n8n <command> restarts n8n on this version's nodes and published workflows (n8n
                          reads both at its start), e.g. 'docker compose up -d --no-deps
                          --force-recreate n8n-main n8n-webhook n8n-worker' (env
                          RESTART_N8N_CMD). Without it n8n keeps its old nodes and workflows
                          until its next restart, and the deploy says so.
  --n8n-cli <command>     how update-workflows runs n8n's CLI (env N8N_CLI, default "n8n"),
                          e.g. 'docker compose exec -T n8n-main n8n'
  --n8n <url>             n8n's URL for the health checks (env N8N_URL)
  --health-timeout <s>    how long a restarted receiver or n8n may take to pass its health
                          check (default 120)
  --health-skip <checks>  checks of the final health check to leave out (database, receiver,
                          n8n, workflows), e.g. n8n,workflows where n8n is out of reach
  --skip <steps>          steps to leave out: migrate, workflows, receivers
  --dry-run               print every command in order; run none
  -h, --help              this text

Exit code 0 when deployed, 1 when a step failed (the message says which, and what was left
undone), 2 on bad usage.

Example (docker compose, the images built with the new CRM_IMAGE_TAG, the two receivers
published on the host's loopback as docs/deployment.md#upgrades shows):
  DATABASE_URL=… scripts/deploy-production --receiver http://127.0.0.1:3001 --receiver http://127.0.0.1:3002 \\
    --restart-cmd 'docker compose up -d --no-deps --force-recreate receiver-{n}' \\
    --n8n https://<N8N_HOST> --n8n-cli 'docker compose exec -T n8n-main n8n' \\
    --restart-n8n 'docker compose up -d --no-deps --force-recreate n8n-main n8n-webhook n8n-worker'`;

const STEPS = ['migrate', 'workflows', 'receivers'] as const;
const CHECKS = ['database', 'receiver', 'n8n', 'workflows'];

interface Command {
	/** What the operator reads in the plan and in errors. */
	label: string;
	program: string;
	args: string[];
}

interface Finished {
	code: number | null;
	output: string;
}

const script = (name: string, args: string[], label = `scripts/${name} ${args.join(' ')}`.trim()): Command => ({ label, program: process.execPath, args: [path.join(__dirname, `${name}.js`), ...args] });
const shell = (command: string): Command => ({ label: command, program: 'bash', args: ['-c', command] });

function execute(command: Command): Promise<Finished> {
	return new Promise((resolve) => {
		const child = spawn(command.program, command.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
		const forget = onStop(() => {
			try {
				process.kill(-child.pid!, 'SIGTERM');
			} catch {
				// Already gone.
			}
		});
		let output = '';
		child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
		child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
		child.once('error', (error) => {
			forget();
			resolve({ code: 127, output: error.message });
		});
		child.once('close', (code) => {
			forget();
			resolve({ code, output });
		});
	});
}

const indent = (text: string): string =>
	text
		.trim()
		.split('\n')
		.slice(-30)
		.map((line) => `    ${line}`)
		.join('\n');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a health check again and again until it passes or the time is up; the last run says why not. */
async function untilHealthy(check: Command, timeoutSeconds: number): Promise<Finished & { ok: boolean }> {
	const deadline = Date.now() + timeoutSeconds * 1000;
	for (;;) {
		const run = await execute(check);
		if (run.code === 0) return { ...run, ok: true };
		if (Date.now() >= deadline) return { ...run, ok: false };
		await sleep(2000);
	}
}

function csv(value: string | undefined): string[] {
	return (value ?? '')
		.split(',')
		.map((part) => part.trim())
		.filter(Boolean);
}

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			receiver: { type: 'string', multiple: true },
			'restart-cmd': { type: 'string' },
			'expect-version': { type: 'string' },
			'restart-n8n': { type: 'string' },
			'n8n-cli': { type: 'string' },
			n8n: { type: 'string' },
			'health-timeout': { type: 'string' },
			'health-skip': { type: 'string' },
			skip: { type: 'string' },
			'dry-run': { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const skip = new Set(csv(values.skip));
	const unknownSteps = [...skip].filter((step) => !(STEPS as readonly string[]).includes(step));
	if (unknownSteps.length) throw new UsageError(`--skip: unknown step ${unknownSteps.join(', ')}; the steps are ${STEPS.join(', ')}`);
	const healthSkip = csv(values['health-skip']);
	const unknownChecks = healthSkip.filter((check) => !CHECKS.includes(check));
	if (unknownChecks.length) throw new UsageError(`--health-skip: unknown check ${unknownChecks.join(', ')}; the checks are ${CHECKS.join(', ')}`);
	const timeoutText = values['health-timeout'] ?? '120';
	if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1) throw new UsageError(`--health-timeout must be a whole number of seconds, 1 or more; got "${timeoutText}"`);
	const healthTimeout = Number(timeoutText);
	const receivers = values.receiver?.length ? values.receiver : csv(process.env.RECEIVER_URLS).length ? csv(process.env.RECEIVER_URLS) : ['http://127.0.0.1:3000'];
	for (const url of receivers) {
		if (!/^https?:\/\/[^/]+/.test(url)) throw new UsageError(`--receiver ${url} is not a URL; expected e.g. http://10.0.0.5:3000`);
	}
	const restartCmd = option(values, 'restart-cmd', 'RESTART_CMD');
	const version = values['expect-version'] || PACKAGE_VERSION;
	const restartN8n = option(values, 'restart-n8n', 'RESTART_N8N_CMD');
	const n8nCli = option(values, 'n8n-cli', 'N8N_CLI');
	const n8nUrl = option(values, 'n8n', 'N8N_URL');
	if (!skip.has('migrate') && !process.env.DATABASE_URL) {
		throw new UsageError('No DATABASE_URL: the migrate step applies the migrations to the CRM database the receivers share; set DATABASE_URL to it (or --skip migrate)');
	}
	if (!skip.has('receivers')) {
		if (!restartCmd) throw new UsageError("No --restart-cmd (or RESTART_CMD): how is one receiver restarted? e.g. --restart-cmd 'docker compose up -d --no-deps --force-recreate receiver-{n}' (or --skip receivers)");
		if (receivers.length > 1 && !/\{n\}|\{url\}/.test(restartCmd)) {
			throw new UsageError(`--restart-cmd "${restartCmd}" names no receiver ({n} or {url}): it would restart the same thing ${receivers.length} times instead of each receiver in turn`);
		}
	}

	const withN8n = n8nUrl ? ['--n8n', n8nUrl] : [];
	const migrate = script('migrate', ['deploy'], 'node dist/scripts/migrate.js deploy');
	const update = script('update-workflows', n8nCli ? ['--n8n-cli', n8nCli] : []);
	const n8nHealth = script('health-check', ['--skip', 'database,receiver', ...withN8n]);
	const restartOf = (index: number) => shell(restartCmd!.replaceAll('{n}', String(index + 1)).replaceAll('{url}', receivers[index]));
	const receiverHealth = (url: string) => script('health-check', ['--receiver', url, '--expect-version', version, '--skip', 'database,n8n,workflows']);
	// Receivers left out of the deploy may still run the old version: then the final check does not ask for the new one.
	const withVersion = skip.has('receivers') ? [] : ['--expect-version', version];
	const finalHealth = script('health-check', [...withN8n, '--receiver', receivers[0], ...withVersion, ...(healthSkip.length ? ['--skip', healthSkip.join(',')] : [])]);

	if (values['dry-run']) {
		const lines = ['dry run: the plan, in order; nothing is run'];
		if (!skip.has('migrate')) lines.push(`1. migrate    ${migrate.label}`);
		if (!skip.has('workflows')) {
			lines.push(`2. workflows  ${update.label}`);
			lines.push(restartN8n ? `              then ${restartN8n}, then ${n8nHealth.label} until it passes (at most ${healthTimeout} s)` : `              then nothing: n8n runs this version's nodes and workflows after its next restart (no --restart-n8n)`);
		}
		if (!skip.has('receivers')) {
			receivers.forEach((url, index) => {
				lines.push(`3.${index + 1} receiver ${index + 1} (${url}): ${restartOf(index).label}`);
				lines.push(`              then ${receiverHealth(url).label} until it passes (at most ${healthTimeout} s)`);
			});
		}
		lines.push(`4. check      ${finalHealth.label}`);
		console.log(lines.join('\n'));
		return 0;
	}

	const done: string[] = [];
	const fail = (step: string, why: string, run: Finished, notDone: string[]): never => {
		throw new OperatorError(
			`deploy stopped at ${step}: ${why}\n${indent(run.output)}\n` +
				`done: ${done.length ? done.join('; ') : 'nothing'}\n` +
				`not done: ${notDone.join('; ') || 'nothing'}`,
		);
	};
	const later = (from: number): string[] => [
		...(from <= 1 && !skip.has('migrate') ? ['migrate'] : []),
		...(from <= 2 && !skip.has('workflows') ? ['workflows'] : []),
		...(from <= 3 && !skip.has('receivers') ? receivers.map((_url, index) => `restart receiver ${index + 1}`) : []),
		'final health check',
	];

	if (!skip.has('migrate')) {
		console.log(`1. migrate: ${migrate.label}`);
		const run = await execute(migrate);
		if (run.code !== 0) fail('migrate', `${migrate.label} failed (exit ${run.code}); no receiver was restarted, the old version still runs`, run, later(2));
		console.log(indent(run.output));
		done.push('migrate');
	}
	if (!skip.has('workflows')) {
		console.log(`2. workflows: ${update.label}`);
		const run = await execute(update);
		if (run.code !== 0) fail('workflows', `${update.label} failed (exit ${run.code})`, run, later(3));
		console.log(indent(run.output));
		const changed = !/^Nothing to do/m.test(run.output);
		done.push(changed ? 'workflows updated' : 'workflows already up to date');
		// Also with no workflow changed: n8n's image carries this version's nodes, and the old ones must not meet the migrated database.
		if (restartN8n) {
			console.log(`   restarting n8n: ${restartN8n}`);
			const restarted = await execute(shell(restartN8n));
			if (restarted.code !== 0) fail('workflows', `restarting n8n with "${restartN8n}" failed (exit ${restarted.code})`, restarted, later(3));
			const healthy = await untilHealthy(n8nHealth, healthTimeout);
			if (!healthy.ok) fail('workflows', `n8n did not pass ${n8nHealth.label} within ${healthTimeout} s of its restart`, healthy, later(3));
			done.push('n8n restarted');
		} else {
			console.log("   n8n runs this version's nodes and workflows after its next restart (no --restart-n8n given)");
		}
	}
	if (!skip.has('receivers')) {
		for (const [index, url] of receivers.entries()) {
			const restart = restartOf(index);
			const rest = [...receivers.slice(index + 1).map((_url, offset) => `restart receiver ${index + offset + 2}`), 'final health check'];
			console.log(`3.${index + 1} receiver ${index + 1} (${url}): ${restart.label}`);
			const run = await execute(restart);
			if (run.code !== 0) fail(`receiver ${index + 1} (${url})`, `its restart command "${restart.label}" failed (exit ${run.code})`, run, rest);
			const healthy = await untilHealthy(receiverHealth(url), healthTimeout);
			if (!healthy.ok) {
				const oldCode = /\(--expect-version\)/.test(healthy.output)
					? `; it answers, but not as version ${version}: its restart command did not start the new version (docker compose restart keeps the old container; recreate it from the new image with docker compose up -d --no-deps --force-recreate)`
					: '';
				fail(`receiver ${index + 1} (${url})`, `it did not pass its health check within ${healthTimeout} s of its restart${oldCode}; the receivers after it were left running the old version`, healthy, rest);
			}
			console.log(indent(healthy.output));
			done.push(`receiver ${index + 1} restarted`);
		}
	}
	console.log(`4. check: ${finalHealth.label}`);
	const final = await execute(finalHealth);
	if (final.code !== 0) fail('the final health check', `${finalHealth.label} failed`, final, []);
	console.log(indent(final.output));
	console.log(`deployed: ${done.join('; ')}`);
	return 0;
}

runScript(main, USAGE);
