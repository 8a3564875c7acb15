/**
 * The README's and the guides' screenshots, made by this test and not drawn by hand: the built
 * receiver on its embedded default with the example config (what `npm start` runs), one person
 * doing in Chromium, with an ordinary browser profile, what docs/getting-started.md has its reader
 * do (open /demo/ directly, accept, Pricing and scroll, the contact form, Home; then the email from
 * the mailbox's list; then the dashboards, signed in with the read key the first start prints).
 * The guide shows these pictures and says what they count, so no other visit is made. Each picture
 * is saved to docs/screenshots/ only after the page shows what the guides say it shows.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { eventually, launchChromium, visitorContext } from '../helpers/browser';
import { childEnv, freePort, startBuilt, type Started } from '../helpers/builtReceiver';

jest.setTimeout(300_000);

const ROOT = path.join(__dirname, '..', '..');
const SHOTS = path.join(ROOT, 'docs', 'screenshots');
const EXAMPLE = path.join(ROOT, 'config', 'site.example.json');
/** A desktop browser window, the width the README's images are shown at. */
const VIEWPORT = { width: 1280, height: 860 };

interface Receiver {
	started: Started;
	base: string;
	readKey: string;
}

/** The built receiver as `npm start` runs it, once it printed where everything is and the first read key. */
async function startReceiver(dataDir: string): Promise<Receiver> {
	const port = await freePort();
	const started = startBuilt('server/main.js', [], childEnv({ PORT: String(port), DATA_DIR: dataDir, SITE_CONFIG: EXAMPLE }));
	let printed = '';
	started.child.stdout!.on('data', (chunk: string) => (printed += chunk));
	let exited = false;
	void started.exited.then(() => (exited = true));
	const deadline = Date.now() + 120_000;
	while (!/Health: +http/.test(printed)) {
		if (exited) throw new Error(`the receiver exited:\n${(await started.exited).stderr}`);
		if (Date.now() > deadline) {
			started.child.kill('SIGKILL');
			throw new Error(`the receiver printed no summary within 120 s:\n${printed}`);
		}
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
	const readKey = /Read key: +(tcrm_read_\S+) \(site nat-pets;/.exec(printed)?.[1];
	if (!readKey) {
		started.child.kill('SIGKILL');
		throw new Error(`the first start printed no read key for nat-pets:\n${printed}`);
	}
	return { started, base: `http://127.0.0.1:${port}`, readKey };
}

async function readJson<T>(url: string, key?: string): Promise<T> {
	const response = await fetch(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});
	if (!response.ok) throw new Error(`${url} answered ${response.status}`);
	return (await response.json()) as T;
}

/** The dashboard's headline figures by name, as their data attributes hold them. */
async function figures(page: Page): Promise<Record<string, string>> {
	const pairs = await page.$$eval('[data-figure]', (elements) => elements.map((element) => [(element as HTMLElement).dataset.figure!, (element as HTMLElement).dataset.value ?? ''] as const));
	return Object.fromEntries(pairs);
}

/** The window as a person sees it, or from the top down to the end of `through` when that lies further down. */
async function shot(page: Page, name: string, through?: string): Promise<void> {
	const bottom = through ? await page.$eval(through, (element) => Math.ceil(element.getBoundingClientRect().bottom + window.scrollY) + 24) : 0;
	const clip = bottom > VIEWPORT.height ? { x: 0, y: 0, width: VIEWPORT.width, height: bottom } : undefined;
	await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: Boolean(clip), clip });
}

describe('the documentation screenshots, from the demo as people use it', () => {
	let browser: Browser;
	let receiver: Receiver;
	let folder: string;
	const email = 'jane@clinica-sol.es';

	beforeAll(async () => {
		mkdirSync(SHOTS, { recursive: true });
		folder = mkdtempSync(path.join(tmpdir(), 'tcrm-screenshots-'));
		receiver = await startReceiver(path.join(folder, 'data'));
		browser = await launchChromium();
	});

	afterAll(async () => {
		await browser?.close();
		if (receiver) {
			receiver.started.child.kill('SIGTERM');
			await receiver.started.exited;
		}
		rmSync(folder, { recursive: true, force: true });
	});

	async function personPage(): Promise<Page> {
		const page = await (await visitorContext(browser)).newPage();
		await page.setViewportSize(VIEWPORT);
		return page;
	}

	it('demo.png: the demo after the guide\'s visit and the contact form, its panel showing the lead, its score and the welcome email', async () => {
		const { base } = receiver;
		const page = await personPage();
		await page.goto(`${base}/demo/`);
		// The guide promises this line until Accept; it comes with the site's settings, before the panel's first poll after the one at load (2 s).
		await page.waitForFunction(() => (document.getElementById('crm-panel')?.textContent ?? '').includes('Waiting for your consent'), null, { timeout: 1500 });
		await page.click('#consent-yes');
		await page.click('nav a[href="/demo/pricing"]');
		await page.waitForURL(/\/demo\/pricing$/);
		await page.mouse.wheel(0, 1500);
		await page.waitForTimeout(1500);
		await page.click('a:text-is("Talk to us")');
		await page.waitForURL(/\/demo\/contact$/);
		await page.fill('input[name="firstName"]', 'Jane');
		await page.fill('input[name="email"]', email);
		await page.fill('input[name="company"]', 'Clinica Veterinaria Sol');
		await page.check('input[name="consent"]');
		await Promise.all([page.waitForURL(/\/demo\/thanks$/), page.click('button[type="submit"]')]);
		await Promise.all([page.waitForURL(/\/demo\/$/), page.click('nav a[href="/demo/"]')]);
		// The panel shows the email "sending" for a moment before it says "sent".
		await page.waitForFunction(() => /Email: “Welcome[^”]*” sent/.test(document.getElementById('crm-panel')?.textContent ?? ''), null, { timeout: 60_000 });
		const panel = (await page.textContent('#crm-panel')) ?? '';
		expect(panel).toMatch(/Receiver: \d+ events of this browser stored/);
		expect(panel).toMatch(/Session: \d+ pages, engagement (low|medium|high)/);
		expect(panel).toContain('Conversions: contact-request');
		expect(panel).toMatch(/Lead: stage lead, score \d+/);
		expect(panel).toContain('event:form_submit → +15');
		expect(panel).toContain('Email: “Welcome to NAT-PETS, Jane” sent');
		await shot(page, 'demo');
		await page.close({ runBeforeUnload: true });
	});

	it('mailbox.png: the welcome email in the built-in mail catcher, opened from its list as the guide says, with its tracked links and unsubscribe', async () => {
		const { base } = receiver;
		const { messages } = await readJson<{ messages: Array<{ id: string; subject: string; toAddresses: string[]; unsubscribeUrl: string | null }> }>(`${base}/mailbox/api/messages?to=${encodeURIComponent(email)}`);
		expect(messages.map((message) => message.subject)).toEqual(['Welcome to NAT-PETS, Jane']);
		expect(messages[0].unsubscribeUrl).toMatch(new RegExp(`^${base}/e/u/`));
		const page = await personPage();
		await page.goto(`${base}/mailbox`);
		const listed = await page.$$eval('#messages tbody tr', (rows) => rows.map((row) => Array.from(row.querySelectorAll('td')).map((cell) => cell.textContent?.trim())));
		// The list shows subject, recipient, sender, site and when it arrived (in the browser's time); only the subject opens the message.
		expect(listed).toEqual([['Welcome to NAT-PETS, Jane', email, expect.stringContaining('hello@nat-pets.com'), 'nat-pets', expect.stringMatching(/\d/)]]);
		await Promise.all([page.waitForURL(new RegExp(`/mailbox/messages/${messages[0].id}$`)), page.click('#messages a:text-is("Welcome to NAT-PETS, Jane")')]);
		const text = (await page.textContent('body')) ?? '';
		expect(text).toContain('Welcome to NAT-PETS, Jane');
		expect(text).toContain(email);
		const preview = page.frameLocator('iframe');
		await expect(preview.locator('a', { hasText: 'care guide' }).getAttribute('href')).resolves.toMatch(new RegExp(`^${base}/e/c/`));
		await shot(page, 'mailbox');
		await page.close();
	});

	it('dashboard-visitors.png, dashboard-leads.png, lead-page.png, dashboard-campaigns.png: the dashboards after sign-in, equal to the JSON reports', async () => {
		const { base, readKey } = receiver;
		// The visit's session is built by workflow 01 before the pictures are taken.
		const stats = await eventually(() => readJson<{ visitors: number; sessions: number; leads: number }>(`${base}/api/stats?site=nat-pets`, readKey), (value) => value.sessions >= 1 && value.leads === 1, 60_000);
		expect(stats.visitors).toBe(1);

		const page = await personPage();
		await page.goto(`${base}/dashboard`);
		expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
		await page.fill('#key', readKey);
		await Promise.all([page.waitForURL(/\/dashboard\/visitors$/), page.click('button[type=submit]')]);

		const visitors = await figures(page);
		const report = await readJson<{ summary: { visitors: number; sessions: number; pageviews: number } }>(`${base}/api/analytics/visitors?site=nat-pets`, readKey);
		// What the guide says this page counts: 1 visitor, 1 session, its page views, the channel.
		expect(Number(visitors.visitors)).toBe(1);
		expect(Number(visitors.sessions)).toBe(1);
		expect(report.summary.sessions).toBe(1);
		expect(Number(visitors.pageviews)).toBe(report.summary.pageviews);
		expect(Number(visitors.pageviews)).toBeGreaterThanOrEqual(4);
		const channels = await page.$$eval('#table-channels tbody tr th', (cells) => cells.map((cell) => cell.textContent?.trim()));
		expect(channels).toEqual(['Direct']);
		await shot(page, 'dashboard-visitors');

		await page.click('nav[aria-label="Dashboards"] a:has-text("Lead Intelligence")');
		await page.waitForURL(/\/dashboard\/leads(\?|$)/);
		const leads = await figures(page);
		expect(leads.newLeads).toBe('1');
		expect(leads.visitors).toBe('1');
		expect(leads.convertedVisitors).toBe('1');
		await shot(page, 'dashboard-leads');

		await page.goto(`${base}/dashboard/leads/list`);
		await Promise.all([page.waitForURL(/\/dashboard\/leads\/[0-9a-f-]{36}/), page.click(`a:has-text("${email}")`)]);
		const lead = (await page.textContent('main')) ?? '';
		expect(lead).toContain(email);
		expect(lead).toContain('Clinica Veterinaria Sol');
		const explained = await page.$$eval('#table-score tbody tr th', (cells) => cells.map((cell) => cell.textContent?.trim()));
		expect(explained).toEqual(expect.arrayContaining(['event:form_submit', 'event:pageview', 'event:pageview@/**/pricing']));
		expect(lead).toMatch(/welcome/);
		// The guide: nurture's first step is due three days after the enrolment, moved out of the
		// example's quiet hours (21:00-08:00) and off the weekend, both on the lead's clock (its time
		// zone, the browser's); the page writes times in UTC.
		const zone = await page.$eval('xpath=//dt[normalize-space()="Time zone"]/following-sibling::dd[1]', (cell) => cell.textContent!.trim());
		const nurture = /nurture\s*Active; enrolled (\d{4}-\d\d-\d\d \d\d:\d\d) UTC\.[^]*?scheduled\s*due (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(lead);
		expect(nurture).not.toBeNull();
		const [enrolled, due] = [nurture![1], nurture![2]].map((at) => new Date(`${at.replace(' ', 'T')}:00Z`));
		expect(due.getTime() - enrolled.getTime()).toBeGreaterThanOrEqual(3 * 86_400_000 - 60_000);
		expect(due.getTime() - enrolled.getTime()).toBeLessThan(6 * 86_400_000);
		const local = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, weekday: 'short', hour: 'numeric', hourCycle: 'h23' }).formatToParts(due).map((part) => [part.type, part.value]));
		expect(['Mon', 'Tue', 'Wed', 'Thu', 'Fri']).toContain(local.weekday);
		expect(Number(local.hour)).toBeGreaterThanOrEqual(8);
		expect(Number(local.hour)).toBeLessThan(21);
		// The whole page: the guide speaks of its timeline and sequences too.
		await shot(page, 'lead-page', 'main');

		await page.goto(`${base}/dashboard/campaigns`);
		const campaigns = await figures(page);
		expect(campaigns.sent).toBe('1');
		// Shown in the mailbox, the email loaded its tracking image: the guide counts that as an open.
		expect(Number(campaigns.openRate)).toBeGreaterThan(0);
		const sequences = await page.$$eval('#table-sequences tbody tr th', (cells) => cells.map((cell) => cell.textContent?.trim()));
		expect(sequences).toContain('welcome');
		const funnel = await page.$$eval('#table-funnel tbody tr th', (cells) => cells.map((cell) => cell.textContent?.trim()));
		expect(funnel).toContain('contact-request');
		await shot(page, 'dashboard-campaigns', '#table-sequences');
		await page.close();
	});
});
