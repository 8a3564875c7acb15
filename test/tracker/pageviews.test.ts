import type { Browser } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, trackerStarted, visit, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

describe('tracker page views in a real browser', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;

	beforeAll(async () => {
		pages = await servePages((path) => {
			const [, name, page] = path.split('/');
			if (name == 'multi') {
				const next = { a: 'b', b: 'c' }[page];
				return trackedPage(receiver.url, site.multi.site.key, {}, next ? `<a id="next" href="/multi/${next}">next</a>` : 'the end');
			}
			if (name == 'spa') return trackedPage(receiver.url, site.spa.site.key, {}, '<main>app</main>');
			if (name == 'hash') return trackedPage(receiver.url, site.hash.site.key, {}, '<main>app</main>');
			return undefined;
		});
		for (const name of ['multi', 'spa']) site[name] = trackerSite(pages.origin);
		site.hash = trackerSite(pages.origin, { tracking: { hashRouting: true, eventRelevance: [{ type: 'pageview', urlPattern: '/pricing', relevance: 9 }] } });
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	const pageviews = (name: string, count: number) =>
		eventually(
			async () => (await storedEvents(prisma, siteId(name))).filter((event) => event.type == 'pageview'),
			(rows) => rows.length >= count,
		);

	it('counts a multi-page visit, a back-forward cache restore included, once per page in one session', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/multi/a`);
		await Promise.all([page.waitForURL('**/multi/b'), page.click('#next')]);
		await trackerStarted(page);
		await Promise.all([page.waitForURL('**/multi/c'), page.click('#next')]);
		await trackerStarted(page);
		await page.evaluate(() => Object.assign(window, { stillHere: true }));
		// A restore from the back-forward cache fires no load event.
		await page.goBack({ waitUntil: 'commit' });
		await page.waitForURL('**/multi/b', { waitUntil: 'commit' });
		await page.goForward({ waitUntil: 'commit' });
		await page.waitForURL('**/multi/c', { waitUntil: 'commit' });
		expect(await page.evaluate(() => 'stillHere' in window)).toBe(true);
		await closeTab(page);

		const rows = await pageviews('multi', 5);
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect((await storedEvents(prisma, siteId('multi'))).filter((event) => event.type == 'pageview')).toHaveLength(5);
		expect(rows.map((row) => row.path)).toEqual(['/multi/a', '/multi/b', '/multi/c', '/multi/b', '/multi/c']);
		expect(new Set(rows.map((row) => row.anonymousId)).size).toBe(1);
		expect(new Set(rows.map((row) => row.sessionKey)).size).toBe(1);
		expect(rows[0]).toMatchObject({ referrer: null, isBot: false, title: `Page ${site.multi.site.key}` });
		expect(rows[0].context).toMatchObject({ language: 'en-US' });
		expect(rows[1].referrer).toBe(`${pages.origin}/multi/a`);
		expect(rows.every((row) => row.relevance === 5)).toBe(true);
		await context.close();
	});

	it('counts an SPA visit once per real URL change: push, replace, back, forward; not fragments or same-URL calls', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/spa/home`);
		const step = async (action: () => void) => {
			await page.evaluate(action);
			await page.waitForTimeout(30);
		};
		await step(() => history.pushState({}, '', '/spa/pricing'));
		await step(() => history.replaceState({ tab: 2 }, '', '/spa/pricing?tab=2'));
		await step(() => history.replaceState({ tab: 3 }, ''));
		await step(() => history.pushState({}, '', '/spa/pricing?tab=2'));
		await step(() => (location.hash = '#faq'));
		await step(() => history.back());
		await step(() => history.back());
		await step(() => history.back());
		await step(() => history.forward());
		await closeTab(page);

		const rows = await pageviews('spa', 5);
		await new Promise((resolve) => setTimeout(resolve, 500));
		const all = (await storedEvents(prisma, siteId('spa'))).filter((event) => event.type == 'pageview');
		// home, pricing, pricing?tab=2, (the pushState to the same URL, the fragment and the back to it: none), home, pricing?tab=2
		expect(all.map((row) => row.url?.replace(pages.origin, ''))).toEqual(['/spa/home', '/spa/pricing', '/spa/pricing?tab=2', '/spa/home', '/spa/pricing?tab=2']);
		expect(rows).toHaveLength(5);
		await context.close();
	});

	it('with hash routing counts each route in the fragment, and scores rules against it', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/hash/#/home`);
		for (const route of ['#/pricing', '#/docs', '#/docs']) {
			await page.evaluate((hash) => (location.hash = hash), route);
			await page.waitForTimeout(30);
		}
		await page.goBack();
		await page.waitForTimeout(30);
		await closeTab(page);

		await pageviews('hash', 4);
		await new Promise((resolve) => setTimeout(resolve, 500));
		const all = (await storedEvents(prisma, siteId('hash'))).filter((event) => event.type == 'pageview');
		expect(all.map((row) => [new URL(row.url!).hash, row.relevance])).toEqual([
			['#/home', 5],
			['#/pricing', 9],
			['#/docs', 5],
			['#/pricing', 9],
		]);
		await context.close();
	});
});
