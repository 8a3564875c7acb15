import type { Browser, Page } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, trackerStarted, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

/** Whether the tracker has started (trackerStarted), read by the page itself. */
const STARTED = `!/\\[native code\\]/.test(String(history.pushState))`;

describe("the tracker with its site's settings from the receiver, in a real browser", () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;

	/**
	 * A page whose inline script calls the tracker as soon as its (blocking) script tag ran: the
	 * settings cannot have arrived yet. The page notes whether the tracker had started, and what
	 * was in localStorage, right after its calls.
	 */
	const earlyPage = (key: string, calls: string) => `<!doctype html><html><head><title>Early</title>
		<script src="${receiver.url}/t.js" data-site="${key}"></script>
		<script>${calls}; window.early = { started: ${STARTED}, consent: localStorage.getItem('tcrm.consent') };</script>
		</head><body>early</body></html>`;

	beforeAll(async () => {
		pages = await servePages((path) => {
			const name = path.split('/')[1];
			if (name == 'early') return earlyPage(site.early.site.key, `tcrm('track', 'right-away', { n: 1 })`);
			if (name == 'consent') return earlyPage(site.consent.site.key, `tcrm('consent', 'granted'); tcrm('track', 'right-away')`);
			if (name == 'unknown') return trackedPage(receiver.url, 'no-such-site', {}, '<a id="file" href="/files/prices.pdf" onclick="event.preventDefault()">prices</a>');
			if (name == 'elsewhere') return trackedPage(receiver.url, site.elsewhere.site.key, {}, '<a id="file" href="/files/prices.pdf" onclick="event.preventDefault()">prices</a>');
			return undefined;
		});
		site.early = trackerSite(pages.origin);
		site.consent = trackerSite(pages.origin, { privacy: { cookieConsent: true } });
		site.elsewhere = trackerSite(pages.origin, { tracking: { allowedOrigins: ['https://elsewhere.example'] } });
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	/** Holds the page's request for its settings back for `ms`, so that the calls the page makes first surely wait for them. */
	const slowSettings = (page: Page, ms: number) =>
		page.route(
			(url) => url.pathname == '/api/track' && url.searchParams.has('site'),
			async (route) => {
				await new Promise((resolve) => setTimeout(resolve, ms));
				await route.continue();
			},
		);

	/** The site's stored events but engagement reports, which come and go with timing, as `type` or `custom:name`. */
	const stored = async (name: string) =>
		(await storedEvents(prisma, siteId(name))).filter((row) => row.type != 'engagement').map((row) => (row.type == 'custom' ? `custom:${row.name}` : row.type));

	it('delivers once a call made right after the script ran, before the settings arrived', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await slowSettings(page, 500);
		await page.goto(`${pages.origin}/early/`);
		expect(await page.evaluate(() => (window as unknown as { early: unknown }).early)).toEqual({ started: false, consent: null });
		await trackerStarted(page);
		await closeTab(page);
		await eventually(
			() => stored('early'),
			(events) => events.includes('custom:right-away'),
		);
		await new Promise((resolve) => setTimeout(resolve, 500));
		// Sorted: both are made in the same millisecond, where UUIDv7 ids do not keep the order.
		expect((await stored('early')).sort()).toEqual(['custom:right-away', 'pageview']);
		const rows = await storedEvents(prisma, siteId('early'));
		expect(rows.find((row) => row.name == 'right-away')!.properties).toEqual({ n: 1 });
		await context.close();
	});

	it('takes a consent given before the settings arrived at once, and then tracks on a site that asks for consent', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await slowSettings(page, 500);
		await page.goto(`${pages.origin}/consent/`);
		expect(await page.evaluate(() => (window as unknown as { early: unknown }).early)).toEqual({ started: false, consent: '["granted",null]' });
		await trackerStarted(page);
		await closeTab(page);
		await eventually(
			() => stored('consent'),
			(events) => events.includes('custom:right-away'),
		);
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect((await stored('consent')).sort()).toEqual(['custom:right-away', 'pageview']);
		await context.close();
	});

	describe('where the receiver gives no settings', () => {
		const cases = [
			['a site key the receiver does not know', 'unknown'],
			['a site that does not allow the page origin', 'elsewhere'],
		] as const;
		/** What the receiver and the page saw of each case (see beforeAll). */
		const seen: Record<string, { key: string; thrown: string; errors: Error[]; messages: string[]; requests: string[]; storage: string[]; events?: number }> = {};

		/** The page makes every kind of call and gives the tracker every kind of event to see, then waits longer than one batch takes to leave. */
		beforeAll(async () => {
			for (const [, name] of cases) {
				const key = name == 'unknown' ? 'no-such-site' : site[name].site.key;
				const requests: string[] = [];
				const listen = (request: { method?: string; url?: string }) => request.url?.startsWith('/api/') && requests.push(`${request.method} ${request.url}`);
				receiver.server.on('request', listen);
				const context = await visitorContext(browser);
				const page = await context.newPage();
				const errors: Error[] = [];
				const messages: string[] = [];
				page.on('pageerror', (error) => errors.push(error));
				page.on('console', (message) => messages.push(`${message.type()}: ${message.text()}`));
				await page.goto(`${pages.origin}/${name}/`);
				const thrown = await page.evaluate(() => {
					try {
						tcrm('consent', 'granted');
						tcrm('track', 'signup', { plan: 'pro' });
						tcrm('identify', 'nobody@example.com');
						history.pushState({}, '', 'next');
						document.getElementById('file')!.click();
						scrollTo(0, 100);
						return 'none';
					} catch (error) {
						return String(error);
					}
				});
				await page.waitForTimeout(2500);
				const storage = await page.evaluate(() => Object.keys(localStorage).sort());
				await closeTab(page);
				await new Promise((resolve) => setTimeout(resolve, 300));
				receiver.server.off('request', listen);
				await context.close();
				const events = name == 'unknown' ? undefined : await prisma.visitorEvent.count({ where: { siteId: siteId(name) } });
				seen[name] = { key, thrown, errors, messages, requests, storage, events };
			}
		});

		it.each(cases)('stays off and sends nothing, silently with debug off, for %s', (_case, name) => {
			const { key, thrown, messages, requests, storage, events } = seen[name];
			expect(thrown).toBe('none');
			// The browser reports the refused request (console errors); the tracker says nothing with debug off.
			expect(messages.filter((message) => !message.startsWith('error: '))).toEqual([]);
			expect(requests).toEqual([`GET /api/track?site=${key}`]);
			// Only the visitor's choice, which counts at once: no id, no session, no queue.
			expect(storage).toEqual(['tcrm.consent']);
			if (events !== undefined) expect(events).toBe(0);
		});

		// The receiver's 404 and 403 are readable by the page and carry no settings: no error may reach the page either way.
		it.each(cases)('throws nothing into the page (no page errors) for %s', (_case, name) => {
			expect(seen[name].errors).toEqual([]);
		});
	});
});
