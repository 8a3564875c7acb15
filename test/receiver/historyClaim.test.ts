import { createApiKey } from '../../server/auth';
import { historyClaim, type ClientFacts, type StoredHistory } from '../../server/ingest/historyClaim';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const visitor: ClientFacts = { ipAnonymized: '198.51.100.0', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' };

describe('historyClaim: what lets a lead post take over an anonymous history', () => {
	const began = (firstEvent: ClientFacts | undefined, analyticsConsent?: StoredHistory['analyticsConsent']): StoredHistory => ({ firstEvent, analyticsConsent });
	it.each<[string, ClientFacts, StoredHistory, boolean, ReturnType<typeof historyClaim>]>([
		['the client the history began on', visitor, began(visitor), false, { merge: true, proof: 'same-client' }],
		['an id with no history yet', { ipAnonymized: '203.0.113.0', userAgent: 'curl/8' }, began(undefined), false, { merge: true, proof: 'no-history' }],
		['a server holding an admin key of the site', { ipAnonymized: '203.0.113.0', userAgent: 'node' }, began(visitor), true, { merge: true, proof: 'site-key' }],
		['another network with the same browser string', { ...visitor, ipAnonymized: '203.0.113.0' }, began(visitor), false, { merge: false, reason: 'other-client' }],
		['the same network with another browser', { ...visitor, userAgent: 'Mozilla/5.0 Chrome/150.0' }, began(visitor), false, { merge: false, reason: 'other-client' }],
		['a post without an address', { ...visitor, ipAnonymized: null }, began({ ...visitor, ipAnonymized: null }), false, { merge: false, reason: 'other-client' }],
		['a post without a user agent', { ...visitor, userAgent: null }, began({ ...visitor, userAgent: null }), false, { merge: false, reason: 'other-client' }],
		['the same client, consent granted last', visitor, began(visitor, 'granted'), false, { merge: true, proof: 'same-client' }],
		['the same client, consent withdrawn last', visitor, began(visitor, 'withdrawn'), false, { merge: false, reason: 'consent-withdrawn' }],
		['a server with an admin key, consent withdrawn last', { ipAnonymized: '203.0.113.0', userAgent: 'node' }, began(visitor, 'withdrawn'), true, { merge: false, reason: 'consent-withdrawn' }],
	])('%s', (_case, request, history, vouched, expected) => {
		expect(historyClaim(request, history, vouched)).toEqual(expected);
	});
});

describe('POST /api/lead joins an anonymous history only with proof', () => {
	const prisma = testPrisma();
	const site = testSiteConfig();
	const other = testSiteConfig();
	const consenting = testSiteConfig({ consent: true });
	let receiver: Receiver;
	let siteId: string;
	const visitorAt = { 'x-forwarded-for': '198.51.100.7' };
	const strangerAt = { 'x-forwarded-for': '203.0.113.9' };

	beforeAll(async () => {
		receiver = await startTestReceiver([site, other, consenting], { DISPATCHER: 'off', TRUST_PROXY: 'loopback' });
		siteId = receiver.sites.byPublicKey(site.site.key)!.id;
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	const browse = async (anonymousId: string, headers: Record<string, string>) =>
		expect((await post(`${receiver.url}/api/track`, batch(site.site.key, [pageview(site.site.key, anonymousId, '/pricing')]), headers)).status).toBe(202);
	const lead = (email: string, anonymousId: string, headers: Record<string, string>) => post(`${receiver.url}/api/lead`, { site: site.site.key, email, anonymousId }, headers);
	const forwardedLead = async (email: string) => {
		const rows = await prisma.outboxMessage.findMany({ where: { siteId, destination: 'lead-processor' } });
		const row = rows.find((candidate) => (candidate.payload as { lead: { email: string } }).lead.email === email);
		return { partition: row?.partitionKey, lead: (row?.payload as { lead: Record<string, unknown> } | undefined)?.lead };
	};

	it('keeps a history anonymous when a stranger names its id from another network, and joins it for the browser it began on', async () => {
		await browse('anon-victim', visitorAt);
		expect(await lead('mallory@example.com', 'anon-victim', strangerAt)).toEqual({ status: 202, json: { stored: true, duplicate: false, history: 'kept anonymous: other-client' } });
		const stolen = await forwardedLead('mallory@example.com');
		expect(stolen.lead).not.toHaveProperty('anonymousId');
		expect(stolen.partition).toMatch(/^lead:/);
		// The stranger's own events under the id come after the visitor's first one: they prove nothing either.
		await browse('anon-victim', strangerAt);
		expect((await lead('mallory@example.com', 'anon-victim', strangerAt)).json.history).toBe('kept anonymous: other-client');

		expect(await lead('vera@example.com', 'anon-victim', { 'x-forwarded-for': '198.51.100.200' })).toEqual({ status: 202, json: { stored: true, duplicate: false, history: 'joined' } });
		expect((await forwardedLead('vera@example.com')).lead).toMatchObject({ anonymousId: 'anon-victim' });
	});

	it('keeps the history anonymous for the same network with another browser', async () => {
		await browse('anon-desk', visitorAt);
		expect((await lead('colleague@example.com', 'anon-desk', { ...visitorAt, 'user-agent': 'Mozilla/5.0 (Macintosh) Safari/605.1.15' })).json.history).toBe('kept anonymous: other-client');
	});

	it('joins an id with no history yet, whoever posts it', async () => {
		expect((await lead('new@example.com', 'anon-fresh', strangerAt)).json.history).toBe('joined');
	});

	it('lets a server with an admin key of the site vouch for an id, and refuses a key of another site or a read key', async () => {
		await browse('anon-backend', visitorAt);
		const admin = await createApiKey(prisma, siteId, 'admin', 'backend');
		const read = await createApiKey(prisma, siteId, 'read', 'dashboard');
		const otherAdmin = await createApiKey(prisma, receiver.sites.byPublicKey(other.site.key)!.id, 'admin', 'other backend');
		expect(await lead('user@example.com', 'anon-backend', { ...strangerAt, authorization: `Bearer ${admin}` })).toEqual({ status: 202, json: { stored: true, duplicate: false, history: 'joined' } });
		// A backend's own user agent is no reason to drop its lead: the key vouches for it.
		expect(await lead('backend-agent@example.com', 'anon-backend', { ...strangerAt, authorization: `Bearer ${admin}`, 'user-agent': 'MyBackend/1.0 node-fetch' })).toEqual({
			status: 202,
			json: { stored: true, duplicate: false, history: 'joined' },
		});
		expect((await lead('keyless-agent@example.com', 'anon-backend', { ...strangerAt, 'user-agent': 'MyBackend/1.0 node-fetch' })).json).toEqual({ stored: false, reason: 'automated-client' });

		const foreign = await lead('user2@example.com', 'anon-backend', { ...strangerAt, authorization: `Bearer ${otherAdmin}` });
		expect(foreign.status).toBe(403);
		expect(foreign.json.issues).toEqual([{ field: 'site', message: 'is not the site of the API key' }]);
		expect((await lead('user3@example.com', 'anon-backend', { ...strangerAt, authorization: `Bearer ${read}` })).status).toBe(403);
		expect((await lead('user4@example.com', 'anon-backend', { ...strangerAt, authorization: 'Bearer tcrm_admin_not-a-real-key-0000000000' })).status).toBe(401);
		for (const email of ['user2@example.com', 'user3@example.com', 'user4@example.com']) expect((await forwardedLead(email)).lead).toBeUndefined();
	});

	it('keeps the history anonymous after the visitor withdrew analytics consent, and joins it once they grant it again', async () => {
		const key = consenting.site.key;
		const track = async (consent: 'granted' | 'denied') =>
			(await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-withdrew', '/pricing')], { consent }), visitorAt)).json;
		const claim = async (email: string) => (await post(`${receiver.url}/api/lead`, { site: key, email, anonymousId: 'anon-withdrew', consent: true }, visitorAt)).json.history;
		expect(await track('granted')).toMatchObject({ stored: 1 });
		expect(await track('denied')).toMatchObject({ stored: 0 });
		expect(await claim('withdrew@example.com')).toBe('kept anonymous: consent-withdrawn');
		expect(await track('granted')).toMatchObject({ stored: 1 });
		expect(await claim('granted-again@example.com')).toBe('joined');
	});
});
