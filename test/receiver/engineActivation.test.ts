/**
 * The embedded engine activates the bundled workflows' CRM Tracker Triggers as n8n does on
 * publishing: a trigger whose settings would refuse every delivery stops the start, naming its
 * workflow and the field, instead of starting and refusing every delivery.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

import { EmbeddedEngine } from '../../server/engine/engine';
import { prepareN8nEnvironment } from '../../server/engine/environment';
import { createLogger } from '../../server/logger';
import { postgresCredential } from '../helpers/db';

const ROOT = path.resolve(__dirname, '..', '..');

describe('embedded engine: trigger activation', () => {
	let workflowsDir: string;

	beforeAll(() => {
		prepareN8nEnvironment(path.join(tmpdir(), `tracking-crm-n8n-${userInfo().uid}`));
		workflowsDir = mkdtempSync(path.join(tmpdir(), 'engine-activation-'));
		cpSync(path.join(ROOT, 'workflows'), workflowsDir, { recursive: true });
	});

	afterAll(() => rmSync(workflowsDir, { recursive: true, force: true }));

	const start = () =>
		EmbeddedEngine.start({
			packageRoot: ROOT,
			workflowsDir,
			baseUrl: 'http://127.0.0.1:9',
			credentials: {
				trackingCrmApi: { receiverUrl: 'http://127.0.0.1:9', webhookSecret: 'engine-activation-secret', emailTokenSecret: '' },
				postgres: postgresCredential(),
				smtp: { host: '127.0.0.1', port: 9, secure: false, user: '', password: '' },
			},
			logger: createLogger({ level: 'silent' }),
		});

	it('starts on the bundled workflows, and refuses to start on one whose trigger has a Replay Window that is no number', async () => {
		const engine = await start();
		expect(engine.paths).toContain('crm-lead-processor');
		await engine.close();

		const file = path.join(workflowsDir, '03-lead-processor.json');
		const workflow = JSON.parse(readFileSync(file, 'utf8'));
		workflow.nodes.find((node: { type: string }) => node.type.endsWith('.crmTrackerTrigger')).parameters.toleranceSeconds = 'abc';
		writeFileSync(file, JSON.stringify(workflow));
		await expect(start()).rejects.toThrow(`Workflow "${workflow.name}" cannot be activated: Replay Window (Seconds): is "abc": give a number from 30 to 86400`);
	});
});
