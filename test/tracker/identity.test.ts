import type { Browser, Page } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, visit, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

/** The time zone the page's Intl reports, as a person's computer set to `zone` would. */
async function inTimeZone(page: Page, zone: string): Promise<void> {
	const devtools = await page.context().newCDPSession(page);
	await devtools.send('Emulation.setTimezoneOverride', { timezoneId: zone });
}

const SIGNUP_FORM = `
<form id="signup" onsubmit="event.preventDefault()">
	<input name="email" type="email" value="ana@example.com">
	<input name="first_name" value="Ana">
	<input name="company" value="Acme">
	<input name="password" type="password" value="hunter2-secret">
	<input name="cardnumber" autocomplete="cc-number" value="4111111111111111">
	<input name="iban" value="DE89370400440532013000">
	<input name="account_token" type="hidden" value="tok_live_123">
	<input name="newsletter" type="checkbox" checked>
	<button>Sign up</button>
</form>`;

describe('tracker identity in a real browser', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	const site: Record<string, ReturnType<typeof trackerSite>> = {};
	const siteId = (name: string) => receiver.sites.byPublicKey(site[name].site.key)!.id;
	const leadsOf = (name: string) => prisma.outboxMessage.findMany({ where: { siteId: siteId(name), destination: 'lead-processor' } });

	beforeAll(async () => {
		pages = await servePages((path) => {
			const [, name, page] = path.split('/');
			return site[name] && trackedPage(receiver.url, site[name].site.key, {}, page == 'form' ? SIGNUP_FORM : `<main>${page}</main>`);
		});
		for (const name of ['identify', 'form', 'noconsent', 'zones']) site[name] = trackerSite(pages.origin);
		receiver = await startTestReceiver(Object.values(site), { DISPATCHER: 'off' });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	it('joins the anonymous history to the lead: identify stores an identify event and a lead for the Lead Processor under the same anonymous id', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await inTimeZone(page, 'America/Bogota');
		await visit(page, `${pages.origin}/identify/home`);
		await visit(page, `${pages.origin}/identify/pricing`);
		await page.evaluate(() => tcrm('identify', 'jane@example.com', { firstName: 'Jane', company: 'Acme', properties: { plan: 'pro' } }));
		await closeTab(page);

		const rows = await eventually(
			() => storedEvents(prisma, siteId('identify')),
			(events) => events.filter((event) => event.type == 'pageview').length == 2 && events.some((event) => event.type == 'identify'),
		);
		const browsing = rows.filter((event) => event.type == 'pageview');
		const identify = rows.find((event) => event.type == 'identify')!;
		expect(new Set(browsing.map((event) => event.anonymousId))).toEqual(new Set([identify.anonymousId]));
		expect(JSON.stringify(identify)).not.toMatch(/jane@example\.com/);

		const [lead] = await leadsOf('identify');
		expect(lead).toMatchObject({ partitionKey: identify.anonymousId, status: 'pending' });
		expect(lead.payload).toMatchObject({
			kind: 'lead',
			eventId: identify.eventId,
			lead: { email: 'jane@example.com', firstName: 'Jane', company: 'Acme', anonymousId: identify.anonymousId, properties: { plan: 'pro' }, timezone: 'America/Bogota' },
		});
		// The earlier page views went to the Visitor Processor under the same partition.
		const visits = await prisma.outboxMessage.findMany({ where: { siteId: siteId('identify'), destination: 'visitor-processor' } });
		expect(visits.every((message) => message.partitionKey == identify.anonymousId)).toBe(true);
		await context.close();
	});

	it('makes a submitted form a lead once consent is granted, never reading passwords, cards, IBANs or hidden fields', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await inTimeZone(page, 'Asia/Tokyo');
		await visit(page, `${pages.origin}/form/form`);
		await page.evaluate(() => tcrm('consent', 'granted'));
		await page.click('button');
		await closeTab(page);

		const leads = await eventually(
			() => leadsOf('form'),
			(messages) => messages.length == 1,
		);
		const { lead } = leads[0].payload as { lead: Record<string, unknown> };
		expect(lead).toEqual({ site: site.form.site.key, email: 'ana@example.com', firstName: 'Ana', company: 'Acme', consent: true, formId: 'signup', anonymousId: expect.any(String), eventId: expect.any(String), timezone: 'Asia/Tokyo' });
		const everything = JSON.stringify([leads.map((message) => message.payload), await storedEvents(prisma, siteId('form'))]);
		// Whole values: a fragment such as "4111" also turns up inside a random event id now and then.
		for (const secret of ['hunter2-secret', '4111111111111111', 'DE89370400440532013000', 'tok_live_123']) expect(everything).not.toContain(secret);
		expect((await storedEvents(prisma, siteId('form'))).find((event) => event.type == 'form_submit')).toMatchObject({ name: 'signup', relevance: 8 });
		await context.close();
	});

	it('counts a form submitted without consent as an event only, not a lead', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/noconsent/form`);
		await page.click('button');
		await closeTab(page);
		await eventually(
			() => storedEvents(prisma, siteId('noconsent')),
			(events) => events.some((event) => event.type == 'form_submit'),
		);
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(await leadsOf('noconsent')).toEqual([]);
		await context.close();
	});

	it('keeps the time zone a caller names over the browser’s, takes an unknown one as none, and refuses a made-up one by name', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await inTimeZone(page, 'Europe/Madrid');
		await visit(page, `${pages.origin}/identify/named`);
		await page.evaluate(() => tcrm('identify', 'named@example.com', { timezone: 'Pacific/Auckland' }));
		await closeTab(page);
		const named = await eventually(
			() => leadsOf('identify'),
			(messages) => messages.some((message) => JSON.stringify(message.payload).includes('named@example.com')),
		);
		expect(named.map((message) => (message.payload as { lead: { email: string; timezone?: string } }).lead).find((lead) => lead.email == 'named@example.com')).toMatchObject({ timezone: 'Pacific/Auckland' });
		await context.close();

		// What Chromium reports on a computer whose zone it cannot tell: the lead is kept, without a zone.
		const key = site.zones.site.key;
		const unknown = await post(`${receiver.url}/api/lead`, { site: key, email: 'unknown-zone@example.com', timezone: 'Etc/Unknown' });
		expect(unknown.status).toBe(202);
		const [stored] = await eventually(() => leadsOf('zones'), (messages) => messages.length == 1);
		expect((stored.payload as { lead: Record<string, unknown> }).lead).not.toHaveProperty('timezone');
		const madeUp = await post(`${receiver.url}/api/lead`, { site: key, email: 'mars@example.com', timezone: 'Mars/Olympus' });
		expect(madeUp.status).toBe(400);
		expect(madeUp.json.issues).toEqual([{ field: 'timezone', message: 'must be an IANA time zone such as Europe/Berlin' }]);
	});
});
