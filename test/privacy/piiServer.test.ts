/**
 * The receiver's readers of personal data on a site with privacy.encryptPii. A lead is written by
 * the Lead Scorer's store and mailed by the Email Orchestrator's own functions through the real
 * mail catcher (SMTP), as the embedded engine does: the caught row keeps no address, name or
 * subject in clear, while /mailbox shows them and finds the mail by its address; the dashboards'
 * lead list, lead page and CSVs show the lead opened and find it by its address; the demo panel
 * and the privacy export answer the clear subject. A site that stores in clear is read as before.
 * Real Postgres, real receiver over HTTP, real SMTP.
 */
import { randomBytes } from 'node:crypto';

import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import { isSealed, parsePiiKeys, PiiCipher, PII_HASH_KEY_ENV, PII_KEYS_ENV } from '../../lib/pii';
import { enrollLead } from '../../nodes/EmailOrchestrator/actions/enroll.operation';
import { sendDueSteps } from '../../nodes/EmailOrchestrator/actions/sendDue.operation';
import { SequenceResolver } from '../../nodes/EmailOrchestrator/sequences';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { prepareLead, upsertLeads } from '../../nodes/LeadScorer/store';
import { findLeadId } from '../../nodes/shared/leads';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { startMailCatcher, type MailCatcher } from '../../server/mail/catcher';
import { CAUGHT_FIELDS, UNOPENED } from '../../server/mail/sealed';
import { catcherCredential } from '../../server/mail/smtpSettings';
import { startReceiver, type Receiver } from '../../server/receiver';
import { removeSite } from '../../server/sites';
import { parseCsv } from '../helpers/dashboard';
import { testDbUrl, testPrisma } from '../helpers/db';

jest.setTimeout(120_000);

const newKey = () => randomBytes(32).toString('base64');
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

function siteConfig(key: string, encryptPii: boolean): SiteConfig {
	return parseSiteConfig({
		site: { key, name: key, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false, encryptPii },
		crm: {
			emailSequences: [{ name: 'welcome', trigger: { event: 'signup' }, steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p><p><a href="{{unsubscribeUrl}}">Unsubscribe</a></p>' }] }],
		},
		integrations: { emailProvider: { type: 'smtp', fromEmail: `hello@${key}.example` } },
	});
}

function person(name: string) {
	const tag = randomBytes(4).toString('hex');
	return { email: `${name}.m${tag}@example.org`, firstName: `${name[0].toUpperCase()}${name.slice(1)}${tag}`, lastName: `Marsh${tag}`, phone: `+4930${String(parseInt(tag, 16) % 10_000_000).padStart(7, '0')}`, company: `Clinic ${tag}`, tag };
}

type Person = ReturnType<typeof person>;

describe('the receiver’s pages and routes on a site with privacy.encryptPii', () => {
	const prisma = testPrisma();
	const keys = { [PII_KEYS_ENV]: `k1:${newKey()}`, [PII_HASH_KEY_ENV]: newKey() };
	const keyring = parsePiiKeys(keys[PII_KEYS_ENV], keys[PII_HASH_KEY_ENV]);
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	const sealedKey = `pii-server-${randomBytes(4).toString('hex')}`;
	const clearKey = `pii-clear-${randomBytes(4).toString('hex')}`;
	// The sealed site first: the demo's site.
	const configs = { [sealedKey]: siteConfig(sealedKey, true), [clearKey]: siteConfig(clearKey, false) };
	const lena = person('lena');
	const other = person('olga');
	const clear = person('clara');
	let receiver: Receiver;
	let catcher: MailCatcher;
	const ids: Record<string, string> = {};
	const leadIds = new Map<Person, string>();

	const siteOf = (key: string) => ({ id: ids[key], key, domain: `${key}.example`, config: configs[key] });
	const cipherOf = (key: string) => (configs[key].privacy.encryptPii ? new PiiCipher(keyring, ids[key]) : null);

	/** The lead as the Lead Scorer writes it; `mail`: enrolled and sent its welcome step, through the catcher. */
	async function addLead(key: string, who: Person, mail: boolean): Promise<void> {
		const site = siteOf(key);
		const rules = compileScoringRules(site.config.crm, { hashRouting: site.config.tracking.hashRouting });
		const { tag: _tag, ...fields } = who;
		await prisma.$transaction((tx) => upsertLeads(tx, { siteId: site.id, config: site.config, rules, now: Date.now(), keyring }, [prepareLead({ site: key, consent: true, ...fields }, new Date())]));
		const leadId = await findLeadId(prisma, site.id, who.email, cipherOf(key));
		leadIds.set(who, leadId);
		if (!mail) return;
		const now = new Date();
		const sequence = await new SequenceResolver(prisma).byNameIn(site, 'welcome', 'site');
		await enrollLead(prisma, site, sequence, { id: leadId, timezone: null }, now, cipherOf(key));
		const transport = smtpTransport(catcherCredential(catcher.host, catcher.port));
		try {
			const sender = { transport, receiverUrl: receiver.url, tokenSecret: 'token-secret-of-at-least-32-characters', from: { address: `hello@${key}.example` }, keyring };
			expect(await sendDueSteps(prisma, site, sender, () => now, 10)).toEqual([expect.objectContaining({ leadId, outcome: 'sent' })]);
		} finally {
			transport.close();
		}
	}

	beforeAll(async () => {
		// The routes and the catcher read the keys from the process' environment, as in the receiver.
		Object.assign(process.env, keys);
		receiver = await startReceiver({
			sites: Object.values(configs),
			database: { url: testDbUrl(), migrate: false },
			settings: { PORT: 0, DISPATCHER: 'off' },
			env: { ...keys },
			logger,
		});
		catcher = await startMailCatcher({ prisma, logger });
		for (const key of [sealedKey, clearKey]) ids[key] = receiver.sites.byPublicKey(key)!.id;
		await addLead(sealedKey, lena, true);
		await addLead(sealedKey, other, false);
		await addLead(clearKey, clear, true);
	});

	afterAll(async () => {
		await catcher?.close();
		await receiver?.close();
		for (const id of Object.values(ids)) await removeSite(prisma, id);
		await prisma.$disconnect();
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
	});

	const get = async (url: string, headers: Record<string, string> = {}) => {
		const response = await fetch(`${receiver.url}${url}`, { redirect: 'manual', headers: { connection: 'close', ...headers } });
		return { status: response.status, text: await response.text() };
	};
	const json = async (url: string, headers: Record<string, string> = {}) => {
		const { status, text } = await get(url, headers);
		expect(status).toBe(200);
		return JSON.parse(text);
	};
	const storedMail = (key: string) =>
		prisma.$queryRawUnsafe<Array<{ id: string; toAddresses: string[]; subject: string; html: string | null; text: string | null; headers: Array<{ name: string; value: string }>; all: string }>>(
			`SELECT id::text, to_addresses AS "toAddresses", subject, html, text, headers, concat_ws(' ', to_addresses::text, subject, html, text, headers::text) AS "all"
			FROM mailbox_messages WHERE site_id = $1::uuid`,
			ids[key],
		);
	const welcome = (who: Person) => `Welcome, ${who.firstName}`;

	describe('the mailbox', () => {
		it('keeps the caught mail of the sealed site with no address, name or subject in clear', async () => {
			const [row, ...more] = await storedMail(sealedKey);
			expect(more).toHaveLength(0);
			expect([...row.toAddresses, row.subject, row.html ?? '', ...row.headers.map((header) => header.value)].every(isSealed)).toBe(true);
			expect(row.headers.map((header) => header.name)).toEqual(expect.arrayContaining(['To', 'Subject', 'List-Unsubscribe']));
			// The receiver's URL is that of the unsubscribe link, in the body and the List-Unsubscribe header.
			const found = [lena.email, lena.email.split('@')[0], lena.firstName, 'Welcome', receiver.url].filter((value) => row.all.toLowerCase().includes(value.toLowerCase()));
			expect(found).toEqual([]);
		});

		it('shows the sealed mail opened, in the list, the JSON and the message pages', async () => {
			const [row] = await storedMail(sealedKey);
			const list = await get('/mailbox');
			expect(list.status).toBe(200);
			expect(list.text).toContain(`/mailbox/messages/${row.id}">${welcome(lena)}</a>`);
			expect(list.text).toContain(lena.email);
			expect(list.text).not.toContain('pii1:');

			const message = await json(`/mailbox/api/messages/${row.id}`);
			expect(message).toMatchObject({ id: row.id, siteKey: sealedKey, toAddresses: [lena.email], subject: welcome(lena), unsubscribeUrl: expect.stringMatching(new RegExp(`^${receiver.url}/`)) });
			expect(message.html).toContain(`Hi ${lena.firstName}`);
			expect(message.headers).toEqual(expect.arrayContaining([{ name: 'To', value: lena.email }, { name: 'Subject', value: welcome(lena) }]));
			expect(JSON.stringify(message)).not.toContain('pii1:');

			const page = await get(`/mailbox/messages/${row.id}`);
			expect(page.text).toContain(`<h1>${welcome(lena)}</h1>`);
			expect(page.text).toContain(`<dt>To</dt><dd>${lena.email}</dd>`);
			expect((await get(`/mailbox/messages/${row.id}/html`)).text).toContain(`Hi ${lena.firstName}`);
		});

		it('finds sealed and clear mail by its address, in any case, and only that mail', async () => {
			const [sealed] = await storedMail(sealedKey);
			const [inClear] = await storedMail(clearKey);
			const byAddress = async (query: string) => (await json(`/mailbox/api/messages?${query}`)).messages.map((message: { id: string; subject: string }) => [message.id, message.subject]);
			expect(await byAddress(`to=${encodeURIComponent(lena.email.toUpperCase())}`)).toEqual([[sealed.id, welcome(lena)]]);
			expect(await byAddress(`to=${encodeURIComponent(lena.email)}&site=${sealedKey}`)).toEqual([[sealed.id, welcome(lena)]]);
			expect(await byAddress(`to=${encodeURIComponent(lena.email)}&site=${clearKey}`)).toEqual([]);
			expect(await byAddress(`to=${encodeURIComponent(other.email)}`)).toEqual([]);
			expect(await byAddress(`to=${encodeURIComponent(clear.email)}`)).toEqual([[inClear.id, welcome(clear)]]);
		});

		it('shows a value no key of this receiver opens as encrypted, and the rest of the mailbox as ever', async () => {
			const foreign = new PiiCipher(parsePiiKeys(`other:${newKey()}`, newKey()), ids[sealedKey]);
			const subject = foreign.seal(`Sealed elsewhere ${randomBytes(3).toString('hex')}`, CAUGHT_FIELDS.subject);
			const row = await prisma.mailboxMessage.create({
				data: { siteId: ids[sealedKey], fromAddress: `hello@${sealedKey}.example`, toAddresses: [foreign.seal('someone@example.org', CAUGHT_FIELDS.toAddresses)], subject, headers: [], rawSize: 1 },
			});
			try {
				const list = await get('/mailbox');
				expect(list.status).toBe(200);
				expect(list.text).toContain(`/mailbox/messages/${row.id}">${UNOPENED}</a>`);
				expect(list.text).toContain(welcome(lena));
				expect(await json(`/mailbox/api/messages/${row.id}`)).toMatchObject({ id: row.id, subject: UNOPENED, toAddresses: [UNOPENED] });
			} finally {
				await prisma.mailboxMessage.delete({ where: { id: row.id } });
			}
		});

		it('keeps the clear site’s mail as it was sent', async () => {
			const [row] = await storedMail(clearKey);
			expect(row).toMatchObject({ toAddresses: [clear.email], subject: welcome(clear) });
			expect(row.html).toContain(`Hi ${clear.firstName}`);
			expect(row.headers).toEqual(expect.arrayContaining([{ name: 'To', value: clear.email }]));
		});
	});

	describe('the dashboards', () => {
		const cookies: Record<string, string> = {};

		beforeAll(async () => {
			for (const key of [sealedKey, clearKey]) {
				const apiKey = await createApiKey(prisma, ids[key], 'read', 'pii dashboard');
				const response = await fetch(`${receiver.url}/dashboard/sign-in`, {
					method: 'POST',
					redirect: 'manual',
					headers: { origin: receiver.url, 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
					body: new URLSearchParams({ key: apiKey }).toString(),
				});
				expect(response.status).toBe(303);
				cookies[key] = response.headers
					.getSetCookie()
					.map((cookie) => cookie.split(';')[0])
					.join('; ');
			}
		});

		const page = async (key: string, url: string) => {
			const answer = await get(url, { cookie: cookies[key] });
			expect(answer.status).toBe(200);
			return answer.text;
		};
		const totalOf = (html: string) => Number(/id="list-count" data-total="(\d+)"/.exec(html)?.[1]);
		const search = (key: string, text: string) => page(key, `/dashboard/leads/list?search=${encodeURIComponent(text)}`);

		it('lists the sealed site’s leads opened', async () => {
			const html = await page(sealedKey, '/dashboard/leads/list');
			expect(totalOf(html)).toBe(2);
			for (const who of [lena, other]) {
				expect(html).toContain(`/dashboard/leads/${leadIds.get(who)}">${who.email}</a>`);
				expect(html).toContain(`${who.firstName} ${who.lastName}`);
				expect(html).toContain(who.company);
			}
			expect(html).not.toContain('pii1:');
		});

		it('finds a sealed lead by its exact address in any spelling, by part of its name among the newest leads, and never by its sealed text', async () => {
			const found = await search(sealedKey, lena.email.toUpperCase());
			expect(totalOf(found)).toBe(1);
			expect(found).toContain(lena.email);
			expect(found).not.toContain(other.email);
			expect(totalOf(await search(sealedKey, other.lastName.slice(0, 9).toUpperCase()))).toBe(1);
			expect(totalOf(await search(sealedKey, `clinic ${lena.tag}`))).toBe(1);
			expect(totalOf(await search(sealedKey, 'pii1:k1'))).toBe(0);
			expect(totalOf(await search(sealedKey, clear.email))).toBe(0);
		});

		it('shows the sealed lead’s page opened, with the subject of its email', async () => {
			const html = await page(sealedKey, `/dashboard/leads/${leadIds.get(lena)}`);
			expect(html).toContain(`${lena.firstName} ${lena.lastName} · ${lena.email}`);
			for (const value of [lena.phone, lena.company, welcome(lena)]) expect(html).toContain(value);
			expect(html).not.toContain('pii1:');
		});

		it('downloads the list and the timeline opened', async () => {
			const list = parseCsv(await page(sealedKey, `/dashboard/leads.csv?table=leads&search=${encodeURIComponent(lena.email)}`));
			expect(list.slice(1).map((row) => row.slice(0, 3))).toEqual([[lena.email, `${lena.firstName} ${lena.lastName}`, lena.company]]);
			const timeline = parseCsv(await page(sealedKey, `/dashboard/leads.csv?table=timeline&lead=${leadIds.get(lena)}`));
			expect(timeline.slice(1).map((row) => row[2])).toContain(welcome(lena));
		});

		it('reads the clear site as before: its leads in clear, found by part of the address', async () => {
			const stored = await prisma.lead.findUniqueOrThrow({ where: { id: leadIds.get(clear) }, select: { email: true, firstName: true } });
			expect(stored).toEqual({ email: clear.email, firstName: clear.firstName });
			const html = await search(clearKey, clear.email.split('@')[0].toUpperCase());
			expect(totalOf(html)).toBe(1);
			expect(html).toContain(`${clear.firstName} ${clear.lastName}`);
			expect(await page(clearKey, `/dashboard/leads/${leadIds.get(clear)}`)).toContain(welcome(clear));
		});
	});

	it('shows the demo panel the subject of the browser’s email, opened', async () => {
		const anonymousId = uuidv7();
		const now = new Date();
		await prisma.visitor.create({ data: { siteId: ids[sealedKey], anonymousId, leadId: leadIds.get(lena), firstSeenAt: now, lastSeenAt: now, sessionCount: 1 } });
		const panel = await json(`/demo/crm?visitor=${anonymousId}`);
		expect(panel.site).toBe(sealedKey);
		expect(panel.lead.emails).toEqual([expect.objectContaining({ subject: welcome(lena), status: 'sent' })]);
	});

	it('exports the sealed lead and its email in clear', async () => {
		const admin = await createApiKey(prisma, ids[sealedKey], 'admin', 'pii export');
		const body = await json(`/api/privacy/export?email=${encodeURIComponent(lena.email.toUpperCase())}`, { authorization: `Bearer ${admin}` });
		expect(body.leads).toEqual([expect.objectContaining({ email: lena.email, firstName: lena.firstName, lastName: lena.lastName, phone: lena.phone, company: lena.company })]);
		expect(body.emailMessages).toEqual([expect.objectContaining({ toEmail: lena.email, subject: welcome(lena), status: 'sent' })]);
		expect(JSON.stringify(body)).not.toContain('pii1:');
	});
});
