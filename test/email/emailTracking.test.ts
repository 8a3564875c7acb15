import { randomUUID } from 'node:crypto';

import type { SiteConfig } from '../../lib/contracts';
import { emailHash } from '../../lib/email';
import { signEmailToken, trackingUrls, verifyEmailToken } from '../../lib/emailTokens';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const SECRET = 'email-token-secret-for-tests-0123456789';
const OTHER_SECRET = 'another-email-token-secret-0123456789ab';

function withOrchestrator(config: SiteConfig): SiteConfig {
	return { ...config, integrations: { ...config.integrations, webhookEndpoints: [...config.integrations.webhookEndpoints, { workflow: 'email-orchestrator', url: '/webhook/email' }] } };
}

describe('email tokens', () => {
	const id = '019a8b6e-1234-7abc-8def-0123456789ab';

	it('builds the pixel, click and unsubscribe URLs and the RFC 8058 headers', () => {
		const urls = trackingUrls('https://crm.example.com/tracking/', SECRET, id, ['https://a.example/', 'https://b.example/']);
		expect(urls.openPixelUrl).toMatch(new RegExp(`^https://crm\\.example\\.com/tracking/e/o/o\\.${id}\\.[A-Za-z0-9_-]{43}$`));
		expect(urls.clickUrl(1)).toMatch(new RegExp(`^https://crm\\.example\\.com/tracking/e/c/c\\.${id}\\.1\\.[A-Za-z0-9_-]{43}$`));
		expect(urls.listUnsubscribeHeaders).toEqual({ 'List-Unsubscribe': `<${urls.unsubscribeUrl}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });
		expect(() => urls.clickUrl(2)).toThrow('No link at index 2; the message has 2 link(s)');
		expect(() => trackingUrls('crm.example.com', SECRET, id, [])).toThrow(/absolute http\(s\) URL/);
		expect(() => trackingUrls('https://crm.example.com', 'short', id, [])).toThrow(/at least 32 characters/);
	});

	it('verifies only untouched tokens, for the action they were made for', () => {
		const click = signEmailToken(SECRET, id, 'click', 3);
		expect(verifyEmailToken(SECRET, click, 'click')).toEqual({ valid: true, messageId: id, action: 'click', linkIndex: 3 });
		expect(verifyEmailToken(SECRET, signEmailToken(SECRET, id.toUpperCase(), 'open'), 'open')).toEqual({ valid: true, messageId: id, action: 'open', linkIndex: undefined });
		expect(verifyEmailToken(SECRET, click.replace('.3.', '.4.'), 'click')).toMatchObject({ valid: false, reason: expect.stringMatching(/signature does not match/) });
		expect(verifyEmailToken(OTHER_SECRET, click, 'click')).toMatchObject({ valid: false, reason: expect.stringMatching(/signature does not match/) });
		expect(verifyEmailToken(SECRET, click, 'unsubscribe')).toEqual({ valid: false, reason: 'the token is for click, not unsubscribe' });
		for (const bad of ['', 'x', click.slice(0, -1), click.replace('.3.', '.03.'), `${click}.`, 'o'.repeat(500)]) {
			expect(verifyEmailToken(SECRET, bad, 'click').valid).toBe(false);
		}
	});
});

describe('email tracking routes', () => {
	const prisma = testPrisma();
	const site = withOrchestrator(testSiteConfig());
	const quietSite = testSiteConfig({ endpoints: false });
	const links = ['https://shop.example/guide?utm_source=email', 'https://shop.example/pricing', 'javascript:alert(1)'];
	let receiver: Receiver;
	let siteId: string;
	let quietSiteId: string;

	beforeAll(async () => {
		receiver = await startTestReceiver([site, quietSite], { DISPATCHER: 'off', EMAIL_TOKEN_SECRET: SECRET });
		siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		quietSiteId = receiver.sites.byPublicKey(quietSite.site.key)!.id;
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	async function seedMessage(onSite = siteId, withLead = true) {
		const email = `person-${randomUUID().slice(0, 8)}@example.com`;
		const lead = withLead ? await prisma.lead.create({ data: { siteId: onSite, email, emailHash: emailHash(email) } }) : null;
		const message = await prisma.emailMessage.create({
			data: { siteId: onSite, leadId: lead?.id, idempotencyKey: randomUUID(), toEmail: email, subject: 'Hello', status: 'sent', links, sentAt: new Date() },
		});
		const urls = trackingUrls(receiver.url, SECRET, message.id, links);
		return { email, lead, message, urls };
	}

	const events = (messageId: string) => prisma.emailEvent.findMany({ where: { messageId }, orderBy: { occurredAt: 'asc' } });
	const outbox = (id = siteId) => prisma.outboxMessage.findMany({ where: { siteId: id, destination: 'email-orchestrator' }, orderBy: { id: 'asc' } });
	const get = (url: string) => fetch(url, { redirect: 'manual' });
	const unsubscribe = (url: string, body: string | undefined, type = 'application/x-www-form-urlencoded') => fetch(url, { method: 'POST', headers: { 'content-type': type }, body });

	it('answers the pixel with a transparent GIF and stamps the first open once', async () => {
		const { message, urls } = await seedMessage();
		const first = await get(urls.openPixelUrl);
		expect(first.status).toBe(200);
		expect(first.headers.get('content-type')).toBe('image/gif');
		expect(first.headers.get('cache-control')).toMatch(/no-store/);
		const gif = Buffer.from(await first.arrayBuffer());
		expect(gif.subarray(0, 6).toString('latin1')).toBe('GIF89a');
		expect(gif.length).toBe(42);
		const stamped = (await prisma.emailMessage.findUniqueOrThrow({ where: { id: message.id } })).firstOpenedAt;
		expect(stamped).toBeInstanceOf(Date);

		expect((await get(urls.openPixelUrl)).status).toBe(200);
		expect((await prisma.emailMessage.findUniqueOrThrow({ where: { id: message.id } })).firstOpenedAt).toEqual(stamped);
		expect((await events(message.id)).map((event) => event.type)).toEqual(['open', 'open']);
		const rows = (await outbox()).filter((row) => (row.payload as { messageId: string }).messageId === message.id);
		expect(rows.map((row) => row.payload)).toEqual([
			expect.objectContaining({ kind: 'email-event', type: 'open', messageId: message.id, leadId: message.leadId, first: true }),
			expect.objectContaining({ kind: 'email-event', type: 'open', messageId: message.id, leadId: message.leadId, first: false }),
		]);
		expect(rows.every((row) => row.partitionKey === `lead:${message.leadId}` && row.status === 'pending')).toBe(true);
	});

	it('marks exactly one of simultaneous first opens as the first', async () => {
		const { message, urls } = await seedMessage();
		await Promise.all(Array.from({ length: 8 }, () => get(urls.openPixelUrl).then((response) => response.arrayBuffer())));
		const rows = (await outbox()).filter((row) => (row.payload as { messageId: string }).messageId === message.id);
		expect(rows).toHaveLength(8);
		expect(rows.filter((row) => (row.payload as { first: boolean }).first)).toHaveLength(1);
	});

	it('still answers the pixel for a bad token but records nothing', async () => {
		const { message, urls } = await seedMessage();
		const before = (await outbox()).length;
		const tampered = urls.openPixelUrl.replace(/.$/, (char) => (char === 'A' ? 'B' : 'A'));
		const foreign = trackingUrls(receiver.url, OTHER_SECRET, message.id, links).openPixelUrl;
		for (const url of [tampered, foreign, `${receiver.url}/e/o/not-a-token`, `${receiver.url}/e/o/${signEmailToken(SECRET, randomUUID(), 'open')}`]) {
			const response = await get(url);
			expect(response.status).toBe(200);
			expect(response.headers.get('content-type')).toBe('image/gif');
		}
		expect(await events(message.id)).toEqual([]);
		expect((await prisma.emailMessage.findUniqueOrThrow({ where: { id: message.id } })).firstOpenedAt).toBeNull();
		expect((await outbox()).length).toBe(before);
	});

	it('redirects a click to the link the message contained and stamps the first click', async () => {
		const { message, urls } = await seedMessage();
		const response = await get(urls.clickUrl(1));
		expect(response.status).toBe(302);
		expect(response.headers.get('location')).toBe(links[1]);
		expect((await get(urls.clickUrl(0))).headers.get('location')).toBe(links[0]);
		expect((await events(message.id)).map((event) => [event.type, event.url])).toEqual([
			['click', links[1]],
			['click', links[0]],
		]);
		expect((await prisma.emailMessage.findUniqueOrThrow({ where: { id: message.id } })).firstClickedAt).toBeInstanceOf(Date);
		const rows = (await outbox()).filter((row) => (row.payload as { messageId: string }).messageId === message.id);
		expect(rows.map((row) => row.payload)).toEqual([
			expect.objectContaining({ type: 'click', url: links[1], first: true }),
			expect.objectContaining({ type: 'click', url: links[0], first: false }),
		]);
	});

	it('refuses tampered tokens, foreign link indexes and non-web links with a 400 page, recording nothing', async () => {
		const { message, urls } = await seedMessage();
		const before = (await outbox()).length;
		const cases: Array<[string, RegExp]> = [
			[urls.clickUrl(0).replace(/\.0\.([^.]+)$/, '.1.$1'), /signature does not match/],
			[trackingUrls(receiver.url, OTHER_SECRET, message.id, links).clickUrl(1), /signature does not match/],
			[`${receiver.url}/e/c/${signEmailToken(SECRET, message.id, 'click', 7)}`, /link 7 is not a web link of this email/],
			[urls.clickUrl(2), /link 2 is not a web link of this email/],
			[urls.openPixelUrl.replace('/e/o/', '/e/c/'), /the token is for open, not click/],
			[`${receiver.url}/e/c/c.${message.id}.0.https%3A%2F%2Fevil.example`, /malformed/],
		];
		for (const [url, problem] of cases) {
			const response = await get(url);
			expect(response.status).toBe(400);
			expect(response.headers.get('location')).toBeNull();
			expect(response.headers.get('content-type')).toMatch(/text\/html/);
			expect(await response.text()).toMatch(problem);
		}
		expect((await get(`${receiver.url}/e/c/%E0%A4%A`)).status).toBe(400);
		const unknown = await get(`${receiver.url}/e/c/${signEmailToken(SECRET, randomUUID(), 'click', 0)}`);
		expect(unknown.status).toBe(404);
		expect(await events(message.id)).toEqual([]);
		expect((await prisma.emailMessage.findUniqueOrThrow({ where: { id: message.id } })).firstClickedAt).toBeNull();
		expect((await outbox()).length).toBe(before);
	});

	it('treats HEAD probes of link scanners as nothing', async () => {
		const { message, urls } = await seedMessage();
		expect((await fetch(urls.clickUrl(0), { method: 'HEAD', redirect: 'manual' })).status).toBe(204);
		expect((await fetch(urls.openPixelUrl, { method: 'HEAD' })).status).toBe(204);
		expect(await events(message.id)).toEqual([]);
	});

	it('asks before unsubscribing on GET, and unsubscribes on the one-click POST exactly once', async () => {
		const { lead, message, urls } = await seedMessage();
		const page = await get(urls.unsubscribeUrl);
		expect(page.status).toBe(200);
		const html = await page.text();
		expect(html).toContain('<form method="post">');
		expect(html).toContain(`Stop receiving emails from ${site.site.name}?`);
		expect(await prisma.channelStatus.count({ where: { leadId: lead!.id } })).toBe(0);

		const response = await unsubscribe(urls.listUnsubscribeHeaders['List-Unsubscribe'].slice(1, -1), 'List-Unsubscribe=One-Click');
		expect(response.status).toBe(200);
		expect(await response.text()).toMatch(/You are unsubscribed/);
		expect(await prisma.channelStatus.findMany({ where: { leadId: lead!.id } })).toEqual([expect.objectContaining({ siteId, channel: 'email', status: 'unsubscribed' })]);
		expect(await prisma.suppression.findMany({ where: { siteId, emailHash: lead!.emailHash } })).toEqual([expect.objectContaining({ channel: 'email', reason: 'unsubscribed' })]);
		// The link opened again says it took, and asks nothing.
		const reopened = await (await get(urls.unsubscribeUrl)).text();
		expect(reopened).toContain(`You will not receive emails from ${site.site.name} any more.`);
		expect(reopened).not.toContain('<form');
		expect((await events(message.id)).map((event) => event.type)).toEqual(['unsubscribe']);
		const rows = (await outbox()).filter((row) => (row.payload as { messageId: string }).messageId === message.id);
		expect(rows.map((row) => row.payload)).toEqual([expect.objectContaining({ kind: 'email-event', type: 'unsubscribe', messageId: message.id, leadId: lead!.id })]);

		const before = { outbox: (await outbox()).length, suppressions: await prisma.suppression.count({ where: { siteId } }) };
		for (const body of [undefined, 'List-Unsubscribe=One-Click']) {
			const again = await unsubscribe(urls.unsubscribeUrl, body);
			expect(again.status).toBe(200);
			expect(await again.text()).toMatch(/You are unsubscribed/);
		}
		expect((await events(message.id)).map((event) => event.type)).toEqual(['unsubscribe']);
		expect({ outbox: (await outbox()).length, suppressions: await prisma.suppression.count({ where: { siteId } }) }).toEqual(before);
	});

	it('accepts the multipart form of RFC 8058 and refuses other bodies and bad tokens', async () => {
		const { lead, message, urls } = await seedMessage();
		const refused = await unsubscribe(urls.unsubscribeUrl, 'List-Unsubscribe=Later');
		expect(refused.status).toBe(400);
		expect(await refused.text()).toMatch(/must be List-Unsubscribe=One-Click/);
		const forged = await unsubscribe(urls.unsubscribeUrl.replace(/.$/, (char) => (char === 'A' ? 'B' : 'A')), 'List-Unsubscribe=One-Click');
		expect(forged.status).toBe(400);
		const openToken = await unsubscribe(urls.openPixelUrl.replace('/e/o/', '/e/u/'), '');
		expect(openToken.status).toBe(400);
		expect(await openToken.text()).toMatch(/the token is for open, not unsubscribe/);
		expect(await prisma.suppression.count({ where: { siteId, emailHash: lead!.emailHash } })).toBe(0);

		const boundary = 'x-boundary';
		const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--${boundary}--\r\n`;
		expect((await unsubscribe(urls.unsubscribeUrl, multipart, `multipart/form-data; boundary=${boundary}`)).status).toBe(200);
		expect((await events(message.id)).map((event) => event.type)).toEqual(['unsubscribe']);
	});

	it('suppresses the recipient of a message without a lead, and forwards nothing for a site without the Email Orchestrator', async () => {
		const { email, message, urls } = await seedMessage(quietSiteId, false);
		expect((await get(urls.openPixelUrl)).status).toBe(200);
		expect((await unsubscribe(urls.unsubscribeUrl, 'List-Unsubscribe=One-Click')).status).toBe(200);
		expect((await events(message.id)).map((event) => event.type)).toEqual(['open', 'unsubscribe']);
		expect(await prisma.suppression.findMany({ where: { siteId: quietSiteId } })).toEqual([expect.objectContaining({ emailHash: emailHash(email), reason: 'unsubscribed' })]);
		expect(await prisma.outboxMessage.count({ where: { siteId: quietSiteId } })).toBe(0);
	});

	it('answers 503 naming EMAIL_TOKEN_SECRET when no secret is configured', async () => {
		const unconfigured = await startTestReceiver([testSiteConfig()], { DISPATCHER: 'off' });
		try {
			for (const path of ['/e/o/x', '/e/c/x', '/e/u/x']) {
				const response = await get(`${unconfigured.url}${path}`);
				expect(response.status).toBe(503);
				expect((await response.json()).message).toMatch(/EMAIL_TOKEN_SECRET/);
			}
		} finally {
			await unconfigured.close();
		}
	});
});
