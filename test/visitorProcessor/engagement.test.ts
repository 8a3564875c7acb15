import { ENGAGEMENT_FORMULA, engagementLevel, scoreEngagement, type EngagementMetrics } from '../../lib/engagement';
import { sessionize } from '../../nodes/shared/sessionize';

const NOTHING: EngagementMetrics = { pageviews: 0, engagedTimeMs: 0, maxScrollDepth: 0 };
const THRESHOLDS = { medium: 30, high: 60 };

describe('scoreEngagement components', () => {
	test('an empty session scores 0', () => {
		expect(scoreEngagement(NOTHING)).toEqual({ score: 0, components: { pages: 0, time: 0, scroll: 0, interactions: 0, relevance: 0 } });
	});

	test.each([
		[1, 4],
		[3, 12],
		[5, 20],
		[40, 20],
	])('pages: %i pageviews → %d points', (pageviews, points) => {
		expect(scoreEngagement({ ...NOTHING, pageviews }).components.pages).toBe(points);
	});

	test.each([
		[0, 0],
		[-5_000, 0],
		[30_000, 9.49],
		[120_000, 18.97],
		[300_000, 30],
		[3_600_000, 30],
	])('time: %i ms engaged → %d points (square root, saturating at five minutes)', (engagedTimeMs, points) => {
		expect(scoreEngagement({ ...NOTHING, engagedTimeMs }).components.time).toBeCloseTo(points, 2);
	});

	test.each([
		[50, 7.5],
		[100, 15],
		[150, 15],
		[-10, 0],
	])('scroll: %i%% → %d points', (maxScrollDepth, points) => {
		expect(scoreEngagement({ ...NOTHING, maxScrollDepth }).components.scroll).toBe(points);
	});

	test.each([
		[{ form_submit: 1 }, 15],
		[{ identify: 1 }, 10],
		[{ download: 1, outbound: 1 }, 13],
		[{ click: 3, custom: 1 }, 6],
		[{ form_submit: 2 }, 25],
		[{ scroll: 9, engagement: 4, session_end: 1, pageview: 3 }, 0],
		[{ click: -4 }, 0],
	])('interactions: %j → %d points', (typeCounts, points) => {
		expect(scoreEngagement({ ...NOTHING, typeCounts }).components.interactions).toBe(points);
	});

	test.each([
		[0, 0],
		[25, 5],
		[50, 10],
		[400, 10],
	])('relevance: a sum of %i → %d points', (relevanceSum, points) => {
		expect(scoreEngagement({ ...NOTHING, relevanceSum }).components.relevance).toBe(points);
	});

	test('the component maxima add up to 100, which a session doing everything reaches', () => {
		const { pages, time, scroll, interactions, relevance } = ENGAGEMENT_FORMULA;
		expect(pages.max + time.max + scroll.max + interactions.max + relevance.max).toBe(100);
		const everything = { pageviews: 50, engagedTimeMs: 3_600_000, maxScrollDepth: 100, typeCounts: { form_submit: 5 }, relevanceSum: 500 };
		expect(scoreEngagement(everything).score).toBe(100);
	});

	test('the score is the rounded sum of the components', () => {
		const { score, components } = scoreEngagement({ pageviews: 2, engagedTimeMs: 30_000, maxScrollDepth: 33, typeCounts: { click: 1 }, relevanceSum: 7 });
		const sum = components.pages + components.time + components.scroll + components.interactions + components.relevance;
		expect(sum).toBeCloseTo(8 + 9.487 + 4.95 + 1 + 1.4, 2);
		expect(score).toBe(Math.round(sum));
	});

	test('more of any behaviour never lowers the score', () => {
		const base: EngagementMetrics = { pageviews: 2, engagedTimeMs: 40_000, maxScrollDepth: 30, typeCounts: { click: 1 }, relevanceSum: 5 };
		const more: EngagementMetrics[] = [
			{ ...base, pageviews: 3 },
			{ ...base, engagedTimeMs: 90_000 },
			{ ...base, maxScrollDepth: 70 },
			{ ...base, typeCounts: { click: 1, download: 1 } },
			{ ...base, relevanceSum: 20 },
		];
		for (const metrics of more) expect(scoreEngagement(metrics).score).toBeGreaterThan(scoreEngagement(base).score);
	});
});

describe('engagement of typical sessions', () => {
	test.each([
		['a bounce: one page, 5 s, no scroll', { pageviews: 1, engagedTimeMs: 5_000, maxScrollDepth: 0 }, 'low'],
		['a skim: two pages, 20 s, a little scroll', { pageviews: 2, engagedTimeMs: 20_000, maxScrollDepth: 25 }, 'low'],
		['a reader: three pages, 2 min, most of the page', { pageviews: 3, engagedTimeMs: 120_000, maxScrollDepth: 80 }, 'medium'],
		[
			'a converter: five pages, 4 min, a form submit on relevant pages',
			{ pageviews: 5, engagedTimeMs: 240_000, maxScrollDepth: 90, typeCounts: { form_submit: 1, click: 4 }, relevanceSum: 30 },
			'high',
		],
		['one page read for an hour: time alone is not high engagement', { pageviews: 1, engagedTimeMs: 3_600_000, maxScrollDepth: 10 }, 'medium'],
	] as [string, EngagementMetrics, string][])('%s → %s', (_label, metrics, level) => {
		expect(engagementLevel(scoreEngagement(metrics).score, THRESHOLDS)).toBe(level);
	});

	test('a Session from sessionize is scored as it is', () => {
		const ts = Date.UTC(2026, 10, 23);
		const base = { anonymousId: 'a', url: 'https://www.acme-shop.com/pricing' };
		const { sessions } = sessionize(
			[
				{ ...base, id: '1', type: 'pageview', ts },
				{ ...base, id: '2', type: 'scroll', ts: ts + 20_000, props: { depth: 100 } },
				{ ...base, id: '3', type: 'engagement', ts: ts + 60_000, props: { engagedMs: 60_000 } },
				{ ...base, id: '4', type: 'form_submit', ts: ts + 61_000, relevance: 10 },
			],
			{ sessionTimeout: 1800, maxSessionDuration: 43_200, siteDomain: 'acme-shop.com' },
		);
		expect(scoreEngagement(sessions[0]).components).toEqual({ pages: 4, time: expect.closeTo(13.42, 2), scroll: 15, interactions: 15, relevance: 2 });
		expect(scoreEngagement(sessions[0]).score).toBe(49);
	});
});

describe('engagementLevel', () => {
	test.each([
		[0, 'low'],
		[29.9, 'low'],
		[30, 'medium'],
		[59, 'medium'],
		[60, 'high'],
		[100, 'high'],
	])('score %d with thresholds 30 / 60 → %s', (score, level) => {
		expect(engagementLevel(score, THRESHOLDS)).toBe(level);
	});

	test('thresholds come from the site config', () => {
		expect(engagementLevel(45, { medium: 50, high: 80 })).toBe('low');
		expect(engagementLevel(45, { medium: 10, high: 40 })).toBe('high');
	});
});
