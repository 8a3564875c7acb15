import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Pool } from 'pg';
import { v7 as uuidv7 } from 'uuid';

import { LATEST_CLIENT_TIME, type LeadPayloadInput, type TrackBatch, type TrackEvent } from '../../lib/contracts';
import { openDatabase, type PrismaClient } from '../../lib/db';
import { GroupCommitter, storeThroughPool, storeThroughRaw, UnstorableValueError, type StoreStatement } from '../../server/ingest/groupCommit';
import { toEventRows, type EventRow } from '../../server/ingest/normalize';
import type { RequestFacts } from '../../server/ingest/store';
import type { Receiver } from '../../server/receiver';
import { createTestSite, testDbUrl, testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const EMOJI = '\u{1F642}';
/** A string of `length` UTF-16 units whose last character, an emoji, straddles the limit: its first half is unit `limit`. */
const emojiAtCut = (limit: number) => `${'x'.repeat(limit - 1)}${EMOJI}tail`;

interface Poison {
	kind: string;
	route: 'track' | 'lead';
	body: (site: string) => TrackBatch | LeadPayloadInput;
	/** The field a 400 must name; absent when the batch is to be stored after normalising. */
	refusedField?: string;
	/** For a stored batch: what its row holds. */
	check?: (row: { properties: unknown; context: unknown; title: string | null; name: string | null; url: string | null; occurredAt: Date; receivedAt: Date }) => void;
}

const event = (site: string, extra: Partial<TrackEvent>) => pageview(site, `anon-poison-${Math.random().toString(36).slice(2, 8)}`, '/', extra);

const POISONS: Poison[] = [
	{ kind: 'lone surrogate in a property value', route: 'track', body: (s) => batch(s, [event(s, { props: { plan: 'a\ud800b' } })]), check: (row) => expect(row.properties).toEqual({ plan: 'a\ufffdb' }) },
	{ kind: 'lone surrogate in a property key', route: 'track', body: (s) => batch(s, [event(s, { props: { '\udc00key': 1 } })]), check: (row) => expect(row.properties).toEqual({ '\ufffdkey': 1 }) },
	{ kind: 'lone surrogate in the context', route: 'track', body: (s) => batch(s, [event(s, { context: { utm_source: 'news\ud83d' } })]), check: (row) => expect(row.context).toEqual({ utm_source: 'news\ufffd' }) },
	{ kind: 'lone surrogate in a title', route: 'track', body: (s) => batch(s, [event(s, { title: '\udfffTitle' })]), check: (row) => expect(row.title).toBe('\ufffdTitle') },
	{ kind: 'emoji at the cut of a property value (1000)', route: 'track', body: (s) => batch(s, [event(s, { props: { note: emojiAtCut(1000) } })]), check: (row) => expect(row.properties).toEqual({ note: 'x'.repeat(999) }) },
	{ kind: 'emoji at the cut of a campaign value in the URL (200)', route: 'track', body: (s) => batch(s, [event(s, { url: `https://${s}.example/?utm_campaign=${encodeURIComponent(emojiAtCut(200))}` })]), check: (row) => expect(row.context).toEqual({ utm_campaign: 'x'.repeat(199) }) },
	{ kind: 'emoji at the cut of a click id in the URL (500)', route: 'track', body: (s) => batch(s, [event(s, { url: `https://${s}.example/?gclid=${encodeURIComponent(emojiAtCut(500))}` })]), check: (row) => expect(row.context).toEqual({ clickIds: { gclid: 'x'.repeat(499) } }) },
	{ kind: 'emoji at the cut of a title (512)', route: 'track', body: (s) => batch(s, [event(s, { title: emojiAtCut(512) })]), check: (row) => expect(row.title).toBe('x'.repeat(511)) },
	{ kind: 'emoji at the cut of a name (100)', route: 'track', body: (s) => batch(s, [event(s, { type: 'custom', name: emojiAtCut(100) })]), check: (row) => expect(row.name).toBe('x'.repeat(99)) },
	{ kind: 'emoji at the cut of a URL (2048)', route: 'track', body: (s) => batch(s, [event(s, { url: `https://${s}.example/${emojiAtCut(2048 - `https://${s}.example/`.length)}` })]), check: (row) => expect(row.url).toMatch(/x$/) },
	{
		kind: 'sentAt that puts the corrected time before the year 0',
		route: 'track',
		body: (s) => {
			const view = event(s, {});
			return batch(s, [view], { sentAt: view.ts + (Date.now() - Date.UTC(-1, 0, 1)) });
		},
		check: (row) => expect(row.occurredAt.toISOString()).toBe('2020-01-01T00:00:00.000Z'),
	},
	{
		kind: 'ts at the latest client time, sent long before',
		route: 'track',
		body: (s) => batch(s, [event(s, { ts: LATEST_CLIENT_TIME })], { sentAt: 1 }),
		check: (row) => expect(Math.abs(row.occurredAt.getTime() - row.receivedAt.getTime())).toBeLessThan(60_000),
	},
	{ kind: 'enormous sentAt (8.64e15)', route: 'track', body: (s) => batch(s, [event(s, {})], { sentAt: 8.64e15 }), refusedField: 'sentAt' },
	{ kind: 'enormous sentAt (MAX_SAFE_INTEGER)', route: 'track', body: (s) => batch(s, [event(s, {})], { sentAt: Number.MAX_SAFE_INTEGER }), refusedField: 'sentAt' },
	{ kind: 'huge ts (8.64e15)', route: 'track', body: (s) => batch(s, [event(s, { ts: 8.64e15 })]), refusedField: 'events[0].ts' },
	{ kind: 'huge ts (1e20)', route: 'track', body: (s) => batch(s, [event(s, { ts: 1e20 })]), refusedField: 'events[0].ts' },
	{ kind: 'lone surrogate in a lead property', route: 'lead', body: (s) => ({ site: s, email: 'ana@example.com', properties: { 'pl\ud800an': 'b\udc00' } }) },
	{ kind: 'emoji at the cut of a lead property (1000)', route: 'lead', body: (s) => ({ site: s, email: 'ana@example.com', properties: { note: emojiAtCut(1000) } }) },
	{ kind: 'lone surrogate in a lead field', route: 'lead', body: (s) => ({ site: s, email: 'ana@example.com', firstName: 'An\ud800a', company: '\udc00Acme' }) },
	{ kind: 'emoji at the cut of a form field mapped to a lead field (100)', route: 'lead', body: (s) => ({ site: s, email: 'ana@example.com', formId: emojiAtCut(100), fields: [['first_name', 'text', emojiAtCut(100)]] }) },
	{ kind: 'emoji past the length of a lead field (100)', route: 'lead', body: (s) => ({ site: s, email: 'ana@example.com', lastName: emojiAtCut(100) }), refusedField: 'lastName' },
];

describe('poison values among valid batches', () => {
	const prisma = testPrisma();
	const sites = [testSiteConfig(), testSiteConfig({ endpoints: false })];
	const poisonSite = testSiteConfig();
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([...sites, poisonSite], { DISPATCHER: 'off', RATE_LIMIT_PER_IP: 1_000_000, RATE_LIMIT_PER_SITE: 1_000_000 });
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	it('refuses no valid batch, answers each poison with a 4xx naming its field or stores it normalised, and stores exactly what it acknowledged', async () => {
		const acknowledged = new Map<string, number>();
		const acknowledge = (key: string, events: number) => acknowledged.set(key, (acknowledged.get(key) ?? 0) + events);
		const refusedValid: string[] = [];

		const client = async (index: number) => {
			const key = sites[index % 2].site.key;
			for (let round = 0; round < 15; round++) {
				const anonymousId = `anon-valid-${index}`;
				const body = batch(key, [pageview(key, anonymousId, `/c${index}/${round}`), pageview(key, anonymousId, `/c${index}/${round}/b`, { props: { plan: 'pro', [EMOJI]: EMOJI } })], { sentAt: Date.now() });
				const response = await post(`${receiver.url}/api/track`, body);
				if (response.status !== 202) refusedValid.push(`client ${index}: ${response.status} ${JSON.stringify(response.json)}`);
				else acknowledge(key, response.json.stored);
			}
		};
		const outcomes: Array<{ poison: Poison; status: number; json: any; body: TrackBatch | LeadPayloadInput }> = [];
		const poisoner = async () => {
			for (let round = 0; round < 4; round++) {
				for (const poison of POISONS) {
					const body = poison.body(poisonSite.site.key);
					const response = await post(`${receiver.url}/api/${poison.route}`, body);
					outcomes.push({ poison, body, ...response });
					if (response.status === 202) acknowledge(poisonSite.site.key, poison.route === 'track' ? response.json.stored : Number(response.json.stored));
				}
			}
		};
		await Promise.all([...Array.from({ length: 32 }, (_, index) => client(index)), poisoner(), poisoner()]);

		expect(refusedValid).toEqual([]);
		for (const { poison, status, json, body } of outcomes) {
			if (poison.refusedField) {
				expect({ kind: poison.kind, status, error: json.error }).toEqual({ kind: poison.kind, status: 400, error: 'invalid_payload' });
				expect(json.issues.map((issue: { field: string }) => issue.field)).toContain(poison.refusedField);
				continue;
			}
			expect({ kind: poison.kind, status }).toEqual({ kind: poison.kind, status: 202 });
			if (poison.route === 'track' && poison.check) {
				const row = await prisma.visitorEvent.findFirstOrThrow({ where: { eventId: (body as TrackBatch).events[0].id } });
				poison.check(row);
			}
		}
		for (const config of [...sites, poisonSite]) {
			const siteId = receiver.sites.byPublicKey(config.site.key)!.id;
			expect({ site: config.site.key, rows: await prisma.visitorEvent.count({ where: { siteId } }) }).toEqual({ site: config.site.key, rows: acknowledged.get(config.site.key) });
		}
		expect(acknowledged.get(sites[0].site.key)! + acknowledged.get(sites[1].site.key)!).toBe(32 * 15 * 2);

		const poisonSiteId = receiver.sites.byPublicKey(poisonSite.site.key)!.id;
		const leads = await prisma.outboxMessage.findMany({ where: { siteId: poisonSiteId, destination: 'lead-processor' } });
		const lead = (kind: string) => leads.map((row) => (row.payload as { lead: Record<string, unknown> }).lead).find((found) => JSON.stringify(found).includes(kind));
		expect(lead('pl\ufffdan')?.properties).toEqual({ 'pl\ufffdan': 'b\ufffd' });
		expect(lead('An\ufffda')).toMatchObject({ firstName: 'An\ufffda', company: '\ufffdAcme' });
		expect(lead(`"firstName":"${'x'.repeat(99)}"`)).toMatchObject({ firstName: 'x'.repeat(99), formId: 'x'.repeat(99) });
	}, 120_000);
});

const facts: RequestFacts = { userAgent: 'test', ipAnonymized: '203.0.113.0', country: null, isBot: false };
const rowsOf = (site: string, events: TrackEvent[]) => toEventRows(batch(site, events), Date.now(), { engagementThresholds: { medium: 30, high: 60 } });
/** Rows the contract could never produce, as if a value had slipped past it: each fails Postgres, in jsonb or timestamptz. */
const guilty = (site: string): EventRow[][] => [
	rowsOf(site, [pageview(site, 'anon-guilty-json')]).map((row) => ({ ...row, properties: { note: `half\ud800` } })),
	rowsOf(site, [pageview(site, 'anon-guilty-time')]).map((row) => ({ ...row, occurred_at: '-271821-04-20T00:00:00.000Z' })),
];

/** The statement, counting its runs. */
const counted = (statement: StoreStatement) => {
	const counter = {
		runs: 0,
		statement: (args: unknown[]) => {
			counter.runs += 1;
			return statement(args);
		},
	};
	return counter;
};

describe('a group statement that fails on one request’s data', () => {
	const cases: Array<[string, () => Promise<{ statement: StoreStatement; prisma: PrismaClient; close: () => Promise<void> }>]> = [
		[
			'on its own pg pool',
			async () => {
				const pool = new Pool({ connectionString: testDbUrl(), max: 2 });
				const prisma = testPrisma();
				const close = async () => {
					await pool.end();
					await prisma.$disconnect();
				};
				return { statement: storeThroughPool(pool), prisma, close };
			},
		],
		[
			'through the driver adapter on the embedded database',
			async () => {
				const dataDir = mkdtempSync(path.join(os.tmpdir(), 'poison-embedded-'));
				const db = await openDatabase({ url: null, dataDir });
				const close = async () => {
					await db.close();
					rmSync(dataDir, { recursive: true, force: true });
				};
				return { statement: storeThroughRaw(db.sql), prisma: db.prisma, close };
			},
		],
	];

	it.each(cases)('%s: the others are stored, each guilty request fails alone with the database’s reason', async (_where, open) => {
		const { statement, prisma, close } = await open();
		try {
			const site = await createTestSite(prisma, 'poison');
			const run = counted(statement);
			const committer = new GroupCommitter(run.statement, 1);
			const first = committer.store(site.id, rowsOf(site.key, [pageview(site.key, 'anon-first')]), facts, []);
			// Requests of one turn of the event loop are flushed together in one statement.
			const good = Array.from({ length: 10 }, (_, i) => rowsOf(site.key, [pageview(site.key, `anon-good-${i}`), pageview(site.key, `anon-good-${i}`)]));
			const [json, time] = guilty(site.key);
			const requests = [...good.slice(0, 3), json, ...good.slice(3, 8), time, ...good.slice(8)];
			const answers = await Promise.allSettled([first, ...requests.map((rows) => committer.store(site.id, rows, facts, ['visitor-processor']))]);

			expect(answers[0]).toEqual({ status: 'fulfilled', value: { stored: 1, duplicates: 0 } });
			const [jsonAnswer, timeAnswer] = [answers[1 + 3], answers[1 + 9]];
			expect(jsonAnswer.status === 'rejected' && jsonAnswer.reason).toBeInstanceOf(UnstorableValueError);
			expect(timeAnswer.status === 'rejected' && timeAnswer.reason).toBeInstanceOf(UnstorableValueError);
			expect((jsonAnswer as PromiseRejectedResult).reason.reason).toMatch(/json/i);
			expect((timeAnswer as PromiseRejectedResult).reason.reason).toMatch(/time zone displacement out of range|timestamp/i);
			const goodAnswers = answers.filter((_, index) => index !== 4 && index !== 10).slice(1);
			expect(goodAnswers).toEqual(Array.from({ length: 10 }, () => ({ status: 'fulfilled', value: { stored: 2, duplicates: 0 } })));
			// One group statement for the ten good and two guilty requests failed, then its halves were written again.
			expect(run.runs).toBeGreaterThan(2);
			expect(run.runs).toBeLessThan(1 + 2 * requests.length);

			expect(await prisma.visitorEvent.count({ where: { siteId: site.id } })).toBe(1 + 10 * 2);
			expect(await prisma.visitorEvent.count({ where: { siteId: site.id, anonymousId: { startsWith: 'anon-guilty' } } })).toBe(0);
			expect(await prisma.outboxMessage.count({ where: { siteId: site.id } })).toBe(10);
		} finally {
			await close();
		}
	}, 180_000);

	it('fails every request of the flush, without retrying it in parts, when the database cannot be reached', async () => {
		const pool = new Pool({ host: '127.0.0.1', port: 9, connectionTimeoutMillis: 2000 });
		try {
			const run = counted(storeThroughPool(pool));
			const committer = new GroupCommitter(run.statement, 1);
			const site = 'unreachable';
			const answers = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => committer.store(uuidv7(), rowsOf(site, [pageview(site, `anon-${i}`)]), facts, [])));
			expect(answers.map((answer) => answer.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
			for (const answer of answers) expect((answer as PromiseRejectedResult).reason).not.toBeInstanceOf(UnstorableValueError);
			expect(run.runs).toBe(1);
		} finally {
			await pool.end();
		}
	});
});

describe('group commit', () => {
	it('writes the requests of one turn of the event loop in one statement, and a later one in the next', async () => {
		const pool = new Pool({ connectionString: testDbUrl(), max: 2 });
		const prisma = testPrisma();
		try {
			const site = await createTestSite(prisma, 'together');
			const run = counted(storeThroughPool(pool));
			const committer = new GroupCommitter(run.statement);
			// As requests read from several sockets in one poll of the event loop arrive: one after the other, before any statement starts.
			const together = await Promise.all(Array.from({ length: 6 }, (_, i) => committer.store(site.id, rowsOf(site.key, [pageview(site.key, `anon-together-${i}`)]), facts, ['visitor-processor'])));
			expect(together).toEqual(Array.from({ length: 6 }, () => ({ stored: 1, duplicates: 0 })));
			expect(run.runs).toBe(1);

			expect(await committer.store(site.id, rowsOf(site.key, [pageview(site.key, 'anon-later')]), facts, ['visitor-processor'])).toEqual({ stored: 1, duplicates: 0 });
			expect(run.runs).toBe(2);
			expect(await prisma.visitorEvent.count({ where: { siteId: site.id } })).toBe(7);
			expect(await prisma.outboxMessage.count({ where: { siteId: site.id } })).toBe(7);
		} finally {
			await pool.end();
			await prisma.$disconnect();
		}
	});
});
