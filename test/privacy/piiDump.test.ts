/**
 * Personal data at rest (issue #19) on the product as a newcomer runs it: the receiver on its
 * embedded database (a data folder) with its embedded n8n engine running the bundled workflows,
 * and a site with privacy.encryptPii whose keys are in the environment. A real Chromium fills a
 * form with a name, an address, a phone and a free-text message, which the site's script sends as
 * a lead property; the workflows score the lead and send its welcome email, which the built-in
 * mail catcher keeps. Then every row of every table of the data folder's database, read as text
 * (for that folder the honest equivalent of a pg_dump), holds neither the address nor its local
 * part, the names, the phone, the company or the message in clear, in any case, and neither do the
 * folder's files (tables, indexes, write-ahead log) read as bytes; the privacy export answers them
 * in clear, and the dashboard's lead page and the mailbox show them.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import { openDatabase } from '../../lib/db';
import { emailHash } from '../../lib/email';
import { isSealed, openLead, parsePiiKeys, PII_HASH_KEY_ENV, PII_KEYS_ENV, PiiCipher } from '../../lib/pii';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { eventually, launchChromium, servePages, trackedPage, visit, visitorContext, type PageServer } from '../helpers/browser';

jest.setTimeout(240_000);

declare const tcrm: (method: string, ...args: unknown[]) => void;

const OUTPUT = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'pii-dump');
const newKey = () => randomBytes(32).toString('base64');

/** Lowercase letters only, so a name reads as one and cannot turn up by chance in hex ids or base64 seals. */
const letters = (length: number) => Array.from(randomBytes(length), (byte) => String.fromCharCode(97 + (byte % 26))).join('');
const capitalized = (word: string) => word[0].toUpperCase() + word.slice(1);

/** A person whose every value is unique to this run, so finding one in the dump cannot be chance. */
function person() {
	const tag = letters(6);
	const subscriber = String(randomInt(20_000_000, 99_999_999));
	return {
		email: `mara.${tag}@praxis-${tag}.example`,
		firstName: `Mara${capitalized(letters(5))}`,
		lastName: `Vell${letters(6)}`,
		phone: `+49 30 ${subscriber}`,
		e164: `+4930${subscriber}`,
		company: `Praxis ${capitalized(tag)} GmbH`,
		message: `Please call me about the ${letters(8)} implant before Friday`,
	};
}

const CONTACT_FORM = `
<form id="contact" onsubmit="event.preventDefault(); document.body.dataset.sent = 'yes'">
	<label>First name <input name="firstName"></label>
	<label>Last name <input name="lastName"></label>
	<label>Email <input name="email" type="email"></label>
	<label>Phone <input name="phone" type="tel"></label>
	<label>Company <input name="company"></label>
	<label>Message <textarea name="message"></textarea></label>
	<label><input name="consent" type="checkbox"> Email me about my enquiry</label>
	<button>Send</button>
</form>
<script>
	// The site's own script sends the form with its message as a lead property (the tracker sends the
	// form's fields too, but the receiver keeps none it cannot map). Registered before the deferred
	// tracker's listener, so it is the lead's first submission, whose properties the lead keeps.
	addEventListener('submit', function (event) {
		var form = event.target;
		tcrm('identify', form.email.value, { firstName: form.firstName.value, lastName: form.lastName.value, phone: form.phone.value, company: form.company.value, consent: form.consent.checked, properties: { message: form.message.value } });
	}, true);
</script>`;

/** The site: a lead with a page view is at stage "lead", which sends the welcome email greeting it by name. */
function sealedSite(origin: string): SiteConfig {
	const key = `sealed-${letters(8)}`;
	return parseSiteConfig({
		site: { key, name: 'Praxis', domain: `${key}.example` },
		tracking: { allowedOrigins: [origin] },
		privacy: { cookieConsent: false, encryptPii: true },
		crm: {
			leadScoringRules: [{ event: 'pageview', score: 5 }],
			lifecycleStages: [
				{ name: 'subscriber', minScore: 0 },
				{ name: 'lead', minScore: 5 },
			],
			emailSequences: [
				{
					name: 'welcome',
					trigger: { stage: 'lead' },
					steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}} {{lastName}}', html: '<p>Hi {{firstName}} {{lastName}}, we will call you at {{phone}}.</p><p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p>' }],
				},
			],
		},
		integrations: { emailProvider: { type: 'smtp', fromEmail: `hello@${key}.example`, fromName: 'Praxis' } },
	});
}

interface Caught {
	id: string;
	toAddresses: string[];
	subject: string;
}

async function caughtMail(base: string, to: string): Promise<Caught[]> {
	const response = await fetch(`${base}/mailbox/api/messages?to=${encodeURIComponent(to)}`);
	if (!response.ok) throw new Error(`/mailbox/api/messages answered ${response.status}`);
	return ((await response.json()) as { messages: Caught[] }).messages;
}

/** Every row of every table of the public schema as text, one `table: row` line each. */
async function dumpRows(query: (sql: string) => Promise<Array<Record<string, unknown>>>): Promise<string[]> {
	const tables = await query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`);
	const lines: string[] = [];
	for (const { table_name: table } of tables as Array<{ table_name: string }>) {
		const rows = await query(`SELECT t::text AS row FROM public."${table.replace(/"/g, '""')}" t`);
		for (const { row } of rows as Array<{ row: string }>) lines.push(`${table}: ${row}`);
	}
	return lines;
}

/** The lines of the dump that hold one of the values, each named with the value found. */
function clearIn(lines: string[], values: string[]): string[] {
	return lines.flatMap((line) => values.filter((value) => line.toLowerCase().includes(value.toLowerCase())).map((value) => `${value} in ${line.slice(0, 300)}`));
}

/** The files under `dir` (tables, indexes, the write-ahead log) that hold one of the values, read as bytes, each named with the value. */
function clearInFiles(dir: string, values: string[]): string[] {
	const files = (readdirSync(dir, { recursive: true }) as string[]).map((name) => path.join(dir, name)).filter((file) => statSync(file).isFile());
	return files.flatMap((file) => {
		const bytes = readFileSync(file).toString('latin1').toLowerCase();
		return values.filter((value) => bytes.includes(value.toLowerCase())).map((value) => `${value} in ${path.relative(dir, file)}`);
	});
}

describe('a site with privacy.encryptPii on the embedded default: a dump of its database holds no lead’s personal data in clear', () => {
	const keys = { encryption: `k1:${newKey()}`, hash: newKey() };
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	const folder = mkdtempSync(path.join(tmpdir(), 'tcrm-pii-dump-'));
	const dataDir = path.join(folder, 'data');
	const lead = person();
	let site: SiteConfig;
	let pages: PageServer;
	let receiver: Receiver;
	let browser: Browser;
	let siteId: string;
	let leadId: string;
	let anonymousId: string;
	let welcomeId: string;

	beforeAll(async () => {
		mkdirSync(OUTPUT, { recursive: true });
		// The receiver checks the keys at its start; its routes and the engine's nodes read them from the process's environment.
		process.env[PII_KEYS_ENV] = keys.encryption;
		process.env[PII_HASH_KEY_ENV] = keys.hash;
		pages = await servePages((page) => (page === '/contact' || page === '/home' ? trackedPage(receiver.url, site.site.key, {}, page === '/contact' ? CONTACT_FORM : '<main>Home</main>') : undefined));
		site = sealedSite(pages.origin);
		receiver = await startReceiver({
			sites: [site],
			database: { url: null, dataDir },
			settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50 },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		browser = await launchChromium();
	});

	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
		rmSync(folder, { recursive: true, force: true });
	});

	it('turns a visitor’s form into a sealed lead and a welcome email the mail catcher keeps', async () => {
		expect([receiver.db.kind, receiver.engine?.paths.length, receiver.mailCatcher === undefined]).toEqual(['embedded', 6, false]);
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/home`);
		await visit(page, `${pages.origin}/contact`);
		await page.evaluate(() => tcrm('consent', 'granted'));
		await page.fill('input[name="firstName"]', lead.firstName);
		await page.fill('input[name="lastName"]', lead.lastName);
		await page.fill('input[name="email"]', lead.email);
		await page.fill('input[name="phone"]', lead.phone);
		await page.fill('input[name="company"]', lead.company);
		await page.fill('textarea[name="message"]', lead.message);
		await page.check('input[name="consent"]');
		await page.click('button');
		await page.waitForSelector('body[data-sent="yes"]');
		anonymousId = JSON.parse((await page.evaluate(() => localStorage.getItem('tcrm.id'))) ?? 'null') as string;
		// The page's close sends what the tracker still holds.
		await page.close({ runBeforeUnload: true });
		await context.close();

		const [welcome] = await eventually(() => caughtMail(receiver.url, lead.email), (messages) => messages.length > 0, 90_000);
		welcomeId = welcome.id;
		expect([welcome.toAddresses, welcome.subject]).toEqual([[lead.email], `Welcome, ${lead.firstName} ${lead.lastName}`]);
		const { prisma } = receiver.db;
		await eventually(() => prisma.outboxMessage.count({ where: { status: { not: 'delivered' } } }), (pending) => pending === 0, 60_000);

		const cipher = new PiiCipher(parsePiiKeys(keys.encryption, keys.hash), siteId);
		const [stored] = await prisma.lead.findMany({ where: { siteId } });
		leadId = stored.id;
		expect(stored.emailHash).toBe(emailHash(lead.email, cipher));
		expect([stored.email, stored.firstName, stored.lastName, stored.phone, stored.company, stored.properties].map((value) => isSealed(typeof value === 'string' ? value : ''))).toEqual([true, true, true, true, true, true]);
		expect(openLead(cipher, stored)).toMatchObject({ email: lead.email, firstName: lead.firstName, lastName: lead.lastName, phone: lead.e164, company: lead.company, properties: { message: lead.message }, lifecycleStage: 'lead' });
	});

	it('answers the privacy export with the clear address, names, phone and message', async () => {
		const admin = await createApiKey(receiver.db.prisma, siteId, 'admin', 'privacy-officer');
		const response = await fetch(`${receiver.url}/api/privacy/export?email=${encodeURIComponent(lead.email.toUpperCase())}`, { headers: { authorization: `Bearer ${admin}` } });
		expect(response.status).toBe(200);
		const body = (await response.json()) as { leads: Array<Record<string, unknown>>; emailMessages: Array<Record<string, unknown>>; formSubmissions: Array<{ payload: { lead: Record<string, unknown> } }> };
		expect(body.leads).toEqual([expect.objectContaining({ id: leadId, email: lead.email, firstName: lead.firstName, lastName: lead.lastName, phone: lead.e164, company: lead.company, properties: { message: lead.message } })]);
		expect(body.emailMessages).toEqual([expect.objectContaining({ toEmail: lead.email, subject: `Welcome, ${lead.firstName} ${lead.lastName}`, status: 'sent' })]);
		for (const submission of body.formSubmissions) expect(submission.payload.lead).toMatchObject({ email: lead.email, firstName: lead.firstName, lastName: lead.lastName, phone: lead.phone });
		// The site's submission with its message, and the tracker's of the form's fields.
		expect(body.formSubmissions.map((submission) => submission.payload.lead.properties)).toEqual(expect.arrayContaining([{ message: lead.message }]));
		expect(JSON.stringify(body)).not.toContain('pii1:');
	});

	it('shows the lead opened on the dashboard’s lead page and the welcome email opened in the mailbox', async () => {
		const [firstKey] = receiver.firstKeys;
		const context = await visitorContext(browser);
		const page: Page = await context.newPage();
		try {
			await page.goto(`${receiver.url}/dashboard`);
			await page.fill('#key', firstKey.key);
			await Promise.all([page.waitForURL(/\/dashboard\/visitors/), page.click('button[type=submit]')]);
			await page.goto(`${receiver.url}/dashboard/leads/${leadId}`);
			const leadPage = await page.content();
			await page.screenshot({ path: path.join(OUTPUT, 'lead-page.png'), fullPage: true });
			expect(leadPage).toContain(`${lead.firstName} ${lead.lastName} · ${lead.email}`);
			for (const value of [lead.e164, lead.company, lead.message, `Welcome, ${lead.firstName} ${lead.lastName}`]) expect(leadPage).toContain(value);
			expect(leadPage).not.toContain('pii1:');

			await page.goto(`${receiver.url}/mailbox/messages/${welcomeId}`);
			await page.screenshot({ path: path.join(OUTPUT, 'mailbox-welcome.png'), fullPage: true });
			const mail = await page.content();
			for (const value of [lead.email, `Welcome, ${lead.firstName} ${lead.lastName}`]) expect(mail).toContain(value);
			expect(mail).not.toContain('pii1:');
			const preview = await (await fetch(`${receiver.url}/mailbox/messages/${welcomeId}/html`)).text();
			expect(preview).toContain(`Hi ${lead.firstName} ${lead.lastName}, we will call you at ${lead.e164}.`);
		} finally {
			await context.close();
		}
	});

	it('leaves no address, local part, name, phone, company or message in clear in any row of any table, nor in the data folder’s files', async () => {
		await receiver.close();
		const db = await openDatabase({ url: null, dataDir, owner: 'the PII dump test' });
		let lines: string[];
		try {
			lines = await dumpRows((sql) => db.prisma.$queryRawUnsafe(sql));
		} finally {
			await db.close();
		}
		const dump = lines.join('\n');
		// The dump reads the rows that carry the person: the lead, the browser's events, the sealed values, the mail.
		for (const present of [leadId, anonymousId, welcomeId, 'pii1:']) expect(dump).toContain(present);
		const tables = new Set(lines.map((line) => line.slice(0, line.indexOf(':'))));
		for (const table of ['leads', 'visitor_events', 'outbox', 'email_messages', 'mailbox_messages', 'activities']) expect(tables).toContain(table);

		const values = [lead.email, lead.email.split('@')[0], lead.firstName, lead.lastName, lead.phone, lead.e164, lead.e164.slice(1), lead.company, lead.message];
		const found = clearIn(lines, values);
		console.log(`dump of ${lines.length} rows in ${tables.size} tables; clear values found: ${found.length ? found.join('\n') : 'none'}`);
		expect(found).toEqual([]);
		// Nor do the folder's files, where a deleted or updated row may linger until it is vacuumed: what a copy of the folder gives away.
		expect(clearInFiles(dataDir, values)).toEqual([]);
	});
});
