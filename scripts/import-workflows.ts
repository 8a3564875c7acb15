#!/usr/bin/env node
/** Imports the bundled workflows into n8n with n8n's own CLI and publishes (activates) them. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { bundleCredentials, CredentialSettingsError } from './bundleCredentials';
import { bundledWorkflows, OperatorError, runScript, WORKFLOWS_DIR } from './workflowTools';

const USAGE = `Usage: scripts/import-workflows [options]

Imports the six bundled workflows (workflows/*.json) into n8n with its own CLI
(n8n import:workflow) and publishes each one (n8n publish:workflow), so their webhooks answer
after n8n's next start. Run it where n8n runs, with n8n's environment (DB_*, N8N_USER_FOLDER …).
Importing again replaces the workflows of the same ids.

Options:
  --n8n-cli <command>  how to run n8n's CLI (env N8N_CLI, default "n8n"), e.g. "npx n8n" or
                       "bash scripts/real-n8n.sh exec ~/n8n-data --"
  --credentials        also create the credentials the workflows use, from the environment:
                         DATABASE_URL        → "CRM database" (Postgres)
                         CRM_WEBHOOK_SECRET, RECEIVER_URL, EMAIL_TOKEN_SECRET
                                             → "Tracking CRM API"
                         SMTP_URL            → "CRM SMTP" (smtp://user:pass@host:587)
                       Without it, pick the credentials in each workflow in n8n's editor.
  --no-publish         import only, leave the workflows inactive
  -h, --help           this text

After importing, (re)start n8n: workflows published from the CLI take effect at its start.`;

interface Run {
	code: number | null;
	output: string;
}

/**
 * What a SIGINT or SIGTERM must undo before the script exits: the n8n CLI runs in flight (each
 * starts a whole n8n, which would otherwise go on publishing after we are gone) and the folder
 * holding the credentials file.
 */
const onStop = new Set<() => void>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
	process.once(signal, () => {
		for (const undo of onStop) undo();
		process.exit(signal === 'SIGINT' ? 130 : 143);
	});
}

function runCli(cli: string, args: string[]): Promise<Run> {
	return new Promise((resolve, reject) => {
		// A process group of its own, so that stopping reaches n8n's process and not only the shell.
		const child = spawn('bash', ['-c', `${cli} "$@"`, 'n8n', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
		const stop = () => {
			try {
				process.kill(-child.pid!, 'SIGTERM');
			} catch {
				// Already gone.
			}
		};
		onStop.add(stop);
		let output = '';
		child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
		child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
		child.once('error', reject);
		child.once('close', (code) => {
			onStop.delete(stop);
			resolve({ code, output });
		});
	});
}

class CliError extends OperatorError {}

/** n8n prints its own errors at length; this says what to do about the common ones. */
function explain(step: string, run: Run): string {
	const tail = run.output.trim().split('\n').slice(-15).join('\n');
	if (run.code === 127 || /command not found|ENOENT/.test(run.output)) return `${step}: n8n's CLI was not found. Install n8n, or pass --n8n-cli / set N8N_CLI.\n${tail}`;
	if (/ECONNREFUSED|error initializing DB|connect.*database|password authentication failed|does not exist/i.test(run.output)) {
		return `${step}: n8n could not reach its database. Check n8n's DB_* settings (DB_TYPE, DB_POSTGRESDB_HOST, …) and that the server is up.\n${tail}`;
	}
	return `${step} failed (exit ${run.code}).\n${tail}`;
}

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: { 'n8n-cli': { type: 'string' }, credentials: { type: 'boolean' }, 'no-publish': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const cli = values['n8n-cli'] || process.env.N8N_CLI || 'n8n';
	const workflows = bundledWorkflows();

	const version = await runCli(cli, ['--version']);
	if (version.code !== 0) throw new CliError(explain(`Running "${cli} --version"`, version));
	console.log(`n8n ${version.output.trim().split('\n').pop()} (${cli})`);

	const work = mkdtempSync(path.join(tmpdir(), 'crm-import-'));
	const removeWork = () => rmSync(work, { recursive: true, force: true });
	onStop.add(removeWork);
	try {
		if (values.credentials) {
			let credentials: ReturnType<typeof bundleCredentials>;
			try {
				credentials = bundleCredentials(process.env);
			} catch (error) {
				throw error instanceof CredentialSettingsError ? new OperatorError(error.message) : error;
			}
			const file = path.join(work, 'credentials.json');
			writeFileSync(file, JSON.stringify(credentials), { mode: 0o600 });
			const imported = await runCli(cli, ['import:credentials', `--input=${file}`]);
			if (imported.code !== 0 || !/Successfully imported/.test(imported.output)) throw new CliError(explain('n8n import:credentials', imported));
			console.log(`credentials: ${credentials.map((credential) => credential.name).join(', ')}`);
		}
		const imported = await runCli(cli, ['import:workflow', '--separate', `--input=${WORKFLOWS_DIR}`]);
		const count = /Successfully imported (\d+) workflow/.exec(imported.output);
		if (imported.code !== 0 || !count) throw new CliError(explain('n8n import:workflow', imported));
		console.log(`imported ${count[1]} workflows from ${WORKFLOWS_DIR}`);
		for (const workflow of workflows) {
			if (values['no-publish']) {
				console.log(`  ${workflow.number} ${workflow.title} (not published)`);
				continue;
			}
			const published = await runCli(cli, ['publish:workflow', `--id=${workflow.id}`]);
			if (published.code !== 0 && !/Changes will not take effect/.test(published.output)) throw new CliError(explain(`n8n publish:workflow --id=${workflow.id}`, published));
			console.log(`  ${workflow.number} ${workflow.title}: published, POST /webhook/${workflow.webhookPath}`);
		}
		if (!values['no-publish']) console.log('Restart n8n so the published workflows take effect.');
		return 0;
	} finally {
		onStop.delete(removeWork);
		removeWork();
	}
}

runScript(main, USAGE);
