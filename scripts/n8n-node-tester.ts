#!/usr/bin/env node
/**
 * Sends one test payload to one bundled workflow in n8n and prints what the workflow answered: for
 * the test site scripts/run-all-tests uses, so a production CRM's real sites get no test row and
 * nobody gets an email.
 */
import { parseArgs } from 'node:util';

import { removeSite } from '../server/sites';
import { findSelfTestSite, mailedLine, openCrmDatabase, prepareSelfTestSite, SELF_TEST_SITE, selfTestDomain, selfTestRows } from './selfTestSite';
import { bundledWorkflows, deliver, explainStatus, findWorkflow, option, readPayload, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/n8n-node-tester test <workflow> [payload.json] [options]
       scripts/n8n-node-tester list
       scripts/n8n-node-tester clean [--database <url>] [--test-site <key>]

Sends a payload to one bundled workflow's CRM Tracker Trigger, signed the way the receiver's
outbox signs, waits for the workflow to finish and prints its answer (the last node's items).
Exit code 0 when the workflow succeeded, 1 when it failed or n8n is not reachable, 2 on bad usage.

Safe on a production installation: the payload is sent for the test site of
scripts/run-all-tests (${SELF_TEST_SITE}, domain ${selfTestDomain(SELF_TEST_SITE)}), whatever site the payload
file names; --site, which sent for any site, is refused. The script makes the test site in the
CRM database when it is missing, with no email sequence and no double opt-in: no real site gets
a row, and nobody is mailed, whatever addresses the payload holds (the call fails if the test
site has an email message). The test site's rows are kept between calls, so that 02 finds the
events 01 stored; "clean" removes the test site and its rows, and so does the next
scripts/run-all-tests.

  <workflow>      01…06, a name (visitor-processor) or a file name (01-visitor-processor)
  [payload.json]  a delivery ({ "events": [...] }, { "leads": [...] }, { "emailEvents": [...] })
                  or handed-on items ({ "items": [...] }); default: the workflow's payload in
                  test-payloads/

Options:
  --n8n <url>         n8n's base URL (env N8N_URL, default http://127.0.0.1:5678)
  --secret <text>     the webhook secret of the Tracking CRM API credential (env CRM_WEBHOOK_SECRET)
  --database <url>    the CRM database, the one n8n's "CRM database" credential uses
                      (env DATABASE_URL)
  --test-site <key>   the test site's key (default ${SELF_TEST_SITE}); a site of that key that
                      the scripts did not make (its domain is not <key>.invalid) is refused
  --json              print only the answer as JSON
  -h, --help          this text

Example:
  CRM_WEBHOOK_SECRET=… DATABASE_URL=… scripts/n8n-node-tester test 01 test-payloads/visitor.json`;

/** The tester sends for the test site only: a --site naming any other is refused, not obeyed. */
function refuseSite(site: string | undefined, testSite: string): void {
	if (site === undefined || site === testSite) return;
	throw new UsageError(
		`--site ${site}: n8n-node-tester sends only for its test site ${testSite} (domain ${selfTestDomain(testSite)}), so that no real site gets a test row and nobody is mailed. Leave --site out (--test-site <key> names another test site); a real site's traffic comes from its tracker through the receiver.`,
	);
}

async function main(argv: string[]): Promise<number> {
	const { values, positionals } = parseArgs({
		args: argv,
		allowPositionals: true,
		options: {
			n8n: { type: 'string' },
			secret: { type: 'string' },
			database: { type: 'string' },
			'test-site': { type: 'string' },
			site: { type: 'string' },
			json: { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
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
	const siteKey = values['test-site'] ?? SELF_TEST_SITE;
	refuseSite(values.site, siteKey);
	if (command === 'clean') return clean(option(values, 'database', 'DATABASE_URL'), siteKey);
	if (command !== 'test' || !reference) throw new UsageError(`Expected "test <workflow> [payload.json]", "list" or "clean".`);
	const workflow = findWorkflow(reference);
	const secret = option(values, 'secret', 'CRM_WEBHOOK_SECRET');
	if (!secret) throw new UsageError('No webhook secret: pass --secret or set CRM_WEBHOOK_SECRET to the Tracking CRM API credential’s Webhook Secret');
	const n8nUrl = option(values, 'n8n', 'N8N_URL', 'http://127.0.0.1:5678')!;
	const payload = readPayload(payloadFile ?? workflow.payload, siteKey);

	const db = await openCrmDatabase(option(values, 'database', 'DATABASE_URL'), 'n8n-node-tester');
	try {
		const siteId = await prepareSelfTestSite(db.prisma, siteKey, { script: 'n8n-node-tester', fresh: false });
		const result = await deliver(n8nUrl, workflow.webhookPath, secret, payload);
		const ok = result.status >= 200 && result.status < 300;
		const rows = await selfTestRows(db.prisma, siteId);
		if (values.json) {
			console.log(JSON.stringify(result.body, null, 2));
		} else {
			console.log(`${workflow.number} ${workflow.title} ← ${payloadFile ?? `test-payloads/${workflow.payload}`}, for the test site ${siteKey} in ${db.location}`);
			console.log(`POST ${result.url} → ${result.status} in ${result.ms} ms${ok ? '' : ` — ${explainStatus(result, workflow)}`}`);
			console.log(JSON.stringify(result.body, null, 2));
			console.log(`the test site's rows are kept (${rows.leads} lead(s), ${rows.emails} email(s)): "scripts/n8n-node-tester clean" removes them`);
		}
		if (rows.emails > 0) console.error(mailedLine(rows));
		return ok && rows.emails === 0 ? 0 : 1;
	} finally {
		await db.close();
	}
}

/** Removes the test site and its rows; nothing to do when there is none. */
async function clean(databaseUrl: string | undefined, siteKey: string): Promise<number> {
	const db = await openCrmDatabase(databaseUrl, 'n8n-node-tester');
	try {
		const site = await findSelfTestSite(db.prisma, siteKey, 'n8n-node-tester');
		if (!site) {
			console.log(`no test site ${siteKey} in ${db.location}: nothing to remove`);
			return 0;
		}
		const rows = await selfTestRows(db.prisma, site.id);
		await removeSite(db.prisma, site.id);
		console.log(`removed the test site ${siteKey} and its rows (${rows.leads} lead(s), ${rows.emails} email(s)) from ${db.location}`);
		return 0;
	} finally {
		await db.close();
	}
}

runScript(main, USAGE);
