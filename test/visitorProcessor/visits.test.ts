import type { EventItem } from '../../lib/contracts';
import { earliestEvent, eventRow, eventsByVisitor, planVisit, type StoredEvent, type VisitOptions } from '../../nodes/VisitorProcessor/visits';

const T0 = Date.UTC(2026, 10, 20, 9, 0, 0);
const MINUTE = 60_000;
const OPTIONS: VisitOptions = { sessionTimeout: 1800, maxSessionDuration: 43_200, engagementThresholds: { medium: 30, high: 60 } };
const BROWSER = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
const id = (n: number) => `019aa000-0000-7000-8000-${String(n).padStart(12, '0')}`;

function stored(n: number, minutes: number, extra: Partial<StoredEvent> = {}): StoredEvent {
	return {
		event_id: id(n),
		type: 'pageview',
		url: `https://shop.example/p${n}`,
		referrer: null,
		relevance: null,
		properties: null,
		context: null,
		user_agent: BROWSER,
		country: null,
		occurred_at: new Date(T0 + minutes * MINUTE),
		...extra,
	};
}

const item = (n: number, anonymousId: string, minutes: number, extra: Partial<EventItem> = {}): EventItem => ({
	id: id(n),
	anonymousId,
	type: 'pageview',
	occurredAt: new Date(T0 + minutes * MINUTE).toISOString(),
	...extra,
});

describe('eventRow: an incoming event as a visitor_events row', () => {
	test.each([
		['a delivered event keeps its path', { url: 'https://shop.example/a?x=1', path: '/a' }, { url: 'https://shop.example/a?x=1', path: '/a' }],
		['an event with a URL but no path gets the URL’s', { url: 'https://shop.example/b/c?x=1#top' }, { url: 'https://shop.example/b/c?x=1#top', path: '/b/c' }],
		['an event without a URL has neither', {}, { url: null, path: null }],
		['fields left out are stored as null', { name: undefined }, { name: null, session_key: null, title: null, referrer: null, relevance: null, properties: null, context: null, user_agent: null, country: null }],
	] as Array<[string, Partial<EventItem>, Record<string, unknown>]>)('%s', (_label, extra, expected) => {
		expect(eventRow(item(1, 'anon-1', 0, extra))).toMatchObject({ event_id: id(1), anonymous_id: 'anon-1', type: 'pageview', ...expected });
	});
});

describe('a visitor’s incoming events', () => {
	test('the earliest is reckoned by time, not by input order', () => {
		expect(earliestEvent([item(1, 'a', 30), item(2, 'a', 5), item(3, 'a', 12)])).toBe(T0 + 5 * MINUTE);
	});

	test('events are grouped by visitor, each in input order', () => {
		const grouped = eventsByVisitor([item(1, 'a', 3), item(2, 'b', 1), item(3, 'a', 2)]);
		expect([...grouped].map(([visitor, list]) => [visitor, list.map((event) => event.id)])).toEqual([
			['a', [id(1), id(3)]],
			['b', [id(2)]],
		]);
	});
});

describe('planVisit: what a visitor’s stored events make', () => {
	const plan = (rows: StoredEvent[], incoming: number[], now = T0 + 24 * 60 * MINUTE, options = OPTIONS) =>
		planVisit('anon-1', rows, new Set(incoming.map(id)), 'shop.example', options, now);

	test.each([
		['a session whose timeout has passed is ended at its last event', [stored(1, 0), stored(2, 5)], T0 + 60 * MINUTE, [T0 + 5 * MINUTE]],
		['the last session is still open within its timeout', [stored(1, 0), stored(2, 5)], T0 + 20 * MINUTE, [null]],
		['only the last session can be open', [stored(1, 0), stored(2, 90)], T0 + 91 * MINUTE, [T0, null]],
	])('%s', (_label, rows, now, ends) => {
		expect(plan(rows, [], now).sessions.map((row) => (row.ended_at === null ? null : Date.parse(row.ended_at)))).toEqual(ends);
	});

	test.each([
		['the latest user agent decides the device', [stored(1, 0, { user_agent: 'curl/8.0' }), stored(2, 1)], { deviceType: 'desktop', isBot: false }],
		['automation the tracker noticed on any event makes a bot', [stored(1, 0, { context: { automation: true } }), stored(2, 1)], { isBot: true }],
	])('%s', (_label, rows, device) => {
		expect(plan(rows, []).visitor.device).toMatchObject(device);
	});

	test.each([
		['the latest event’s country', [stored(1, 0, { country: 'DE' }), stored(2, 1, { country: 'ES' })], 'ES'],
		['an event without one does not erase it', [stored(1, 0, { country: 'DE' }), stored(2, 1)], 'DE'],
		['none known', [stored(1, 0)], null],
	])('country: %s', (_label, rows, country) => {
		expect(plan(rows, []).visitor.country).toBe(country);
	});

	test('every stored event gets its session; only incoming events get a summary, with the engagement of the session row', () => {
		const result = plan([stored(1, 0), stored(2, 3), stored(3, 90)], [2, 3]);
		expect(result.eventSessions).toEqual([
			{ eventId: id(1), sessionKey: `anon-1:${id(1)}` },
			{ eventId: id(2), sessionKey: `anon-1:${id(1)}` },
			{ eventId: id(3), sessionKey: `anon-1:${id(3)}` },
		]);
		expect([...result.incoming.keys()]).toEqual([id(2), id(3)]);
		const first = result.sessions[0];
		expect(result.incoming.get(id(2))).toMatchObject({ sessionKey: first.session_key, pageviews: 2, engagementScore: first.engagement_score, engagementLevel: first.engagement_level });
		expect(result.visitor).toMatchObject({ firstSeenAt: new Date(T0), lastSeenAt: new Date(T0 + 90 * MINUTE) });
	});

	test.each([
		['low', { medium: 30, high: 60 }],
		['medium', { medium: 5, high: 60 }],
		['high', { medium: 1, high: 2 }],
	])('the site’s thresholds level the score: %s', (level, engagementThresholds) => {
		const [session] = plan([stored(1, 0), stored(2, 1)], [], undefined, { ...OPTIONS, engagementThresholds }).sessions;
		expect(session.engagement_level).toBe(level);
	});
});
