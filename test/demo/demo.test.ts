/** The demo site the receiver serves at /demo/: pages carrying the site's tracker, and clear 404s. */
import type { Receiver } from '../../server/receiver';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

describe('demo pages', () => {
	let receiver: Receiver;
	const site = testSiteConfig();

	beforeAll(async () => {
		receiver = await startTestReceiver([site]);
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

	it('says how to allow its origin when the site does not list it', async () => {
		const response = await fetch(`${receiver.url}/demo/`);
		expect(response.headers.get('x-demo-warning')).toContain(`add ${receiver.url} to tracking.allowedOrigins of ${site.site.key}`);
	});

	it('answers an unknown page with a 404 that points home', async () => {
		const response = await fetch(`${receiver.url}/demo/nope`);
		expect(response.status).toBe(404);
		expect(JSON.stringify(await response.json())).toContain('try /demo/');
	});
});
