import { readFileSync } from 'node:fs';
import { get, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';

import express from 'express';
import type { Browser } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { trackerRouter } from '../../server/routes/tracker';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, visit, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

const BUILD = path.join(__dirname, '../../tracker/dist');
const ESM_BUILD = path.join(BUILD, 'tracker.mjs');

describe('the tracker script, served and embedded', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;

	beforeAll(async () => {
		pages = await servePages((route) => {
			const name = route.split('/')[1];
			if (name == 'mistake') return trackedPage(receiver.url, site.stub.site.key, { debugMode: true, bogus: 1, endpoint: 'ftp://files.example/track' });
			if (name == 'quiet') return trackedPage(receiver.url, site.stub.site.key, { bogus: 1, endpoint: 'ftp://files.example/track' });
			if (name == 'stub')
				return `<script>window.tcrm = window.tcrm || function () { (tcrm.q = tcrm.q || []).push(arguments) }; tcrm('track', 'before-load', { early: true });</script>${trackedPage(receiver.url, site.stub.site.key)}`;
			if (name == 'esm')
				return `<script type="module">
					import * as tracker from '/tracker.mjs';
					window.exported = Object.keys(tracker).sort();
					tracker.init({ site: '${site.esm.site.key}', endpoint: '${receiver.url}/api/track' });
					tracker.track('from-module');
				</script>`;
			if (name == 'tracker.mjs') return readFileSync(ESM_BUILD, 'utf8');
			return undefined;
		});
		for (const name of ['stub', 'esm']) site[name] = trackerSite(pages.origin);
		site.custom = trackerSite(pages.origin, { tracking: { allowedOrigins: ['https://shop.example'], scriptPath: '/assets/crm.js' } });
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	it('is served at each site scriptPath with a content type, an ETag, a day of cache, and CORS for allowed origins', async () => {
		const served = await fetch(`${receiver.url}/t.js`, { headers: { origin: pages.origin } });
		expect(served.status).toBe(200);
		expect(Object.fromEntries(['content-type', 'cache-control', 'cross-origin-resource-policy', 'access-control-allow-origin', 'vary'].map((name) => [name, served.headers.get(name)]))).toEqual({
			'content-type': 'text/javascript; charset=utf-8',
			'cache-control': 'public, max-age=86400, stale-while-revalidate=604800',
			'cross-origin-resource-policy': 'cross-origin',
			'access-control-allow-origin': pages.origin,
			vary: 'Origin, Accept-Encoding',
		});
		expect(await served.text()).toBe(readFileSync(path.join(__dirname, '../../tracker/dist/t.js'), 'utf8'));
		const etag = served.headers.get('etag')!;
		// As a browser revalidates (fetch() would add no-cache, which forbids a 304).
		expect((await fetch(`${receiver.url}/t.js`, { headers: { 'if-none-match': etag, 'cache-control': 'max-age=0' } })).status).toBe(304);
		expect((await fetch(`${receiver.url}/assets/crm.js`)).headers.get('etag')).toBe(etag);
		expect((await fetch(`${receiver.url}/t.js`, { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin')).toBeNull();
	});

	it('is sent compressed as the build wrote it (brotli, else gzip), each with its own ETag, and plain to a client that takes neither', async () => {
		const script = readFileSync(path.join(BUILD, 't.js'));
		const raw = (encodings: string, etag?: string) =>
			new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
				const headers: Record<string, string> = { 'accept-encoding': encodings, ...(etag ? { 'if-none-match': etag } : {}) };
				get(`${receiver.url}/t.js`, { headers }, (response) => {
					const chunks: Buffer[] = [];
					response.on('data', (chunk: Buffer) => chunks.push(chunk));
					response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
				}).on('error', reject);
			});
		const brotli = await raw('gzip, deflate, br');
		expect([brotli.headers['content-encoding'], Number(brotli.headers['content-length'])]).toEqual(['br', readFileSync(path.join(BUILD, 't.js.br')).length]);
		expect(brotliDecompressSync(brotli.body)).toEqual(script);
		expect(brotli.body.length).toBeLessThan(2500);
		const gzip = await raw('gzip');
		expect(gzip.headers['content-encoding']).toBe('gzip');
		expect(gunzipSync(gzip.body)).toEqual(script);
		const plain = await raw('identity');
		expect([plain.headers['content-encoding'], plain.body]).toEqual([undefined, script]);
		const tags = [brotli, gzip, plain].map((answer) => answer.headers.etag);
		expect(new Set(tags).size).toBe(3);
		expect((await raw('br', brotli.headers.etag)).status).toBe(304);
	});

	it('answers 404 with what to do when the tracker is not built', async () => {
		const app = express().use(trackerRouter({ sites: receiver.sites, scriptFile: path.join(__dirname, 'no-such-build/t.js') }));
		const server = app.listen(0, '127.0.0.1');
		await new Promise((resolve) => server.once('listening', resolve));
		const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/t.js`);
		server.closeAllConnections();
		server.close();
		expect(response.status).toBe(404);
		expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
		expect(await response.json()).toEqual({
			type: 'about:blank',
			title: 'Not Found',
			status: 404,
			detail: expect.stringMatching(/npm run build:tracker/),
			error: 'tracker_not_built',
			message: expect.stringMatching(/npm run build:tracker/),
		});
	});

	it('names every option mistake in one console warning in debug mode, stays off, and stays silent otherwise', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		// Console errors are the browser's own (a 404 for /favicon.ico); the tracker only ever warns.
		const messages: string[] = [];
		const errors: Error[] = [];
		page.on('console', (message) => message.type() != 'error' && messages.push(`${message.type()}: ${message.text()}`));
		page.on('pageerror', (error) => errors.push(error));
		await page.goto(`${pages.origin}/mistake/`);
		await page.evaluate(() => tcrm('track', 'ignored'));
		await page.goto(`${pages.origin}/quiet/`);
		await page.evaluate(() => tcrm('track', 'ignored'));
		await closeTab(page);
		expect(messages).toEqual(['warning: [tracking-crm] check the options: bogus (unknown), endpoint (not http)']);
		expect(errors).toEqual([]);
		await context.close();
	});

	it('never throws into the page, whatever the calls', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		const errors: Error[] = [];
		page.on('pageerror', (error) => errors.push(error));
		await visit(page, `${pages.origin}/stub/`);
		const thrown = await page.evaluate(() => {
			try {
				tcrm('track', null);
				tcrm('track', 'bad-props', 'not an object');
				tcrm('identify');
				tcrm('nonexistent', 1);
				tcrm('consent', { granted: true });
				history.pushState(null, '', '/stub/after');
				return 'none';
			} catch (error) {
				return String(error);
			}
		});
		expect(thrown).toBe('none');
		await page.waitForTimeout(100);
		expect(errors).toEqual([]);
		await context.close();
	});

	it('replays calls a page made through the stub before the script loaded', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/stub/`);
		await closeTab(page);
		const rows = await eventually(
			() => storedEvents(prisma, siteId('stub')),
			(events) => events.some((event) => event.name == 'before-load'),
		);
		expect(rows.find((event) => event.name == 'before-load')!.properties).toEqual({ early: true });
		await context.close();
	});

	it('works as an ES module for bundlers: init, then track', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/esm/`);
		expect(await page.evaluate(() => (window as unknown as { exported: string[] }).exported)).toEqual(['consent', 'identify', 'init', 'optOut', 'reset', 'track']);
		await closeTab(page);
		const rows = await eventually(
			() => storedEvents(prisma, siteId('esm')),
			(events) => events.length >= 2,
		);
		// Sorted: the call waits for the settings and is made in the page view's millisecond, where UUIDv7 ids do not keep the order.
		expect(rows.slice(0, 2).map((event) => event.name ?? event.type).sort()).toEqual(['from-module', 'pageview']);
		await context.close();
	});
});
