#!/usr/bin/env node
/** Imports the bundled workflows into n8n with n8n's own CLI and publishes (activates) them. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { bundleCredentials, CredentialSettingsError } from './bundleCredentials';
import {
	bundledWorkflows,
	CliError,
	explainCli,
	exportWorkflows,
	importable,
	importOver,
	isPublished,
	onStop,
	OperatorError,
	publishWorkflow,
	readWorkflowFile,
	runN8nCli,
	runScript,
	WORKFLOWS_DIR,
} from './workflowTools';

const USAGE = `Usage: scripts/import-workflows [options]

Imports the six bundled workflows (workflows/*.json) into n8n with its own CLI
(n8n import:workflow) and publishes each one (n8n publish:workflow), so their webhooks answer
after n8n's next start. Run it where n8n runs, with n8n's environment (DB_*, N8N_USER_FOLDER …).
Importing again replaces the workflows of the same ids (scripts/update-workflows updates them
in place instead, keeping the credentials and the published state chosen in n8n).

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
  --workflows <folder> the workflow files 01-*.json … 06-*.json (default: the package's workflows/)
  -h, --help           this text

After importing, (re)start n8n: workflows published from the CLI take effect at its start.`;

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			'n8n-cli': { type: 'string' },
			credentials: { type: 'boolean' },
			'no-publish': { type: 'boolean' },
			workflows: { type: 'string' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const cli = values['n8n-cli'] || process.env.N8N_CLI || 'n8n';
	const dir = values.workflows ? path.resolve(values.workflows) : WORKFLOWS_DIR;
	const workflows = bundledWorkflows(dir);

	const version = await runN8nCli(cli, ['--version']);
	if (version.code !== 0) throw new CliError(explainCli(`Running "${cli} --version"`, version));
	console.log(`n8n ${version.output.trim().split('\n').pop()} (${cli})`);

	const work = mkdtempSync(path.join(tmpdir(), 'crm-import-'));
	const removeWork = () => rmSync(work, { recursive: true, force: true });
	const forgetWork = onStop(removeWork);
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
			const imported = await runN8nCli(cli, ['import:credentials', `--input=${file}`]);
			if (imported.code !== 0 || !/Successfully imported/.test(imported.output)) throw new CliError(explainCli('n8n import:credentials', imported));
			console.log(`credentials: ${credentials.map((credential) => credential.name).join(', ')}`);
		}
		// Copies marked with their file's content hash, so scripts/update-workflows can tell an edit made in n8n from a new file.
		const copies = path.join(work, 'workflows');
		mkdirSync(copies);
		for (const workflow of workflows) writeFileSync(path.join(copies, workflow.file), JSON.stringify(importable(workflow, readWorkflowFile(dir, workflow.file))));
		const ids = new Set(workflows.map((workflow) => workflow.id));
		const published = (await exportWorkflows(cli, path.join(work, 'installed.json'))).filter((installed) => ids.has(installed.id) && isPublished(installed));
		await importOver(cli, copies, workflows.length, published);
		console.log(`imported ${workflows.length} workflows from ${dir}${published.length ? ` (replacing ${published.length} published one(s))` : ''}`);
		for (const workflow of workflows) {
			if (values['no-publish']) {
				console.log(`  ${workflow.number} ${workflow.title} (not published)`);
				continue;
			}
			await publishWorkflow(cli, workflow.id);
			console.log(`  ${workflow.number} ${workflow.title}: published, POST /webhook/${workflow.webhookPath}`);
		}
		if (!values['no-publish']) console.log('Restart n8n so the published workflows take effect.');
		return 0;
	} finally {
		forgetWork();
		removeWork();
	}
}

runScript(main, USAGE);
