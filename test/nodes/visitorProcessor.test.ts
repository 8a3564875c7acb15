import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, linkedEvents, postgresCredential, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

function workflow(parameters: INode['parameters'] = {}, options: { continueOnFail?: boolean } = {}): WorkflowJson {
	return {
		name: 'Visitor Processor test',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'vp',
				name: 'Visitor Processor',
				type: 'n8n-nodes-tracking-crm.visitorProcessor',
				typeVersion: 1,
				position: [200, 0],
				parameters: { siteKey: '={{ $json.site }}', input: 'event', ...parameters },
				credentials: { postgres: { id: '1', name: 'CRM database' } },
				...(options.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
			},
		],
		connections: { Start: { main: [[{ node: 'Visitor Processor', type: 'main', index: 0 }]] } },
	};
}

const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);

describe('Visitor Processor node in the n8n execution engine', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	const credentials = () => ({ postgres: postgresCredential() });

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'visitors');
	});
	afterAll(async () => {
		await prisma.$disconnect();
		await disconnectAll();
	});

	function event(anonymousId: string, offsetSeconds: number, path: string, extra: IDataObject = {}): IDataObject {
		return {
			site: site.key,
			id: uuidv7(),
			anonymousId,
			sessionId: `${anonymousId}-tab`,
			type: 'pageview',
			url: `https://${site.key}.example${path}`,
			path,
			userAgent: BROWSER,
			country: 'ES',
			occurredAt: new Date(T0 + offsetSeconds * 1000).toISOString(),
			...extra,
		};
	}

	const snapshot = async () => ({
		visitors: await prisma.visitor.findMany({ where: { siteId: site.id }, orderBy: { anonymousId: 'asc' }, omit: { updatedAt: true } }),
		sessions: await prisma.visitorSession.findMany({ where: { siteId: site.id }, orderBy: { sessionKey: 'asc' }, omit: { updatedAt: true } }),
		events: (await linkedEvents(prisma, { siteIds: [site.id] })).map(({ eventId, visitorId, sessionId }) => ({ eventId, visitorId, sessionId })),
	});

	it('builds visitors and sessions with metrics, engagement, channel and device, and changes nothing on a retry', async () => {
		const ads = event('anon-1', 0, '/', { url: `https://${site.key}.example/?utm_source=google&utm_medium=cpc&utm_campaign=winter`, context: { utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'winter' } });
		const input = [
			ads,
			event('anon-1', 40, '/pricing'),
			event('anon-1', 90, '/pricing', { type: 'scroll', props: { depth: 90 } }),
			event('anon-1', 120, '/contact', { type: 'form_submit', name: 'contact' }),
			// an hour later: a new session, from a Google search
			event('anon-1', 3720, '/blog', { referrer: 'https://www.google.com/' }),
			event('anon-2', 10, '/', { referrer: 'https://news.example.org/post' }),
		];
		const first = await runWorkflow(workflow(), { input, credentials: credentials(), throwOnError: true });
		const out = first.outputOf('Visitor Processor');
		expect(out).toHaveLength(6);
		expect(first.itemsOf('Visitor Processor').map((item) => item.pairedItem)).toEqual(input.map((_, item) => ({ item })));
		const paidSession = out[0].session as IDataObject;
		expect(paidSession).toMatchObject({ channel: 'Paid Search', source: 'google', medium: 'cpc', campaign: 'winter', pageviews: 2, entryPage: '/', exitPage: '/pricing', isBounce: false });
		expect(out[3].session).toMatchObject({ sessionKey: paidSession.sessionKey });
		expect(out[4].session).toMatchObject({ channel: 'Organic Search', source: 'google', medium: 'organic', pageviews: 1 });
		expect(out[5].session).toMatchObject({ channel: 'Referral', source: 'example.org' });
		expect(['medium', 'high']).toContain(paidSession.engagementLevel);

		const sessions = await prisma.visitorSession.findMany({ where: { siteId: site.id }, orderBy: { startedAt: 'asc' } });
		expect(sessions).toHaveLength(3);
		expect(sessions[0]).toMatchObject({ durationSeconds: 120, maxScrollDepth: 90, deviceType: 'desktop', browser: 'Chrome', os: 'Windows', country: 'ES', landingPage: expect.stringContaining('utm_source=google') });
		const visitor = await prisma.visitor.findFirstOrThrow({ where: { siteId: site.id, anonymousId: 'anon-1' } });
		expect(visitor).toMatchObject({ sessionCount: 2, firstTouch: expect.objectContaining({ channel: 'Paid Search' }) });

		const before = await snapshot();
		expect(before.events.every((row) => row.visitorId && row.sessionId)).toBe(true);
		const retry = await runWorkflow(workflow(), { input, credentials: credentials(), throwOnError: true });
		expect(retry.outputOf('Visitor Processor')).toEqual(out);
		expect(await snapshot()).toEqual(before);
	});

	it('rebuilds the affected session when a late event arrives, and only that one', async () => {
		const early = [event('anon-3', 0, '/'), event('anon-3', 3000, '/later')];
		await runWorkflow(workflow(), { input: early, credentials: credentials(), throwOnError: true });
		expect(await prisma.visitorSession.count({ where: { siteId: site.id, visitor: { anonymousId: 'anon-3' } } })).toBe(2);
		// an offline-queued event fills the gap: 0 s, 1500 s and 3000 s are now one session
		const late = await runWorkflow(workflow(), { input: [event('anon-3', 1500, '/middle')], credentials: credentials(), throwOnError: true });
		expect(late.outputOf('Visitor Processor')[0].session).toMatchObject({ pageviews: 3, entryPage: '/', exitPage: '/later' });
		const sessions = await prisma.visitorSession.findMany({ where: { siteId: site.id, visitor: { anonymousId: 'anon-3' } } });
		expect(sessions).toHaveLength(1);
		expect((await linkedEvents(prisma, { siteIds: [site.id], anonymousIds: ['anon-3'] })).filter((event) => event.sessionId === sessions[0].id)).toHaveLength(3);
	});

	it('stores the same sessions when executions of one visitor’s events run at once as when they run one by one', async () => {
		const other = await createTestSite(prisma, 'visitors-sequential');
		const journey = (siteKey: string) =>
			Array.from({ length: 8 }, (_, visitor) =>
				Array.from({ length: 12 }, (_, n) => ({
					...event(`anon-parallel-${visitor}`, n * (n % 4 === 3 ? 2400 : 300), `/p${n}`),
					site: siteKey,
					id: `019aa000-0000-7000-8${visitor}00-${String(n).padStart(12, '0')}`,
				})),
			).flat();
		// Deliveries of overlapping parts of every visitor's events at once, as queue-mode workers may run them, retries included.
		const events = journey(site.key);
		const parts = [0, 1, 2, 3, 4, 5].map((k) => events.filter((_, n) => (n + k) % 6 < 3));
		const batches = (part: IDataObject[]) => [...new Set(part.map((e) => e.anonymousId as string))].map((anonymousId) => ({ site: part[0].site, anonymousId, events: part.filter((e) => e.anonymousId === anonymousId) }));
		await Promise.all(parts.map((part) => runWorkflow(workflow({ input: 'batch' }), { input: batches(part), credentials: credentials(), throwOnError: true })));
		await runWorkflow(workflow({ input: 'batch' }), { input: batches(journey(other.key)), credentials: credentials(), throwOnError: true });

		const stored = async (siteId: string) =>
			(await prisma.visitorSession.findMany({ where: { siteId, visitor: { anonymousId: { startsWith: 'anon-parallel-' } } }, orderBy: { sessionKey: 'asc' }, include: { visitor: { select: { anonymousId: true, sessionCount: true } } } })).map(
				({ sessionKey, startedAt, lastActivityAt, pageviews, eventCount, entryPage, exitPage, engagementScore, visitor }) => ({ sessionKey, startedAt, lastActivityAt, pageviews, eventCount, entryPage, exitPage, engagementScore, visitor }),
			);
		const parallel = await stored(site.id);
		expect(parallel.length).toBeGreaterThan(8);
		expect(parallel).toEqual(await stored(other.id));
		expect((await linkedEvents(prisma, { siteIds: [site.id], anonymousPrefix: 'anon-parallel-' })).filter((event) => event.sessionId === null)).toEqual([]);
	});

	it('uses the overrides over the site config', async () => {
		const input = [event('anon-4', 0, '/'), event('anon-4', 120, '/b')];
		const result = await runWorkflow(workflow({ overrides: { sessionTimeout: 60 } }), { input, credentials: credentials(), throwOnError: true });
		const [a, b] = result.outputOf('Visitor Processor');
		expect((a.session as IDataObject).sessionKey).not.toBe((b.session as IDataObject).sessionKey);
	});

	it('names the field of a bad item, and under continue-on-fail processes the good ones', async () => {
		const bad = { ...event('anon-5', 0, '/'), id: 'nope' };
		const failed = await runWorkflow(workflow(), { input: [bad], credentials: credentials() });
		expect(failed.error?.message).toBe('Field "id": the item: "id" must be the event’s id (a UUID)');
		const partial = await runWorkflow(workflow({}, { continueOnFail: true }), { input: [bad, event('anon-5', 5, '/ok')], credentials: credentials(), throwOnError: true });
		const out = partial.outputOf('Visitor Processor');
		expect(out[0]).toEqual({ error: 'Field "id": the item: "id" must be the event’s id (a UUID)' });
		expect(out[1].session).toMatchObject({ pageviews: 1 });
		const unknownSite = await runWorkflow(workflow(), { input: [{ ...event('anon-5', 9, '/'), site: 'missing-site' }], credentials: credentials() });
		expect(unknownSite.error?.message).toMatch(/Site Key: No site with key "missing-site"/);
	});

	describe('bad input', () => {
		/** A run of [good, bad, good] under Continue On Fail: each item's output, and the good events' stored rows. */
		let runs = 0;
		async function alongside(bad: IDataObject, parameters: INode['parameters'] = {}) {
			runs += 1;
			const good = [event(`anon-beside-${runs}-1`, 0, '/one'), event(`anon-beside-${runs}-2`, 0, '/two')];
			const run = await runWorkflow(workflow(parameters, { continueOnFail: true }), { input: [good[0], bad, good[1]], credentials: credentials(), throwOnError: true });
			const stored = await prisma.visitorEvent.findMany({ where: { siteId: site.id, eventId: { in: [good[0].id as string, good[1].id as string] } } });
			return { out: run.outputOf('Visitor Processor'), storedGood: stored.length };
		}
		const random = (length: number) => Array.from({ length }, () => String.fromCharCode(0x21 + Math.floor(Math.random() * 94))).join('');

		it.each([
			['a NUL in the anonymous id', { anonymousId: 'a\u0000b' }, 'Field "anonymousId": the item: "anonymousId" must not contain control characters'],
			['an 8 KB anonymous id', { anonymousId: random(8192) }, 'Field "anonymousId": the item: "anonymousId" must be at most 64 characters'],
			['a control character in the session id', { sessionId: 'tab\u00011' }, 'Field "sessionId": the item: "sessionId" must not contain control characters'],
			['a time past the year 9999', { occurredAt: '+275000-01-01T00:00:00Z' }, 'Field "occurredAt": the item: "occurredAt" must be an ISO 8601 time from the year 1900 to 9999, such as 2026-11-20T09:00:00.000Z'],
			['a time in the year 2999, no receiver having stamped it', { occurredAt: '2999-01-01T00:00:00.000Z' }, 'Field "occurredAt": the item: "occurredAt" 2999-01-01T00:00:00.000Z is more than a minute later than now: give the time the event happened, as ISO 8601 in UTC'],
			[
				'a time after the receivedAt a receiver stamped',
				{ occurredAt: new Date(T0 + 120_000).toISOString(), receivedAt: new Date(T0).toISOString() },
				`Field "occurredAt": the item: "occurredAt" ${new Date(T0 + 120_000).toISOString()} is more than a minute later than its receivedAt (${new Date(T0).toISOString()}): give the time the event happened, as ISO 8601 in UTC`,
			],
			['a relevance Postgres cannot hold', { relevance: 1e12 }, 'Field "relevance": the item: "relevance" Too big: expected number to be <=10'],
		])('refuses %s in its item alone, and stores the good items beside it', async (_, fields, error) => {
			const bad: IDataObject = { ...event('anon-bad', 0, '/'), ...fields };
			const { out, storedGood } = await alongside(bad);
			expect(out[1]).toEqual({ error });
			expect(out[0].session).toMatchObject({ pageviews: 1, entryPage: '/one' });
			expect(out[2].session).toMatchObject({ pageviews: 1, entryPage: '/two' });
			expect(storedGood).toBe(2);
			expect(await prisma.visitorEvent.count({ where: { siteId: site.id, eventId: bad.id as string } })).toBe(0);
		});

		it('stores what a page shows cleaned, as the receiver cleans it: a NUL in a title, an 8 KB path, NUL and half characters in properties and context', async () => {
			const cleaned = { ...event('anon-cleaned', 0, '/'), title: 'bad\u0000title', path: `/${random(8192)}`, props: { 'k\u0000ey': 'v\ud800', nested: [{ deep: 'a\u0000b' }] }, context: { utm_source: 'news\udc00letter' } };
			const wide = { ...event('anon-cleaned', 60, '/'), path: `/${'\u4e00'.repeat(3000)}` };
			const { out, storedGood } = await alongside(cleaned);
			expect(storedGood).toBe(2);
			expect(out[1].session).toMatchObject({ pageviews: 1 });
			expect((await runWorkflow(workflow(), { input: [wide], credentials: credentials(), throwOnError: true })).outputOf('Visitor Processor')[0].session).toMatchObject({ pageviews: 2 });
			const rows = await prisma.visitorEvent.findMany({ where: { siteId: site.id, anonymousId: 'anon-cleaned' }, orderBy: { occurredAt: 'asc' } });
			expect(rows[0]).toMatchObject({ title: 'badtitle', properties: { key: 'v\ufffd', nested: [{ deep: 'ab' }] }, context: { utm_source: 'news\ufffdletter' } });
			expect(rows[0].path).toHaveLength(2048);
			expect(Buffer.byteLength(rows[1].path as string)).toBeLessThanOrEqual(2048);
		});

		it('names the entry of an events array that is no event', async () => {
			const run = await runWorkflow(workflow({ input: 'batch' }), { input: [{ site: site.key, events: [event('anon-array', 0, '/'), null] }], credentials: credentials() });
			expect(run.error?.message).toBe('Field "events[1]": is null, not an event: each entry of "events" is an object with id, anonymousId, type and occurredAt');
		});

		it('refuses an event id another visitor’s event has, and answers a true replay with its stored session', async () => {
			const first = event('anon-id-owner', 0, '/');
			const taken = { ...event('anon-id-other', 5, '/'), id: first.id };
			const run = await runWorkflow(workflow({}, { continueOnFail: true }), { input: [first, taken], credentials: credentials(), throwOnError: true });
			const [owner, other] = run.outputOf('Visitor Processor');
			const usedId = 'Field "id": the item: "id" is already the id of another visitor’s event (another anonymousId): give every event an id of its own; a redelivered event keeps both its id and its anonymousId';
			expect(other).toEqual({ error: usedId });
			expect(owner.session).toMatchObject({ pageviews: 1 });
			// Later, from the store: the replay gets its session, the other visitor's event the error.
			const later = await runWorkflow(workflow({}, { continueOnFail: true }), { input: [taken, first], credentials: credentials(), throwOnError: true });
			expect(later.outputOf('Visitor Processor')).toEqual([{ error: usedId }, owner]);
			expect(await prisma.visitor.count({ where: { siteId: site.id, anonymousId: 'anon-id-other' } })).toBe(0);
		});

		it('when a site’s batch statement fails in the database, reruns its items one by one so only the failing item errors', async () => {
			await prisma.$executeRawUnsafe(`CREATE FUNCTION refuse_exploding_visitor() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$`);
			await prisma.$executeRawUnsafe(`CREATE TRIGGER refuse_exploding_visitor BEFORE INSERT ON visitor_events FOR EACH ROW WHEN (NEW.anonymous_id = 'anon-explode') EXECUTE FUNCTION refuse_exploding_visitor()`);
			try {
				const { out, storedGood } = await alongside(event('anon-explode', 0, '/'));
				expect(out[1].error).toMatch(/refused by the test/);
				expect(out[0].session).toMatchObject({ pageviews: 1, entryPage: '/one' });
				expect(out[2].session).toMatchObject({ pageviews: 1, entryPage: '/two' });
				expect(storedGood).toBe(2);
			} finally {
				await prisma.$executeRawUnsafe('DROP TRIGGER refuse_exploding_visitor ON visitor_events');
				await prisma.$executeRawUnsafe('DROP FUNCTION refuse_exploding_visitor()');
			}
		});

		it.each([
			[{ sessionTimeout: '={{ "abc" }}' }, 'Overrides › Session Timeout (Seconds): is "abc": give a whole number from 1 to 86400'],
			[{ maxSessionDuration: 0 }, 'Overrides › Max Session Duration (Seconds): is 0: give a whole number from 1 to 172800'],
			[{ highThreshold: -1 }, 'Overrides › High Engagement From: is -1: give a number from 0 to 100'],
			[
				{ mediumThreshold: 90, highThreshold: 10 },
				'Overrides › Medium Engagement From: is 90: give a score lower than Overrides › High Engagement From (10), since a session is medium from the lower score and high from the higher one',
			],
			[
				{ highThreshold: 20 },
				'Overrides › High Engagement From: is 20: give a score higher than the site config’s medium threshold (30), since a session is medium from the lower score and high from the higher one',
			],
		])('refuses the override %j, naming it', async (overrides, error) => {
			const run = await runWorkflow(workflow({ overrides }), { input: [event('anon-override', 0, '/')], credentials: credentials() });
			expect(run.error?.message).toBe(error);
			expect(await prisma.visitor.count({ where: { siteId: site.id, anonymousId: 'anon-override' } })).toBe(0);
		});
	});
});
