/** The demo site the receiver serves at /demo/: pages carrying the site's tracker, and clear 404s. */
import { get } from 'node:http';

import type { Receiver } from '../../server/receiver';
import { ownOrigins } from '../../server/siteRegistry';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

describe('demo pages', () => {
	let receiver: Receiver;
	const site = testSiteConfig();
	const otherSite = testSiteConfig();

	beforeAll(async () => {
		receiver = await startTestReceiver([site, otherSite], { DISPATCHER: 'off' });
	});

	afterAll(async () => {
		await receiver.close();
	});

	it('serves every page with the site’s script tag, first-party', async () => {
		for (const path of ['/demo', '/demo/', '/demo/pricing', '/demo/app', '/demo/app/step-2', '/demo/contact', '/demo/thanks']) {
			const response = await fetch(`${receiver.url}${path}`);
			expect([path, response.status]).toEqual([path, 200]);
			const html = await response.text();
			expect(html).toContain(`<script defer src="${site.tracking.scriptPath}" data-site="${site.site.key}" data-endpoint="/api/track"`);
			expect(html).not.toContain('data-cookie-consent');
		}
		const contact = await (await fetch(`${receiver.url}/demo/contact`)).text();
		expect(contact).toMatch(/<input name="email" type="email"/);
		expect(contact).toMatch(/name="consent"/);
		const spa = await fetch(`${receiver.url}/demo/site.js`);
		expect(spa.headers.get('content-type')).toMatch(/javascript/);
		expect(await spa.text()).toContain('history.pushState');
	});

	it('lets its pages track on whatever port the receiver listens, for the demo site only', async () => {
		const port = new URL(receiver.url).port;
		expect(site.tracking.allowedOrigins).not.toContain(receiver.url);
		expect((await fetch(`${receiver.url}/demo/`)).headers.get('x-demo-warning')).toBeNull();
		for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
			const own = await post(`${receiver.url}/api/track`, batch(site.site.key, [pageview(site.site.key, 'demo-visitor', '/demo/')]), { origin });
			expect([origin, own.status]).toEqual([origin, 202]);
			const other = await post(`${receiver.url}/api/track`, batch(otherSite.site.key, [pageview(otherSite.site.key, 'demo-visitor', '/')]), { origin });
			expect([origin, other.status]).toEqual([origin, 403]);
		}
		const settings = await fetch(`${receiver.url}/api/track?site=${site.site.key}`, { headers: { origin: `http://localhost:${port}` } });
		expect(settings.headers.get('access-control-allow-origin')).toBe(`http://localhost:${port}`);
	});

	it('says how to allow its origin when the page is reached under another name', async () => {
		const { port } = new URL(receiver.url);
		const warning = await new Promise<string | undefined>((resolve, reject) =>
			get({ host: '127.0.0.1', port, path: '/demo/', headers: { host: `crm.example:${port}` } }, (response) => {
				response.resume();
				resolve(response.headers['x-demo-warning'] as string | undefined);
			}).on('error', reject),
		);
		expect(warning).toContain(`add http://crm.example:${port} to tracking.allowedOrigins of ${site.site.key}`);
	});

	it.each<[string, number, string | undefined, string[]]>([
		['127.0.0.1', 3000, undefined, ['http://localhost:3000', 'http://127.0.0.1:3000', 'http://[::1]:3000']],
		['0.0.0.0', 8080, 'https://crm.example.com/', ['http://localhost:8080', 'http://127.0.0.1:8080', 'http://[::1]:8080', 'https://crm.example.com']],
		['192.0.2.7', 80, undefined, ['http://192.0.2.7']],
		['fd00::7', 3000, undefined, ['http://[fd00::7]:3000']],
	])('its own origins on HOST %s, PORT %d, PUBLIC_URL %s', (host, port, publicUrl, expected) => {
		expect(ownOrigins(host, port, publicUrl)).toEqual(expected);
	});

	it('answers an unknown page with a 404 that points home', async () => {
		const response = await fetch(`${receiver.url}/demo/nope`);
		expect(response.status).toBe(404);
		expect(JSON.stringify(await response.json())).toContain('try /demo/');
	});
});
