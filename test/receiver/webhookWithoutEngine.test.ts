import { randomUUID } from 'node:crypto';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { signedHeaders } from '../../lib/signing';
import type { Receiver } from '../../server/receiver';
import { startTestReceiver, TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

/**
 * POST /webhook/<path> on a receiver that runs no embedded engine: a sender must learn that
 * retrying is no use (the workflows run in n8n, or the engine is switched off), never
 * "storage unavailable, retry in a few seconds" for ever.
 */
async function deliver(receiver: Receiver, body: string, headers: Record<string, string> = {}) {
	const response = await fetch(`${receiver.url}/webhook/visitor`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
	return { status: response.status, retryAfter: response.headers.get('retry-after'), json: (await response.json()) as { error: string; message: string } };
}

describe('POST /webhook/<path> when every site names an n8n', () => {
	const site = testSiteConfig({ n8nUrl: 'http://127.0.0.1:9' });
	let receiver: Receiver;
	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off' });
	});
	afterAll(() => receiver.close());

	it('answers 404 without Retry-After, naming the n8n to a delivery signed for the site, and no n8n to anyone else', async () => {
		const body = JSON.stringify({ site: site.site.key, events: [] });
		const signed = await deliver(receiver, body, signedHeaders(TEST_SECRET, site.site.key, body, randomUUID()));
		expect(signed).toEqual({
			status: 404,
			retryAfter: null,
			json: expect.objectContaining({
				error: 'workflows_run_in_n8n',
				message: "No workflow runs in this receiver: they run in the n8n at http://127.0.0.1:9; post deliveries to its /webhook/<path>, not the receiver's",
			}),
		});
		for (const headers of [{}, signedHeaders('another-secret-0123456789abcdef', site.site.key, body, randomUUID())]) {
			const stranger = await deliver(receiver, body, headers);
			expect([stranger.status, stranger.retryAfter, stranger.json.error]).toEqual([404, null, 'workflows_run_in_n8n']);
			expect(stranger.json.message).toBe("No workflow runs in this receiver: they run in the n8n each site's integrations.n8nUrl names; post deliveries to its /webhook/<path>, not the receiver's");
		}
	});
});

describe('POST /webhook/<path> with the embedded engine switched off', () => {
	const site = parseSiteConfig({
		site: { key: `embedded-${randomUUID().slice(0, 8)}`, name: 'Embedded', domain: 'embedded.example' },
		tracking: { allowedOrigins: ['https://embedded.example'] },
		privacy: { cookieConsent: false },
	});
	let receiver: Receiver;
	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off' });
	});
	afterAll(() => receiver.close());

	it('answers 503 without Retry-After, naming DISPATCHER', async () => {
		const answer = await deliver(receiver, '{}');
		expect([answer.status, answer.retryAfter, answer.json.error]).toEqual([503, null, 'engine_not_running']);
		expect(answer.json.message).toMatch(/DISPATCHER=off.*unset DISPATCHER and restart the receiver/);
	});
});
