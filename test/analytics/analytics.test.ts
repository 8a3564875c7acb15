import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { campaignAnalytics, conversionAnalytics } from '../../server/analytics/campaigns';
import { leadAnalytics } from '../../server/analytics/leads';
import { siteStats, visitorAnalytics, type Queryable, type TimeRange } from '../../server/analytics/queries';
import { foldRollups } from '../../server/analytics/rollup';
import { createApiKey, hashApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { createTestSite, storeEvents, testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

/** A UTC instant in March 2026, the month the hand-made data lives in. */
const march = (day: number, hour = 10, minute = 0, second = 0, ms = 0) => new Date(Date.UTC(2026, 2, day, hour, minute, second, ms));
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000);
/** The range the figures below are worked out for: from=2026-03-01&to=2026-03-07 is [Mar 1, Mar 8). */
const RANGE = 'from=2026-03-01&to=2026-03-07';
const JUST_BEFORE = march(1, 0).getTime() - 1;
const RANGE_END = march(8, 0);

async function get(url: string, key?: string): Promise<{ status: number; json: any; headers: Headers }> {
	const response = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
	return { status: response.status, json: await response.json(), headers: response.headers };
}

function dailySeries<T extends object>(values: Record<number, T>, zero: T): Array<{ at: string } & T> {
	return Array.from({ length: 7 }, (_, index) => ({ at: march(index + 1, 0).toISOString(), ...(values[index + 1] ?? zero) }));
}

/**
 * Site A's data: rows inside the range, rows a millisecond outside either end, and rows of
 * "now" (active sessions, today's events, the outbox). Every figure the tests expect is
 * counted by hand from this function.
 */
async function seedSiteA(prisma: PrismaClient, siteId: string): Promise<void> {
	const lead = (email: string, createdAt: Date, score: number, lifecycleStage: string, source: string | null) =>
		prisma.lead.create({ data: { siteId, email, emailHash: email.padEnd(64, '0').slice(0, 64), createdAt, score, lifecycleStage, source } });
	const l1 = await lead('l1@a.example', march(2), 5, 'subscriber', 'contact-form');
	const l2 = await lead('l2@a.example', march(3), 45, 'mql', 'contact-form');
	const l3 = await lead('l3@a.example', march(5), 85, 'sql', 'newsletter');
	const l4 = await lead('l4@a.example', march(6), 120, 'customer', null);
	const l5 = await lead('l5@a.example', march(6, 12), -5, 'lead', 'newsletter');
	const l6 = await lead('l6@a.example', new Date('2026-02-20T10:00:00Z'), 50, 'customer', 'old');
	await lead('l7@a.example', RANGE_END, 10, 'vip', 'later');

	const visitor = (anonymousId: string, leadId: string | null) =>
		prisma.visitor.create({ data: { siteId, anonymousId, leadId, firstSeenAt: march(1), lastSeenAt: march(7) } });
	const v1 = await visitor('a1', l2.id);
	const v2 = await visitor('a2', l6.id);
	const v3 = await visitor('a3', null);
	const v4 = await visitor('a4', l3.id);

	type SessionFields = { startedAt: Date; lastActivityAt?: Date; pageviews?: number; durationSeconds?: number; isBounce?: boolean; engagementLevel?: 'low' | 'medium' | 'high'; channel?: string; entryPage?: string };
	const session = (visitorId: string, fields: SessionFields) =>
		prisma.visitorSession.create({ data: { siteId, visitorId, sessionKey: uuidv7(), lastActivityAt: fields.startedAt, ...fields } });
	const s1 = await session(v1.id, { startedAt: march(2), pageviews: 3, durationSeconds: 120, isBounce: false, engagementLevel: 'high', channel: 'Organic Search', entryPage: '/' });
	const s2 = await session(v1.id, { startedAt: march(3), pageviews: 1, durationSeconds: 0, isBounce: true, engagementLevel: 'low', channel: 'Direct', entryPage: '/pricing' });
	const s3 = await session(v2.id, { startedAt: march(3, 15), pageviews: 5, durationSeconds: 300, isBounce: false, engagementLevel: 'medium', channel: 'Organic Search', entryPage: '/' });
	const s4 = await session(v3.id, { startedAt: new Date(RANGE_END.getTime() - 1), pageviews: 1, durationSeconds: 30, isBounce: true, engagementLevel: 'low', channel: 'Paid Search', entryPage: '/blog' });
	const s5 = await session(v4.id, { startedAt: new Date(JUST_BEFORE), pageviews: 9, durationSeconds: 900, isBounce: false, engagementLevel: 'high', channel: 'Direct', entryPage: '/x' });
	const s6 = await session(v1.id, { startedAt: RANGE_END, pageviews: 2, durationSeconds: 60, isBounce: false, engagementLevel: 'high', channel: 'Direct', entryPage: '/late' });
	// Now: two sessions with an event in the last 30 minutes (one started 47 hours ago), one idle for 45.
	await session(v1.id, { startedAt: minutesAgo(60), lastActivityAt: minutesAgo(5) });
	await session(v2.id, { startedAt: minutesAgo(47 * 60), lastActivityAt: minutesAgo(2) });
	await session(v3.id, { startedAt: minutesAgo(90), lastActivityAt: minutesAgo(45) });

	// As the Visitor Processor leaves them: each session's page views are its events. Events no session
	// holds (a bot's, one still waiting for workflow 01) count as stored events only.
	type Held = { visitorId: string; id: string };
	const event = (anonymousId: string, path: string, occurredAt: Date, session: Held | null, extra: { type?: string; isBot?: boolean } = {}) => ({
		siteId,
		eventId: uuidv7(),
		anonymousId,
		visitorId: session?.visitorId ?? null,
		sessionId: session?.id ?? null,
		type: 'pageview',
		path,
		occurredAt,
		...extra,
	});
	const seconds = (start: Date, n: number) => new Date(start.getTime() + n * 1000);
	await storeEvents(prisma, [
			event('a1', '/', march(2), s1),
			event('a1', '/pricing', seconds(march(2), 30), s1),
			event('a1', '/', seconds(march(2), 60), s1),
			event('a1', '/', seconds(march(2), 61), s1, { type: 'click' }),
			event('a1', '/pricing', march(3), s2),
			...['/', '/features', '/pricing', '/features', '/'].map((path, index) => event('a2', path, seconds(march(3, 15), index * 60), s3)),
			event('a3', '/blog', new Date(RANGE_END.getTime() - 1), s4),
			...Array.from({ length: 9 }, (_, index) => event('a4', '/old', new Date(JUST_BEFORE + index * 1000), s5)),
			event('a1', '/late', RANGE_END, s6),
			event('a1', '/late', seconds(RANGE_END, 60), s6),
			event('a3', '/pricing', march(7, 23), null),
			event('bot', '/bot', march(4), null, { isBot: true }),
			event('a1', '/now', new Date(), null),
	]);

	const conversion = (visitorId: string, leadId: string | null, sessionId: string | null, goal: string, occurredAt: Date, value = 0, currency: string | null = null) => ({
		siteId,
		visitorId,
		leadId,
		sessionId,
		goal,
		eventId: uuidv7(),
		occurredAt,
		value,
		currency,
	});
	await prisma.conversion.createMany({
		data: [
			conversion(v1.id, l2.id, s1.id, 'contact-request', march(2, 10, 5)),
			conversion(v1.id, l2.id, s1.id, 'newsletter', march(2, 10, 6)),
			conversion(v2.id, null, null, 'purchase', march(3, 15, 10), 49.5, 'EUR'),
			conversion(v1.id, l2.id, s2.id, 'purchase', march(3, 10, 1), 20.25, 'EUR'),
			conversion(v4.id, l3.id, s5.id, 'purchase', march(1, 0, 0, 1), 10, 'EUR'),
			// After the range, but inside the session that started in it: counts for its channel, not as a goal.
			conversion(v3.id, null, s4.id, 'signup', new Date(RANGE_END.getTime() + 500)),
			// Outside the range, but within 7 days of the email l1 got on March 3.
			conversion(v3.id, l1.id, null, 'signup', march(10, 9)),
		],
	});

	const onboarding = await prisma.emailCampaign.create({ data: { siteId, name: 'Onboarding' } });
	const promo = await prisma.emailCampaign.create({ data: { siteId, name: 'Promo' } });
	const message = (campaignId: string | null, leadId: string, sentAt: Date | null, opened?: Date, clicked?: Date) =>
		prisma.emailMessage.create({
			data: { siteId, campaignId, leadId, idempotencyKey: uuidv7(), toEmail: 'x@a.example', subject: 'Hi', status: sentAt ? 'sent' : 'failed', sentAt, firstOpenedAt: opened, firstClickedAt: clicked },
		});
	const m1 = await message(onboarding.id, l1.id, march(2, 9), march(2, 10), march(2, 11));
	await message(onboarding.id, l2.id, march(2, 9), march(2, 12));
	const m3 = await message(onboarding.id, l5.id, march(4, 9));
	const m4 = await message(promo.id, l3.id, new Date('2026-02-25T09:00:00Z'));
	const m5 = await message(promo.id, l3.id, march(5, 12), march(5, 13), march(5, 14));
	await message(promo.id, l4.id, march(6, 12), march(6, 13));
	await message(null, l1.id, march(3, 10));
	await message(onboarding.id, l2.id, null);
	await prisma.emailEvent.createMany({
		data: [
			{ siteId, messageId: m1.id, type: 'open', occurredAt: march(2, 10) },
			{ siteId, messageId: m3.id, type: 'bounce', occurredAt: march(4, 9, 1) },
			{ siteId, messageId: m5.id, type: 'unsubscribe', occurredAt: march(5, 15) },
			{ siteId, messageId: m4.id, type: 'bounce', occurredAt: new Date('2026-02-25T09:01:00Z') },
		],
	});

	const change = (leadId: string, fromStage: string, toStage: string, occurredAt: Date) => ({ siteId, leadId, fromStage, toStage, scoreAt: 0, occurredAt });
	await prisma.leadStageChange.createMany({
		data: [
			change(l2.id, 'subscriber', 'lead', march(3)),
			change(l2.id, 'lead', 'mql', march(4)),
			change(l3.id, 'lead', 'mql', march(5)),
			change(l3.id, 'mql', 'sql', march(5, 11)),
			change(l5.id, 'subscriber', 'lead', march(6)),
			change(l6.id, 'sql', 'customer', new Date('2026-02-21T10:00:00Z')),
		],
	});

	const outbox = (status: 'pending' | 'dead' | 'delivered') => ({ siteId, destination: 'visitor-processor', partitionKey: 'a1', payload: {}, status });
	await prisma.outboxMessage.createMany({ data: [outbox('pending'), outbox('pending'), outbox('dead'), outbox('delivered')] });
}

/** Site B: the same kinds of rows in the same range (and an anonymous id shared with A), with other figures. */
async function seedSiteB(prisma: PrismaClient, siteId: string): Promise<void> {
	const lead = await prisma.lead.create({ data: { siteId, email: 'b@b.example', emailHash: 'b'.repeat(64), createdAt: march(4), score: 95, lifecycleStage: 'customer', source: 'b-form' } });
	const visitor = await prisma.visitor.create({ data: { siteId, anonymousId: 'a1', leadId: lead.id, firstSeenAt: march(4), lastSeenAt: march(4) } });
	for (const [hour, paths] of [[10, ['/', '/b-only']], [11, ['/']]] as const) {
		const session = await prisma.visitorSession.create({
			data: { siteId, visitorId: visitor.id, sessionKey: uuidv7(), startedAt: march(4, hour), lastActivityAt: new Date(), pageviews: paths.length, durationSeconds: 700, isBounce: false, engagementLevel: 'high', channel: 'Organic Search', entryPage: '/' },
		});
		await storeEvents(prisma, paths.map((path) => ({ siteId, eventId: uuidv7(), anonymousId: 'a1', visitorId: visitor.id, sessionId: session.id, type: 'pageview', path, occurredAt: march(4, hour) })));
	}
	await prisma.conversion.create({ data: { siteId, visitorId: visitor.id, leadId: lead.id, goal: 'purchase', eventId: uuidv7(), occurredAt: march(4, 12), value: 1000, currency: 'EUR' } });
	const campaign = await prisma.emailCampaign.create({ data: { siteId, name: 'Onboarding' } });
	await prisma.emailMessage.create({
		data: { siteId, campaignId: campaign.id, leadId: lead.id, idempotencyKey: 'b-1', toEmail: 'b@b.example', subject: 'B', status: 'sent', sentAt: march(4, 9), firstOpenedAt: march(4, 9), firstClickedAt: march(4, 9) },
	});
	await prisma.leadStageChange.create({ data: { siteId, leadId: lead.id, fromStage: 'sql', toStage: 'customer', scoreAt: 95, occurredAt: march(4) } });
	await prisma.outboxMessage.create({ data: { siteId, destination: 'visitor-processor', partitionKey: 'a1', payload: {}, status: 'dead' } });
}

describe('analytics read API', () => {
	const prisma = testPrisma();
	const siteA = testSiteConfig();
	const siteB = testSiteConfig();
	let receiver: Receiver;
	let siteAId: string;
	let siteBId: string;
	let keyA: string;
	let keyB: string;

	beforeAll(async () => {
		receiver = await startTestReceiver([siteA, siteB], { DISPATCHER: 'off' });
		siteAId = receiver.sites.byPublicKey(siteA.site.key)!.id;
		siteBId = receiver.sites.byPublicKey(siteB.site.key)!.id;
		await seedSiteA(prisma, siteAId);
		await seedSiteB(prisma, siteBId);
		keyA = await createApiKey(prisma, siteAId, 'read', 'dashboard A');
		keyB = await createApiKey(prisma, siteBId, 'admin', 'ops B');
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	const url = (path: string, query = '') => `${receiver.url}${path}${query ? `?${query}` : ''}`;
	/** A quiet site's report folds its changes first: it counts everything up to the request itself. */
	const expectCountedAsOfRequest = (json: { asOf: string }, askedAt: number) => {
		const asOf = Date.parse(json.asOf);
		expect({ fromTheRequestOn: asOf >= askedAt, notLaterThanNow: asOf <= Date.now() }).toEqual({ fromTheRequestOn: true, notLaterThanNow: true });
	};

	it('counts site-wide stats for the key\'s site only', async () => {
		const askedAt = Date.now();
		const { status, json, headers } = await get(url('/api/stats'), keyA);
		expectCountedAsOfRequest(json, askedAt);
		expect(status).toBe(200);
		expect(headers.get('cache-control')).toBe('private, no-store');
		const todayStartedAt = new Date(json.events.todayStartedAt);
		expect(todayStartedAt.toISOString()).toMatch(/T00:00:00\.000Z$/);
		// The bot's event is stored but counted nowhere, as it makes no session.
		const today = await prisma.visitorEvent.count({ where: { siteId: siteAId, isBot: false, occurredAt: { gte: todayStartedAt } } });
		const last = await prisma.visitorEvent.findFirst({ where: { siteId: siteAId, isBot: false }, orderBy: { occurredAt: 'desc' } });
		expect(json).toEqual({
			site: siteA.site.key,
			generatedAt: expect.any(String),
			asOf: json.asOf,
			events: { total: 24, today, todayStartedAt: json.events.todayStartedAt, lastAt: last!.occurredAt.toISOString() },
			visitors: 4,
			sessions: 9,
			leads: 7,
			outbox: { pending: 2, dead: 1 },
		});
		expect(today).toBeGreaterThanOrEqual(1);
		expect((await get(url('/api/stats'), keyB)).json).toMatchObject({ events: { total: 3, today: 0 }, visitors: 1, sessions: 2, leads: 1, outbox: { pending: 0, dead: 1 } });
	});

	it('reports visitor analytics: active sessions, top pages, time on site, bounce rate, breakdowns', async () => {
		const askedAt = Date.now();
		const { status, json } = await get(url('/api/analytics/visitors', RANGE), keyA);
		expectCountedAsOfRequest(json, askedAt);
		const unset = { value: null, sessions: 4, bounces: 2, pageviews: 10, avgDurationSeconds: 112.5 };
		expect(status).toBe(200);
		expect(json).toEqual({
			site: siteA.site.key,
			range: { from: '2026-03-01T00:00:00.000Z', to: '2026-03-08T00:00:00.000Z', interval: 'day' },
			asOf: json.asOf,
			activeSessions: 2,
			// Of the two active sessions, one had an event 2 minutes ago, the other 5 (no longer "now" by the time of the request).
			visitorsNow: 1,
			summary: { sessions: 4, visitors: 3, pageviews: 10, pageviewsPerSession: 2.5, avgDurationSeconds: 112.5, medianDurationSeconds: 75, bounces: 2, bounceRate: 0.5 },
			engagement: { low: 2, medium: 1, high: 1 },
			// The page views of the range's sessions: they add up to the summary's.
			topPages: [
				{ path: '/', pageviews: 4, visitors: 2 },
				{ path: '/pricing', pageviews: 3, visitors: 2 },
				{ path: '/features', pageviews: 2, visitors: 1 },
				{ path: '/blog', pageviews: 1, visitors: 1 },
			],
			entryPages: [
				{ path: '/', sessions: 2, bounceRate: 0 },
				{ path: '/blog', sessions: 1, bounceRate: 1 },
				{ path: '/pricing', sessions: 1, bounceRate: 1 },
			],
			breakdowns: {
				// The conversions made in the range's sessions, the last one after the range ends.
				channels: [
					{ value: 'Organic Search', sessions: 2, bounces: 0, pageviews: 8, avgDurationSeconds: 210, conversions: 2, convertingSessions: 1 },
					{ value: 'Direct', sessions: 1, bounces: 1, pageviews: 1, avgDurationSeconds: 0, conversions: 1, convertingSessions: 1 },
					{ value: 'Paid Search', sessions: 1, bounces: 1, pageviews: 1, avgDurationSeconds: 30, conversions: 1, convertingSessions: 1 },
				],
				// The seeded sessions name no exit page, referrer, UTM fields, device or country: one row of all four sessions.
				...Object.fromEntries(['exitPages', 'referrers', 'sources', 'mediums', 'campaigns', 'devices', 'browsers', 'os', 'countries'].map((name) => [name, [unset]])),
				// No session scrolled (max_scroll_depth 0): every bucket is listed all the same.
				scrollDepth: [
					{ ...unset, value: '0–24%' },
					...['25–49%', '50–74%', '75–99%', '100%'].map((value) => ({ value, sessions: 0, bounces: 0, pageviews: 0, avgDurationSeconds: null })),
				],
			},
			series: dailySeries(
				{ 2: { sessions: 1, visitors: 1, pageviews: 3, bounces: 0 }, 3: { sessions: 2, visitors: 2, pageviews: 6, bounces: 1 }, 7: { sessions: 1, visitors: 1, pageviews: 1, bounces: 1 } },
				{ sessions: 0, visitors: 0, pageviews: 0, bounces: 0 },
			),
		});
	});

	it('restricts every visitor figure to the sessions of a channel, a campaign or a page', async () => {
		const range: TimeRange = { from: march(1, 0), to: RANGE_END, interval: 'day' };
		const organic = await visitorAnalytics(prisma, siteAId, range, { channel: 'Organic Search' });
		expect(organic).toMatchObject({
			activeSessions: 0,
			visitorsNow: 0,
			summary: { sessions: 2, visitors: 2, pageviews: 8, avgDurationSeconds: 210, bounces: 0 },
			topPages: [
				{ path: '/', pageviews: 4, visitors: 2 },
				{ path: '/features', pageviews: 2, visitors: 1 },
				{ path: '/pricing', pageviews: 2, visitors: 2 },
			],
			entryPages: [{ path: '/', sessions: 2, bounceRate: 0 }],
			breakdowns: { channels: [{ value: 'Organic Search', sessions: 2, conversions: 2, convertingSessions: 1 }] },
		});
		expect(organic.series.filter((point) => point.sessions > 0)).toEqual([
			{ at: march(2, 0), sessions: 1, visitors: 1, pageviews: 3, bounces: 0 },
			{ at: march(3, 0), sessions: 1, visitors: 1, pageviews: 5, bounces: 0 },
		]);
		// Sessions that viewed /features: only v2's; a page filter keeps the whole session (its other pages too).
		const features = await visitorAnalytics(prisma, siteAId, range, { page: '/features' });
		expect(features).toMatchObject({ summary: { sessions: 1, visitors: 1, pageviews: 5 }, topPages: [{ path: '/', pageviews: 2 }, { path: '/features', pageviews: 2 }, { path: '/pricing', pageviews: 1 }] });
		expect((await visitorAnalytics(prisma, siteAId, range, { campaign: 'none-such' })).summary).toMatchObject({ sessions: 0, visitors: 0, pageviews: 0 });
		// Site B's sessions are Organic Search too: none of them reach site A's figures.
		expect((await visitorAnalytics(prisma, siteBId, range, { channel: 'Organic Search' })).summary).toMatchObject({ sessions: 2, visitors: 1 });
	});

	it('reports lead intelligence: visitor→lead conversion, score distribution, sources, pipeline', async () => {
		const askedAt = Date.now();
		const { status, json } = await get(url('/api/analytics/leads', RANGE), keyA);
		expect(status).toBe(200);
		expectCountedAsOfRequest(json, askedAt);
		const bucket = (min: number | null, max: number | null, leads = 0) => ({ min, max, leads });
		expect(json).toEqual({
			site: siteA.site.key,
			range: { from: '2026-03-01T00:00:00.000Z', to: '2026-03-08T00:00:00.000Z', interval: 'day' },
			asOf: json.asOf,
			summary: { newLeads: 5, avgScore: 50, medianScore: 45, visitors: 3, convertedVisitors: 1, visitorToLeadRate: 1 / 3 },
			scoreDistribution: [
				bucket(null, 0, 1),
				bucket(0, 10, 1),
				bucket(10, 20),
				bucket(20, 30),
				bucket(30, 40),
				bucket(40, 50, 1),
				bucket(50, 60),
				bucket(60, 70),
				bucket(70, 80),
				bucket(80, 90, 1),
				bucket(90, 100),
				bucket(100, null, 1),
			],
			sources: [
				{ source: 'contact-form', leads: 2, share: 0.4 },
				{ source: 'newsletter', leads: 2, share: 0.4 },
				{ source: null, leads: 1, share: 0.2 },
			],
			pipeline: [
				{ stage: 'subscriber', leads: 1 },
				{ stage: 'lead', leads: 1 },
				{ stage: 'mql', leads: 1 },
				{ stage: 'sql', leads: 1 },
				{ stage: 'customer', leads: 2 },
				{ stage: 'vip', leads: 1 },
			],
			stageChanges: [
				{ from: 'lead', to: 'mql', leads: 2 },
				{ from: 'subscriber', to: 'lead', leads: 2 },
				{ from: 'mql', to: 'sql', leads: 1 },
			],
			series: dailySeries({ 2: { leads: 1 }, 3: { leads: 1 }, 5: { leads: 1 }, 6: { leads: 2 } }, { leads: 0 }),
		});
	});

	it('reports campaign performance: open, click and conversion rates per campaign and channel', async () => {
		const { status, json } = await get(url('/api/analytics/campaigns', RANGE), keyA);
		expect(status).toBe(200);
		expect(json.email).toEqual({ sent: 6, opened: 4, clicked: 2, converted: 2, unsubscribed: 1, bounced: 1, openRate: 4 / 6, clickRate: 2 / 6, clickToOpenRate: 0.5, conversionRate: 2 / 6, conversionWindowDays: 7 });
		expect(json.campaigns).toEqual([
			{ campaignId: expect.any(String), name: 'Onboarding', sent: 3, opened: 2, clicked: 1, converted: 1, unsubscribed: 0, bounced: 1, openRate: 2 / 3, clickRate: 1 / 3, clickToOpenRate: 0.5, conversionRate: 1 / 3 },
			{ campaignId: expect.any(String), name: 'Promo', sent: 2, opened: 2, clicked: 1, converted: 0, unsubscribed: 1, bounced: 0, openRate: 1, clickRate: 0.5, clickToOpenRate: 0.5, conversionRate: 0 },
			{ campaignId: null, name: null, sent: 1, opened: 0, clicked: 0, converted: 1, unsubscribed: 0, bounced: 0, openRate: 0, clickRate: 0, clickToOpenRate: null, conversionRate: 1 },
		]);
		expect(json.channels).toEqual([
			{ channel: 'Organic Search', sessions: 2, conversions: 2, convertingSessions: 1, conversionRate: 0.5 },
			{ channel: 'Direct', sessions: 1, conversions: 1, convertingSessions: 1, conversionRate: 1 },
			{ channel: 'Paid Search', sessions: 1, conversions: 1, convertingSessions: 1, conversionRate: 1 },
		]);
		expect(json.series).toEqual(
			dailySeries(
				{ 2: { sent: 2, opened: 2, clicked: 1 }, 3: { sent: 1, opened: 0, clicked: 0 }, 4: { sent: 1, opened: 0, clicked: 0 }, 5: { sent: 1, opened: 1, clicked: 1 }, 6: { sent: 1, opened: 1, clicked: 0 } },
				{ sent: 0, opened: 0, clicked: 0 },
			),
		);
	});

	it('reports the conversion funnel and goals', async () => {
		const askedAt = Date.now();
		const { status, json } = await get(url('/api/analytics/conversion', RANGE), keyA);
		expect(status).toBe(200);
		expectCountedAsOfRequest(json, askedAt);
		expect(json).toEqual({
			site: siteA.site.key,
			range: { from: '2026-03-01T00:00:00.000Z', to: '2026-03-08T00:00:00.000Z', interval: 'day' },
			asOf: json.asOf,
			funnel: {
				steps: [
					{ step: 'visitors', count: 3, rateFromPrevious: null, rateFromFirst: 1 },
					{ step: 'engaged', count: 2, rateFromPrevious: 2 / 3, rateFromFirst: 2 / 3 },
					{ step: 'leads', count: 5, rateFromPrevious: 2.5, rateFromFirst: 5 / 3 },
					{ step: 'qualified', count: 3, rateFromPrevious: 0.6, rateFromFirst: 1 },
					{ step: 'customers', count: 1, rateFromPrevious: 1 / 3, rateFromFirst: 1 / 3 },
				],
				qualifiedStages: ['mql', 'sql', 'customer'],
				customerStage: 'customer',
			},
			summary: { conversions: 5, convertingVisitors: 3, visitors: 3, conversionRate: 1 },
			goals: [
				{ goal: 'purchase', currency: 'EUR', conversions: 3, visitors: 3, value: 79.75 },
				{ goal: 'contact-request', currency: null, conversions: 1, visitors: 1, value: 0 },
				{ goal: 'newsletter', currency: null, conversions: 1, visitors: 1, value: 0 },
			],
			series: dailySeries({ 1: { conversions: 1 }, 2: { conversions: 2 }, 3: { conversions: 2 } }, { conversions: 0 }),
		});
	});

	it('buckets by UTC hour and reads zoned times', async () => {
		const { status, json } = await get(url('/api/analytics/visitors', 'from=2026-03-03T01:00:00%2B01:00&to=2026-03-03T20:00:00.000Z&interval=hour'), keyA);
		expect(status).toBe(200);
		expect(json.range).toEqual({ from: '2026-03-03T00:00:00.000Z', to: '2026-03-03T20:00:00.000Z', interval: 'hour' });
		expect(json.series).toHaveLength(20);
		expect(json.series.filter((point: { sessions: number }) => point.sessions > 0)).toEqual([
			{ at: '2026-03-03T10:00:00.000Z', sessions: 1, visitors: 1, pageviews: 1, bounces: 1 },
			{ at: '2026-03-03T15:00:00.000Z', sessions: 1, visitors: 1, pageviews: 5, bounces: 0 },
		]);
	});

	it('buckets by ISO week, Monday to Monday (UTC), partial weeks at either end included', async () => {
		const { status, json } = await get(url('/api/analytics/visitors', `${RANGE}&interval=week`), keyA);
		expect(status).toBe(200);
		// March 1, 2026 is a Sunday: its week starts on February 23, the next one on March 2.
		expect(json.series).toEqual([
			{ at: '2026-02-23T00:00:00.000Z', sessions: 0, visitors: 0, pageviews: 0, bounces: 0 },
			{ at: '2026-03-02T00:00:00.000Z', sessions: 4, visitors: 3, pageviews: 10, bounces: 2 },
		]);
	});

	it('defaults to the last 30 days by day, and answers an empty range with zeros and nulls', async () => {
		const before = Date.now();
		const { json } = await get(url('/api/analytics/leads'), keyA);
		const to = new Date(json.range.to).getTime();
		expect(to).toBeGreaterThanOrEqual(before - 1000);
		expect(to).toBeLessThanOrEqual(Date.now());
		expect(to - new Date(json.range.from).getTime()).toBe(30 * 86_400_000);
		expect(json.range.interval).toBe('day');

		const empty = 'from=2020-01-01&to=2020-01-01';
		const visitors = (await get(url('/api/analytics/visitors', empty), keyA)).json;
		expect(visitors.summary).toEqual({ sessions: 0, visitors: 0, pageviews: 0, pageviewsPerSession: null, avgDurationSeconds: null, medianDurationSeconds: null, bounces: 0, bounceRate: null });
		expect(visitors.series).toEqual([{ at: '2020-01-01T00:00:00.000Z', sessions: 0, visitors: 0, pageviews: 0, bounces: 0 }]);
		const campaigns = (await get(url('/api/analytics/campaigns', empty), keyA)).json;
		expect(campaigns.email).toEqual({ sent: 0, opened: 0, clicked: 0, converted: 0, unsubscribed: 0, bounced: 0, openRate: null, clickRate: null, clickToOpenRate: null, conversionRate: null, conversionWindowDays: 7 });
		expect(campaigns.campaigns).toEqual([]);
		const conversion = (await get(url('/api/analytics/conversion', empty), keyA)).json;
		expect(conversion.funnel.steps.map((step: { count: number }) => step.count)).toEqual([0, 0, 0, 0, 0]);
	});

	const ROUTES = ['/api/stats', '/api/analytics/visitors', '/api/analytics/leads', '/api/analytics/campaigns', '/api/analytics/conversion'];

	it.each(ROUTES)('%s needs a valid, unrevoked key', async (path) => {
		expect(await get(url(path))).toMatchObject({ status: 401, json: { error: 'api_key_required' } });
		expect(await get(url(path), 'tcrm_read_not-a-real-key')).toMatchObject({ status: 401, json: { error: 'invalid_api_key' } });
		const revoked = await createApiKey(prisma, siteAId, 'read', `revoked for ${path}`);
		await prisma.apiKey.update({ where: { keyHash: hashApiKey(revoked) }, data: { revokedAt: new Date() } });
		expect(await get(url(path), revoked)).toMatchObject({ status: 401, json: { error: 'invalid_api_key' } });
	});

	it.each(ROUTES)('%s refuses a key of site A asking for site B, and answers each site with its own figures', async (path) => {
		const refused = await get(url(path, `site=${siteB.site.key}&${RANGE}`), keyA);
		expect(refused).toMatchObject({ status: 403, json: { error: 'site_not_allowed' } });
		expect(JSON.stringify(refused.json)).not.toMatch(/sessions|leads|events/);
		const own = await get(url(path, `site=${siteA.site.key}&${RANGE}`), keyA);
		expect(own.status).toBe(200);
		expect(own.json.site).toBe(siteA.site.key);
		const other = await get(url(path, RANGE), keyB);
		expect(other.status).toBe(200);
		expect(other.json.site).toBe(siteB.site.key);
		expect(other.json).not.toEqual({ ...own.json, site: siteB.site.key });
	});

	it('answers site B with B\'s figures only', async () => {
		const visitors = (await get(url('/api/analytics/visitors', RANGE), keyB)).json;
		expect(visitors.summary).toMatchObject({ sessions: 2, visitors: 1, pageviews: 3, avgDurationSeconds: 700, bounces: 0 });
		expect(visitors.topPages).toEqual([
			{ path: '/', pageviews: 2, visitors: 1 },
			{ path: '/b-only', pageviews: 1, visitors: 1 },
		]);
		const leads = (await get(url('/api/analytics/leads', RANGE), keyB)).json;
		expect(leads.summary).toEqual({ newLeads: 1, avgScore: 95, medianScore: 95, visitors: 1, convertedVisitors: 1, visitorToLeadRate: 1 });
		expect(leads.pipeline.find((row: { stage: string }) => row.stage === 'customer')).toEqual({ stage: 'customer', leads: 1 });
		const campaigns = (await get(url('/api/analytics/campaigns', RANGE), keyB)).json;
		expect(campaigns.campaigns).toEqual([expect.objectContaining({ name: 'Onboarding', sent: 1, opened: 1, clicked: 1, converted: 1 })]);
		const conversion = (await get(url('/api/analytics/conversion', RANGE), keyB)).json;
		expect(conversion.goals).toEqual([{ goal: 'purchase', currency: 'EUR', conversions: 1, visitors: 1, value: 1000 }]);
	});

	it('answers 404 for a key whose site this receiver does not serve', async () => {
		const unserved = await createTestSite(prisma, 'unserved');
		const key = await createApiKey(prisma, unserved.id, 'read', 'orphan');
		expect(await get(url('/api/analytics/visitors'), key)).toMatchObject({ status: 404, json: { error: 'site_not_served' } });
	});

	it.each([
		['from=yesterday', 'from', /^from must be an ISO 8601 date or date-time with a zone, such as 2026-11-01 or 2026-11-01T09:30:00Z \(got "yesterday"\)$/],
		['from=2026-03-01T10:00:00', 'from', /^from must be an ISO 8601/],
		['to=2026-02-30', 'to', /^to must be an ISO 8601/],
		['from=2026-03-01T24:00:00Z', 'from', /^from must be an ISO 8601/],
		['from=2026-03-01&from=2026-03-02', 'from', /^from must be given once/],
		['from=2026-03-05&to=2026-03-01', 'from', /^from must be before to/],
		['from=2025-01-01&to=2026-03-01', 'from', /^from and to may be at most 366 days apart \(they are 425 days apart\)$/],
		['interval=month', 'interval', /^interval must be day, hour or week \(got "month"\)$/],
		['from=2026-01-01&to=2026-03-01&interval=hour', 'interval', /^interval hour covers at most 31 days/],
		['to=9999-12-31', 'to', /^to must be a date from 2000-01-01 to 2099-12-31 \(got "9999-12-31"\)$/],
		['from=0000-01-01', 'from', /^from must be a date from 2000-01-01 to 2099-12-31/],
		['from=1999-12-31&to=2000-01-05', 'from', /^from must be a date from 2000-01-01/],
		['to=2100-01-01', 'to', /^to must be a date from 2000-01-01 to 2099-12-31/],
		['to=2026-03-01%00', 'to', /^to must be an ISO 8601/],
		['to=2026-03-01&to=2026-03-02', 'to', /^to must be given once/],
		['interval=hour%00', 'interval', /^interval must be day, hour or week \(got "hour\\u0000"\)$/],
		['form=2026-03-01', 'form', /^form is not a known field; did you mean "from"\?/],
	])('answers %s with a 400 naming %s', async (query, field, message) => {
		const { status, json } = await get(url('/api/analytics/visitors', query), keyA);
		expect(status).toBe(400);
		expect(json.error).toBe('invalid_parameter');
		expect(json.message).toMatch(message);
		expect(json.issues).toEqual([{ field, message: expect.any(String) }]);
	});

	it('accepts the first and the last days a range may name', async () => {
		for (const query of ['from=2000-01-01&to=2000-12-31', 'from=2099-01-01&to=2099-12-31', 'from=2099-12-01T00:00:00-23:59&to=2099-12-31&interval=hour']) {
			expect([query, (await get(url('/api/analytics/visitors', query), keyA)).status]).toEqual([query, 200]);
		}
	});

	it('answers /api/stats whatever range a dashboard sends every report, and refuses a bad site parameter', async () => {
		expect((await get(url('/api/stats', `${RANGE}&interval=hour`), keyA)).status).toBe(200);
		expect(await get(url('/api/stats', 'site=a%00b'), keyA)).toMatchObject({ status: 400, json: { issues: [{ field: 'site', message: expect.stringMatching(/control characters/) }] } });
	});

	it('accepts exactly 366 days', async () => {
		expect((await get(url('/api/analytics/conversion', 'from=2025-03-02&to=2026-03-02'), keyA)).status).toBe(200);
	});

	/**
	 * A site with a year of rows (ids derived from the site id so rows can reference each other),
	 * analyzed, so the planner weighs indexes as it would in production rather than on a handful of rows.
	 */
	async function seedBulkSite(siteId: string): Promise<void> {
		const id = (kind: string, n: string) => `md5($1::text || '${kind}' || ${n})::uuid`;
		const at = (step: string, n: string) => `timestamptz '2025-06-01' + ${n} * interval '${step}'`;
		const statements = [
			`INSERT INTO leads (id, site_id, email, email_hash, score, lifecycle_stage, source, created_at, updated_at)
				SELECT ${id('l', 'i')}, $1::uuid, 'bulk' || i || '@x.example', md5(i::text), i % 130 - 10, (ARRAY['subscriber', 'lead', 'mql', 'sql', 'customer'])[i % 5 + 1], 'src' || i % 7, ${at('100 minutes', 'i')}, now()
				FROM generate_series(1, 5000) i`,
			`INSERT INTO visitors (id, site_id, anonymous_id, lead_id, first_seen_at, last_seen_at, updated_at)
				SELECT ${id('v', 'i')}, $1::uuid, 'bulk-' || i, CASE WHEN i % 3 = 0 THEN ${id('l', 'i')} END, ${at('4 hours', 'i')}, ${at('4 hours', 'i')}, now()
				FROM generate_series(1, 2000) i`,
			`INSERT INTO visitor_sessions (id, site_id, visitor_id, session_key, started_at, last_activity_at, pageviews, duration_seconds, is_bounce, engagement_level, channel, entry_page, updated_at)
				SELECT ${id('s', 'i')}, $1::uuid, ${id('v', '(i % 2000 + 1)')}, 'bulk-' || i, ${at('26 minutes', 'i')}, ${at('26 minutes', 'i')} + interval '5 minutes', i % 6, i % 600, i % 3 = 0,
					(ARRAY['low', 'medium', 'high'])[i % 3 + 1]::engagement_level, 'channel' || i % 5, '/p' || i % 40, now()
				FROM generate_series(1, 20000) i`,
			`INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, type, path, occurred_at)
				SELECT gen_random_uuid(), $1::uuid, gen_random_uuid(), 'bulk-' || i % 2000, (ARRAY['pageview', 'click', 'scroll'])[i % 3 + 1], '/p' || i % 40, ${at('9 minutes', 'i')}
				FROM generate_series(1, 60000) i`,
			`INSERT INTO conversions (id, site_id, visitor_id, lead_id, session_id, goal, event_id, value, occurred_at)
				SELECT ${id('c', 'i')}, $1::uuid, ${id('v', '(i % 2000 + 1)')}, ${id('l', '(i % 5000 + 1)')}, ${id('s', '(i * 4)')}, 'goal' || i % 4, 'e' || i, i % 50, ${at('104 minutes', 'i')}
				FROM generate_series(1, 5000) i`,
			`INSERT INTO email_messages (id, site_id, lead_id, idempotency_key, to_email, subject, status, sent_at, first_opened_at)
				SELECT ${id('m', 'i')}, $1::uuid, ${id('l', 'i')}, 'bulk-' || i, 'x@x.example', 'Hi', 'sent', ${at('100 minutes', 'i')}, CASE WHEN i % 2 = 0 THEN ${at('100 minutes', 'i')} END
				FROM generate_series(1, 5000) i`,
			`INSERT INTO email_events (id, site_id, message_id, type, occurred_at)
				SELECT gen_random_uuid(), $1::uuid, ${id('m', 'i')}, (ARRAY['open', 'click', 'bounce', 'unsubscribe'])[i % 4 + 1]::email_event_type, ${at('100 minutes', 'i')}
				FROM generate_series(1, 5000) i`,
			`INSERT INTO lead_stage_changes (id, site_id, lead_id, from_stage, to_stage, score_at, occurred_at)
				SELECT gen_random_uuid(), $1::uuid, ${id('l', 'i')}, 'lead', 'mql', 40, ${at('100 minutes', 'i')} FROM generate_series(1, 5000) i`,
			`INSERT INTO outbox (site_id, destination, partition_key, payload, status)
				SELECT $1::uuid, 'visitor-processor', 'bulk-' || i % 2000, '{}', (ARRAY['pending', 'delivered', 'dead'])[i % 3 + 1]::outbox_status FROM generate_series(1, 5000) i`,
		];
		for (const sql of statements) await prisma.$executeRawUnsafe(sql, siteId);
		await prisma.$executeRawUnsafe(`ANALYZE ${[...TIME_COLUMNS.keys(), 'visitors', 'outbox'].join(', ')}`);
	}

	/** The column each range statement bounds a table by: the range must be an index condition there, not a filter. */
	const TIME_COLUMNS = new Map([
		['visitor_sessions', 'started_at'],
		['visitor_events', 'occurred_at'],
		['leads', 'created_at'],
		['conversions', 'occurred_at'],
		['email_messages', 'sent_at'],
		['email_events', 'occurred_at'],
		['lead_stage_changes', 'occurred_at'],
	]);
	const LARGE_TABLES = new Set([...TIME_COLUMNS.keys(), 'visitors', 'outbox']);
	/** Lookups of single rows by key (a join to the row a session or message points at). */
	const KEY_LOOKUP = /^\(+(?:id|message_id|lead_id|visitor_id) = /;

	/** Scans of a large table that are not bounded by its site (and, where the statement has one, its time range). */
	function unboundedScans(plan: any, found: string[] = []): string[] {
		const table = plan['Relation Name'];
		if (LARGE_TABLES.has(table)) {
			const condition = String(plan['Index Cond'] ?? plan['Recheck Cond'] ?? '');
			const timeColumn = TIME_COLUMNS.get(table);
			// Outbox counts by status may go through the dispatcher's (status, next_attempt_at) index
			// instead of (site_id, status) when the planner expects few rows per status: bounded by the
			// backlog, which the dispatcher keeps small, not by the site's history.
			const outboxByStatus = table === 'outbox' && condition.startsWith('(status = ');
			const bounded = KEY_LOOKUP.test(condition) || outboxByStatus || (condition.includes('site_id') && !(timeColumn && String(plan.Filter ?? '').includes(timeColumn)));
			if (!bounded) found.push(`${plan['Node Type']} on ${table} (cond: ${condition || 'none'}; filter: ${plan.Filter ?? 'none'})`);
		}
		for (const child of plan.Plans ?? []) unboundedScans(child, found);
		return found;
	}

	it('runs every statement on a per-site index, with the time range in the index condition', async () => {
		const bulk = await createTestSite(prisma, 'bulk');
		await seedBulkSite(bulk.id);
		const statements: Array<{ sql: string; params: unknown[] }> = [];
		// Folded first, so only the reports' own statements are recorded.
		await foldRollups(prisma, bulk.id);
		const recording: Queryable = {
			$executeRawUnsafe: prisma.$executeRawUnsafe.bind(prisma),
			$transaction: prisma.$transaction.bind(prisma) as Queryable['$transaction'],
			$queryRawUnsafe: ((sql: string, ...params: unknown[]) => {
				statements.push({ sql, params });
				return prisma.$queryRawUnsafe(sql, ...params);
			}) as Queryable['$queryRawUnsafe'],
		};
		const range: TimeRange = { from: new Date('2025-09-01T00:00:00Z'), to: new Date('2025-09-08T00:00:00Z'), interval: 'day' };
		const stages = ['subscriber', 'lead', 'mql', 'sql', 'customer'];
		const [, visitors] = await Promise.all([
			siteStats(recording, bulk.id, range.from),
			visitorAnalytics(recording, bulk.id, range),
			leadAnalytics(recording, bulk.id, range, stages),
			campaignAnalytics(recording, bulk.id, range),
			conversionAnalytics(recording, bulk.id, range, stages),
		]);
		expect(visitors.summary.sessions).toBe(388);
		// The reports' 18 statements, and each report's check for hours left to fold.
		expect(statements).toHaveLength(23);
		for (const { sql, params } of statements) {
			// With sequential scans priced out, a scan that remains (or a range left to a filter) means no index fits.
			const scans = await prisma.$transaction(async (tx) => {
				await tx.$executeRawUnsafe('SET LOCAL enable_seqscan = off');
				const [row] = await tx.$queryRawUnsafe<Array<{ 'QUERY PLAN': any }>>(`EXPLAIN (FORMAT JSON) ${sql}`, ...params);
				return unboundedScans(row['QUERY PLAN'][0].Plan);
			});
			expect({ sql, scans }).toEqual({ sql, scans: [] });
		}
		// Folding the bulk site's year of hours takes 15–20 s on a 2-core machine alone, and longer beside other suites.
	}, 240_000);
});
