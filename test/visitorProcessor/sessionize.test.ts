import { sessionize, type Session, type SessionEvent, type SessionizeOptions } from '../../nodes/shared/sessionize';

const OPTIONS: SessionizeOptions = { sessionTimeout: 1800, maxSessionDuration: 43_200, siteDomain: 'www.acme-shop.com' };
const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const SITE = 'https://www.acme-shop.com';

/** UUIDv7-shaped ids whose order follows `n`, as the tracker's time-ordered ids do. */
const id = (n: number) => `0193a5c0-0000-7000-8000-${String(n).padStart(12, '0')}`;

let serial = 0;
beforeEach(() => {
	serial = 0;
});

/** An event `at` milliseconds after T0; ids increase in creation order. */
function ev(at: number, fields: Partial<SessionEvent> = {}): SessionEvent {
	serial++;
	return { id: id(serial), type: 'pageview', ts: T0 + at, anonymousId: 'anon-1', url: `${SITE}/`, ...fields };
}

const keys = (sessions: Session[]) => sessions.map((session) => session.key);

describe('sessionize: splitting', () => {
	test('no events, no sessions', () => {
		expect(sessionize([], OPTIONS)).toEqual({ sessions: [], sessionOf: new Int32Array(0), duplicates: 0 });
	});

	test('a single pageview is one direct, bounced session keyed by visitor and first event', () => {
		const event = ev(0, { url: `${SITE}/pricing?plan=pro#faq` });
		const { sessions, sessionOf } = sessionize([event], OPTIONS);
		expect(sessions).toEqual([
			{
				key: `anon-1:${event.id}`,
				anonymousId: 'anon-1',
				startedAt: T0,
				lastActivityAt: T0,
				durationSeconds: 0,
				pageviews: 1,
				eventCount: 1,
				engagedTimeMs: 0,
				engagementReported: false,
				maxScrollDepth: 0,
				keyEvents: 0,
				relevanceSum: 0,
				typeCounts: { pageview: 1, click: 0, outbound: 0, download: 0, form_submit: 0, scroll: 0, engagement: 0, session_end: 0, identify: 0, custom: 0 },
				isBounce: true,
				entryPage: '/pricing',
				exitPage: '/pricing',
				landingPage: `${SITE}/pricing?plan=pro#faq`,
				referrer: null,
				campaignKey: '',
				attribution: { channel: 'Direct', source: '(direct)', medium: '(none)', campaign: '(direct)' },
			},
		]);
		expect(Array.from(sessionOf)).toEqual([0]);
	});

	test('inactivity of exactly the timeout continues the session; one millisecond more starts a new one', () => {
		const events = [ev(0), ev(30 * MINUTE), ev(60 * MINUTE + 1)];
		const { sessions, sessionOf } = sessionize(events, OPTIONS);
		expect(keys(sessions)).toEqual([`anon-1:${id(1)}`, `anon-1:${id(3)}`]);
		expect(Array.from(sessionOf)).toEqual([0, 0, 1]);
		expect(sessions[0]).toMatchObject({ startedAt: T0, lastActivityAt: T0 + 30 * MINUTE, durationSeconds: 1800, pageviews: 2 });
	});

	test('the timeout comes from the options', () => {
		const events = [ev(0), ev(10 * MINUTE + 1)];
		expect(sessionize(events, { ...OPTIONS, sessionTimeout: 600 }).sessions).toHaveLength(2);
		expect(sessionize(events, { ...OPTIONS, sessionTimeout: 601 }).sessions).toHaveLength(1);
	});

	test('a session reaching exactly the maximum duration continues; an event beyond it starts a new one', () => {
		const options = { ...OPTIONS, maxSessionDuration: 3600 };
		const events = [0, 20, 40, 60, 80, 100].map((minutes) => ev(minutes * MINUTE));
		const { sessions, sessionOf } = sessionize(events, options);
		expect(Array.from(sessionOf)).toEqual([0, 0, 0, 0, 1, 1]);
		expect(sessions.map((session) => session.durationSeconds)).toEqual([3600, 1200]);
		expect(sessions[1].startedAt).toBe(T0 + 80 * MINUTE);
	});

	test('an event with new campaign parameters starts a new session, like GA and Matomo', () => {
		const events = [
			ev(0, { context: { utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'brand' } }),
			ev(1 * MINUTE, { type: 'scroll', props: { depth: 50 } }),
			ev(2 * MINUTE, { url: `${SITE}/?utm_source=newsletter`, context: { utm_source: 'newsletter', utm_medium: 'email' } }),
		];
		const { sessions, sessionOf } = sessionize(events, OPTIONS);
		expect(Array.from(sessionOf)).toEqual([0, 0, 1]);
		expect(sessions.map((session) => session.attribution.channel)).toEqual(['Paid Search', 'Email']);
		expect(sessions.map((session) => session.campaignKey)).toEqual(['utm_source=google&utm_medium=cpc&utm_campaign=brand', 'utm_source=newsletter&utm_medium=email']);
	});

	test('the same campaign parameters again, or none, keep the session', () => {
		const context = { utm_source: 'google', utm_medium: 'cpc', screen: '1920x1080' };
		const events = [ev(0, { context }), ev(MINUTE, { context: { ...context, screen: '800x600' } }), ev(2 * MINUTE), ev(3 * MINUTE, { context: { language: 'nl' } })];
		expect(sessionize(events, OPTIONS).sessions).toHaveLength(1);
	});

	test('campaign parameters arriving in a direct session split it', () => {
		const events = [ev(0), ev(MINUTE, { context: { clickIds: { gclid: 'Cj0A' } } })];
		const { sessions } = sessionize(events, OPTIONS);
		expect(sessions.map((session) => session.attribution.channel)).toEqual(['Direct', 'Paid Search']);
		expect(sessions[1]).toMatchObject({ campaignKey: 'gclid=Cj0A', attribution: { clickIdType: 'gclid' } });
	});

	test('a different click id is a new ad click, hence a new session', () => {
		const events = [ev(0, { context: { clickIds: { gclid: 'first' } } }), ev(MINUTE, { context: { clickIds: { gclid: 'second' } } })];
		expect(sessionize(events, OPTIONS).sessions).toHaveLength(2);
	});

	test('campaign parameters only in the URL count too (events not sent by the tracker)', () => {
		const events = [
			ev(0, { url: `${SITE}/?ref=1` }),
			ev(MINUTE, { url: `${SITE}/landing?utm_medium=email&utm_source=crm#top` }),
			ev(2 * MINUTE, { url: `${SITE}/landing?utm_source=crm&utm_medium=email` }),
		];
		const { sessions } = sessionize(events, OPTIONS);
		expect(sessions).toHaveLength(2);
		expect(sessions[1]).toMatchObject({ campaignKey: 'utm_source=crm&utm_medium=email', entryPage: '/landing', attribution: { channel: 'Email' } });
	});

	test('visitors are sessionized apart, in the order they first appear', () => {
		const events = [ev(0, { anonymousId: 'b' }), ev(0, { anonymousId: 'a' }), ev(MINUTE, { anonymousId: 'b' }), ev(2 * MINUTE, { anonymousId: 'a' })];
		const { sessions, sessionOf } = sessionize(events, OPTIONS);
		expect(sessions.map((session) => [session.anonymousId, session.pageviews])).toEqual([
			['b', 2],
			['a', 2],
		]);
		expect(Array.from(sessionOf)).toEqual([0, 1, 0, 1]);
	});
});

describe('sessionize: order, duplicates and idempotency', () => {
	function visit(): SessionEvent[] {
		return [
			ev(0, { url: `${SITE}/a`, referrer: 'https://www.google.com/' }),
			ev(10 * SECOND, { type: 'scroll', url: `${SITE}/a`, props: { depth: 40 } }),
			ev(20 * SECOND, { url: `${SITE}/b` }),
			ev(40 * MINUTE, { url: `${SITE}/c` }),
			ev(41 * MINUTE, { type: 'form_submit', url: `${SITE}/c` }),
			ev(41 * MINUTE, { anonymousId: 'anon-2', url: `${SITE}/x` }),
		];
	}

	test('events in any order give the same sessions as events in time order', () => {
		const ordered = visit();
		const shuffled = [ordered[4], ordered[2], ordered[5], ordered[0], ordered[3], ordered[1]];
		const a = sessionize(ordered, OPTIONS);
		const b = sessionize(shuffled, OPTIONS);
		const byKey = (sessions: Session[]) => [...sessions].sort((x, y) => x.key.localeCompare(y.key));
		expect(byKey(b.sessions)).toEqual(byKey(a.sessions));
		expect(a.sessions[0]).toMatchObject({ entryPage: '/a', exitPage: '/b', pageviews: 2, attribution: { channel: 'Organic Search' } });
		// Each shuffled event points at the session holding it.
		expect(shuffled.map((_event, i) => b.sessions[b.sessionOf[i]].key)).toEqual(shuffled.map((event) => a.sessions[a.sessionOf[ordered.indexOf(event)]].key));
	});

	test('events of the same millisecond are ordered by id', () => {
		const first = ev(0, { url: `${SITE}/first` });
		const second = ev(0, { url: `${SITE}/second` });
		const { sessions } = sessionize([second, first], OPTIONS);
		expect(sessions[0]).toMatchObject({ key: `anon-1:${first.id}`, entryPage: '/first', exitPage: '/second' });
	});

	test('a duplicate (same id) is counted once and shares the original session', () => {
		const events = visit();
		const withDuplicates = [...events, { ...events[2] }, events[4], { ...events[0], ts: events[0].ts + 5 * SECOND }];
		const result = sessionize(withDuplicates, OPTIONS);
		expect(result.duplicates).toBe(3);
		expect(result.sessions).toEqual(sessionize(events, OPTIONS).sessions);
		expect(result.sessionOf[6]).toBe(result.sessionOf[2]);
		expect(result.sessionOf[7]).toBe(result.sessionOf[4]);
		expect(result.sessionOf[8]).toBe(result.sessionOf[0]);
	});

	test('the same input twice gives identical output: keys are derived, not generated', () => {
		const events = visit();
		const once = sessionize(events, OPTIONS);
		const again = sessionize(JSON.parse(JSON.stringify(events)) as SessionEvent[], OPTIONS);
		expect(again).toEqual(once);
		expect(keys(once.sessions)).toEqual([`anon-1:${id(1)}`, `anon-1:${id(4)}`, `anon-2:${id(6)}`]);
	});
});

describe('sessionize: metrics', () => {
	test('counts events by type and pageviews; duration is in whole seconds', () => {
		const events = [
			ev(0),
			ev(1500, { type: 'click' }),
			ev(2000, { type: 'custom' }),
			ev(2500, { type: 'outbound' }),
			ev(3000, { type: 'download' }),
			ev(3500, { type: 'identify' }),
			ev(4000, { type: 'session_end' }),
			ev(4999, { url: `${SITE}/next` }),
		];
		const [session] = sessionize(events, OPTIONS).sessions;
		expect(session).toMatchObject({ pageviews: 2, eventCount: 8, durationSeconds: 4, keyEvents: 3 });
		expect(session.typeCounts).toEqual({ pageview: 2, click: 1, outbound: 1, download: 1, form_submit: 0, scroll: 0, engagement: 0, session_end: 1, identify: 1, custom: 1 });
	});

	test('engaged time sums the engagement events, ignoring negative and capping absurd reports', () => {
		const events = [
			ev(0),
			ev(MINUTE, { type: 'engagement', props: { engagedMs: 4000 } }),
			ev(2 * MINUTE, { type: 'engagement', props: { engagedMs: '2500' } }),
			ev(3 * MINUTE, { type: 'engagement', props: { engagedMs: -50 } }),
			ev(4 * MINUTE, { type: 'engagement', props: { engagedMs: 'soon' } }),
			ev(5 * MINUTE, { type: 'engagement' }),
		];
		const [session] = sessionize(events, OPTIONS).sessions;
		expect(session).toMatchObject({ engagedTimeMs: 6500, engagementReported: true, isBounce: true });
		const [capped] = sessionize([ev(0, { type: 'engagement', props: { engagedMs: 10 ** 12 } })], { ...OPTIONS, maxSessionDuration: 3600 }).sessions;
		expect(capped.engagedTimeMs).toBe(3_600_000);
	});

	test('without engagement events, engaged time is the time from first to last event', () => {
		const [session] = sessionize([ev(0), ev(12 * SECOND, { type: 'click' })], OPTIONS).sessions;
		expect(session).toMatchObject({ engagedTimeMs: 12_000, engagementReported: false, isBounce: false });
	});

	test('max scroll depth reads depth or percent, numbers or numeric strings, capped at 100', () => {
		const scroll = (props: SessionEvent['props']) => ev(SECOND, { type: 'scroll', props });
		const depthOf = (...events: SessionEvent[]) => sessionize([ev(0), ...events], OPTIONS).sessions[0].maxScrollDepth;
		expect(depthOf(scroll({ depth: 25 }), scroll({ depth: 75.4 }), scroll({ depth: 50 }))).toBe(75);
		expect(depthOf(scroll({ percent: '90' }))).toBe(90);
		expect(depthOf(scroll({ depth: 140 }))).toBe(100);
		expect(depthOf(scroll({ depth: null }), scroll({ depth: true }), scroll({}))).toBe(0);
		expect(depthOf(ev(SECOND, { type: 'click', props: { depth: 80 } }))).toBe(0);
	});

	test('relevance adds up, and an event of relevance 8 or more is an event of interest', () => {
		const [session] = sessionize([ev(0, { relevance: 3 }), ev(SECOND, { type: 'click', relevance: 8 }), ev(2 * SECOND, { type: 'form_submit', relevance: 10 })], OPTIONS).sessions;
		expect(session).toMatchObject({ relevanceSum: 21, keyEvents: 2 });
	});

	test.each([
		['one pageview under 10 s', [ev(0), ev(9 * SECOND, { type: 'scroll', props: { depth: 90 } })], true],
		['one pageview with exactly 10 s engaged', [ev(0), ev(SECOND, { type: 'engagement', props: { engagedMs: 10_000 } })], false],
		['one pageview with 9.999 s engaged', [ev(0), ev(30 * SECOND, { type: 'engagement', props: { engagedMs: 9999 } })], true],
		['one pageview lasting 10 s without engagement reports', [ev(0), ev(10 * SECOND, { type: 'click' })], false],
		['two pageviews within a second', [ev(0), ev(500, { url: `${SITE}/b` })], false],
		['one pageview and a form submit', [ev(0), ev(SECOND, { type: 'form_submit' })], false],
		['one pageview and a download', [ev(0), ev(SECOND, { type: 'download' })], false],
		['one pageview and an outbound click', [ev(0), ev(SECOND, { type: 'outbound' })], false],
		['one pageview and a relevant custom event', [ev(0), ev(SECOND, { type: 'custom', relevance: 9 })], false],
		['one pageview and a plain click', [ev(0), ev(SECOND, { type: 'click' })], true],
	])('bounce (GA4: not engaged): %s → %s', (_label, events, bounce) => {
		expect(sessionize(events as SessionEvent[], OPTIONS).sessions[0].isBounce).toBe(bounce);
	});

	test('entry and exit are the first and last pageviews; landing page is the full first URL', () => {
		const events = [
			ev(0, { type: 'scroll', url: `${SITE}/blog?x=1`, props: { depth: 10 } }),
			ev(SECOND, { url: `${SITE}/blog/post-1?utm_x=1` }),
			ev(2 * SECOND, { url: `${SITE}/pricing#plans` }),
			ev(3 * SECOND, { type: 'click', url: `${SITE}/pricing/annual` }),
		];
		const [session] = sessionize(events, OPTIONS).sessions;
		expect(session).toMatchObject({ entryPage: '/blog/post-1', exitPage: '/pricing', landingPage: `${SITE}/blog/post-1?utm_x=1` });
	});

	test('a session without pageviews takes its pages from its events', () => {
		const [session] = sessionize([ev(0, { type: 'click', url: `${SITE}/a` }), ev(SECOND, { type: 'scroll', url: 'https://www.acme-shop.com' })], OPTIONS).sessions;
		expect(session).toMatchObject({ pageviews: 0, entryPage: '/a', exitPage: '/', landingPage: `${SITE}/a` });
	});

	test('attribution, referrer and campaign key come from the first event of the session', () => {
		const events = [
			ev(0, { referrer: 'https://l.facebook.com/', context: { clickIds: { fbclid: 'IwAR' }, utm_campaign: 'launch' } }),
			ev(MINUTE, { referrer: `${SITE}/`, url: `${SITE}/b` }),
		];
		const [session] = sessionize(events, OPTIONS).sessions;
		expect(session.referrer).toBe('https://l.facebook.com/');
		expect(session.campaignKey).toBe('utm_campaign=launch&fbclid=IwAR');
		expect(session.attribution).toEqual({
			channel: 'Organic Social',
			source: 'facebook.com',
			medium: 'referral',
			campaign: 'launch',
			referrerDomain: 'facebook.com',
			clickIdType: 'fbclid',
		});
	});

	test('sessions with the same attribution inputs share one read-only touch', () => {
		const events = [ev(0, { referrer: 'https://www.google.com/' }), ev(2 * 3600 * SECOND, { referrer: 'https://www.google.com/' })];
		const { sessions } = sessionize(events, OPTIONS);
		expect(sessions[0].attribution).toBe(sessions[1].attribution);
		expect(Object.isFrozen(sessions[0].attribution)).toBe(true);
	});
});
