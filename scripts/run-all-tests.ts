#!/usr/bin/env node
/** Sends every bundled workflow its test payload, in chain order, and prints one line each. */
import { parseArgs } from 'node:util';

import { bundledWorkflows, deliver, explainStatus, option, readPayload, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/run-all-tests [options]

Sends each of the six bundled workflows its payload from test-payloads/ (01 visitor.json,
02 conversion.json, 03 lead.json, 04 activity.json, 05 enrichment.json, 06 email.json) in
that order — 02 needs the events 01 stored — and prints status, time and item count of each.
Exit code 0 when all six succeed, 1 otherwise, 2 on bad usage. The payloads are idempotent:
running again changes nothing in the CRM.

Options:
  --n8n <url>       n8n's base URL (env N8N_URL, default http://127.0.0.1:5678)
  --secret <text>   the Tracking CRM API credential's webhook secret (env CRM_WEBHOOK_SECRET)
  --site <key>      the site every payload is for and signed for (env SITE_KEY; default as in the files)
  --only <list>     e.g. --only 01,03
  -v, --verbose     print each workflow's answer
  -h, --help        this text

The package's own test suite is "npm test"; this checks a running installation.`;

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: { n8n: { type: 'string' }, secret: { type: 'string' }, site: { type: 'string' }, only: { type: 'string' }, verbose: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' } },
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const secret = option(values, 'secret', 'CRM_WEBHOOK_SECRET');
	if (!secret) throw new UsageError('No webhook secret: pass --secret or set CRM_WEBHOOK_SECRET');
	const n8nUrl = option(values, 'n8n', 'N8N_URL', 'http://127.0.0.1:5678')!;
	const site = option(values, 'site', 'SITE_KEY');
	const only = values.only ? new Set(values.only.split(',').map((value) => value.trim().padStart(2, '0'))) : null;
	const workflows = bundledWorkflows().filter((workflow) => !only || only.has(workflow.number));
	if (workflows.length === 0) throw new UsageError(`--only ${values.only} selects no workflow (use 01…06)`);

	let failed = 0;
	for (const workflow of workflows) {
		const result = await deliver(n8nUrl, workflow.webhookPath, secret, readPayload(workflow.payload, site));
		const ok = result.status >= 200 && result.status < 300;
		if (!ok) failed++;
		const items = Array.isArray(result.body) ? `${result.body.length} item(s)` : '';
		console.log(`${ok ? 'ok  ' : 'FAIL'}  ${workflow.number} ${workflow.name.padEnd(20)} ${String(result.status).padEnd(4)} ${String(result.ms).padStart(6)} ms  ${ok ? items : explainStatus(result, workflow)}`);
		if (values.verbose || !ok) console.log(JSON.stringify(result.body, null, 2).split('\n').map((line) => `      ${line}`).join('\n'));
	}
	console.log(`${workflows.length - failed} of ${workflows.length} workflows passed`);
	return failed === 0 ? 0 : 1;
}

runScript(main, USAGE);
