/**
 * Personal data at rest on a site with privacy.encryptPii: the Lead Scorer's writes seal each
 * lead's address, names, phone, company, job title and properties (a free-text message among them),
 * so a pg_dump of the database holds none of them; a lead is still found and de-duplicated by the keyed hash of its address; rotating the key
 * while leads keep being written leaves every lead readable with the new key alone; the privacy
 * export answers the clear values. Real Postgres, the real receiver, the real pg_dump.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import { PrismaPg } from '@prisma/adapter-pg';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import { PrismaClient } from '../../lib/db/generated/client';
import { deployMigrations } from '../../lib/db/migrator';
import { emailHash } from '../../lib/email';
import { isSealed, openLead, parsePiiKeys, PiiCipher, sealedKeyId, type PiiKeyring } from '../../lib/pii';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { prepareLead, upsertLeads, type ScoringOutcome } from '../../nodes/LeadScorer/store';
import { findLeads } from '../../nodes/shared/leads';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { encryptingSites, rotateSite } from '../../scripts/rotate-pii-key-core';
import { createTestSite, testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const run = promisify(execFile);
const newKey = () => randomBytes(32).toString('base64');

/** A lead whose every value is unique to this run, so finding it in a dump cannot be chance. */
function person(tag = randomBytes(4).toString('hex')) {
	const digits = String(parseInt(tag, 16) % 10_000_000).padStart(7, '0');
	return {
		email: `lena.k${tag}@example.org`,
		firstName: `Lena${tag}`,
		lastName: `Kowalsk${tag}`,
		phone: `+49 30 ${digits}`,
		e164: `+4930${digits}`,
		company: `Firma ${tag} GmbH`,
		jobTitle: `Buyer ${tag}`,
		message: `Please call me back about quote ${tag}`,
	};
}
type Person = ReturnType<typeof person>;

function encrypting(config: SiteConfig): SiteConfig {
	return parseSiteConfig({ ...config, privacy: { ...config.privacy, encryptPii: true } });
}

async function write(prisma: PrismaClient, siteId: string, config: SiteConfig, keyring: PiiKeyring | null, people: Person[], extra: Record<string, unknown> = {}) {
	const rules = compileScoringRules(config.crm, { hashRouting: config.tracking.hashRouting });
	const entries = people.map(({ e164: _, message, ...fields }) => prepareLead({ site: 'ignored', consent: false, ...fields, properties: { message, plan: 'pro' }, ...extra }, new Date()));
	const outcomes = await prisma.$transaction((tx) => upsertLeads(tx, { siteId, config, rules, now: Date.now(), keyring }, entries), { timeout: 60_000 });
	// None of these addresses was erased: each gets its outcome.
	return outcomes.map((outcome) => {
		expect(outcome).not.toBeNull();
		return outcome as ScoringOutcome;
	});
}

async function dump(url: string): Promise<string> {
	const { stdout } = await run('pg_dump', ['--data-only', '--no-owner', `--dbname=${url}`], { maxBuffer: 512 * 1024 * 1024 });
	return stdout;
}

/** Every clear value of the person found in the text. */
function clearValuesIn(text: string, lead: Person): string[] {
	const values = [lead.email, lead.email.split('@')[0], lead.firstName, lead.lastName, lead.phone, lead.e164, lead.company, lead.jobTitle, lead.message];
	const lower = text.toLowerCase();
	return values.filter((value) => lower.includes(value.toLowerCase()));
}

describe('personal data at rest with privacy.encryptPii', () => {
	const prisma = testPrisma();
	const keyring = parsePiiKeys(`k1:${newKey()}`, newKey());
	const config = encrypting(testSiteConfig());

	afterAll(async () => {
		await prisma.$disconnect();
	});

	describe('in a database of its own, so the dump holds only what this test wrote', () => {
		let database: { name: string; url: string };
		let own: PrismaClient;

		beforeAll(async () => {
			database = await createTestDatabase('tcrm_pii');
			await deployMigrations(new PrismaPg({ connectionString: database.url }));
			own = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		});

		afterAll(async () => {
			await own?.$disconnect();
			if (database?.name) await dropTestDatabase(database.name);
		});

		it('writes no lead’s address, name, phone, company, job title or properties in clear: a pg_dump of the database holds none of them', async () => {
			await sealsEveryField(own, database.url);
		});
	});

	async function sealsEveryField(prisma: PrismaClient, url: string) {
		const site = await createTestSite(prisma, 'sealed');
		const clearSite = await createTestSite(prisma, 'clear');
		const people = Array.from({ length: 12 }, () => person());
		const control = person();
		const outcomes = await write(prisma, site.id, config, keyring, people);
		await write(prisma, clearSite.id, testSiteConfig(), null, [control]);

		// The writer reports the clear values to the next node.
		expect(outcomes.map((outcome) => outcome.lead.firstName)).toEqual(people.map((lead) => lead.firstName));
		const stored = await prisma.lead.findMany({ where: { siteId: site.id } });
		expect(stored).toHaveLength(people.length);
		const cipher = new PiiCipher(keyring, site.id);
		for (const lead of stored) {
			for (const value of [lead.email, lead.firstName, lead.lastName, lead.phone, lead.company, lead.jobTitle, lead.properties]) expect(isSealed(value as string)).toBe(true);
			expect(lead.emailHash).toBe(emailHash(openLead(cipher, lead).email, cipher));
		}
		const opened = new Map(stored.map((lead) => openLead(cipher, lead)).map((lead) => [lead.email, lead.properties]));
		expect(opened).toEqual(new Map(people.map((lead) => [lead.email, { message: lead.message, plan: 'pro' }])));
		const [clearLead] = await prisma.lead.findMany({ where: { siteId: clearSite.id } });
		expect(clearLead.properties).toEqual({ message: control.message, plan: 'pro' });

		const text = await dump(url);
		// The control lead of a site that stores in clear is in the dump: the search finds what is there.
		expect(clearValuesIn(text, control)).toEqual(expect.arrayContaining([control.email, control.firstName, control.lastName, control.e164, control.company, control.message]));
		for (const lead of people) expect(clearValuesIn(text, lead)).toEqual([]);
		// Nor the SHA-256 anyone could compute from a guessed address.
		for (const lead of people) expect(text).not.toContain(emailHash(lead.email));
	}

	it('finds and de-duplicates a lead by the keyed hash of its address; a replay changes nothing', async () => {
		const site = await createTestSite(prisma, 'dedupe');
		const lead = person();
		const [first] = await write(prisma, site.id, config, keyring, [lead]);
		const before = await prisma.lead.findUniqueOrThrow({ where: { id: first.lead.id } });
		const [again] = await write(prisma, site.id, config, keyring, [{ ...lead, email: lead.email.toUpperCase() }]);
		expect(again.lead.id).toBe(first.lead.id);
		const after = await prisma.lead.findUniqueOrThrow({ where: { id: first.lead.id } });
		expect(after.firstName).toBe(before.firstName);
		expect(after.email).toBe(before.email);
		expect(after.updatedAt).toEqual(before.updatedAt);

		const [changed] = await write(prisma, site.id, config, keyring, [{ ...lead, firstName: 'Magdalena' }]);
		expect(changed.lead.firstName).toBe('Magdalena');
		expect(await prisma.lead.count({ where: { siteId: site.id } })).toBe(1);

		const cipher = new PiiCipher(keyring, site.id);
		const found = await findLeads(prisma, site.id, [` ${lead.email.toUpperCase()} `, 'nobody@example.org'], cipher);
		expect(found.get(` ${lead.email.toUpperCase()} `)).toBe(first.lead.id);
		expect(String(found.get('nobody@example.org'))).toMatch(/No lead "nobody@example.org" on this site/);
	});

	it('seals a lead stored in clear before its site turned encryption on, keeping the lead', async () => {
		const site = await createTestSite(prisma, 'switch');
		const lead = person();
		const [clear] = await write(prisma, site.id, testSiteConfig(), null, [lead]);
		const cipher = new PiiCipher(keyring, site.id);
		expect((await findLeads(prisma, site.id, [lead.email], cipher)).get(lead.email)).toBe(clear.lead.id);

		const [sealed] = await write(prisma, site.id, config, keyring, [{ ...lead, firstName: undefined as unknown as string, jobTitle: 'Head of Buying' }]);
		expect(sealed.lead.id).toBe(clear.lead.id);
		expect(sealed.lead.firstName).toBe(lead.firstName);
		const row = await prisma.lead.findUniqueOrThrow({ where: { id: clear.lead.id } });
		expect([row.email, row.firstName, row.lastName, row.phone, row.company, row.jobTitle, row.properties].every((value) => isSealed(value as string))).toBe(true);
		expect(row.emailHash).toBe(emailHash(lead.email, cipher));
		expect(openLead(cipher, row)).toMatchObject({ email: lead.email, firstName: lead.firstName, phone: lead.e164, jobTitle: 'Head of Buying', properties: { message: lead.message, plan: 'pro' } });
	});

	it('rotates the key in batches while leads keep being written, and every lead reads with the new key alone', async () => {
		const site = await createTestSite(prisma, 'rotate');
		await prisma.site.update({ where: { id: site.id }, data: { config: config as object } });
		const oldKey = newKey();
		const freshKey = newKey();
		const before = parsePiiKeys(`old:${oldKey}`, keyring.hashKey.toString('base64'));
		const during = parsePiiKeys(`new:${freshKey},old:${oldKey}`, keyring.hashKey.toString('base64'));
		const after = parsePiiKeys(`new:${freshKey}`, keyring.hashKey.toString('base64'));
		const people = Array.from({ length: 400 }, () => person());
		for (let start = 0; start < people.length; start += 100) await write(prisma, site.id, config, before, people.slice(start, start + 100));

		// Writers with the new keyring update existing leads and add new ones until the rotation ends.
		const expected = new Map(people.map((lead) => [lead.email, lead.firstName]));
		let rotating = true;
		let writes = 0;
		const load = (async () => {
			while (rotating) {
				const updates = Array.from({ length: 10 }, () => people[Math.floor(Math.random() * people.length)]).map((lead) => ({ ...lead, firstName: `Renamed${randomBytes(3).toString('hex')}` }));
				const added = [person(), person()];
				const batch = [...new Map([...updates, ...added].map((lead) => [lead.email, lead])).values()];
				await write(prisma, site.id, config, during, batch);
				for (const lead of batch) expected.set(lead.email, lead.firstName);
				writes += 1;
			}
		})();
		const sites = await encryptingSites(prisma, site.key);
		expect(sites).toEqual([{ id: site.id, key: site.key }]);
		const result = await rotateSite(prisma, sites[0], during, { batchSize: 25 });
		rotating = false;
		await load;
		expect(writes).toBeGreaterThan(0);
		expect(result.tables.leads.batches).toBeGreaterThan(people.length / 25);
		expect(result.tables.leads.resealed).toBeGreaterThan(0);

		const rows = await prisma.lead.findMany({ where: { siteId: site.id } });
		expect(rows).toHaveLength(expected.size);
		const cipher = new PiiCipher(after, site.id);
		const keys = new Set(rows.flatMap((row) => [row.email, row.firstName, row.lastName, row.phone, row.company, row.jobTitle, row.properties].map((value) => sealedKeyId(value as string))));
		expect([...keys]).toEqual(['new']);
		const read = new Map(rows.map((row) => openLead(cipher, row)).map((row) => [row.email, row.firstName]));
		expect(read).toEqual(expected);
		expect(rows.map((row) => openLead(cipher, row).properties)).toEqual(rows.map(() => ({ message: expect.stringMatching(/^Please call me back about quote /), plan: 'pro' })));
		// A second run finds nothing left on the old key.
		expect((await rotateSite(prisma, sites[0], during, { batchSize: 25 })).tables.leads.resealed).toBe(0);
	});

	describe('the privacy export', () => {
		let receiver: Receiver;
		const saved = { keys: process.env.PII_ENCRYPTION_KEYS, hash: process.env.PII_HASH_KEY };
		const siteConfig = testSiteConfig();

		beforeAll(async () => {
			process.env.PII_ENCRYPTION_KEYS = `k1:${keyring.keys.get('k1')?.toString('base64')}`;
			process.env.PII_HASH_KEY = keyring.hashKey.toString('base64');
			receiver = await startTestReceiver([siteConfig]);
		});

		afterAll(async () => {
			await receiver?.close();
			for (const [name, value] of [['PII_ENCRYPTION_KEYS', saved.keys], ['PII_HASH_KEY', saved.hash]] as const) {
				if (value === undefined) delete process.env[name];
				else process.env[name] = value;
			}
		});

		it('answers the clear values of a lead stored sealed, found by its address in any spelling', async () => {
			const site = await prisma.site.findUniqueOrThrow({ where: { key: siteConfig.site.key }, select: { id: true } });
			await prisma.site.update({ where: { id: site.id }, data: { config: encrypting(siteConfig) as object } });
			const lead = person();
			await write(prisma, site.id, encrypting(siteConfig), keyring, [lead]);
			const admin = await createApiKey(prisma, site.id, 'admin', 'privacy-officer');

			const response = await fetch(`${receiver.url}/api/privacy/export?email=${encodeURIComponent(lead.email.toUpperCase())}`, { headers: { authorization: `Bearer ${admin}` } });
			expect(response.status).toBe(200);
			const body = (await response.json()) as { emailHash: string; leads: Array<Record<string, unknown>> };
			expect(body.emailHash).toBe(emailHash(lead.email, new PiiCipher(keyring, site.id)));
			expect(body.leads).toHaveLength(1);
			expect(body.leads[0]).toMatchObject({ email: lead.email, firstName: lead.firstName, lastName: lead.lastName, phone: lead.e164, company: lead.company, jobTitle: lead.jobTitle, properties: { message: lead.message, plan: 'pro' } });
		});
	});
});
