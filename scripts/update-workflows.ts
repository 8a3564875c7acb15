#!/usr/bin/env node
/** Brings the bundled workflows up to date in n8n, in place: same ids, the credentials and published state chosen in n8n. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import {
	bundledWorkflows,
	contentHash,
	exportWorkflows,
	importable,
	importOver,
	isPublished,
	onStop,
	OperatorError,
	publishWorkflow,
	readWorkflowFile,
	runScript,
	updateAction,
	WORKFLOWS_DIR,
	type BundledWorkflow,
	type CredentialRef,
	type NodeJson,
	type UpdateAction,
	type WorkflowFile,
} from './workflowTools';

const USAGE = `Usage: scripts/update-workflows [options]

Brings the six bundled workflows (workflows/*.json) up to date in n8n, in place, with n8n's own
CLI. A workflow whose nodes, connections or settings differ from its file is imported again
under its own id; its nodes keep the credentials chosen in n8n, and it is published again if
it was published (an unpublished one stays unpublished). A workflow that matches its file is
not touched. One that n8n does not have yet is imported and published. Run it where n8n runs,
with n8n's environment (DB_*, N8N_USER_FOLDER …), like scripts/import-workflows.

The import scripts note in each workflow the content of the file it came from, so a workflow
edited in n8n's editor since is told apart from a new file: it is left as it is while its file
is unchanged; when its file changed too, it is replaced only with --force.

Options:
  --n8n-cli <command>  how to run n8n's CLI (env N8N_CLI, default "n8n"), e.g. "npx n8n"
  --workflows <folder> the workflow files 01-*.json … 06-*.json (default: the package's workflows/)
  --force              also replace workflows edited in n8n whose file changed (their edits are
                       lost; keep them first with n8n export:workflow --id=<id> --output=<file>)
  --dry-run            print what would change; change nothing
  -h, --help           this text

Exit code 0 when n8n holds the files' workflows (already, or now), 1 when a step failed or an
edited workflow needs --force (then nothing was changed), 2 on bad usage.
Restart n8n after an update (main, webhook processors and workers): it reads published
workflows at its start.`;

interface Plan {
	workflow: BundledWorkflow;
	file: WorkflowFile;
	installed?: WorkflowFile;
	action: UpdateAction;
	/** Published in n8n before the update (n8n 2.x: an active version). */
	published: boolean;
	/** What is imported, when anything is. */
	next?: WorkflowFile;
}

/**
 * The credential a node of the new version uses: the one its namesake uses in n8n now, else the
 * one n8n's copies of the bundled workflows use for that type (the installation's choice), else
 * the file's.
 */
function credentialChooser(installed: WorkflowFile | undefined, everyInstalled: WorkflowFile[]): (node: NodeJson, type: string) => CredentialRef | undefined {
	const byType = new Map<string, CredentialRef>();
	for (const workflow of everyInstalled) for (const node of workflow.nodes) for (const [type, ref] of Object.entries(node.credentials ?? {})) if (ref?.id && !byType.has(type)) byType.set(type, ref);
	return (node, type) => {
		const namesake = installed?.nodes.find((candidate) => candidate.name === node.name)?.credentials?.[type];
		return namesake?.id ? namesake : byType.get(type);
	};
}

function credentialsOf(workflow: WorkflowFile): string {
	return JSON.stringify(
		workflow.nodes
			.filter((node) => node.credentials)
			.map((node) => [node.name, Object.fromEntries(Object.entries(node.credentials!).map(([type, ref]) => [type, ref.id]))])
			.sort(),
	);
}

function describeAction(plan: Plan, dryRun: boolean): string {
	const would = (done: string, planned: string) => (dryRun ? planned : done);
	switch (plan.action) {
		case 'unchanged':
			return 'unchanged';
		case 'kept-edited':
			return 'edited in n8n, its file unchanged: kept as it is';
		case 'archived':
			return 'archived in n8n: left alone (unarchive it to have it updated)';
		case 'needs-force':
			return 'edited in n8n, and its file changed: pass --force to replace it with the file (the edits are lost)';
		case 'add':
			return would('added and published (n8n did not have it)', 'would be added and published (n8n does not have it)');
		case 'update': {
			const kept = plan.next && plan.installed && credentialsOf(plan.next) === credentialsOf(plan.installed) ? 'credentials kept' : 'credentials kept where n8n has them';
			const publish = plan.published ? would('published again', 'would be published again') : 'left unpublished, as it was';
			return `${would('updated in place', 'would be updated in place')} (id ${plan.workflow.id}), ${publish}, ${kept}`;
		}
	}
}

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			'n8n-cli': { type: 'string' },
			workflows: { type: 'string' },
			force: { type: 'boolean' },
			'dry-run': { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const cli = values['n8n-cli'] || process.env.N8N_CLI || 'n8n';
	const dir = values.workflows ? path.resolve(values.workflows) : WORKFLOWS_DIR;
	const dryRun = Boolean(values['dry-run']);
	const bundled = bundledWorkflows(dir);

	const work = mkdtempSync(path.join(tmpdir(), 'crm-update-'));
	const removeWork = () => rmSync(work, { recursive: true, force: true });
	const forgetWork = onStop(removeWork);
	try {
		const before = await exportWorkflows(cli, path.join(work, 'before.json'));
		const plans: Plan[] = bundled.map((workflow) => {
			const file = readWorkflowFile(dir, workflow.file);
			const installed = before.find((candidate) => candidate.id === workflow.id);
			const action = updateAction(contentHash(file), installed, Boolean(values.force));
			const plan: Plan = { workflow, file, installed, action, published: installed ? isPublished(installed) : false };
			if (action === 'update' || action === 'add') plan.next = importable(workflow, file, credentialChooser(installed, before.filter((candidate) => bundled.some((one) => one.id === candidate.id))));
			return plan;
		});

		for (const plan of plans) console.log(`${plan.workflow.number} ${plan.workflow.title.padEnd(34)} ${describeAction(plan, dryRun || plans.some((one) => one.action === 'needs-force'))}`);
		const blocked = plans.filter((plan) => plan.action === 'needs-force');
		if (blocked.length) {
			throw new OperatorError(
				`Nothing was changed: ${blocked.map((plan) => `${plan.workflow.number} (${plan.workflow.id})`).join(', ')} ${blocked.length === 1 ? 'was' : 'were'} edited in n8n and ${blocked.length === 1 ? 'its file has' : 'their files have'} changed. Keep the edits (n8n export:workflow --id=<id>) and run again with --force, or bring them into the files.`,
			);
		}
		const changing = plans.filter((plan) => plan.next);
		if (changing.length === 0) {
			console.log(`Nothing to do: n8n holds the ${plans.length} workflows of ${dir}.`);
			return 0;
		}
		if (dryRun) {
			console.log(`dry run: ${changing.length} workflow(s) would be imported; nothing was changed.`);
			return 0;
		}

		const copies = path.join(work, 'import');
		mkdirSync(copies);
		for (const plan of changing) writeFileSync(path.join(copies, plan.workflow.file), JSON.stringify(plan.next));
		await importOver(cli, copies, changing.length, changing.filter((plan) => plan.published).map((plan) => plan.installed!));
		for (const plan of changing.filter((one) => one.action === 'add' || one.published)) await publishWorkflow(cli, plan.workflow.id);

		// What n8n holds now, checked against the plan: the content, the same id, the published state, the credentials.
		const after = await exportWorkflows(cli, path.join(work, 'after.json'));
		for (const plan of changing) {
			const now = after.find((candidate) => candidate.id === plan.workflow.id);
			const shouldPublish = plan.action === 'add' || plan.published;
			const problems = [
				!now && 'it is missing',
				now && contentHash(now) !== contentHash(plan.file) && 'its content differs from the file',
				now && isPublished(now) !== shouldPublish && `it is ${shouldPublish ? 'not published' : 'published'}`,
				now && shouldPublish && now.activeVersionId !== undefined && now.activeVersionId !== now.versionId && 'an older version is the published one',
				now && credentialsOf(now) !== credentialsOf(plan.next!) && 'its credentials differ from the ones chosen',
			].filter(Boolean);
			if (problems.length) throw new OperatorError(`After the import, ${plan.workflow.number} (${plan.workflow.id}) is not as planned: ${problems.join('; ')}. Look at it in n8n's editor.`);
		}
		const updated = changing.filter((plan) => plan.action === 'update').length;
		const added = changing.length - updated;
		console.log(`${updated} updated, ${added} added, ${plans.length - changing.length} untouched. Restart n8n (main, webhook processors, workers) so the published changes take effect.`);
		return 0;
	} finally {
		forgetWork();
		removeWork();
	}
}

runScript(main, USAGE);
