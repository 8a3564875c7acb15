import type { Browser } from 'playwright-core';

import { engagementLevel, scoreEngagement } from '../../lib/engagement';
import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, visit, visitorContext, type PageServer, type SiteOverrides } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

const LONG_PAGE = '<div style="height:4000px">long read</div>';

describe('tracker smart events in a real browser', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;
	/** The sites' tracking settings, from their site configs. */
	const tracking: Record<string, SiteOverrides['tracking']> = {
		timeout: { sessionTimeout: 3 },
		campaign: {},
		rules: {
			relevanceThreshold: 3,
			eventRelevance: [
				{ name: 'signup', relevance: 9 },
				{ type: 'custom', relevance: 1 },
				{ type: 'outbound', urlPattern: '/rules/**', relevance: 6 },
			],
		},
	};

	beforeAll(async () => {
		pages = await servePages((path) => {
			const name = path.split('/')[1];
			const links = `<a id="out" href="http://localhost:1/partner" onclick="event.preventDefault()">partner</a>
				<a id="file" href="/files/price-list.pdf" onclick="event.preventDefault()">prices</a>`;
			return site[name] && trackedPage(receiver.url, site[name].site.key, {}, `${links}${LONG_PAGE}`);
		});
		for (const [name, settings] of Object.entries(tracking)) site[name] = trackerSite(pages.origin, { tracking: settings });
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	it('ends a session after the inactivity timeout and sends its summary: pages, duration, scroll, engaged time, events, entry and exit', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/timeout/landing`);
		await page.waitForTimeout(700);
		await page.evaluate(() => history.pushState({}, '', '/timeout/read'));
		await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
		await page.waitForTimeout(3300);
		await page.evaluate(() => tcrm('track', 'back-again'));
		await closeTab(page);

		const rows = await eventually(
			() => storedEvents(prisma, siteId('timeout')),
			(events) => events.some((event) => event.name == 'back-again') && events.some((event) => event.type == 'session_end'),
		);
		const end = rows.find((event) => event.type == 'session_end')!;
		// An engagement report comes too when the first page stayed visible a second or more.
		const firstSession = rows.filter((event) => event.sessionKey == end.sessionKey && event.type != 'session_end');
		expect(firstSession.map((event) => event.type).filter((type) => type != 'engagement')).toEqual(['pageview', 'pageview', 'scroll']);
		const engagedMs = firstSession.reduce((sum, event) => sum + ((event.properties as { engagedMs?: number } | null)?.engagedMs ?? 0), 0);
		const relevanceSum = firstSession.reduce((sum, event) => sum + event.relevance!, 0);
		expect(end.url).toBe(`${pages.origin}/timeout/read`);
		// The score by the one engagement formula, from what the stored events of the session show; a
		// session without engagement reports counts as engaged for its span, as sessions built by the Visitor Processor do.
		const typeCounts: Record<string, number> = {};
		for (const event of firstSession) typeCounts[event.type] = (typeCounts[event.type] ?? 0) + 1;
		const { start, last } = end.properties as { start: number; last: number };
		const { score } = scoreEngagement({ pageviews: 2, engagedTimeMs: engagedMs || last - start, maxScrollDepth: 100, typeCounts, relevanceSum });
		expect(end.properties).toMatchObject({
			pages: 2,
			events: firstSession.length,
			maxScrollDepth: 100,
			engagedMs,
			relevanceSum,
			entry: `${pages.origin}/timeout/landing`,
			exit: `${pages.origin}/timeout/read`,
			engagementScore: score,
			engagement: engagementLevel(score, { medium: 30, high: 60 }),
		});
		expect((end.properties as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(700);
		const after = rows.find((event) => event.name == 'back-again')!;
		expect(after.sessionKey).not.toBe(end.sessionKey);
		expect(after.anonymousId).toBe(end.anonymousId);
		await context.close();
	});

	it('captures campaign parameters and click ids on landing, and starts a new session for a new campaign', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/campaign/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&ref=x`);
		await visit(page, `${pages.origin}/campaign/?gclid=abc123&utm_source=google`);
		await visit(page, `${pages.origin}/campaign/pricing`);
		await closeTab(page);

		const rows = await eventually(
			() => storedEvents(prisma, siteId('campaign')),
			(events) => events.filter((event) => event.type == 'pageview').length == 3 && events.some((event) => event.type == 'session_end'),
		);
		const views = rows.filter((event) => event.type == 'pageview');
		expect(views[0].context).toEqual({ language: 'en-US', utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'spring' });
		expect(views[1].context).toMatchObject({ utm_source: 'google', clickIds: { gclid: 'abc123' } });
		expect(views[1].sessionKey).not.toBe(views[0].sessionKey);
		expect(views[2].sessionKey).toBe(views[1].sessionKey);
		expect(rows.find((event) => event.type == 'session_end')).toMatchObject({ sessionKey: views[0].sessionKey });
		await context.close();
	});

	it('scores events by the site rules, sends only those at or above the threshold, and counts engaged time', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/rules/`);
		await page.evaluate(() => {
			tcrm('track', 'signup', { plan: 'pro' });
			tcrm('track', 'hovered');
			window.scrollTo(0, 1500);
		});
		await page.click('#out');
		await page.click('#out', { button: 'middle' });
		await page.click('#file');
		await page.waitForTimeout(1100);
		await page.evaluate(() => history.pushState({}, '', '/rules/next'));
		await closeTab(page);

		const rows = await eventually(
			() => storedEvents(prisma, siteId('rules')),
			(events) => events.filter((event) => event.type == 'pageview').length == 2,
		);
		await new Promise((resolve) => setTimeout(resolve, 300));
		const sent = (await storedEvents(prisma, siteId('rules'))).map((event) => [event.type, event.name, event.relevance]);
		expect(sent).toEqual([
			['pageview', null, 5],
			['custom', 'signup', 9],
			['outbound', 'localhost', 6],
			['outbound', 'localhost', 6],
			['download', 'price-list.pdf', 7],
			['pageview', null, 5],
		]);
		// Scroll (2) and engagement (2) fall below the threshold of 3: not sent, yet part of the session.
		expect(rows.find((event) => event.type == 'outbound')!.properties).toEqual({ url: 'http://localhost:1/partner' });
		const session = await page.context().storageState();
		const stored = JSON.parse(session.origins[0].localStorage.find((item) => item.name == 'tcrm.session')!.value);
		// pageview, signup, hovered, scroll, 2 outbound, download, engagement, pageview (and an engagement at close, if slow)
		// The record's short keys: d is maxScrollDepth, g engagedMs; the events are counted by type.
		expect(stored).toMatchObject({ pageview: 2, custom: 2, outbound: 2, download: 1, scroll: 1, d: 50 });
		expect(stored.engagement).toBeGreaterThanOrEqual(1);
		expect(stored.g).toBeGreaterThanOrEqual(1000);
		await context.close();
	});
});
