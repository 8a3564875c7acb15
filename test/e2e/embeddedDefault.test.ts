/**
 * The product on its embedded default, as a newcomer runs it: `npm start` from an empty data
 * folder with the example config, no database server and no n8n, on a port that is not 3000. A
 * real Chromium with an ordinary browser profile browses the demo and sends its contact form;
 * the receiver's embedded n8n engine runs the six bundled workflows, and the welcome email lands
 * in the built-in mail catcher. Then the same flow with the receiver killed (SIGKILL) right after
 * it acknowledged the lead: after a restart nothing is lost and nothing is done twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { openDatabase, type Database } from '../../lib/db';
import { launchChromium, visitorContext } from '../helpers/browser';
import { childEnv, freePort } from '../helpers/builtReceiver';
import { linkedEvents } from '../helpers/db';

jest.setTimeout(300_000);

const ROOT = path.join(__dirname, '..', '..');
const EXAMPLE = path.join(ROOT, 'config', 'site.example.json');
const SCREENSHOTS = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'embedded-default');

interface Started {
	child: ChildProcess;
	output: () => string;
	exited: Promise<number | null>;
}

/** `npm start`'s own script (what `npm start` runs), until it prints where everything is. */
async function npmStart(port: number, dataDir: string): Promise<Started> {
	const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'start.mjs')], {
		cwd: ROOT,
		env: childEnv({ PORT: String(port), DATA_DIR: dataDir, SITE_CONFIG: EXAMPLE, LOG_LEVEL: 'warn' }),
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	let output = '';
	child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
	child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
	const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
	let gone = false;
	void exited.then(() => (gone = true));
	const deadline = Date.now() + 120_000;
	while (!/Health: +http/.test(output)) {
		if (gone) throw new Error(`npm start exited:\n${output}`);
		if (Date.now() > deadline) {
			child.kill('SIGKILL');
			throw new Error(`npm start printed no summary within 120 s:\n${output}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
	return { child, output: () => output, exited };
}

async function stop(started: Started, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
	started.child.kill(signal);
	await started.exited;
}

interface Caught {
	id: string;
	toAddresses: string[];
	subject: string;
	unsubscribeUrl: string | null;
}

async function caughtMail(base: string, to: string): Promise<Caught[]> {
	const response = await fetch(`${base}/mailbox/api/messages?to=${encodeURIComponent(to)}`);
	if (!response.ok) throw new Error(`/mailbox/api/messages answered ${response.status}`);
	return ((await response.json()) as { messages: Caught[] }).messages;
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs: number, what: string): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await read().catch(() => undefined);
		if (value !== undefined && done(value)) return value;
		if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what} (last: ${JSON.stringify(value)?.slice(0, 500)})`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** Browses the demo as a person does and sends the contact form; returns the page and the tracker's id of this browser. */
async function browseAndSubmit(browser: Browser, base: string, email: string, screenshot: string): Promise<{ page: Page; visitorId: string; submittedAt: number }> {
	const context = await visitorContext(browser);
	const page = await context.newPage();
	await page.goto(`${base}/demo/?utm_source=newsletter&utm_medium=email&utm_campaign=spring`);
	await page.click('#consent-yes');
	await page.click('a[href="/demo/pricing"]');
	await page.waitForURL(/\/demo\/pricing$/);
	await page.mouse.wheel(0, 1500);
	await page.waitForTimeout(1500);
	await page.click('a[href="/demo/contact"]');
	await page.waitForURL(/\/demo\/contact$/);
	await page.fill('input[name="firstName"]', 'Jane');
	await page.fill('input[name="email"]', email);
	await page.fill('input[name="company"]', 'Clinica Veterinaria Sol');
	await page.check('input[name="consent"]');
	// The tracker keeps its values JSON-encoded.
	const visitorId = JSON.parse((await page.evaluate(() => localStorage.getItem('tcrm.id'))) ?? 'null') as string | null;
	if (!visitorId) throw new Error('the tracker made no id for this browser');
	const submittedAt = Date.now();
	await page.click('button[type="submit"]');
	await page.waitForURL(/\/demo\/thanks$/);
	await page.screenshot({ path: screenshot, fullPage: true });
	return { page, visitorId, submittedAt };
}

interface Panel {
	receiver: { events: number };
	lead: { stage: string; score: number } | null;
}

/** What the demo's panel shows of this browser (GET /demo/crm, answered on this machine). */
async function panel(base: string, visitorId: string): Promise<Panel> {
	const response = await fetch(`${base}/demo/crm?visitor=${visitorId}`);
	if (!response.ok) throw new Error(`/demo/crm answered ${response.status}`);
	return (await response.json()) as Panel;
}

/** Events of the lead's browsers that the Visitor Processor has not put in a session. */
async function unsessionedEventsOfLead(prisma: Database['prisma'], leadId: string): Promise<number> {
	const visitors = await prisma.visitor.findMany({ where: { leadId }, select: { anonymousId: true } });
	expect(visitors.length).toBeGreaterThan(0);
	return (await linkedEvents(prisma, { anonymousIds: visitors.map((visitor) => visitor.anonymousId) })).filter((event) => event.sessionId === null).length;
}

async function crmCounts(db: Database, email: string) {
	const { prisma } = db;
	const lead = await prisma.lead.findFirst({ where: { email }, include: { tags: true } });
	const leadId = lead?.id ?? '00000000-0000-0000-0000-000000000000';
	const visitors = await prisma.visitor.findMany({ where: { leadId } });
	const visitorIds = visitors.map((visitor) => visitor.id);
	return {
		lead,
		visitors: visitors.length,
		sessions: await prisma.visitorSession.findMany({ where: { visitorId: { in: visitorIds } } }),
		events: (await linkedEvents(prisma, { anonymousIds: visitors.map((visitor) => visitor.anonymousId) })).filter((event) => event.visitorId !== null).length,
		conversions: await prisma.conversion.findMany({ where: { visitorId: { in: visitorIds } }, include: { attributions: true } }),
		timeline: await prisma.activity.count({ where: { leadId } }),
		ledger: await prisma.leadScore.count({ where: { leadId } }),
		emails: await prisma.emailMessage.findMany({ where: { leadId } }),
		caught: await prisma.mailboxMessage.count({ where: { toAddresses: { has: email } } }),
		pendingOutbox: await prisma.outboxMessage.count({ where: { status: { not: 'delivered' } } }),
	};
}

describe('the embedded default: npm start, the demo, the whole CRM loop', () => {
	let browser: Browser;
	const folders: string[] = [];

	beforeAll(async () => {
		mkdirSync(SCREENSHOTS, { recursive: true });
		browser = await launchChromium();
	});

	afterAll(async () => {
		await browser?.close();
		for (const folder of folders) rmSync(folder, { recursive: true, force: true });
	});

	const emptyDataDir = () => {
		const folder = mkdtempSync(path.join(tmpdir(), 'tcrm-embedded-'));
		folders.push(folder);
		return path.join(folder, 'data');
	};

	it('turns a visit and a contact form into a session, a conversion, a scored and enriched lead and a welcome email within 10 s', async () => {
		const port = await freePort();
		const dataDir = emptyDataDir();
		const receiver = await npmStart(port, dataDir);
		const base = `http://127.0.0.1:${port}`;
		const email = `jane.${Date.now()}@clinica-sol.es`;
		try {
			expect(receiver.output()).toMatch(/Engine: +the embedded n8n engine/);
			const health = await fetch(`${base}/health`);
			expect([health.status, await health.json()]).toEqual([200, { status: 'ok', version: expect.any(String), engine: 'embedded n8n engine' }]);

			const { page, visitorId, submittedAt } = await browseAndSubmit(browser, base, email, path.join(SCREENSHOTS, 'contact-sent.png'));
			const [welcome] = await until(() => caughtMail(base, email), (messages) => messages.length > 0, 10_000 - (Date.now() - submittedAt), `the welcome email to ${email} in the mail catcher within 10 s of the form`);
			const seconds = (Date.now() - submittedAt) / 1000;
			expect(welcome.subject).toMatch(/Welcome/);
			await page.goto(`${base}/demo/`);
			await until(() => panel(base, visitorId), (seen) => seen.lead?.stage === 'lead', 10_000, 'the panel showing the lead');
			await page.waitForTimeout(2500);
			await page.screenshot({ path: path.join(SCREENSHOTS, 'demo-panel.png'), fullPage: true });

			await page.goto(`${base}/mailbox/messages/${welcome.id}`);
			await page.screenshot({ path: path.join(SCREENSHOTS, 'mailbox-welcome.png'), fullPage: true });
			expect(welcome.unsubscribeUrl).toMatch(new RegExp(`^${base}/e/u/`));
			const unsubscribe = await fetch(welcome.unsubscribeUrl!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
			expect(unsubscribe.status).toBe(200);
			// The unsubscribe reaches workflow 06 through the outbox; then nothing is pending.
			await until(async () => (await fetch(`${base}/health`)).status, (status) => status === 200, 10_000, 'a healthy receiver after the unsubscribe');
			await new Promise((resolve) => setTimeout(resolve, 2000));
			const stored = (await panel(base, visitorId)).receiver.events;
			await stop(receiver);

			const db = await openDatabase({ url: null, dataDir, owner: 'the embedded default test' });
			try {
				const counts = await crmCounts(db, email);
				console.log(
					`welcome email in the catcher ${seconds.toFixed(1)} s after the form was sent; events stored ${stored}, visitors ${counts.visitors}, sessions ${counts.sessions.length} ` +
						`(engagement ${counts.sessions.map((session) => session.engagementLevel).join(', ')}), events ${counts.events}, conversions ${counts.conversions.length} ` +
						`(${counts.conversions[0]?.attributions.length ?? 0} attribution rows), lead score ${counts.lead?.score} stage ${counts.lead?.lifecycleStage}, ` +
						`tags ${counts.lead?.tags.map((tag) => tag.tag).join(', ')}, score ledger ${counts.ledger}, timeline ${counts.timeline}, emails ${counts.emails.length}, caught ${counts.caught}`,
				);
				expect(counts.visitors).toBe(1);
				expect(counts.sessions).toHaveLength(1);
				expect(counts.sessions[0].engagementScore).toBeGreaterThan(0);
				expect(counts.events).toBe(stored);
				expect(await unsessionedEventsOfLead(db.prisma, counts.lead!.id)).toBe(0);
				expect(counts.conversions.map((conversion) => conversion.goal)).toEqual(['contact-request']);
				expect(counts.conversions[0].attributions.length).toBeGreaterThan(0);
				expect(counts.lead?.score).toBeGreaterThanOrEqual(10);
				expect(counts.lead?.lifecycleStage).toBe('lead');
				expect(counts.lead?.timezone).toBeTruthy();
				expect(counts.lead?.tags.length).toBeGreaterThan(0);
				expect(counts.ledger).toBeGreaterThan(0);
				expect(counts.timeline).toBeGreaterThan(0);
				expect(counts.emails.map((message) => message.status)).toEqual(['sent']);
				expect(counts.caught).toBe(1);
				expect(counts.pendingOutbox).toBe(0);
				expect(await db.prisma.suppression.count({ where: { emailHash: counts.lead!.emailHash } })).toBe(1);
			} finally {
				await db.close();
			}
		} finally {
			if (receiver.child.exitCode === null) await stop(receiver, 'SIGKILL');
		}
	});

	it('loses nothing and does nothing twice when the receiver is killed (SIGKILL) mid-flow and started again', async () => {
		const port = await freePort();
		const dataDir = emptyDataDir();
		const base = `http://127.0.0.1:${port}`;
		const email = `kill.${Date.now()}@clinica-sol.es`;
		const first = await npmStart(port, dataDir);
		let before: Panel | undefined;
		let caughtBefore = 0;
		let anonymousId = '';
		let killedAt = 0;
		try {
			const { page, visitorId } = await browseAndSubmit(browser, base, email, path.join(SCREENSHOTS, 'before-kill.png'));
			// The moment workflow 03 has made the lead; 05 and 06 (enrichment, the welcome email) are still to run.
			anonymousId = visitorId;
			before = await until(() => panel(base, visitorId), (seen) => seen.lead !== null, 30_000, 'the lead');
			caughtBefore = (await caughtMail(base, email)).length;
			first.child.kill('SIGKILL');
			killedAt = Date.now();
			await first.exited;
			await page.context().close();
		} finally {
			if (first.child.exitCode === null && first.child.signalCode === null) await stop(first, 'SIGKILL');
		}
		const second = await npmStart(port, dataDir);
		try {
			// The killed delivery's lease runs out (DISPATCH_TIMEOUT_MS × 2 + 5 s) before it is sent again; a stage
			// change whose hand-off to 06 died with the process is caught up by 06's every-minute schedule, as is
			// an enrollment the killed run had claimed, once its one-minute claim has lapsed. Only a kill inside the
			// SMTP conversation itself leaves no email to wait for: the checks below tell the cases apart.
			await until(() => caughtMail(base, email), (messages) => messages.length > 0, 180_000, `the welcome email to ${email} after the restart`).catch(() => undefined);
			await until(async () => (await fetch(`${base}/health`)).status, (status) => status === 200, 30_000, 'a healthy receiver');
			// The email may come before a delivery the killed process had leased is sent again: wait out the
			// lease (DISPATCH_TIMEOUT_MS × 2 + 5 s, the default timeout 10 s) and its new delivery's run.
			await new Promise((resolve) => setTimeout(resolve, Math.max(3000, killedAt + 25_000 + 15_000 - Date.now())));
			await stop(second);
			const db = await openDatabase({ url: null, dataDir, owner: 'the embedded default test' });
			try {
				const counts = await crmCounts(db, email);
				console.log(
					`SIGKILL when the lead existed (${before?.receiver.events} events stored, ${caughtBefore} emails caught); after the restart: events ${counts.events} ` +
						`(of this browser ${await db.prisma.visitorEvent.count({ where: { anonymousId } })}), sessions ${counts.sessions.length}, conversions ${counts.conversions.length}, leads 1, ` +
						`emails ${counts.emails.map((message) => message.status).join(', ')}, caught ${counts.caught}, outbox pending ${counts.pendingOutbox}`,
				);
				// Every event stored before the kill is still there, and workflow 01 joined each to the visitor, save the
				// form's identify event: it goes to workflow 03 as the lead, and 01 joins it when it next reads this
				// visitor's events, which a browser closed after the form may never send.
				const ofBrowser = await linkedEvents(db.prisma, { anonymousIds: [anonymousId] });
				expect(ofBrowser.length).toBeGreaterThanOrEqual(before!.receiver.events);
				expect(ofBrowser.filter((event) => event.visitorId === null && event.type !== 'identify')).toEqual([]);
				expect(await unsessionedEventsOfLead(db.prisma, counts.lead!.id)).toBe(0);
				expect(counts.sessions).toHaveLength(1);
				// Each goal once. The engaged pricing visit may count too: its rule reads the session's
				// engagement when the page view is processed, which after the restart can be later.
				const goals = counts.conversions.map((conversion) => conversion.goal).sort();
				expect(goals).toEqual([...new Set(goals)]);
				expect(goals.filter((goal) => goal !== 'engaged-pricing-visit')).toEqual(['contact-request']);
				expect(await db.prisma.lead.count({ where: { email } })).toBe(1);
				// Sent and caught once; or, killed between reserving the email and recording the server's answer, still
				// reserved (`sending`) and never sent again: at most once, whether or not the catcher had taken it.
				expect(counts.emails).toHaveLength(1);
				expect(['sent, caught 1', 'sending, caught 0', 'sending, caught 1']).toContain(`${counts.emails[0].status}, caught ${counts.caught}`);
				expect(counts.pendingOutbox).toBe(0);
			} finally {
				await db.close();
			}
		} finally {
			if (second.child.exitCode === null) await stop(second, 'SIGKILL');
		}
	});
});
