/**
 * scripts/run-all-tests and scripts/n8n-node-tester on what stands for a production installation:
 * a REAL n8n running the six bundled workflows on a CRM database that holds a real site with a
 * welcome sequence, and a real SMTP server process behind n8n's SMTP credential. The scripts'
 * traffic must stay in their test site, leave the database as they found it and mail nobody; the
 * same payloads delivered for the real site do mail (the control).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { bundleCredentials } from '../../scripts/bundleCredentials';
import { bundledWorkflows, deliver, readPayload, readWorkflowFile, WORKFLOWS_DIR } from '../../scripts/workflowTools';
import { syncSites } from '../../server/sites';
import { eventually } from '../helpers/browser';
import { startRealN8n, type RealN8n, type WorkflowJson } from '../helpers/realN8n';
import { TEST_SECRET } from '../helpers/receiver';
import { SmtpSink } from '../helpers/smtpSink';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const ROOT = path.resolve(__dirname, '../..');
const REAL_SITE = `real-${randomBytes(4).toString('hex')}`;
const LEAD_EMAIL = 'ana.garcia+pets@example-vet.es';

function script(name: string, args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, [path.join(ROOT, 'dist', 'scripts', `${name}.js`), ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 5 * 60_000 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
		});
	});
}

/**
 * Every table's row count, without the rows of `exceptSite` when given: a run that leaves the
 * database as it found it leaves these equal.
 */
async function tableCounts(prisma: PrismaClient, exceptSite?: string): Promise<Record<string, number>> {
	const tables = await prisma.$queryRawUnsafe<Array<{ name: string; keyed: boolean }>>(
		`SELECT t.tablename AS name, EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_schema = 'public' AND c.table_name = t.tablename AND c.column_name = 'site_id') AS keyed
		FROM pg_tables t WHERE t.schemaname = 'public' ORDER BY 1`,
	);
	const counts: Record<string, number> = {};
	for (const { name, keyed } of tables) {
		const where = !exceptSite ? '' : name === 'sites' ? 'WHERE id <> $1::uuid' : keyed ? 'WHERE site_id IS DISTINCT FROM $1::uuid' : '';
		const [{ n }] = await prisma.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM public."${name}" ${where}`, ...(where ? [exceptSite] : []));
		counts[name] = Number(n);
	}
	return counts;
}

describe('scripts/run-all-tests and scripts/n8n-node-tester on a production installation', () => {
	let database = { name: '', url: '' };
	let prisma: PrismaClient;
	let smtp: SmtpSink;
	let n8n: RealN8n;
	let env: Record<string, string>;

	beforeAll(async () => {
		// A CRM database of its own: workflow 06's schedule sends the due steps of every site in it.
		database = await createTestDatabase('tcrm_runall');
		await deployMigrations(new PrismaPg({ connectionString: database.url }));
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		// The real site, as the receiver writes it from its config: the payloads' form is a lead, and a lead gets a welcome email.
		await syncSites(prisma, [
			parseSiteConfig({
				site: { key: REAL_SITE, name: 'A real site', domain: 'nat-pets.com' },
				tracking: { allowedOrigins: ['https://nat-pets.com'] },
				crm: {
					leadScoringRules: [
						{ event: 'pageview', score: 1, cap: 20, group: 'browsing' },
						{ event: 'pageview', urlPattern: '/**/pricing', score: 5, group: 'intent' },
						{ event: 'form_submit', score: 10 },
					],
					conversionRules: [{ name: 'contact-request', event: 'form_submit', value: 50, currency: 'EUR' }],
					emailSequences: [{ name: 'welcome', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p><p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p>' }] }],
				},
				integrations: { emailProvider: { type: 'smtp', fromEmail: 'hello@nat-pets.com', fromName: 'NAT-PETS' } },
			}),
		]);
		smtp = await SmtpSink.start();
		n8n = await startRealN8n({
			workflows: bundledWorkflows().map((workflow) => readWorkflowFile(WORKFLOWS_DIR, workflow.file) as unknown as WorkflowJson),
			credentials: bundleCredentials({
				DATABASE_URL: database.url,
				CRM_WEBHOOK_SECRET: TEST_SECRET,
				RECEIVER_URL: 'http://127.0.0.1:9',
				EMAIL_TOKEN_SECRET: randomBytes(24).toString('hex'),
				SMTP_URL: `smtp://127.0.0.1:${smtp.port}?starttls=off`,
			}),
			// The hand-offs reach the next workflow through this instance's own URL.
			env: { N8N_HOST: '127.0.0.1' },
		});
		env = { N8N_URL: n8n.baseUrl, CRM_WEBHOOK_SECRET: TEST_SECRET, DATABASE_URL: database.url };
	}, 30 * 60_000);

	afterAll(async () => {
		await n8n?.stop();
		await smtp?.stop();
		await prisma?.$disconnect();
		if (database.name) await dropTestDatabase(database.name);
	});

	it('passes all six on a test site of its own, leaves the database as it found it and mails nobody', async () => {
		const before = await tableCounts(prisma);
		const run = await script('run-all-tests', [], env);
		expect([run.code, run.output]).toEqual([0, expect.stringContaining('6 of 6 workflows passed')]);
		expect(run.output).toContain('test site crm-selftest (domain crm-selftest.invalid, no email sequences)');
		expect(run.output).toMatch(/removed the test site and its rows \(1 lead\(s\), 0 email\(s\)\)/);
		expect(await tableCounts(prisma)).toEqual(before);
		expect(await smtp.messages()).toEqual([]);
		console.log(run.output);
	}, 5 * 60_000);

	it('with --keep, leaves the test site’s rows for a look — a scored lead, a conversion, no email — and the next run removes them', async () => {
		const kept = await script('run-all-tests', ['--keep'], env);
		expect([kept.code, kept.output]).toEqual([0, expect.stringContaining("kept the test site's rows")]);
		const site = await prisma.site.findUniqueOrThrow({ where: { key: 'crm-selftest' } });
		expect(site.domain).toBe('crm-selftest.invalid');
		const lead = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id } });
		expect([lead.email, lead.lifecycleStage, lead.score > 0]).toEqual([LEAD_EMAIL, 'lead', true]);
		expect(await prisma.conversion.count({ where: { siteId: site.id, goal: 'contact-request' } })).toBe(1);
		expect(await prisma.emailMessage.count({ where: { siteId: site.id } })).toBe(0);
		const real = await prisma.site.findUniqueOrThrow({ where: { key: REAL_SITE } });
		expect(await prisma.lead.count({ where: { siteId: real.id } })).toBe(0);

		const next = await script('run-all-tests', [], env);
		expect([next.code, next.output]).toEqual([0, expect.stringContaining('6 of 6 workflows passed')]);
		expect(await prisma.site.count({ where: { key: 'crm-selftest' } })).toBe(0);
		expect(await smtp.messages()).toEqual([]);
	}, 5 * 60_000);

	it('n8n-node-tester sends for the test site only: its rows land there and no other site gets one, nobody is mailed, and clean removes them', async () => {
		const before = await tableCounts(prisma);
		const real = await prisma.site.findUniqueOrThrow({ where: { key: REAL_SITE } });
		const outsideRealBefore = await tableCounts(prisma, real.id);
		for (const workflow of ['01', '02', '03', '04', '05', '06']) {
			const run = await script('n8n-node-tester', ['test', workflow], env);
			expect([workflow, run.code, run.output]).toEqual([workflow, 0, expect.stringMatching(/for the test site crm-selftest in [^]*→ 200 in \d+ ms[^]*the test site's rows are kept \(\d lead\(s\), 0 email\(s\)\)/)]);
		}
		const site = await prisma.site.findUniqueOrThrow({ where: { key: 'crm-selftest' } });
		expect(site.domain).toBe('crm-selftest.invalid');
		// The payload's lead, scored and converted, in the test site; the real site and the rest of the database as they were.
		const lead = await prisma.lead.findFirstOrThrow({ where: { siteId: site.id } });
		expect([lead.email, lead.lifecycleStage, lead.score > 0]).toEqual([LEAD_EMAIL, 'lead', true]);
		expect(await prisma.conversion.count({ where: { siteId: site.id } })).toBe(1);
		expect(await tableCounts(prisma, site.id)).toEqual(before);
		// …and those counts do see the test site's rows, where they are.
		expect(await tableCounts(prisma, real.id)).not.toEqual(outsideRealBefore);
		expect(await prisma.emailMessage.count()).toBe(0);
		expect(await smtp.messages(LEAD_EMAIL)).toEqual([]);

		const clean = await script('n8n-node-tester', ['clean'], env);
		expect([clean.code, clean.output]).toEqual([0, expect.stringMatching(/removed the test site crm-selftest and its rows \(1 lead\(s\), 0 email\(s\)\)/)]);
		expect(await tableCounts(prisma)).toEqual(before);
		expect(await smtp.messages()).toEqual([]);
	}, 5 * 60_000);

	it('never takes a real site for its test site, and needs the CRM database', async () => {
		const before = await tableCounts(prisma);
		const real = await script('run-all-tests', ['--test-site', REAL_SITE], env);
		expect([real.code, real.output]).toEqual([1, expect.stringContaining(`The site "${REAL_SITE}" in the CRM database is a real site (domain nat-pets.com)`)]);
		const { DATABASE_URL: _database, ...withoutDatabase } = env;
		const noDatabase = await script('run-all-tests', [], withoutDatabase);
		expect([noDatabase.code, noDatabase.output]).toEqual([2, expect.stringContaining('No CRM database: set DATABASE_URL')]);
		const oldOption = await script('run-all-tests', ['--site', REAL_SITE], env);
		expect([oldOption.code, oldOption.output]).toEqual([2, expect.stringContaining("Unknown option '--site'")]);

		const testerSite = await script('n8n-node-tester', ['test', '03', '--site', REAL_SITE], env);
		expect([testerSite.code, testerSite.output]).toEqual([2, expect.stringContaining(`--site ${REAL_SITE}: n8n-node-tester sends only for its test site crm-selftest (domain crm-selftest.invalid)`)]);
		const testerRealTestSite = await script('n8n-node-tester', ['test', '03', '--test-site', REAL_SITE], env);
		expect([testerRealTestSite.code, testerRealTestSite.output]).toEqual([1, expect.stringContaining(`The site "${REAL_SITE}" in the CRM database is a real site (domain nat-pets.com): n8n-node-tester writes only`)]);
		const testerNoDatabase = await script('n8n-node-tester', ['test', '03'], withoutDatabase);
		expect([testerNoDatabase.code, testerNoDatabase.output]).toEqual([2, expect.stringContaining('No CRM database: set DATABASE_URL')]);
		expect(await tableCounts(prisma)).toEqual(before);
	}, 5 * 60_000);

	it('control: the same six payloads delivered for the real site, as its receiver would, do write a lead and mail it the welcome email', async () => {
		for (const workflow of bundledWorkflows()) {
			const result = await deliver(n8n.baseUrl, workflow.webhookPath, TEST_SECRET, readPayload(workflow.payload, REAL_SITE));
			expect([workflow.number, result.status]).toEqual([workflow.number, 200]);
		}
		const real = await prisma.site.findUniqueOrThrow({ where: { key: REAL_SITE } });
		expect(await prisma.lead.count({ where: { siteId: real.id } })).toBe(1);
		const mails = await eventually(() => smtp.messages(LEAD_EMAIL), (list) => list.length > 0, 90_000);
		expect(mails[0].parsed.subject).toBe('Welcome, Ana');
	}, 5 * 60_000);
});
