import type { Browser } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, trackerStarted, visit, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

describe('tracker privacy in a real browser', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;

	beforeAll(async () => {
		pages = await servePages((path) => {
			const name = path.split('/')[1];
			return site[name] && trackedPage(receiver.url, site[name].site.key, {}, `<main>${name}</main>`);
		});
		site.consent = trackerSite(pages.origin, { privacy: { cookieConsent: true } });
		site.withdrawal = trackerSite(pages.origin, { privacy: { cookieConsent: true } });
		site.earlierDenied = trackerSite(pages.origin);
		site.earlierGranted = trackerSite(pages.origin, { privacy: { cookieConsent: true } });
		site.signals = trackerSite(pages.origin);
		site.cookieless = trackerSite(pages.origin, { tracking: { cookieless: true } });
		site.automated = trackerSite(pages.origin);
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	/**
	 * Every request that reaches the receiver's API from now on, but the tracker's reading of its
	 * site's settings (GET /api/track?site=KEY), which says nothing about the visitor. Counted by
	 * the server: the browser reports no beacons.
	 */
	const apiRequests = (name: string) => {
		const requests: string[] = [];
		receiver.server.on('request', (request) => {
			const line = `${request.method} ${request.url}`;
			if (request.url?.startsWith('/api/') && line != `GET /api/track?site=${site[name].site.key}`) requests.push(line);
		});
		return requests;
	};

	it('sends nothing before consent nor after a refusal, which persists; once granted, tracking starts', async () => {
		const context = await visitorContext(browser);
		const requests = apiRequests('consent');
		const page = await context.newPage();
		await page.goto(`${pages.origin}/consent/`);
		await page.evaluate(() => tcrm('track', 'before-consent'));
		await page.evaluate(() => tcrm('consent', 'denied'));
		await page.reload();
		await page.evaluate(() => tcrm('track', 'after-refusal'));
		await page.waitForTimeout(2500);
		expect(requests).toEqual([]);
		expect(await page.evaluate(() => Object.keys(localStorage))).toEqual(['tcrm.consent']);

		await page.evaluate(() => tcrm('consent', 'granted'));
		await trackerStarted(page);
		await page.evaluate(() => tcrm('track', 'after-consent'));
		await page.reload();
		await trackerStarted(page);
		await closeTab(page);
		const rows = await eventually(
			() => storedEvents(prisma, siteId('consent')),
			(events) => events.filter((event) => event.type != 'engagement').length >= 3,
		);
		expect(rows.filter((event) => event.type != 'engagement').map((event) => event.name ?? event.type)).toEqual(['pageview', 'after-consent', 'pageview']);
		expect(requests.length).toBeGreaterThan(0);
		await context.close();
	});

	it('sends the banner version with every batch, and a withdrawal once, in a beacon the receiver records and drops; nothing after it', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await page.goto(`${pages.origin}/withdrawal/`);
		await page.evaluate(() => tcrm('consent', 'granted', 'banner-v3'));
		await trackerStarted(page);
		const anonymousId = JSON.parse((await page.evaluate(() => localStorage.getItem('tcrm.id')))!) as string;
		const stored = async () => (await storedEvents(prisma, siteId('withdrawal'))).map((event) => `${event.name ?? event.type} ${event.anonymousId}`);
		// Two batches at least: the page view, then a later event.
		await eventually(stored, (events) => events.length == 1);
		await page.evaluate(() => tcrm('track', 'plan-compared'));
		await eventually(stored, (events) => events.length == 2);

		const requests = apiRequests('withdrawal');
		await page.evaluate(() => tcrm('consent', 'denied'));
		expect(await page.evaluate(() => Object.keys(localStorage))).toEqual(['tcrm.consent']);
		await page.evaluate(() => tcrm('track', 'after-withdrawal'));
		await page.reload();
		await page.evaluate(() => tcrm('track', 'after-reload'));
		await page.waitForTimeout(2500);
		await closeTab(page);
		await new Promise((resolve) => setTimeout(resolve, 300));

		const records = await prisma.consentRecord.findMany({ where: { siteId: siteId('withdrawal') }, orderBy: [{ occurredAt: 'asc' }, { createdAt: 'asc' }] });
		// The grant once with its version, however many batches carried it; the withdrawal after it, made without one.
		expect(records.map(({ anonymousId, state, source, pageUrl, policyVersion }) => ({ anonymousId, state, source, pageUrl, policyVersion }))).toEqual([
			{ anonymousId, state: 'granted', source: 'tracker', pageUrl: `${pages.origin}/withdrawal/`, policyVersion: 'banner-v3' },
			{ anonymousId, state: 'withdrawn', source: 'tracker', pageUrl: `${pages.origin}/withdrawal/`, policyVersion: null },
		]);
		// One beacon, which the receiver dropped: no event of it, none made after the withdrawal.
		expect(requests).toEqual(['POST /api/track']);
		expect(await stored()).toEqual([`pageview ${anonymousId}`, `plan-compared ${anonymousId}`]);
		await context.close();
	});

	it('keeps a choice stored by a tracker before the banner version (the state alone): a refusal, and a consent', async () => {
		const withStored = async (state: string) => {
			const context = await visitorContext(browser);
			await context.addInitScript((stored) => localStorage.setItem('tcrm.consent', stored), JSON.stringify(state));
			return context;
		};
		const refused = await withStored('denied');
		const requests = apiRequests('earlierDenied');
		const quiet = await refused.newPage();
		await quiet.goto(`${pages.origin}/earlierDenied/`);
		await quiet.evaluate(() => tcrm('track', 'after-refusal'));
		await quiet.waitForTimeout(2500);
		await closeTab(quiet);
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(requests).toEqual([]);
		await refused.close();

		const granted = await withStored('granted');
		const page = await granted.newPage();
		await visit(page, `${pages.origin}/earlierGranted/`);
		await closeTab(page);
		const rows = await eventually(
			() => storedEvents(prisma, siteId('earlierGranted')),
			(events) => events.length > 0,
		);
		expect(rows[0].type).toBe('pageview');
		const [record] = await eventually(
			() => prisma.consentRecord.findMany({ where: { siteId: siteId('earlierGranted') } }),
			(records) => records.length > 0,
		);
		expect(record).toMatchObject({ anonymousId: rows[0].anonymousId, state: 'granted', policyVersion: null });
		await granted.close();
	});

	it.each([
		['Global Privacy Control', { gpc: true }],
		['Do Not Track', { dnt: true }],
	])('sends nothing under %s, even after consent', async (_signal, signals) => {
		const context = await visitorContext(browser, signals);
		const requests = apiRequests('signals');
		const page = await context.newPage();
		await page.goto(`${pages.origin}/signals/`);
		await page.evaluate(() => {
			tcrm('consent', 'granted');
			tcrm('track', 'signup');
			tcrm('identify', 'gpc@example.com');
		});
		await page.waitForTimeout(2500);
		await closeTab(page);
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(requests).toEqual([]);
		expect(await prisma.visitorEvent.count({ where: { siteId: siteId('signals') } })).toBe(0);
		await context.close();
	});

	it('in cookieless mode keeps its ids for the tab only (sessionStorage), nothing in localStorage', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/cookieless/`);
		await page.evaluate(() => tcrm('track', 'cookieless-event'));
		expect(await page.evaluate(() => Object.keys(localStorage))).toEqual([]);
		expect((await page.evaluate(() => Object.keys(sessionStorage))).sort()).toEqual(['tcrm.id', 'tcrm.queue', 'tcrm.session']);
		await closeTab(page);
		const rows = await eventually(
			() => storedEvents(prisma, siteId('cookieless')),
			(events) => events.length >= 2,
		);
		expect(rows.slice(0, 2).map((event) => event.name ?? event.type)).toEqual(['pageview', 'cookieless-event']);
		await context.close();
	});

	it('flags an automated browser (navigator.webdriver) so the receiver stores its events as a bot\u2019s and forwards none', async () => {
		const context = await browser.newContext();
		const page = await context.newPage();
		await visit(page, `${pages.origin}/automated/`);
		await page.evaluate(() => tcrm('track', 'robot'));
		await closeTab(page);
		const rows = await eventually(
			() => storedEvents(prisma, siteId('automated')),
			(events) => events.length >= 2,
		);
		// The agent is a person's browser's: only the batch's navigator.webdriver flag tells.
		expect(rows.map((event) => event.isBot)).toEqual(rows.map(() => true));
		expect(await prisma.outboxMessage.count({ where: { siteId: siteId('automated') } })).toBe(0);
		await context.close();
	});
});
