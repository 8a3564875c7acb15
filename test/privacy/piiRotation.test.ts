/**
 * Key rotation of every sealed value of a site with privacy.encryptPii: leads written by the Lead
 * Scorer's store, their emails sent by the Email Orchestrator's own functions through the real mail
 * catcher (SMTP), which keeps a sealed copy, and lead submissions stored by the receiver's ingest
 * into the outbox, pending, delivered and dead-lettered. scripts/rotate-pii-key's core reseals them
 * in batches while all of these writers go on, with the dispatcher's kind of multi-row updates of
 * the outbox among them; afterwards every value opens with the new key alone, the old key removed.
 * Another site's values and a submission stored in clear are left as they were. A batch that needs
 * a row a long transaction holds lets go of its own rows, so their writers do not wait behind it.
 * Real Postgres, real SMTP.
 */
import { randomBytes } from 'node:crypto';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { DeliveredLead, SiteConfig } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import {
	isSealed,
	isSealedSubmission,
	MESSAGE_RECIPIENT_FIELD,
	MESSAGE_SUBJECT_FIELD,
	openLead,
	openSubmission,
	parsePiiKeys,
	PiiCipher,
	PII_HASH_KEY_ENV,
	PII_KEYS_ENV,
	sealedKeyId,
	type PiiKeyring,
} from '../../lib/pii';
import { enrollLead } from '../../nodes/EmailOrchestrator/actions/enroll.operation';
import { sendDueSteps } from '../../nodes/EmailOrchestrator/actions/sendDue.operation';
import { SequenceResolver } from '../../nodes/EmailOrchestrator/sequences';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { prepareLead, upsertLeads } from '../../nodes/LeadScorer/store';
import { findLeadId } from '../../nodes/shared/leads';
import { rotateSite, rotationSummary, SEALED_TABLES } from '../../scripts/rotate-pii-key-core';
import { storeLead } from '../../server/ingest/store';
import { createLogger } from '../../server/logger';
import { startMailCatcher, type MailCatcher } from '../../server/mail/catcher';
import { openCaught } from '../../server/mail/sealed';
import { catcherCredential } from '../../server/mail/smtpSettings';
import { createTestSite, testPrisma } from '../helpers/db';

jest.setTimeout(180_000);

const newKey = () => randomBytes(32).toString('base64');
const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const FACTS = { userAgent: 'rotation-test', ipAnonymized: null, country: 'DE', isBot: false };

function person() {
	const tag = randomBytes(5).toString('hex');
	return { email: `rosa.${tag}@example.org`, firstName: `Rosa${tag}`, lastName: `Lind${tag}`, phone: `+4930${String(parseInt(tag, 16) % 10_000_000).padStart(7, '0')}`, company: `Werk ${tag}`, jobTitle: `Buyer ${tag}` };
}
type Person = ReturnType<typeof person>;

interface Site {
	id: string;
	key: string;
	domain: string;
	config: SiteConfig;
}

async function encryptingSite(prisma: PrismaClient, name: string): Promise<Site> {
	const { id, key } = await createTestSite(prisma, name);
	const config = parseSiteConfig({
		site: { key, name: key, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false, encryptPii: true },
		crm: { emailSequences: [{ name: 'welcome', trigger: { event: 'signup' }, steps: [{ delayMinutes: 0, subject: 'Welcome, {{firstName}}', html: '<p>Hi {{firstName}}</p>' }] }] },
		integrations: { emailProvider: { type: 'smtp', fromEmail: `hello@${key}.example` } },
	});
	// The catcher reads the site's config from the database to know it seals.
	await prisma.site.update({ where: { id }, data: { config: config as object } });
	return { id, key, domain: `${key}.example`, config };
}

/** Every value of a row that has the sealed shape, and the keys they are sealed with. */
function keysOf(values: unknown[]): Set<string | null> {
	const strings = values.flatMap((value) => (typeof value === 'string' ? [value] : Array.isArray(value) ? value.flatMap((each) => (typeof each === 'string' ? [each] : typeof each?.value === 'string' ? [each.value] : [])) : []));
	return new Set(strings.filter(isSealed).map(sealedKeyId));
}

describe('rotating the PII key of a site with privacy.encryptPii', () => {
	const prisma = testPrisma();
	const hashKey = newKey();
	const oldKey = `old:${newKey()}`;
	const freshKey = `new:${newKey()}`;
	const keyrings = { before: oldKey, during: `${freshKey},${oldKey}`, after: freshKey };
	const ring = (phase: keyof typeof keyrings): PiiKeyring => parsePiiKeys(keyrings[phase], hashKey);
	const saved = { keys: process.env[PII_KEYS_ENV], hash: process.env[PII_HASH_KEY_ENV] };
	let catcher: MailCatcher;

	/** The keys of the receiver's environment, which the catcher seals with and openCaught opens with. */
	const useKeys = (phase: keyof typeof keyrings) => Object.assign(process.env, { [PII_KEYS_ENV]: keyrings[phase], [PII_HASH_KEY_ENV]: hashKey });

	beforeAll(async () => {
		useKeys('before');
		catcher = await startMailCatcher({ prisma, logger });
	});

	afterAll(async () => {
		await catcher?.close();
		await prisma.$disconnect();
		for (const [name, value] of [[PII_KEYS_ENV, saved.keys], [PII_HASH_KEY_ENV, saved.hash]] as const) {
			if (value === undefined) delete process.env[name];
			else process.env[name] = value;
		}
	});

	/** Writes as the Lead Scorer does. */
	async function addLeads(site: Site, keyring: PiiKeyring, people: Person[]): Promise<void> {
		const rules = compileScoringRules(site.config.crm, { hashRouting: site.config.tracking.hashRouting });
		const entries = people.map((fields) => prepareLead({ site: site.key, consent: true, ...fields }, new Date()));
		await prisma.$transaction((tx) => upsertLeads(tx, { siteId: site.id, config: site.config, rules, now: Date.now(), keyring }, entries), { timeout: 60_000 });
	}

	/** Enrolls each (existing) lead in the welcome sequence and sends its step through the catcher, as the Email Orchestrator does. */
	async function mail(site: Site, keyring: PiiKeyring, people: Person[]): Promise<void> {
		const cipher = new PiiCipher(keyring, site.id);
		const sequence = await new SequenceResolver(prisma).byNameIn(site, 'welcome', 'site');
		const now = new Date();
		const enrollments: string[] = [];
		for (const who of people) {
			const leadId = await findLeadId(prisma, site.id, who.email, cipher);
			enrollments.push((await enrollLead(prisma, site, sequence, { id: leadId, timezone: null }, now, cipher)).id);
		}
		const transport = smtpTransport(catcherCredential(catcher.host, catcher.port));
		try {
			const sender = { transport, receiverUrl: 'http://127.0.0.1:3000', tokenSecret: 'token-secret-of-at-least-32-characters', from: { address: `hello@${site.domain}` }, keyring };
			const sent = await sendDueSteps(prisma, site, sender, () => now, people.length, enrollments);
			expect(sent.map((outcome) => outcome.outcome)).toEqual(people.map(() => 'sent'));
		} finally {
			transport.close();
		}
	}

	/** Stores a form post as the receiver's ingest does: an outbox row carrying the submission. */
	async function post(site: Site, keyring: PiiKeyring | null, who: Person): Promise<void> {
		const cipher = keyring && new PiiCipher(keyring, site.id);
		const { stored } = await storeLead(prisma, site.id, { site: site.key, consent: false, ...who }, emailHash(who.email, cipher), FACTS, ['lead-processor'], cipher);
		expect(stored).toBe(true);
	}

	const submissions = (siteId: string) =>
		prisma.$queryRawUnsafe<Array<{ id: string; status: string; lead: DeliveredLead['lead'] }>>(`SELECT id::text, status::text, payload->'lead' AS lead FROM outbox WHERE site_id = $1::uuid AND payload->>'kind' = 'lead' ORDER BY id`, siteId);
	const caught = (siteId: string) =>
		prisma.$queryRawUnsafe<Array<{ id: string; toAddresses: string[]; subject: string; html: string | null; text: string | null; headers: Array<{ name: string; value: string }> }>>(
			`SELECT id::text, to_addresses AS "toAddresses", subject, html, text, headers FROM mailbox_messages WHERE site_id = $1::uuid ORDER BY id`,
			siteId,
		);
	/** The keys every sealed value of the site is under, per table. */
	async function keysIn(siteId: string): Promise<Record<string, Set<string | null>>> {
		const leads = await prisma.lead.findMany({ where: { siteId } });
		const messages = await prisma.emailMessage.findMany({ where: { siteId } });
		return {
			leads: keysOf(leads.flatMap((row) => [row.email, row.firstName, row.lastName, row.phone, row.company, row.jobTitle])),
			email_messages: keysOf(messages.flatMap((row) => [row.toEmail, row.subject])),
			mailbox_messages: keysOf((await caught(siteId)).flatMap((row) => [row.toAddresses, row.subject, row.html, row.text, row.headers])),
			outbox: keysOf((await submissions(siteId)).flatMap((row) => Object.values(row.lead))),
		};
	}

	it('reseals leads, email messages, caught mail and outbox lead submissions while writes go on; the new key alone opens them all', async () => {
		const site = await encryptingSite(prisma, 'rotation');
		const other = await encryptingSite(prisma, 'rotation-other');
		const before = ring('before');

		// Under the old key: leads, some of them mailed, and form posts, some already delivered or dead-lettered.
		const people = Array.from({ length: 120 }, person);
		const mailed = people.slice(0, 6);
		const posted = people.slice(0, 40);
		await addLeads(site, before, people);
		await mail(site, before, mailed);
		for (const who of posted) await post(site, before, who);
		const inClear = person();
		// Stored before the site sealed: stays as it is.
		await post(site, null, inClear);
		await prisma.$executeRawUnsafe(`UPDATE outbox SET status = 'delivered', delivered_at = now() WHERE id IN (SELECT id FROM outbox WHERE site_id = $1::uuid ORDER BY id LIMIT 15)`, site.id);
		await prisma.$executeRawUnsafe(`UPDATE outbox SET status = 'dead' WHERE id IN (SELECT id FROM outbox WHERE site_id = $1::uuid ORDER BY id DESC LIMIT 5)`, site.id);
		const bystander = person();
		await addLeads(other, before, [bystander]);
		await mail(other, before, [bystander]);
		await post(other, before, bystander);
		const sealedBefore = await keysIn(site.id);
		for (const table of SEALED_TABLES) expect([table, [...sealedBefore[table]]]).toEqual([table, ['old']]);

		// Every writer now has the new key first; they go on while the rotation runs.
		useKeys('during');
		const during = ring('during');
		const names = new Map(people.map((who) => [who.email, who.firstName]));
		const subjects = new Map(mailed.map((who) => [who.email.toLowerCase(), `Welcome, ${who.firstName}`]));
		const submitted = new Map([...posted, inClear].map((who) => [who.email, who]));
		let rotating = true;
		let writes = 0;
		const load = (async () => {
			for (let round = 0; rotating; round += 1) {
				// Renamed: never one that was mailed, whose subject greets the name it had.
				const renamed = Array.from({ length: 5 }, () => people[mailed.length + Math.floor(Math.random() * (people.length - mailed.length))]).map((who) => ({ ...who, firstName: `Renamed${randomBytes(3).toString('hex')}` }));
				const added = person();
				await addLeads(site, during, [...new Map([...renamed, added].map((who) => [who.email, who])).values()]);
				for (const who of [...renamed, added]) names.set(who.email, who.firstName);
				await post(site, during, added);
				submitted.set(added.email, added);
				// Like the dispatcher recording a failed delivery: several rows in one statement, in no particular order.
				await prisma.$executeRawUnsafe(
					`UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + interval '1 minute', last_error = 'n8n answered HTTP 503'
					WHERE id IN (SELECT id FROM outbox WHERE site_id = $1::uuid AND status = 'pending' ORDER BY random() LIMIT 3)`,
					site.id,
				);
				if (round % 4 === 0) {
					await mail(site, during, [added]);
					subjects.set(added.email.toLowerCase(), `Welcome, ${added.firstName}`);
				}
				writes += 1;
			}
		})();
		// One round done before the rotation starts, so it surely runs among writes.
		while (writes === 0) await new Promise((resolve) => setTimeout(resolve, 10));
		const writesAtStart = writes;
		const result = await rotateSite(prisma, site, during, { batchSize: 4 });
		const writesDuring = writes - writesAtStart;
		rotating = false;
		await load;
		expect(writesDuring).toBeGreaterThan(0);
		for (const table of SEALED_TABLES) {
			expect([table, result.tables[table].resealed > 0, result.tables[table].batches > 1]).toEqual([table, true, true]);
		}

		// The old key is removed: the receiver's environment and the cipher have the new key alone.
		useKeys('after');
		const after = ring('after');
		const cipher = new PiiCipher(after, site.id);
		const sealedAfter = await keysIn(site.id);
		for (const table of SEALED_TABLES) expect([table, [...sealedAfter[table]]]).toEqual([table, ['new']]);

		const leads = (await prisma.lead.findMany({ where: { siteId: site.id } })).map((row) => openLead(cipher, row));
		expect(new Map(leads.map((lead) => [lead.email, lead.firstName]))).toEqual(names);

		const messages = await prisma.emailMessage.findMany({ where: { siteId: site.id } });
		expect(new Map(messages.map((row) => [cipher.open(row.toEmail, MESSAGE_RECIPIENT_FIELD).toLowerCase(), cipher.open(row.subject, MESSAGE_SUBJECT_FIELD)]))).toEqual(subjects);

		// As /mailbox opens them: with the keys of the receiver's environment.
		const mailbox = (await caught(site.id)).map((row) => openCaught(site.id, row));
		expect(new Map(mailbox.map((row) => [row.toAddresses[0], row.subject]))).toEqual(subjects);
		for (const row of mailbox) {
			const firstName = subjects.get(row.toAddresses[0])!.replace('Welcome, ', '');
			expect(row.html).toContain(`Hi ${firstName}`);
			expect(row.headers.find((header) => header.name.toLowerCase() === 'to')?.value).toContain(row.toAddresses[0]);
		}

		const stored = await submissions(site.id);
		expect(new Set(stored.map((row) => row.status))).toEqual(new Set(['pending', 'delivered', 'dead']));
		expect(stored).toHaveLength(submitted.size);
		for (const row of stored) {
			const lead = openSubmission(cipher, row.lead);
			const who = submitted.get(lead.email)!;
			expect(lead).toMatchObject({ email: who.email, firstName: who.firstName, lastName: who.lastName, company: who.company, jobTitle: who.jobTitle });
			expect(isSealedSubmission(row.lead)).toBe(who !== inClear);
		}

		// Another site's values are its own rotation's: still under the old key.
		const untouched = await keysIn(other.id);
		for (const table of SEALED_TABLES) expect([table, [...untouched[table]]]).toEqual([table, ['old']]);

		// A second run reads every row and finds nothing left on the old key.
		const again = await rotateSite(prisma, site, during, { batchSize: 50 });
		const rows = {
			leads: await prisma.lead.count({ where: { siteId: site.id } }),
			email_messages: messages.length,
			mailbox_messages: mailbox.length,
			outbox: stored.length,
		};
		// Batches of 50 until one comes back short.
		const batches = Object.values(rows).reduce((sum, count) => sum + Math.floor(count / 50) + 1, 0);
		expect(rotationSummary(again, 'new')).toBe(
			`${site.key}: resealed under key "new" in ${batches} batches: ` +
				`0 of ${rows.leads} leads, 0 of ${rows.email_messages} email_messages, 0 of ${rows.mailbox_messages} mailbox_messages (caught mail), 0 of ${rows.outbox} outbox lead submissions`,
		);
	});

	it('lets go of its rows when another writer holds one it needs, so no writer waits behind that one, and tries the batch again', async () => {
		const site = await encryptingSite(prisma, 'rotation-locks');
		for (const who of [person(), person(), person()]) await post(site, ring('before'), who);
		const [first, , last] = await submissions(site.id);
		const bump = (tx: Pick<PrismaClient, '$executeRawUnsafe'>, id: string) => tx.$executeRawUnsafe(`UPDATE outbox SET attempts = attempts + 1 WHERE id = $1::bigint`, id);
		const rotationWaits = async () => {
			for (;;) {
				const [{ waiting }] = await prisma.$queryRawUnsafe<Array<{ waiting: number }>>(
					`SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%payload->''lead'' AS lead FROM outbox%'`,
				);
				if (waiting > 0) return;
				await new Promise((resolve) => setTimeout(resolve, 20));
			}
		};

		// A long transaction holds the last row; the rotation's batch has locked the first and waits for it.
		let firstBumped: Promise<unknown> | undefined;
		let held!: () => void;
		const lastHeld = new Promise<void>((resolve) => (held = resolve));
		const holder = prisma.$transaction(
			async (tx) => {
				await bump(tx, last.id);
				held();
				await rotationWaits();
				// Another writer of the first row is not kept waiting until this transaction ends (nor until
				// Prisma's 5 s limit of the rotation's transaction would end that).
				firstBumped = bump(prisma, first.id);
				let giveUp: NodeJS.Timeout | undefined;
				const bumpedWhileHeld = await Promise.race([firstBumped.then(() => true), new Promise<boolean>((resolve) => (giveUp = setTimeout(() => resolve(false), 2_000)))]);
				clearTimeout(giveUp);
				return bumpedWhileHeld;
			},
			{ timeout: 30_000 },
		);
		await lastHeld;
		const rotation = rotateSite(prisma, site, ring('during'), { batchSize: 10 });
		expect(await holder).toBe(true);
		await firstBumped;
		const result = await rotation;
		expect(result.tables.outbox).toEqual({ read: 3, resealed: 3, batches: 1 });
		const stored = await prisma.outboxMessage.findMany({ where: { siteId: site.id }, orderBy: { id: 'asc' }, select: { attempts: true } });
		expect(stored.map((row) => row.attempts)).toEqual([1, 0, 1]);
		expect([...(await keysIn(site.id)).outbox]).toEqual(['new']);
	});
});
