/**
 * Consent records: the tracker's consent choice and a lead form's marketing consent become
 * consent_records rows (what, granted or withdrawn, when, from which page or form, under which
 * banner or policy version, never an address), the export of the person holds them, and erasure
 * removes them with the person. The real tracker in Chromium, the real receiver, real Postgres.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import type { Browser, Page } from 'playwright-core';

import type { ConsentRecord } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { trackingUrls } from '../../lib/emailTokens';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { eventually, launchChromium, servePages, storedEvents, trackedPage, trackerSite, trackerStarted, visitorContext, type PageServer } from '../helpers/browser';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';

declare const tcrm: (method: string, ...args: unknown[]) => void;

const TOKEN_SECRET = 'consent-records-email-token-secret-0123456789';
const ROOT = path.resolve(__dirname, '../..');

const FORM = `<form id="newsletter" onsubmit="event.preventDefault()">
	<input type="email" name="email" value="robin.reader@example.com">
	<input type="text" name="name" value="Robin">
	<input type="checkbox" name="newsletter" checked>
	<button type="submit">Subscribe</button>
</form>`;

describe('consent records', () => {
	const prisma = testPrisma();
	let browser: Browser;
	let pages: PageServer;
	let receiver: Receiver;
	let site: ReturnType<typeof trackerSite>;
	let siteId: string;
	let admin: string;

	beforeAll(async () => {
		pages = await servePages((path) => (path === '/favicon.ico' ? undefined : trackedPage(receiver.url, site.site.key, {}, path.startsWith('/signup') ? FORM : '<main>Pricing</main>')));
		site = trackerSite(pages.origin, { privacy: { cookieConsent: true } });
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', EMAIL_TOKEN_SECRET: TOKEN_SECRET });
		siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		admin = await createApiKey(prisma, siteId, 'admin', 'privacy-officer');
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await pages?.close();
		await prisma.$disconnect();
	});

	const recordsOf = (where: { anonymousId?: string; emailHash?: string }) => prisma.consentRecord.findMany({ where: { siteId, ...where }, orderBy: [{ occurredAt: 'asc' }, { createdAt: 'asc' }] });
	/** The tracker's anonymous id in the page's storage, once its first event made one. */
	const anonymousIdOf = async (page: Page): Promise<string> => {
		const stored = await eventually(
			() => page.evaluate(() => localStorage.getItem('tcrm.id')),
			(value) => value !== null,
		);
		return JSON.parse(stored!) as string;
	};
	const track = (body: unknown, headers: Record<string, string> = {}) => post(`${receiver.url}/api/track`, body, headers);
	const summary = (records: ConsentRecord[]) => records.map(({ purpose, state, source, pageUrl, policyVersion }) => ({ purpose, state, source, pageUrl, policyVersion }));

	it('records the tracker’s consent once per change: the page without its query, the banner version, a denial though its batch is dropped', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await page.goto(`${pages.origin}/pricing?email=robin.reader%40example.com#plans`);
		await page.evaluate(() => tcrm('consent', 'granted'));
		const anonymousId = await anonymousIdOf(page);
		const [granted] = await eventually(
			() => recordsOf({ anonymousId }),
			(records) => records.length > 0,
		);
		expect(granted).toMatchObject({ purpose: 'analytics', state: 'granted', source: 'tracker', pageUrl: `${pages.origin}/pricing`, policyVersion: null, emailHash: null, formId: null });
		// Every later batch carries the same choice: nothing new is recorded.
		await page.evaluate(() => tcrm('track', 'plan-compared'));
		await eventually(
			() => storedEvents(prisma, siteId),
			(rows) => rows.some((row) => row.name === 'plan-compared'),
		);
		expect(await recordsOf({ anonymousId })).toHaveLength(1);
		await context.close();

		// The contract's other choices, as a tracker sends them: a new banner version, a denial (dropped, yet recorded), the same denial again.
		const key = site.site.key;
		const origin = { origin: pages.origin };
		expect((await track(batch(key, [pageview(key, anonymousId, '/pricing')], { consent: 'granted', consentVersion: 'banner-2026-11' }), origin)).status).toBe(202);
		expect(await track(batch(key, [pageview(key, anonymousId, '/settings?tab=privacy')], { consent: 'denied', consentVersion: 'banner-2026-11' }), origin)).toEqual({
			status: 202,
			json: { stored: 0, duplicates: 0, ignored: 1, reason: 'consent-denied' },
		});
		expect((await track(batch(key, [pageview(key, anonymousId, '/settings')], { consent: 'denied', consentVersion: 'banner-2026-11' }), origin)).status).toBe(202);
		expect(summary(await recordsOf({ anonymousId }))).toEqual([
			{ purpose: 'analytics', state: 'granted', source: 'tracker', pageUrl: `${pages.origin}/pricing`, policyVersion: null },
			{ purpose: 'analytics', state: 'granted', source: 'tracker', pageUrl: `https://${key}.example/pricing`, policyVersion: 'banner-2026-11' },
			{ purpose: 'analytics', state: 'withdrawn', source: 'tracker', pageUrl: `https://${key}.example/settings`, policyVersion: 'banner-2026-11' },
		]);
	});

	it('records no choice of a browser whose privacy signal the site honours, nor of a bot, and refuses a bad banner version by name', async () => {
		const key = site.site.key;
		const gpc = `anon-gpc-${randomUUID()}`;
		const bot = `anon-bot-${randomUUID()}`;
		expect((await track(batch(key, [pageview(key, gpc)], { consent: 'granted' }), { 'sec-gpc': '1' })).json.reason).toBe('global-privacy-control');
		expect((await track(batch(key, [pageview(key, bot)], { consent: 'granted' }), { 'user-agent': 'curl/8.5.0' })).json.bot).toBe(true);
		expect(await prisma.consentRecord.count({ where: { siteId, anonymousId: { in: [gpc, bot] } } })).toBe(0);

		for (const consentVersion of ['', 'v'.repeat(65)]) {
			const refused = await track(batch(key, [pageview(key, gpc)], { consent: 'granted', consentVersion }));
			expect(refused.status).toBe(400);
			expect(refused.json.issues.map((issue: { field: string }) => issue.field)).toEqual(['consentVersion']);
		}
	});

	it('records a lead form’s marketing consent with the form, the page and the browser, and a server’s with its policy version, once per submission', async () => {
		const context = await visitorContext(browser);
		const page = await context.newPage();
		await page.goto(`${pages.origin}/signup`);
		await page.evaluate(() => tcrm('consent', 'granted'));
		await trackerStarted(page);
		const anonymousId = await anonymousIdOf(page);
		await page.click('button[type=submit]');
		const hash = emailHash('robin.reader@example.com');
		const [fromForm] = await eventually(
			() => recordsOf({ emailHash: hash }),
			(records) => records.length > 0,
		);
		await context.close();
		// The browser posts the lead to the receiver's origin, so its Referer names the page's origin only.
		expect(fromForm).toMatchObject({ purpose: 'marketing', state: 'granted', source: 'form', formId: 'newsletter', anonymousId, pageUrl: `${pages.origin}/`, policyVersion: null });

		const email = `sam.server-${randomUUID().slice(0, 8)}@example.com`;
		const lead = { site: site.site.key, email, eventId: randomUUID(), consent: true, consentVersion: 'terms-2026-11' };
		expect((await post(`${receiver.url}/api/lead`, lead, { authorization: `Bearer ${admin}` })).status).toBe(202);
		expect((await post(`${receiver.url}/api/lead`, lead, { authorization: `Bearer ${admin}` })).json).toEqual({ stored: false, duplicate: true });
		expect((await post(`${receiver.url}/api/lead`, { ...lead, eventId: randomUUID(), consent: false })).status).toBe(202);
		expect(summary(await recordsOf({ emailHash: emailHash(email) }))).toEqual([{ purpose: 'marketing', state: 'granted', source: 'api', pageUrl: null, policyVersion: 'terms-2026-11' }]);

		const refused = await post(`${receiver.url}/api/lead`, { ...lead, eventId: randomUUID(), consentVersion: '' });
		expect(refused.status).toBe(400);
		expect(refused.json.issues.map((issue: { field: string }) => issue.field)).toEqual(['consentVersion']);
	});

	it('records an unsubscribe as the withdrawal of marketing consent, once', async () => {
		const email = `una.unsubscriber-${randomUUID().slice(0, 8)}@example.com`;
		const lead = await prisma.lead.create({ data: { siteId, email, emailHash: emailHash(email) } });
		const message = await prisma.emailMessage.create({ data: { siteId, leadId: lead.id, idempotencyKey: randomUUID(), toEmail: email, subject: 'News', status: 'sent', sentAt: new Date() } });
		const { unsubscribeUrl } = trackingUrls(receiver.url, TOKEN_SECRET, message.id, []);
		for (let click = 0; click < 2; click++) {
			const response = await fetch(unsubscribeUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
			expect(response.status).toBe(200);
		}
		expect(await recordsOf({ emailHash: emailHash(email) })).toEqual([
			expect.objectContaining({ purpose: 'marketing', state: 'withdrawn', source: 'unsubscribe', messageId: message.id, anonymousId: null, pageUrl: null }),
		]);
	});

	it('has one writer: no code but server/consent/records.ts inserts or changes a consent record', () => {
		const sources = ['server', 'lib', 'nodes'].flatMap((dir) =>
			readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
				.filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.parentPath.includes('generated'))
				.map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name))),
		);
		const writes = /INSERT\s+INTO\s+"?consent_records"?|UPDATE\s+"?consent_records"?|consentRecord\.(create|createMany|update|updateMany|upsert)\b/i;
		expect(sources.filter((file) => writes.test(readFileSync(path.join(ROOT, file), 'utf8')))).toEqual([path.join('server', 'consent', 'records.ts')]);
	});

	it('puts a person’s consent records in their export, and erases them with the person and nobody else’s', async () => {
		const key = site.site.key;
		const email = `pat.person-${randomUUID().slice(0, 8)}@example.com`;
		const anonymousId = `anon-${randomUUID()}`;
		const stranger = `anon-${randomUUID()}`;
		expect((await track(batch(key, [pageview(key, anonymousId, '/')], { consent: 'granted', consentVersion: 'banner-1' }))).status).toBe(202);
		expect((await track(batch(key, [pageview(key, stranger, '/')], { consent: 'granted', consentVersion: 'banner-1' }))).status).toBe(202);
		expect((await post(`${receiver.url}/api/lead`, { site: key, email, anonymousId, formId: 'contact', consent: true, consentVersion: 'privacy-policy-3' })).status).toBe(202);

		const exported = await fetch(`${receiver.url}/api/privacy/export?email=${encodeURIComponent(email)}`, { headers: { authorization: `Bearer ${admin}` } });
		expect(exported.status).toBe(200);
		const { consentRecords } = (await exported.json()) as { consentRecords: Array<Record<string, unknown>> };
		expect(consentRecords.map(({ purpose, state, source, anonymousId: browser, emailHash: hash, formId, policyVersion }) => ({ purpose, state, source, browser, hash, formId, policyVersion }))).toEqual([
			{ purpose: 'analytics', state: 'granted', source: 'tracker', browser: anonymousId, hash: null, formId: null, policyVersion: 'banner-1' },
			{ purpose: 'marketing', state: 'granted', source: 'form', browser: anonymousId, hash: emailHash(email), formId: 'contact', policyVersion: 'privacy-policy-3' },
		]);
		for (const record of consentRecords) expect(new Date(record.occurredAt as string).getTime()).toBeGreaterThan(Date.now() - 60_000);
		// Where from is a page, a form or a link; never a network address or a browser's fingerprint.
		expect(Object.keys(consentRecords[0]).filter((field) => /ip|address|agent/i.test(field))).toEqual([]);
		expect(JSON.stringify(consentRecords)).not.toContain('127.0.0.');

		const erased = await post(`${receiver.url}/api/privacy/erase`, { email }, { authorization: `Bearer ${admin}`, 'content-type': 'application/json' });
		expect(erased.status).toBe(200);
		expect(erased.json.removed.consent_records).toBe(2);
		expect(await prisma.consentRecord.count({ where: { siteId, OR: [{ emailHash: emailHash(email) }, { anonymousId }] } })).toBe(0);
		expect(await recordsOf({ anonymousId: stranger })).toHaveLength(1);
	});
});
