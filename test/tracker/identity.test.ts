import type { Browser } from 'playwright-core';

import type { Receiver } from '../../server/receiver';
import { closeTab, eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, visit, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

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
		for (const name of ['identify', 'form', 'noconsent']) site[name] = trackerSite(pages.origin);
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
			lead: { email: 'jane@example.com', firstName: 'Jane', company: 'Acme', anonymousId: identify.anonymousId, properties: { plan: 'pro' } },
		});
		// The earlier page views went to the Visitor Processor under the same partition.
		const visits = await prisma.outboxMessage.findMany({ where: { siteId: siteId('identify'), destination: 'visitor-processor' } });
		expect(visits.every((message) => message.partitionKey == identify.anonymousId)).toBe(true);
		await context.close();
	});

	it('makes a submitted form a lead once consent is granted, never reading passwords, cards, IBANs or hidden fields', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await visit(page, `${pages.origin}/form/form`);
		await page.evaluate(() => tcrm('consent', 'granted'));
		await page.click('button');
		await closeTab(page);

		const leads = await eventually(
			() => leadsOf('form'),
			(messages) => messages.length == 1,
		);
		const { lead } = leads[0].payload as { lead: Record<string, unknown> };
		expect(lead).toEqual({ site: site.form.site.key, email: 'ana@example.com', firstName: 'Ana', company: 'Acme', consent: true, formId: 'signup', anonymousId: expect.any(String), eventId: expect.any(String) });
		const everything = JSON.stringify([leads.map((message) => message.payload), await storedEvents(prisma, siteId('form'))]);
		for (const secret of ['hunter2', '4111', 'DE89', 'tok_live']) expect(everything).not.toContain(secret);
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
});
