import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig, SiteConfigInput } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { BROWSER_UA } from './events';

/**
 * Debian's chromium, driven by playwright-core, with the flags that work on the project's machines
 * (ENVIRONMENT.md). Playwright turns the back-forward cache off; it is turned back on, since
 * restores from it are page views the tracker must count. The user agent is a desktop Chrome's
 * for every request, beacons sent after a page closed included (a context's override misses those),
 * so that only what the tracker itself reports marks a browser as automated.
 */
export function launchChromium(): Promise<Browser> {
	return chromium.launch({
		executablePath: '/usr/bin/chromium',
		ignoreDefaultArgs: ['--disable-back-forward-cache'],
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
			`--user-agent=${BROWSER_UA}`,
		],
	});
}

/**
 * A browser context that looks like a person's browser: no navigator.webdriver, so the receiver
 * stores and forwards its events as a visitor's.
 * `signals` adds the privacy signals Chromium does not send by itself: the request headers
 * (Sec-GPC, DNT), which the receiver reads, and what the page's navigator says.
 */
export async function visitorContext(browser: Browser, signals: { gpc?: boolean; dnt?: boolean } = {}): Promise<BrowserContext> {
	const extraHTTPHeaders: Record<string, string> = { ...(signals.gpc && { 'Sec-GPC': '1' }), ...(signals.dnt && { DNT: '1' }) };
	const context = await browser.newContext({ extraHTTPHeaders });
	await context.addInitScript((flags) => {
		Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false });
		if (flags.gpc) Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true });
		if (flags.dnt) Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' });
	}, signals);
	return context;
}

export interface PageServer {
	origin: string;
	close(): Promise<void>;
}

/** A site on 127.0.0.1: `page(path)` returns the HTML (or, for .js and .mjs, the script) of a path, or undefined for a 404. */
export async function servePages(page: (path: string) => string | undefined): Promise<PageServer> {
	const server: Server = createServer((req, res) => {
		const html = page(new URL(req.url ?? '/', 'http://x').pathname);
		const type = /\.m?js$/.test(req.url ?? '') ? 'text/javascript' : 'text/html';
		res.writeHead(html === undefined ? 404 : 200, { 'content-type': `${type}; charset=utf-8` });
		res.end(html ?? 'not found');
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

/** A page whose body is `body`, with the tracker's script tag (data-* attributes from `options`). */
export function trackedPage(receiverUrl: string, site: string, options: Record<string, unknown> = {}, body = ''): string {
	const attributes = Object.entries({ site, ...options })
		.map(([key, value]) => `data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}='${typeof value == 'string' ? value : JSON.stringify(value)}'`)
		.join(' ');
	return `<!doctype html><html><head><title>Page ${site}</title><script defer src="${receiverUrl}/t.js" ${attributes}></script></head><body>${body}</body></html>`;
}

/** Parts of a site config, each merged over what trackerSite() builds (a list replaces its default). */
export type SiteOverrides = { [K in keyof SiteConfigInput]?: Partial<NonNullable<SiteConfigInput[K]>> };

/**
 * A site whose tracker runs on `origin`, forwarding to the Visitor Processor and the Lead
 * Processor, without a consent requirement unless `overrides` sets one. The tracker's settings
 * (relevance rules, threshold, session timeout, hash routing, cookieless mode, consent) are the
 * site config's: `overrides` gives them, e.g. `{ tracking: { hashRouting: true } }`.
 */
export function trackerSite(origin: string, overrides: SiteOverrides = {}): SiteConfig {
	const key = `tracker-${Math.random().toString(16).slice(2, 12)}`;
	const base: SiteOverrides = {
		site: { key, name: `Tracker ${key}`, domain: `${key}.example` },
		tracking: { allowedOrigins: [origin] },
		privacy: { cookieConsent: false },
		integrations: {
			n8nUrl: 'http://127.0.0.1:9',
			webhookSecretEnv: 'TEST_WEBHOOK_SECRET',
			webhookEndpoints: [
				{ workflow: 'visitor-processor', url: '/webhook/visitor' },
				{ workflow: 'lead-processor', url: '/webhook/lead' },
			],
		},
	};
	const input: Record<string, unknown> = { ...base };
	for (const [part, values] of Object.entries(overrides)) input[part] = { ...base[part as keyof SiteOverrides], ...values };
	return parseSiteConfig(input);
}

/**
 * Waits until the tracker of the page has its site's settings from the receiver and started: it
 * counted the page view, and it watches the page from then on (a click, a submit, a route change
 * or a closed tab before that is not seen). Started, it has wrapped history.pushState to see
 * route changes; the page view is counted in the same task.
 */
export async function trackerStarted(page: Page): Promise<void> {
	await page.waitForFunction(() => !/\[native code\]/.test(String(history.pushState)));
}

/** Opens `url` and waits until the tracker there started (trackerStarted). */
export async function visit(page: Page, url: string): Promise<void> {
	await page.goto(url);
	await trackerStarted(page);
}

/** Polls until `read()` satisfies `done`, then returns it; fails with the last value after `timeoutMs`. */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await read();
		if (done(value)) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting; last value: ${JSON.stringify(value, null, 1).slice(0, 2000)}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/**
 * The site's stored events in the order the browser made them: by their UUIDv7 ids, which begin
 * with the client's clock. (occurred_at is corrected per batch for clock skew, so events that
 * two beacons carried a few milliseconds apart can swap places there.)
 */
export async function storedEvents(prisma: PrismaClient, siteId: string) {
	return prisma.visitorEvent.findMany({ where: { siteId }, orderBy: { eventId: 'asc' } });
}

/** Closes the tab the way a visitor does: pagehide fires, and the tracker's beacons go out. */
export async function closeTab(page: Page): Promise<void> {
	await page.close({ runBeforeUnload: true });
}
