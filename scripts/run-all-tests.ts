#!/usr/bin/env node
/**
 * Sends every bundled workflow its test payload, in chain order, and prints one line each: for a
 * test site of its own, made for the run and removed after, so a production CRM keeps no test
 * lead and nobody gets an email.
 */
import { parseArgs } from 'node:util';

import { removeSite } from '../server/sites';
import { mailedLine, openCrmDatabase, prepareSelfTestSite, SELF_TEST_SITE, selfTestDomain, selfTestRows } from './selfTestSite';
import { bundledWorkflows, deliver, explainStatus, option, readPayload, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/run-all-tests [options]

Sends each of the six bundled workflows its payload from test-payloads/ (01 visitor.json,
02 conversion.json, 03 lead.json, 04 activity.json, 05 enrichment.json, 06 email.json) in
that order — 02 needs the events 01 stored — and prints status, time and item count of each.
Exit code 0 when all six succeed, 1 otherwise, 2 on bad usage.

Safe on a production installation: every payload is sent for a test site of its own
(${SELF_TEST_SITE}, domain ${selfTestDomain(SELF_TEST_SITE)}), which the script makes in the CRM database
before the run, with no email sequence, and removes with all its rows after it. No real site
gets a row, and no email is sent: the run fails if the test site has sent any.
scripts/n8n-node-tester sends for the same test site; a run removes what it kept.

Options:
  --n8n <url>         n8n's base URL (env N8N_URL, default http://127.0.0.1:5678)
  --secret <text>     the Tracking CRM API credential's webhook secret (env CRM_WEBHOOK_SECRET)
  --database <url>    the CRM database, the one n8n's "CRM database" credential uses
                      (env DATABASE_URL)
  --test-site <key>   the test site's key (default ${SELF_TEST_SITE}); a site of that key that
                      the script did not make (its domain is not <key>.invalid) is refused
  --keep              leave the test site's rows for a look (removed by the next run)
  --only <list>       e.g. --only 01,03
  -v, --verbose       print each workflow's answer
  -h, --help          this text

The package's own test suite is "npm test"; this checks a running installation. To send one
payload and see its answer, use scripts/n8n-node-tester.`;

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: {
			n8n: { type: 'string' },
			secret: { type: 'string' },
			database: { type: 'string' },
			'test-site': { type: 'string' },
			keep: { type: 'boolean' },
			only: { type: 'string' },
			verbose: { type: 'boolean', short: 'v' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const secret = option(values, 'secret', 'CRM_WEBHOOK_SECRET');
	if (!secret) throw new UsageError('No webhook secret: pass --secret or set CRM_WEBHOOK_SECRET');
	const n8nUrl = option(values, 'n8n', 'N8N_URL', 'http://127.0.0.1:5678')!;
	const siteKey = values['test-site'] ?? SELF_TEST_SITE;
	const only = values.only ? new Set(values.only.split(',').map((value) => value.trim().padStart(2, '0'))) : null;
	const workflows = bundledWorkflows().filter((workflow) => !only || only.has(workflow.number));
	if (workflows.length === 0) throw new UsageError(`--only ${values.only} selects no workflow (use 01…06)`);

	const db = await openCrmDatabase(option(values, 'database', 'DATABASE_URL'), 'run-all-tests');
	try {
		// A fresh test site each run: what an earlier run kept (--keep, n8n-node-tester) or left (a stop) goes first.
		const siteId = await prepareSelfTestSite(db.prisma, siteKey, { script: 'run-all-tests', fresh: true });
		console.log(`test site ${siteKey} (domain ${selfTestDomain(siteKey)}, no email sequences) in ${db.location}`);

		let failed = 0;
		for (const workflow of workflows) {
			const result = await deliver(n8nUrl, workflow.webhookPath, secret, readPayload(workflow.payload, siteKey));
			const ok = result.status >= 200 && result.status < 300;
			if (!ok) failed++;
			const items = Array.isArray(result.body) ? `${result.body.length} item(s)` : '';
			console.log(`${ok ? 'ok  ' : 'FAIL'}  ${workflow.number} ${workflow.name.padEnd(20)} ${String(result.status).padEnd(4)} ${String(result.ms).padStart(6)} ms  ${ok ? items : explainStatus(result, workflow)}`);
			if (values.verbose || !ok) console.log(JSON.stringify(result.body, null, 2).split('\n').map((line) => `      ${line}`).join('\n'));
		}
		if (failed) console.log(`If n8n's executions say 'No site with key "${siteKey}"', n8n's "CRM database" credential is not DATABASE_URL's database.`);

		const rows = await selfTestRows(db.prisma, siteId);
		if (rows.emails > 0) console.log(mailedLine(rows));
		if (values.keep) {
			console.log(`kept the test site's rows (${rows.leads} lead(s), ${rows.emails} email(s)); the next run removes them`);
		} else {
			await removeSite(db.prisma, siteId);
			console.log(`removed the test site and its rows (${rows.leads} lead(s), ${rows.emails} email(s))`);
		}
		console.log(`${workflows.length - failed} of ${workflows.length} workflows passed`);
		if (rows.emails > 0) return 1;
		return failed === 0 ? 0 : 1;
	} finally {
		await db.close();
	}
}

runScript(main, USAGE);
