import type { Browser } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, visit, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

describe('tracker delivery in a real browser', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;
	/** Page views and custom events; engagement reports come and go with timing. */
	const stored = async (name: string) =>
		(await storedEvents(prisma, siteId(name))).filter((row) => row.type == 'pageview' || row.type == 'custom').map((row) => `${row.type}:${row.name ?? row.path}`);

	beforeAll(async () => {
		pages = await servePages((path) => {
			const name = path.split('/')[1];
			return site[name] && trackedPage(receiver.url, site[name].site.key, {}, `<main>${name}</main>`);
		});
		for (const name of ['close', 'offline', 'online', 'retry']) site[name] = trackerSite(pages.origin);
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	it('delivers events fired in the last 100 ms before the tab closes, by beacon', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/close/`);
		await page.evaluate(() => {
			// The page measures how long before its end the events were fired; localStorage outlives it.
			addEventListener('beforeunload', () => {
				tcrm('track', 'very-last-words');
				localStorage.setItem('firedAt', String(performance.now()));
			});
			addEventListener('pagehide', () => localStorage.setItem('closedAt', String(performance.now())));
			tcrm('track', 'last-words', { at: 'close' });
		});
		await closeTab(page);

		const rows = await eventually(
			() => stored('close'),
			(names) => names.length >= 3,
		);
		expect(rows).toEqual(['pageview:/close/', 'custom:last-words', 'custom:very-last-words']);
		const after = await context.newPage();
		await after.goto(`${pages.origin}/nothing-here`);
		const [firedAt, closedAt] = await after.evaluate(() => [Number(localStorage.getItem('firedAt')), Number(localStorage.getItem('closedAt'))]);
		expect(closedAt - firedAt).toBeLessThan(100);
		await context.close();
	});

	it('keeps events made offline after the tab closed and delivers each once when the network is back', async () => {
		const context = await visitorContext(browser);
		// Closing a tab under Playwright's offline emulation ends the emulation for it: about one
		// close in two then fires `online` after pagehide, and the closing page has its network
		// back. No offline browser does that; the page hears no such `online`.
		await context.addInitScript(() => {
			let left = false;
			addEventListener('pagehide', () => (left = true), true);
			addEventListener('online', (event) => left && event.stopImmediatePropagation(), true);
		});
		const page = await context.newPage();
		await visit(page, `${pages.origin}/offline/`);
		await eventually(
			() => stored('offline'),
			(names) => names.length == 1,
		);
		await context.setOffline(true);
		await page.evaluate(() => ['one', 'two', 'three'].forEach((name) => tcrm('track', `offline-${name}`)));
		await page.waitForTimeout(2500);
		// The tab closes offline: the tracker's page is gone, its queue only in localStorage. (Not a
		// reload: one that fails under Playwright's offline emulation gives the leaving page its
		// network back for a moment, an `online` event included, which no offline browser does.)
		await closeTab(page);
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect(await stored('offline')).toEqual(['pageview:/offline/']);
		await context.setOffline(false);
		const next = await context.newPage();
		await visit(next, `${pages.origin}/offline/`);
		await closeTab(next);

		await eventually(
			() => stored('offline'),
			(names) => names.length >= 5,
		);
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect((await stored('offline')).sort()).toEqual(['custom:offline-one', 'custom:offline-three', 'custom:offline-two', 'pageview:/offline/', 'pageview:/offline/']);
		await context.close();
	});

	it('sends what was queued offline as soon as the browser is back online', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/online/`);
		await context.setOffline(true);
		await page.evaluate(() => tcrm('track', 'while-offline'));
		await page.waitForTimeout(2500);
		expect(await stored('online')).toEqual([]);
		await context.setOffline(false);
		expect(
			await eventually(
				() => stored('online'),
				(names) => names.length == 2,
			),
		).toEqual(['pageview:/online/', 'custom:while-offline']);
		await context.close();
	});

	it('retries after the receiver answered 503, with the same event ids, and stores them once', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		const bodies: string[] = [];
		let refusals = 1;
		await page.route(`${receiver.url}/api/track`, async (route) => {
			bodies.push(route.request().postData() ?? '');
			if (refusals-- > 0) await route.fulfill({ status: 503, headers: { 'access-control-allow-origin': pages.origin }, body: '{}' });
			else await route.continue();
		});
		await page.goto(`${pages.origin}/retry/`);
		const rows = await eventually(
			() => stored('retry'),
			(names) => names.length == 1,
		);
		expect(rows).toEqual(['pageview:/retry/']);
		const [refused, accepted] = bodies.map((body) => JSON.parse(body));
		expect(accepted.events.map((event: { id: string }) => event.id)).toEqual(refused.events.map((event: { id: string }) => event.id));
		expect(accepted.sentAt).toBeGreaterThan(refused.sentAt);
		await context.close();
	});
});
