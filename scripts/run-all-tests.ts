#!/usr/bin/env node
/**
 * Sends every bundled workflow its test payload, in chain order, and prints one line each: for a
 * test site of its own, made for the run and removed after, so a production CRM keeps no test
 * lead and nobody gets an email.
 */
import { parseArgs } from 'node:util';

import { parseSiteConfig } from '../lib/config/siteConfig';
import type { SiteConfig } from '../lib/contracts';
import { describePostgresUrl, openDatabase, type PrismaClient } from '../lib/db';
import { syncSites } from '../server/sites';
import { bundledWorkflows, deliver, explainStatus, option, OperatorError, readPayload, runScript, UsageError } from './workflowTools';

const DEFAULT_TEST_SITE = 'crm-selftest';

const USAGE = `Usage: scripts/run-all-tests [options]

Sends each of the six bundled workflows its payload from test-payloads/ (01 visitor.json,
02 conversion.json, 03 lead.json, 04 activity.json, 05 enrichment.json, 06 email.json) in
that order — 02 needs the events 01 stored — and prints status, time and item count of each.
Exit code 0 when all six succeed, 1 otherwise, 2 on bad usage.

Safe on a production installation: every payload is sent for a test site of its own
(${DEFAULT_TEST_SITE}, domain ${DEFAULT_TEST_SITE}.invalid), which the script makes in the CRM
database before the run, with no email sequence, and removes with all its rows after it. No
real site gets a row, and no email is sent: the run fails if the test site has sent any.

Options:
  --n8n <url>         n8n's base URL (env N8N_URL, default http://127.0.0.1:5678)
  --secret <text>     the Tracking CRM API credential's webhook secret (env CRM_WEBHOOK_SECRET)
  --database <url>    the CRM database, the one n8n's "CRM database" credential uses
                      (env DATABASE_URL)
  --test-site <key>   the test site's key (default ${DEFAULT_TEST_SITE}); a site of that key that
                      the script did not make (its domain is not <key>.invalid) is refused
  --keep              leave the test site's rows for a look (removed by the next run)
  --only <list>       e.g. --only 01,03
  -v, --verbose       print each workflow's answer
  -h, --help          this text

The package's own test suite is "npm test"; this checks a running installation. To send one
payload to a real site, use scripts/n8n-node-tester.`;

/** The test site: the payloads' rules, and no email sequence, so nothing is ever mailed. */
function selfTestSite(key: string): SiteConfig {
	return parseSiteConfig(
		{
			site: { key, name: 'Self-test of scripts/run-all-tests (removed after each run)', domain: `${key}.invalid` },
			tracking: { allowedOrigins: [`https://${key}.invalid`] },
			crm: {
				leadScoringRules: [
					{ event: 'pageview', score: 1, cap: 20, group: 'browsing' },
					{ event: 'pageview', urlPattern: '/**/pricing', score: 5, group: 'intent' },
					{ event: 'form_submit', score: 10 },
				],
				conversionRules: [{ name: 'contact-request', event: 'form_submit', value: 50, currency: 'EUR' }],
				emailSequences: [],
			},
		},
		'the self-test site',
	);
}

/** Tables keyed by site without a foreign key to it (the rollups' bookkeeping): emptied by hand. */
const UNLINKED_TABLES = ['analytics_dirty_hours', 'analytics_event_counts', 'analytics_session_facts', 'analytics_visitor_pairs'];

/**
 * Removes the test site and every row of it. Under the rollups' lock of the site, so a fold
 * running at the same time finishes before, or finds nothing after.
 */
async function removeSite(prisma: PrismaClient, siteId: string): Promise<void> {
	await prisma.$transaction(async (tx) => {
		await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', `analytics-rollup:${siteId}`);
		await tx.site.delete({ where: { id: siteId } });
		// The cascade's deletes note their hours for the rollups: those notes go too.
		for (const table of UNLINKED_TABLES) await tx.$executeRawUnsafe(`DELETE FROM ${table} WHERE site_id = $1::uuid`, siteId);
	});
}

async function testSiteRow(prisma: PrismaClient, key: string): Promise<{ id: string } | null> {
	const row = await prisma.site.findUnique({ where: { key }, select: { id: true, domain: true } });
	if (row && row.domain !== `${key}.invalid`) {
		throw new OperatorError(
			`The site "${key}" in the CRM database is a real site (domain ${row.domain}): run-all-tests writes only into a test site it made itself (domain ${key}.invalid). Pick another --test-site.`,
		);
	}
	return row;
}

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
	const databaseUrl = option(values, 'database', 'DATABASE_URL');
	if (!databaseUrl) {
		throw new UsageError(
			`No CRM database: set DATABASE_URL (or --database) to the database n8n's "CRM database" credential uses. The run's payloads go to a test site made there for the run and removed after it, so no real site gets a row.`,
		);
	}
	const n8nUrl = option(values, 'n8n', 'N8N_URL', 'http://127.0.0.1:5678')!;
	const siteKey = values['test-site'] ?? DEFAULT_TEST_SITE;
	const site = selfTestSite(siteKey);
	const only = values.only ? new Set(values.only.split(',').map((value) => value.trim().padStart(2, '0'))) : null;
	const workflows = bundledWorkflows().filter((workflow) => !only || only.has(workflow.number));
	if (workflows.length === 0) throw new UsageError(`--only ${values.only} selects no workflow (use 01…06)`);

	let db: Awaited<ReturnType<typeof openDatabase>>;
	try {
		db = await openDatabase({ url: databaseUrl, migrate: false });
	} catch (error) {
		throw new OperatorError(`Cannot open the CRM database ${describePostgresUrl(databaseUrl)}: ${(error as Error).message.split('\n')[0]}`);
	}
	try {
		// A fresh test site each run: what an earlier run kept (--keep) or left (a stop) goes first.
		const leftover = await testSiteRow(db.prisma, siteKey);
		if (leftover) await removeSite(db.prisma, leftover.id);
		const siteId = (await syncSites(db.prisma, [site])).get(siteKey)!;
		console.log(`test site ${siteKey} (domain ${site.site.domain}, no email sequences) in ${db.location}`);

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

		const [leads, emails] = await Promise.all([db.prisma.lead.count({ where: { siteId } }), db.prisma.emailMessage.count({ where: { siteId } })]);
		if (emails > 0) console.log(`FAIL  the test site has ${emails} email message(s): it has no sequences, so none may exist. Look at workflow 06 and the site's config.`);
		if (values.keep) {
			console.log(`kept the test site's rows (${leads} lead(s), ${emails} email(s)); the next run removes them`);
		} else {
			await removeSite(db.prisma, siteId);
			console.log(`removed the test site and its rows (${leads} lead(s), ${emails} email(s))`);
		}
		console.log(`${workflows.length - failed} of ${workflows.length} workflows passed`);
		if (emails > 0) return 1;
		return failed === 0 ? 0 : 1;
	} finally {
		await db.close();
	}
}

runScript(main, USAGE);
