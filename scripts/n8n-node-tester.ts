#!/usr/bin/env node
/** Sends one test payload to one bundled workflow in n8n and prints what the workflow answered. */
import { parseArgs } from 'node:util';

import { bundledWorkflows, deliver, explainStatus, findWorkflow, option, readPayload, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/n8n-node-tester test <workflow> [payload.json] [options]
       scripts/n8n-node-tester list

Sends a payload to one bundled workflow's CRM Tracker Trigger, signed for its site the way the
receiver's outbox signs, waits for the workflow to finish and prints its answer (the last
node's items).
Exit code 0 when the workflow succeeded, 1 when it failed or n8n is not reachable, 2 on bad usage.

  <workflow>      01…06, a name (visitor-processor) or a file name (01-visitor-processor)
  [payload.json]  a delivery ({ "events": [...] }, { "leads": [...] }, { "emailEvents": [...] })
                  or handed-on items ({ "items": [...] }); default: the workflow's payload in
                  test-payloads/

Options:
  --n8n <url>       n8n's base URL (env N8N_URL, default http://127.0.0.1:5678)
  --secret <text>   the webhook secret of the Tracking CRM API credential (env CRM_WEBHOOK_SECRET)
  --site <key>      the site the payload is for and signed for (env SITE_KEY; default: as in the file)
  --json            print only the answer as JSON
  -h, --help        this text

Example:
  CRM_WEBHOOK_SECRET=… scripts/n8n-node-tester test 01 test-payloads/visitor.json --site nat-pets`;

async function main(argv: string[]): Promise<number> {
	const { values, positionals } = parseArgs({
		args: argv,
		allowPositionals: true,
		options: { n8n: { type: 'string' }, secret: { type: 'string' }, site: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
	});
	const [command, reference, payloadFile] = positionals;
	if (values.help || !command || command === 'help') {
		console.log(USAGE);
		return command || values.help ? 0 : 2;
	}
	if (command === 'list') {
		for (const workflow of bundledWorkflows()) console.log(`${workflow.number}  ${workflow.name.padEnd(20)} /webhook/${workflow.webhookPath.padEnd(24)} test-payloads/${workflow.payload}`);
		return 0;
	}
	if (command !== 'test' || !reference) throw new UsageError(`Expected "test <workflow> [payload.json]" or "list".`);
	const workflow = findWorkflow(reference);
	const secret = option(values, 'secret', 'CRM_WEBHOOK_SECRET');
	if (!secret) throw new UsageError('No webhook secret: pass --secret or set CRM_WEBHOOK_SECRET to the Tracking CRM API credential’s Webhook Secret');
	const n8nUrl = option(values, 'n8n', 'N8N_URL', 'http://127.0.0.1:5678')!;
	const payload = readPayload(payloadFile ?? workflow.payload, option(values, 'site', 'SITE_KEY'));
	const result = await deliver(n8nUrl, workflow.webhookPath, secret, payload);
	const ok = result.status >= 200 && result.status < 300;
	if (values.json) {
		console.log(JSON.stringify(result.body, null, 2));
	} else {
		console.log(`${workflow.number} ${workflow.title} ← ${payloadFile ?? `test-payloads/${workflow.payload}`}`);
		console.log(`POST ${result.url} → ${result.status} in ${result.ms} ms${ok ? '' : ` — ${explainStatus(result, workflow)}`}`);
		console.log(JSON.stringify(result.body, null, 2));
	}
	return ok ? 0 : 1;
}

runScript(main, USAGE);
