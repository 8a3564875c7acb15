/**
 * scripts/update-workflows against a REAL n8n (scripts/real-n8n.sh): the workflows imported with
 * scripts/import-workflows, then an operator's choices made in n8n (another Postgres credential
 * for workflow 04, workflow 06 unpublished), then updates from a changed copy of workflows/.
 * n8n starts only after all that, so what it serves is what the updates left published.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { canonicalEmail, emailHash } from '../../lib/email';
import { bundledWorkflows, contentHash, deliver, PUBLISHED_NOTE, readPayload, readWorkflowFile, updateAction, WORKFLOWS_DIR, type WorkflowFile } from '../../scripts/workflowTools';
import { createTestSite, postgresCredential, testDbUrl, testPrisma } from '../helpers/db';
import { startRealN8n, type RealN8n } from '../helpers/realN8n';
import { TEST_SECRET } from '../helpers/receiver';

const ROOT = path.resolve(__dirname, '../..');
const OPS_CREDENTIAL = { id: 'opsCrmDatabase01', name: 'Ops CRM database', type: 'postgres' };
const NEW_PATH = 'crm-activity-logger-v2';

type Run = { code: number; output: string };

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 10 * 60_000): Promise<Run> {
	return new Promise((resolve) => {
		execFile(command, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
		});
	});
}

describe('updateAction: what update-workflows does with one workflow', () => {
	const file = readWorkflowFile(WORKFLOWS_DIR, bundledWorkflows()[3].file);
	const changed = { ...file, settings: { ...file.settings, executionTimeout: 300 } };
	const marked = (content: WorkflowFile, sourceHash: string): WorkflowFile => ({ ...content, meta: { trackingCrmSource: { file: 'x.json', hash: sourceHash } } });

	it.each([
		['n8n lacks it', undefined, contentHash(file), false, 'add'],
		['same content, other credentials', marked({ ...file, nodes: file.nodes.map((node) => ({ ...node, credentials: undefined })) }, contentHash(file)), contentHash(file), false, 'unchanged'],
		['the file changed, n8n holds what was imported', marked(file, contentHash(file)), contentHash(changed), false, 'update'],
		['the file changed, imported before the mark existed', file, contentHash(changed), false, 'update'],
		['edited in n8n, the file unchanged', marked(changed, contentHash(file)), contentHash(file), false, 'kept-edited'],
		['edited in n8n, the file changed', marked(changed, contentHash(file)), contentHash({ ...file, connections: {} }), false, 'needs-force'],
		['edited in n8n, the file changed, --force', marked(changed, contentHash(file)), contentHash({ ...file, connections: {} }), true, 'update'],
		['archived in n8n', { ...marked(file, contentHash(file)), isArchived: true }, contentHash(changed), false, 'archived'],
	] as const)('%s → %s', (_what, installed, fileHash, force, expected) => {
		expect(updateAction(fileHash, installed as WorkflowFile | undefined, force)).toBe(expected);
	});
});

describe('scripts/update-workflows in a real n8n', () => {
	const prisma = testPrisma();
	const work = mkdtempSync(path.join(tmpdir(), 'update-workflows-'));
	const changedDir = path.join(work, 'workflows');
	const runs: Record<string, Run> = {};
	const exported: Record<string, WorkflowFile[]> = {};
	let n8n: RealN8n;

	beforeAll(async () => {
		// A changed copy of workflows/: 04 listens on a new path, 06 stops a run after 5 minutes.
		cpSync(WORKFLOWS_DIR, changedDir, { recursive: true });
		const [, , , w04, , w06] = bundledWorkflows(changedDir);
		const edit = (file: string, change: (workflow: WorkflowFile) => void) => {
			const workflow = readWorkflowFile(changedDir, file);
			change(workflow);
			writeFileSync(path.join(changedDir, file), JSON.stringify(workflow, null, '\t'));
		};
		edit(w04.file, (workflow) => {
			workflow.nodes.find((node) => node.type.endsWith('.crmTrackerTrigger'))!.parameters.path = NEW_PATH;
		});
		edit(w06.file, (workflow) => {
			workflow.settings = { ...workflow.settings, executionTimeout: 300 };
		});

		n8n = await startRealN8n({
			workflows: [],
			credentials: [],
			webhookPaths: ['crm-visitor-processor', 'crm-conversion-detector', 'crm-lead-processor', NEW_PATH, 'crm-enrichment-engine'],
			prepare: async (cli) => {
				const n8nCli = (args: string[]) => run('bash', ['-c', `${cli.command} "$@"`, 'n8n', ...args], cli.env);
				const script = (name: string, args: string[], env: Record<string, string> = {}) => run(process.execPath, [path.join(ROOT, 'dist', 'scripts', `${name}.js`), '--n8n-cli', cli.command, ...args], { ...cli.env, ...env });
				const exportAll = async (label: string) => {
					const file = path.join(work, `${label}.json`);
					const result = await n8nCli(['export:workflow', '--all', `--output=${file}`]);
					if (result.code !== 0) throw new Error(`export:workflow failed:\n${result.output}`);
					exported[label] = JSON.parse(readFileSync(file, 'utf8')) as WorkflowFile[];
				};

				// The operator's own Postgres credential, the one that reaches the CRM database.
				const credentialsFile = path.join(work, 'ops-credential.json');
				writeFileSync(credentialsFile, JSON.stringify([{ ...OPS_CREDENTIAL, data: postgresCredential() }]));
				const credential = await n8nCli(['import:credentials', `--input=${credentialsFile}`]);
				if (!/Successfully imported 1 credential/.test(credential.output)) throw new Error(`import:credentials failed:\n${credential.output}`);

				// The bundled credentials as import-workflows makes them, its "CRM database" on a database that does not exist:
				// a workflow that fell back to it could not run.
				runs.imported = await script('import-workflows', ['--credentials'], { DATABASE_URL: `${testDbUrl()}_absent`, CRM_WEBHOOK_SECRET: TEST_SECRET });
				if (runs.imported.code !== 0) throw new Error(`import-workflows failed:\n${runs.imported.output}`);

				// In n8n: workflow 04 on the operator's credential; workflow 06 unpublished.
				await exportAll('imported');
				const w04 = exported.imported.find((workflow) => workflow.id === 'crm04ActivityLog')!;
				for (const node of w04.nodes) if (node.credentials?.postgres) node.credentials.postgres = { id: OPS_CREDENTIAL.id, name: OPS_CREDENTIAL.name };
				const w04File = path.join(work, 'w04-ops.json');
				const { id, name, nodes, connections, settings, meta } = w04;
				writeFileSync(w04File, JSON.stringify([{ id, name, nodes, connections, settings, meta }]));
				// n8n 2.41's CLI import refuses to replace a published workflow: unpublished first.
				const steps: Array<[string[], RegExp]> = [
					[['unpublish:workflow', '--id=crm04ActivityLog'], /Workflow unpublished successfully/],
					[['import:workflow', `--input=${w04File}`], /Successfully imported 1 workflow/],
					[['publish:workflow', '--id=crm04ActivityLog'], PUBLISHED_NOTE],
					[['unpublish:workflow', '--id=crm06EmailOrches'], /Workflow unpublished successfully/],
				];
				for (const [args, success] of steps) {
					const step = await n8nCli(args);
					if (!success.test(step.output)) throw new Error(`n8n ${args.join(' ')} failed:\n${step.output}`);
				}

				runs.unchangedFiles = await script('update-workflows', []);
				await exportAll('before');
				runs.dryRun = await script('update-workflows', ['--workflows', changedDir, '--dry-run']);
				await exportAll('afterDryRun');
				runs.update = await script('update-workflows', ['--workflows', changedDir]);
				runs.again = await script('update-workflows', ['--workflows', changedDir]);
				await exportAll('after');
			},
			env: { N8N_HOST: '127.0.0.1' },
		});
	}, 30 * 60_000);

	afterAll(async () => {
		await n8n?.stop();
		await prisma.$disconnect();
		rmSync(work, { recursive: true, force: true });
	});

	const byId = (label: string) => new Map(exported[label].map((workflow) => [workflow.id, workflow]));

	it('changes nothing while the files match what n8n holds, whatever credentials and published state were chosen in n8n', () => {
		expect([runs.unchangedFiles.code, runs.unchangedFiles.output]).toEqual([0, expect.stringContaining('Nothing to do: n8n holds the 6 workflows')]);
		expect(runs.unchangedFiles.output.match(/ unchanged$/gm)).toHaveLength(6);
		const imported = byId('imported');
		for (const workflow of exported.before) expect([workflow.id, workflow.versionId]).toEqual([workflow.id, workflow.id === 'crm04ActivityLog' ? expect.any(String) : imported.get(workflow.id)!.versionId]);
	});

	it('a dry run says what would change and changes nothing', () => {
		expect(runs.dryRun.code).toBe(0);
		expect(runs.dryRun.output).toMatch(/04 CRM 04 · Activity Logger +would be updated in place \(id crm04ActivityLog\), would be published again, credentials kept/);
		expect(runs.dryRun.output).toMatch(/06 CRM 06 · Email Orchestrator +would be updated in place \(id crm06EmailOrches\), left unpublished, as it was/);
		expect(runs.dryRun.output).toContain('dry run: 2 workflow(s) would be imported; nothing was changed.');
		const before = byId('before');
		for (const workflow of exported.afterDryRun) expect([workflow.id, workflow.versionId, workflow.activeVersionId]).toEqual([workflow.id, before.get(workflow.id)!.versionId, before.get(workflow.id)!.activeVersionId]);
	});

	it('updates the changed workflows in place: same ids, published state and credentials kept, the others untouched', () => {
		expect([runs.update.code, runs.update.output]).toEqual([0, expect.stringContaining('2 updated, 0 added, 4 untouched. Restart n8n')]);
		console.log(`update-workflows, first run:\n${runs.update.output}\nsecond run:\n${runs.again.output}`);
		const before = byId('before');
		const after = byId('after');
		expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
		const w04 = after.get('crm04ActivityLog')!;
		const w06 = after.get('crm06EmailOrches')!;
		expect(w04.nodes.find((node) => node.type.endsWith('.crmTrackerTrigger'))!.parameters.path).toBe(NEW_PATH);
		expect(w04.versionId).not.toBe(before.get('crm04ActivityLog')!.versionId);
		expect(w04.activeVersionId).toBe(w04.versionId);
		expect(w04.nodes.filter((node) => node.credentials?.postgres).map((node) => node.credentials!.postgres.id)).toEqual([OPS_CREDENTIAL.id]);
		expect(w06.settings?.executionTimeout).toBe(300);
		expect(w06.activeVersionId).toBeNull();
		for (const id of ['crm01VisitorProc', 'crm02Conversions', 'crm03LeadProcess', 'crm05Enrichment0']) {
			expect([id, after.get(id)!.versionId, after.get(id)!.activeVersionId]).toEqual([id, before.get(id)!.versionId, before.get(id)!.versionId]);
		}
		const changed = bundledWorkflows(changedDir);
		for (const workflow of changed) expect([workflow.id, contentHash(after.get(workflow.id)!)]).toEqual([workflow.id, contentHash(readWorkflowFile(changedDir, workflow.file))]);
	});

	it('run again, changes nothing', () => {
		expect([runs.again.code, runs.again.output]).toEqual([0, expect.stringContaining('Nothing to do')]);
		expect(runs.again.output.match(/ unchanged$/gm)).toHaveLength(6);
		const after = byId('after');
		expect(exported.after.map((workflow) => workflow.versionId)).toEqual(exported.after.map((workflow) => after.get(workflow.id)!.versionId));
	});

	it('n8n serves what the update published: 04 on its new path with the operator’s credential, 06 not at all', async () => {
		const registered = async (webhookPath: string) => {
			const response = await fetch(n8n.webhookUrl(webhookPath), { method: 'OPTIONS', headers: { origin: n8n.baseUrl } });
			return response.status !== 404 && (response.headers.get('access-control-allow-methods') ?? '').includes('POST');
		};
		expect(await registered(NEW_PATH)).toBe(true);
		expect(await registered('crm-activity-logger')).toBe(false);
		expect(await registered('crm-email-orchestrator')).toBe(false);

		const site = await createTestSite(prisma, 'update-wf');
		const email = `ops+${site.key}@example-vet.es`;
		const lead = await prisma.lead.create({ data: { siteId: site.id, email: canonicalEmail(email), emailHash: emailHash(email) }, select: { id: true } });
		const payload = readPayload('activity.json', site.key);
		const items = (payload.items as Array<Record<string, unknown>>).map((item) => ({ ...item, email }));
		const result = await deliver(n8n.baseUrl, NEW_PATH, TEST_SECRET, { ...payload, items });
		expect([result.status, result.body]).toEqual([200, expect.anything()]);
		expect(await prisma.activity.count({ where: { siteId: site.id, leadId: lead.id } })).toBeGreaterThan(0);
	}, 120_000);
});
