/**
 * The panel on every demo page: what the demo site's CRM holds of this browser (GET /demo/crm),
 * and why the receiver refuses the page's tracker when it does, in a real Chromium.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { emailHash } from '../../lib/email';
import type { Receiver } from '../../server/receiver';
import { eventually, launchChromium, visitorContext } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const EXAMPLE = path.join(__dirname, '..', '..', 'config', 'site.example.json');

/** The shipped example config, as a newcomer's demo runs it, under a key of its own. */
function exampleSite() {
	const input = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
	input.site.key = `demo-${Math.random().toString(16).slice(2, 10)}`;
	return parseSiteConfig(input, EXAMPLE);
}

const panelText = (page: Page) => page.locator('#crm-panel').innerText();

/** Where a test leaves its picture of the panel, to look at. */
const screenshot = (name: string) => path.join(os.tmpdir(), `tracking-crm-demo-panel-${name}.png`);

describe('the demo’s CRM panel', () => {
	const prisma = testPrisma();
	const demo = exampleSite();
	const other = testSiteConfig();
	let receiver: Receiver;
	let browser: Browser;
	const siteId = (key: string) => receiver.sites.byPublicKey(key)!.id;
	const crm = (query: string) => fetch(`${receiver.url}/demo/crm${query}`).then(async (response) => ({ status: response.status, json: await response.json() }));

	beforeAll(async () => {
		receiver = await startTestReceiver([demo, other], { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await prisma.$disconnect();
	});

	it('says, in the receiver’s words, that it refuses the events of a page reached under a name the site does not allow', async () => {
		const { port } = new URL(receiver.url);
		const context = await visitorContext(browser);
		const page = await context.newPage();
		// Chromium resolves every *.localhost name to this machine: the receiver's demo, under a name it does not know.
		await page.goto(`http://demo.localhost:${port}/demo/`);
		await eventually(() => panelText(page), (text) => text.includes('Waiting for your consent'));
		await page.click('#consent-yes');
		const text = await eventually(() => panelText(page), (shown) => shown.includes('Refused'));
		expect(text).toContain(`Refused (403 to POST /api/track): Origin http://demo.localhost:${port} may not send events for this site; add it to tracking.allowedOrigins`);
		await page.locator('#crm-panel').screenshot({ path: screenshot('refused') });
		expect(await prisma.visitorEvent.count({ where: { siteId: siteId(demo.site.key) } })).toBe(0);
		await context.close();
	});

	it('says so when the browser’s Global Privacy Control signal keeps the tracker off', async () => {
		const context = await visitorContext(browser, { gpc: true });
		const page = await context.newPage();
		await page.goto(`${receiver.url}/demo/pricing`);
		const text = await eventually(() => panelText(page), (shown) => shown.includes('Not tracked'));
		expect(text).toContain('Not tracked (204 to GET /api/track): your browser sends Global Privacy Control or Do Not Track, and this site honours it');
		await context.close();
	});

	it('shows the session with its engagement, the score and why, the stage and the emails the CRM holds of this browser', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await page.goto(`${receiver.url}/demo/`);
		await page.click('#consent-yes');
		await page.click('a[href="/demo/pricing"]');
		await page.waitForURL('**/demo/pricing');
		// The events the receiver stored for this browser, before any workflow ran.
		await eventually(() => panelText(page), (text) => /Receiver: [1-9]\d* events? of this browser stored/.test(text));
		expect(await panelText(page)).toContain('Session: none yet');
		// The tracker keeps the choice with its banner version ([state, version]); the panel reads it as given.
		expect(await panelText(page)).not.toContain('Waiting for your consent');
		const anonymousId: string = await page.evaluate(() => JSON.parse(localStorage.getItem('tcrm.id')!));

		// What workflows 01–06 write, written here as their tests do (this receiver runs no engine).
		const site = siteId(demo.site.key);
		const now = new Date();
		const email = 'ana@example.com';
		const lead = await prisma.lead.create({ data: { siteId: site, email, emailHash: emailHash(email), firstName: 'Ana', lifecycleStage: 'lead', score: 18, timezone: 'Europe/Madrid' } });
		const visitor = await prisma.visitor.create({ data: { siteId: site, anonymousId, leadId: lead.id, firstSeenAt: now, lastSeenAt: now, sessionCount: 1 } });
		await prisma.visitorSession.create({
			data: { siteId: site, visitorId: visitor.id, sessionKey: `s-${anonymousId}`, startedAt: now, lastActivityAt: now, pageviews: 2, engagementScore: 41.6, engagementLevel: 'medium' },
		});
		await prisma.conversion.create({ data: { siteId: site, visitorId: visitor.id, leadId: lead.id, goal: 'contact-request', eventId: 'e-1', value: 50, currency: 'EUR', occurredAt: now } });
		const ledger: Array<[string, number, string]> = [
			['event:pageview', 2, '2 × pageview (1 each, decayed)'],
			['event:pageview@/**/pricing', 5, '1 × pageview on /**/pricing (5 each, decayed)'],
			['event:form_submit', 15, '1 × form_submit (15 each)'],
			['fit:freeMail:isTrue', -5, 'freeMail "true" isTrue'],
			['event:pageview', 1, '3 × pageview (1 each, decayed)'],
		];
		let total = 0;
		for (const [index, [rule, delta, cause]] of ledger.entries()) {
			total += delta;
			await prisma.leadScore.create({ data: { siteId: site, leadId: lead.id, rule, delta, scoreAfter: total, cause, causeKey: `k${index}`, occurredAt: now, createdAt: new Date(now.getTime() + index) } });
		}
		await prisma.emailMessage.create({
			data: { siteId: site, leadId: lead.id, idempotencyKey: `${lead.id}:welcome:0`, toEmail: email, subject: 'Welcome to NAT-PETS, Ana', status: 'sent', sentAt: now },
		});

		const text = await eventually(() => panelText(page), (shown) => shown.includes('Open the mailbox'));
		expect(text).toContain('Session: 2 pages, engagement medium (42/100)');
		expect(text).toContain('Conversions: contact-request');
		expect(text).toContain('Lead: stage lead, score 18, time zone Europe/Madrid');
		for (const line of ['event:pageview → +3', 'event:pageview@/**/pricing → +5', 'event:form_submit → +15', 'fit:freeMail:isTrue → -5']) expect(text).toContain(line);
		// Each rule's reason is the cause of its latest row.
		expect(await page.locator('#crm-panel li', { hasText: 'event:pageview → +3' }).getAttribute('title')).toBe('3 × pageview (1 each, decayed)');
		expect(text).toMatch(/Email: “Welcome to NAT-PETS, Ana” sent at \d/);
		expect(await page.locator('#crm-panel a').getAttribute('href')).toBe('/mailbox');
		expect(text).not.toContain('Refused');
		await page.locator('#crm-panel').screenshot({ path: screenshot('loop') });
		await context.close();
	});

	it('answers for one browser of the demo site only, and names a bad parameter', async () => {
		const anonymousId = '01938a6e-7c2d-7b40-9f3e-5a1b2c3d4e5f';
		const now = new Date();
		const elsewhere = siteId(other.site.key);
		const lead = await prisma.lead.create({ data: { siteId: elsewhere, email: 'other@example.com', emailHash: emailHash('other@example.com'), lifecycleStage: 'sql', score: 90 } });
		await prisma.visitor.create({ data: { siteId: elsewhere, anonymousId, leadId: lead.id, firstSeenAt: now, lastSeenAt: now } });
		expect((await post(`${receiver.url}/api/track`, batch(other.site.key, [pageview(other.site.key, anonymousId)]))).status).toBe(202);

		const answer = await crm(`?visitor=${anonymousId}`);
		expect(answer).toEqual({
			status: 200,
			json: { site: demo.site.key, visitor: anonymousId, receiver: { events: 0, bots: 0, lastAt: null }, visits: { count: 0, latest: null }, conversions: [], lead: null, mailbox: null },
		});

		for (const [query, field] of [
			['', 'visitor'],
			['?visitor=', 'visitor'],
			[`?visitor=${anonymousId}x`, 'visitor'],
			[`?visitor=${anonymousId.replace('-7b40', '-4b40')}`, 'visitor'],
			// The receiver's id of a lead posted without one: anyone who knows the address could compute it.
			[`?visitor=lead:${emailHash('other@example.com').slice(0, 32)}`, 'visitor'],
			[`?visitor=${anonymousId}&visitor=${anonymousId}`, 'visitor'],
			['?visitor=a%00b', 'visitor'],
			[`?visitor=${anonymousId}&site=${other.site.key}`, 'site'],
		]) {
			const refused = await crm(query);
			expect([query, refused.status, refused.json.issues.map((issue: { field: string }) => issue.field)]).toEqual([query, 400, [field]]);
		}
		expect((await crm('')).json.message).toContain('tcrm.id');
		// A browser the demo site never saw.
		expect((await crm(`?visitor=${anonymousId.replace('5f', '60')}`)).json).toMatchObject({ receiver: { events: 0 }, visits: { count: 0 }, lead: null });

		// An automated client's events are stored flagged, and the panel says so rather than count them as a visit.
		const scripted = anonymousId.replace('5f', '61');
		const flagged = await post(`${receiver.url}/api/track`, batch(demo.site.key, [pageview(demo.site.key, scripted)], { consent: 'granted' }), { 'user-agent': 'curl/8.5.0' });
		expect([flagged.status, flagged.json.bot]).toEqual([202, true]);
		expect((await crm(`?visitor=${scripted}`)).json).toMatchObject({ receiver: { events: 1, bots: 1 }, visits: { count: 0 }, lead: null });
	});
});
