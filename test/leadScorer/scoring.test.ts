import type { LeadScoringRule } from '../../lib/contracts/siteConfig';
import { compileScoringRules, scoreLead, type ScoringEvent, type Visit } from '../../nodes/LeadScorer/scoring';
import { prng } from '../helpers/prng';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 20, 12);

let seq = 0;
function ev(type: string, daysAgo: number, extra: Partial<ScoringEvent> = {}): ScoringEvent {
	seq++;
	return { eventId: `e${String(seq).padStart(6, '0')}`, type, occurredAt: NOW - daysAgo * DAY, ...extra };
}

function score(rules: LeadScoringRule[], events: ScoringEvent[], facts = {}, extra: { maxScore?: number; groupCaps?: Record<string, number> } = {}) {
	return scoreLead(compileScoringRules({ leadScoringRules: rules, ...extra }), events, facts, NOW);
}

describe('scoreLead', () => {
	it('matches the event type or the custom event name, and the path glob', () => {
		const result = score(
			[
				{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5 },
				{ id: 'demo', event: 'demo_request', score: 30 },
			],
			[
				ev('pageview', 1, { url: 'https://x.example/pricing?ref=a' }),
				ev('pageview', 1, { url: '/pricing/' }),
				ev('pageview', 1, { url: '/blog' }),
				ev('custom', 1, { name: 'demo_request' }),
			],
		);
		expect(result.rules.map((r) => [r.rule, r.points, r.matches])).toEqual([
			['pricing', 10, 2],
			['demo', 30, 1],
		]);
		expect(result).toMatchObject({ total: 40, engagement: 40, fit: 0 });
	});

	it('scores fit rules from lead fields, including negative points', () => {
		const rules: LeadScoringRule[] = [
			{ id: 'ceo', field: 'jobTitle', operator: 'matches', value: '\\b(ceo|founder)\\b', score: 20 },
			{ id: 'dach', field: 'country', operator: 'in', value: ['DE', 'AT', 'CH'], score: 10 },
			{ id: 'free-mail', field: 'freeMail', operator: 'isTrue', score: -15 },
			{ id: 'has-phone', field: 'phone', operator: 'exists', score: 5 },
			{ id: 'acme', field: 'emailDomain', operator: 'equals', value: 'ACME.com', score: 7 },
			{ id: 'vip', field: 'tag', operator: 'contains', value: 'vip', score: 3 },
		];
		const result = score(rules, [], { jobTitle: 'Co-Founder & CEO', country: 'de', freeMail: true, emailDomain: 'acme.com', tags: ['x', 'super-vip'] });
		expect(Object.fromEntries(result.rules.map((r) => [r.rule, r.points]))).toEqual({ ceo: 20, dach: 10, 'free-mail': -15, 'has-phone': 0, acme: 7, vip: 3 });
		expect(result).toMatchObject({ total: 25, fit: 25, engagement: 0 });
		expect(result.rules[0].causeKey).toBe('match:co-founder & ceo');
	});

	it('caps a rule, a group and the total, and the breakdown still adds up to the total', () => {
		const events = Array.from({ length: 20 }, () => ev('pageview', 0, { url: '/docs/a' }));
		const rules: LeadScoringRule[] = [
			{ id: 'docs', event: 'pageview', urlPattern: '/docs/**', score: 2, cap: 15, group: 'content' },
			{ id: 'views', event: 'pageview', score: 1, group: 'content' },
			{ id: 'spam', event: 'pageview', score: -1, cap: 4 },
			{ id: 'title', field: 'jobTitle', operator: 'exists', score: 50 },
		];
		const grouped = score(rules, events, { jobTitle: 'cto' }, { groupCaps: { content: 25 } });
		const points = Object.fromEntries(grouped.rules.map((r) => [r.rule, r.points]));
		// docs capped 40 → 15; the group (15 + 20) scaled to 25 in proportion; the negative rule capped at -4
		expect(points.docs).toBeCloseTo((15 * 25) / 35, 10);
		expect(points.views).toBeCloseTo((20 * 25) / 35, 10);
		expect(points.spam).toBe(-4);
		expect(grouped.total).toBeCloseTo(25 - 4 + 50, 10);

		const total = score(rules, events, { jobTitle: 'cto' }, { groupCaps: { content: 25 }, maxScore: 60 });
		expect(total.total).toBeCloseTo(60, 10);
		expect(total.rules.reduce((sum, r) => sum + r.points, 0)).toBeCloseTo(60, 10);
		expect(total.rules.find((r) => r.rule === 'spam')?.points).toBe(-4);
	});

	it('decays 10,000 events to the closed form Σ score·2^(-age/halfLife) within ±0.01', () => {
		const random = prng(42);
		const rules: LeadScoringRule[] = [
			{ id: 'views', event: 'pageview', score: 1.5, halfLifeDays: 30 },
			{ id: 'downloads', event: 'download', score: 12, halfLifeDays: 7 },
			{ id: 'unsubscribe-page', event: 'pageview', urlPattern: '/unsubscribe', score: -20, halfLifeDays: 90 },
			{ id: 'forms', event: 'form_submit', score: 25 },
		];
		const events = Array.from({ length: 10_000 }, (_, i) => {
			const type = ['pageview', 'pageview', 'download', 'form_submit', 'scroll'][Math.floor(random() * 5)];
			return ev(type, random() * 400, { url: i % 97 === 0 ? '/unsubscribe' : '/blog/post' });
		});
		const expected = events.reduce((sum, e) => {
			const age = (NOW - e.occurredAt) / DAY;
			if (e.type === 'pageview') sum += 1.5 * 2 ** (-age / 30) + (e.url === '/unsubscribe' ? -20 * 2 ** (-age / 90) : 0);
			if (e.type === 'download') sum += 12 * 2 ** (-age / 7);
			if (e.type === 'form_submit') sum += 25;
			return sum;
		}, 0);
		const result = score(rules, events);
		expect(Math.abs(result.total - expected)).toBeLessThanOrEqual(0.01);
		expect(result.rules.find((r) => r.rule === 'views')?.matches).toBe(events.filter((e) => e.type === 'pageview').length);
	});

	it('halves an event’s points per half-life and counts future-dated events in full', () => {
		const rules: LeadScoringRule[] = [{ id: 'v', event: 'pageview', score: 8, halfLifeDays: 10 }];
		expect(score(rules, [ev('pageview', 10)]).total).toBeCloseTo(4, 12);
		expect(score(rules, [ev('pageview', 30)]).total).toBeCloseTo(1, 12);
		expect(score(rules, [ev('pageview', -1)]).total).toBe(8);
	});

	it('keeps a rule’s causeKey while only time passes and changes it with new evidence', () => {
		const rules = compileScoringRules({ leadScoringRules: [{ id: 'v', event: 'pageview', score: 8, halfLifeDays: 10 }] });
		const history = [ev('pageview', 3), ev('pageview', 1)];
		const now = scoreLead(rules, history, {}, NOW).rules[0];
		const later = scoreLead(rules, history, {}, NOW + 5 * DAY).rules[0];
		expect(later.causeKey).toBe(now.causeKey);
		expect(later.points).toBeLessThan(now.points);
		const more = scoreLead(rules, [...history, ev('pageview', 0)], {}, NOW).rules[0];
		expect(more.causeKey).not.toBe(now.causeKey);
	});

	it('derives unique ids for rules without one', () => {
		const compiled = compileScoringRules({
			leadScoringRules: [
				{ event: 'pageview', score: 1 },
				{ event: 'pageview', score: 2 },
				{ event: 'pageview', urlPattern: '/pricing', score: 3 },
				{ field: 'country', operator: 'in', value: ['DE', 'AT'], score: 4 },
			],
		});
		expect(compiled.order.map((rule) => rule.id)).toEqual(['event:pageview', 'event:pageview#2', 'event:pageview@/pricing', 'fit:country:in:DE|AT']);
	});
});

describe('repeat-visit rules', () => {
	/** A stored session that started `daysAgo`. */
	const session = (id: string, daysAgo: number): Visit => ({ id, startedAt: NOW - daysAgo * DAY });
	const scoreVisits = (rules: LeadScoringRule[], visits: Visit[], events: ScoringEvent[] = []) => scoreLead(compileScoringRules({ leadScoringRules: rules }), events, {}, NOW, visits);

	it('counts the stored sessions only: events of one visit, however many session ids they carry, are no visits of their own', () => {
		const rules: LeadScoringRule[] = [{ id: 'each-return', visits: 2, perVisit: true, score: 3 }];
		// the demo's case: the events of one visit (pageviews, the form) and one stored session
		const events = [ev('pageview', 0), ev('pageview', 0), ev('form_submit', 0)];
		expect(scoreVisits(rules, [session('s1', 0)], events).rules[0]).toMatchObject({ points: 0, matches: 0, cause: '1 of 2 visits' });
		// sessions not stored yet are no visits; once stored, they count
		expect(scoreVisits(rules, [], events).rules[0]).toMatchObject({ points: 0, cause: '0 of 2 visits' });
		expect(scoreVisits(rules, [session('s1', 1), session('s2', 0)], events).rules[0]).toMatchObject({ points: 3, matches: 1 });
	});

	it('gives a threshold rule its points once the history holds enough visits, and a per-visit rule for each visit from there', () => {
		const rules: LeadScoringRule[] = [
			{ id: 'returning', visits: 3, score: 10 },
			{ id: 'each-return', visits: 2, perVisit: true, score: 4, cap: 10 },
		];
		const two = [session('s1', 3), session('s2', 2)];
		const twoVisits = scoreVisits(rules, two);
		expect(twoVisits.rules.map((r) => [r.rule, r.points, r.matches])).toEqual([
			['returning', 0, 0],
			['each-return', 4, 1],
		]);
		expect(twoVisits.rules[0].cause).toBe('2 of 3 visits');
		// in any order: the latest visit is the one that started last
		const four = scoreVisits(rules, [session('s4', 0), ...two, session('s3', 1)]);
		// returning: 10 once; each-return: visits 2, 3 and 4 → 12, capped at 10
		expect(four.rules.map((r) => [r.rule, r.raw, r.points, r.matches])).toEqual([
			['returning', 10, 10, 1],
			['each-return', 12, 10, 3],
		]);
		expect(four).toMatchObject({ total: 20, engagement: 20, fit: 0 });
		expect(four.rules[0].cause).toBe('4 visits (at least 3 visits: 10), latest session s4');
	});

	it('decays visit points from each visit’s start, the threshold rule from the latest visit', () => {
		const rules: LeadScoringRule[] = [
			{ id: 'returning', visits: 2, score: 8, halfLifeDays: 10 },
			{ id: 'each', visits: 1, perVisit: true, score: 8, halfLifeDays: 10 },
		];
		const result = scoreVisits(rules, [session('s1', 30), session('s2', 10)]);
		expect(result.rules[0].points).toBeCloseTo(4, 10);
		expect(result.rules[1].points).toBeCloseTo(1 + 4, 10);
	});

	it('keeps the causeKey while time passes, changes it with a new visit, and takes negative points and group caps', () => {
		const rules = compileScoringRules({
			leadScoringRules: [
				{ id: 'loyal', visits: 2, score: 30, group: 'engagement' },
				{ id: 'views', event: 'pageview', score: 5, group: 'engagement' },
				{ id: 'too-many', visits: 50, score: -20 },
			],
			groupCaps: { engagement: 40 },
		});
		const events = [ev('pageview', 2), ev('pageview', 2), ev('pageview', 1)];
		const visits = [session('s1', 2), session('s2', 1)];
		const now = scoreLead(rules, events, {}, NOW, visits);
		expect(now.total).toBeCloseTo(40, 10);
		expect(scoreLead(rules, events, {}, NOW + DAY, visits).rules[0].causeKey).toBe(now.rules[0].causeKey);
		expect(scoreLead(rules, events, {}, NOW, [...visits, session('s3', 0)]).rules[0].causeKey).not.toBe(now.rules[0].causeKey);
		const crowd = Array.from({ length: 50 }, (_, i) => session(`v${i}`, 40 - i * 0.5));
		expect(scoreLead(rules, [], {}, NOW, crowd).rules[2].points).toBe(-20);
		expect(compileScoringRules({ leadScoringRules: [{ visits: 3, score: 1 }, { visits: 2, perVisit: true, score: 1 }] }).order.map((r) => r.id)).toEqual(['visits:3', 'visits:2+']);
	});
});
