/**
 * Site A's keys cause no delivery and no row for site B, through any route. Both sites forward
 * to the SAME n8n with the SAME webhook secret (the setup where a cross-site write would land):
 * A's admin key, read key and public key name B in every place a request can name a site —
 * ingest, lead, the workflow test, privacy and email links — and afterwards B holds no row in
 * any table, and n8n got no delivery signed for B or naming B, while A's own requests went
 * through and were delivered.
 */
import { randomUUID } from 'node:crypto';

import type { SiteConfig } from '../../lib/contracts';
import { emailHash } from '../../lib/email';
import { trackingUrls } from '../../lib/emailTokens';
import { foreignSiteField } from '../../lib/signing';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { FakeN8n } from '../helpers/fakeN8n';
import { startTestReceiver, TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const EMAIL_SECRET = 'cross-site-email-token-secret-0123456789';

/** A site forwarding to every workflow the receiver feeds: the visitor, lead and email ones. */
function forwardingSite(n8nUrl: string): SiteConfig {
	const config = testSiteConfig({ n8nUrl });
	return { ...config, integrations: { ...config.integrations, webhookEndpoints: [...config.integrations.webhookEndpoints, { workflow: 'email-orchestrator', url: '/webhook/email' }] } };
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

describe('site A’s keys cause no delivery and no row for site B', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	let receiver: Receiver;
	let a: { key: string; id: string; origin: string };
	let b: { key: string; id: string };
	let adminKey: string;
	let readKey: string;

	beforeAll(async () => {
		await n8n.start();
		const siteA = forwardingSite(n8n.url);
		const siteB = forwardingSite(n8n.url);
		receiver = await startTestReceiver([siteA, siteB], { EMAIL_TOKEN_SECRET: EMAIL_SECRET });
		a = { key: siteA.site.key, id: receiver.sites.byPublicKey(siteA.site.key)!.id, origin: siteA.tracking.allowedOrigins[0] };
		b = { key: siteB.site.key, id: receiver.sites.byPublicKey(siteB.site.key)!.id };
		adminKey = await createApiKey(prisma, a.id, 'admin', 'ops');
		readKey = await createApiKey(prisma, a.id, 'read', 'dashboard');
	});
	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		await prisma.$disconnect();
	});

	const api = async (path: string, key: string, init: { method?: string; body?: unknown } = {}) => {
		const response = await fetch(`${receiver.url}${path}`, {
			method: init.method ?? 'POST',
			headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
			body: init.body === undefined ? undefined : JSON.stringify(init.body),
		});
		const text = await response.text();
		return { status: response.status, json: text.startsWith('{') ? JSON.parse(text) : text };
	};

	/** Row counts of site B in every table that has a site_id. */
	const rowsOfB = async () => {
		const tables = await prisma.$queryRawUnsafe<Array<{ table_name: string }>>(
			`SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema() AND column_name = 'site_id' ORDER BY table_name`,
		);
		const counts: Record<string, number> = {};
		for (const { table_name: table } of tables) {
			const [row] = await prisma.$queryRawUnsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM "${table}" WHERE site_id = $1::uuid`, b.id);
			counts[table] = row.n;
		}
		return counts;
	};

	it('through ingest, lead, the workflow test, privacy and email links', async () => {
		const outcomes: Array<[string, number]> = [];
		const record = (what: string, status: number) => outcomes.push([what, status]);
		const fromA = { origin: a.origin };

		// The public key: events and leads go to the site of the batch's key, from its origins only.
		const named = { site: b.key, siteId: b.id };
		record('track: A’s batch, B in event props', (await post(`${receiver.url}/api/track`, batch(a.key, [pageview(a.key, 'anon-a', '/', { props: named })]), fromA)).status);
		record('track: B’s key from A’s origin', (await post(`${receiver.url}/api/track`, batch(b.key, [pageview(b.key, 'anon-a')]), fromA)).status);
		record('track: A’s batch with siteId of B', (await post(`${receiver.url}/api/track`, { ...batch(a.key, [pageview(a.key, 'anon-a')]), siteId: b.id }, fromA)).status);
		record('track: A’s batch, event with site B', (await post(`${receiver.url}/api/track`, batch(a.key, [{ ...pageview(a.key, 'anon-a'), site: b.key } as never]), fromA)).status);
		record('track: A’s batch with A’s admin key', (await post(`${receiver.url}/api/track`, batch(a.key, [pageview(a.key, 'anon-a', '/admin')]), { ...fromA, authorization: `Bearer ${adminKey}` })).status);
		const lead = { site: a.key, email: 'jane@example.com', anonymousId: 'anon-a', eventId: randomUUID() };
		record('lead: A’s lead, B in properties', (await post(`${receiver.url}/api/lead`, { ...lead, properties: named }, fromA)).status);
		record('lead: B’s key from A’s origin', (await post(`${receiver.url}/api/lead`, { ...lead, site: b.key, eventId: randomUUID() }, fromA)).status);
		record('lead: A’s lead with siteId of B', (await post(`${receiver.url}/api/lead`, { ...lead, siteId: b.id, eventId: randomUUID() }, fromA)).status);

		// The admin key's workflow test: a payload naming B anywhere is refused, nothing is sent.
		const workflowTests = () => n8n.deliveries.filter((delivery) => delivery.deliveryId.startsWith('test-')).length + n8n.rejected.length;
		const sent = workflowTests();
		const payloads: Array<[string, Record<string, unknown>]> = [
			['site', { site: b.key, events: [], leads: [] }],
			['siteId', { siteId: b.id, events: [], leads: [] }],
			['events[0].site', { events: [{ id: randomUUID(), site: b.key }], leads: [] }],
			['events[0].siteId', { events: [{ id: randomUUID(), siteId: b.id }], leads: [] }],
			['leads[0].siteId', { events: [], leads: [{ kind: 'lead', siteId: b.id, lead: { site: a.key, email: 'x@example.com' } }] }],
			['leads[0].lead.site', { events: [], leads: [{ kind: 'lead', lead: { site: b.key, email: 'x@example.com' } }] }],
			['emailEvents[0].site', { events: [], leads: [], emailEvents: [{ kind: 'email-event', site: b.key }] }],
			['items[1].site', { items: [{ site: a.key }, { site: b.key }] }],
			['items[0].siteId', { items: [{ siteId: b.id }] }],
		];
		for (const [field, payload] of payloads) {
			const refused = await api('/api/test-microworkflow', adminKey, { body: { workflow: 'visitor-processor', payload } });
			expect([field, refused.status, refused.json.issues]).toEqual([field, 400, [{ field: `payload.${field}`, message: expect.stringContaining(`this key sends for site ${a.key} only`) }]]);
		}
		expect(workflowTests()).toBe(sent);
		record('test-microworkflow: read key naming B', (await api('/api/test-microworkflow', readKey, { body: { workflow: 'lead-processor', payload: named } })).status);
		record('test-microworkflow: site beside the payload', (await api('/api/test-microworkflow', adminKey, { body: { workflow: 'lead-processor', site: b.key } })).status);
		const own = await api('/api/test-microworkflow', adminKey, { body: { workflow: 'visitor-processor', payload: { events: [{ id: randomUUID(), anonymousId: 'anon-a', type: 'pageview', occurredAt: new Date().toISOString() }], leads: [] } } });
		record('test-microworkflow: A’s own payload, no site named', own.status);
		expect(own.json).toMatchObject({ status: 200, ok: true });
		expect(n8n.deliveries.at(-1)).toMatchObject({ signedSite: a.key, body: { site: a.key, siteId: a.id } });

		// Privacy: scoped to the key's site, whatever the request names.
		record('privacy export: admin key, site B in the query', (await api(`/api/privacy/export?email=jane@example.com&site=${b.key}&siteId=${b.id}`, adminKey, { method: 'GET' })).status);
		record('privacy erase: read key', (await api('/api/privacy/erase', readKey, { body: { email: 'jane@example.com' } })).status);
		record('privacy erase: admin key naming B', (await api('/api/privacy/erase', adminKey, { body: { email: 'jane@example.com', site: b.key } })).status);
		record('privacy erase: admin key', (await api('/api/privacy/erase', adminKey, { body: { email: 'gone@example.com' } })).status);

		// Email links of A's message: their rows and notifications are the message's site's.
		const email = 'reader@example.com';
		const leadRow = await prisma.lead.create({ data: { siteId: a.id, email, emailHash: emailHash(email) } });
		const message = await prisma.emailMessage.create({
			data: { siteId: a.id, leadId: leadRow.id, idempotencyKey: randomUUID(), toEmail: email, subject: 'Hello', status: 'sent', links: ['https://a.example/offer'], sentAt: new Date() },
		});
		const urls = trackingUrls(receiver.url, EMAIL_SECRET, message.id, ['https://a.example/offer']);
		record('email open', (await fetch(`${urls.openPixelUrl}?site=${b.key}`)).status);
		record('email click', (await fetch(urls.clickUrl(0), { redirect: 'manual' })).status);
		record('email unsubscribe', (await fetch(urls.unsubscribeUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' })).status);

		expect(outcomes).toEqual([
			['track: A’s batch, B in event props', 202],
			['track: B’s key from A’s origin', 403],
			['track: A’s batch with siteId of B', 400],
			['track: A’s batch, event with site B', 400],
			['track: A’s batch with A’s admin key', 202],
			['lead: A’s lead, B in properties', 202],
			['lead: B’s key from A’s origin', 403],
			['lead: A’s lead with siteId of B', 400],
			['test-microworkflow: read key naming B', 403],
			['test-microworkflow: site beside the payload', 400],
			['test-microworkflow: A’s own payload, no site named', 200],
			['privacy export: admin key, site B in the query', 400],
			['privacy erase: read key', 403],
			['privacy erase: admin key naming B', 400],
			['privacy erase: admin key', 200],
			['email open', 200],
			['email click', 302],
			['email unsubscribe', 200],
		]);

		// Everything A caused reaches n8n: its events, its lead and its three email events.
		await waitFor(async () => (await prisma.outboxMessage.count({ where: { siteId: a.id, status: { not: 'delivered' } } })) === 0, 20_000, 'A’s outbox delivered');
		const destinations = new Set(n8n.deliveries.map((delivery) => delivery.path));
		expect([...destinations].sort()).toEqual(['/webhook/email', '/webhook/lead', '/webhook/visitor']);

		expect(n8n.rejected).toEqual([]);
		for (const delivery of n8n.deliveries) {
			expect([delivery.path, delivery.signedSite, foreignSiteField(delivery.body, a.key, a.id)]).toEqual([delivery.path, a.key, undefined]);
		}
		const rows = await rowsOfB();
		expect(Object.keys(rows)).toEqual(expect.arrayContaining(['visitor_events', 'leads', 'outbox', 'email_events', 'suppressions', 'erasure_log', 'channel_statuses', 'api_keys']));
		expect(Object.entries(rows).filter(([, count]) => count > 0)).toEqual([]);
	}, 120_000);
});
