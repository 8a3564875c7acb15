import type { LifecycleStage } from '../../lib/contracts/siteConfig';
import { browsersHistory, earlierTouch, recordedOfSummary, recordedRules, rescore, scoreRowsOf, summaryOf, type LinkedVisitor, type RecordedRule, type StoredEvents, type StoredLead, type StoredSession } from '../../nodes/LeadScorer/rescore';
import { compileScoringRules, type RuleScore, type ScoreResult } from '../../nodes/LeadScorer/scoring';

const NOW = Date.UTC(2026, 10, 20, 12);
const DAY = 86_400_000;

function rule(id: string, points: number, causeKey: string): RuleScore {
	return { rule: id, kind: 'event', group: null, points, raw: points, matches: 1, cause: `${id} matched`, causeKey };
}

function result(...rules: RuleScore[]): ScoreResult {
	const total = rules.reduce((sum, entry) => sum + entry.points, 0);
	return { total, engagement: total, fit: 0, rules };
}

describe('recordedRules', () => {
	it('keeps each lead\'s rules apart, with the evidence of the latest row and when it was written', () => {
		const byLead = recordedRules([
			{ leadId: 'a', rule: 'pricing', sum: 8.5, rows: 3, causeKey: '2:2@e2', occurredAt: NOW - DAY, createdAt: NOW - DAY + 5 },
			{ leadId: 'a', rule: 'demo', sum: 30, rows: 1, causeKey: '0:1@e9' },
			{ leadId: 'b', rule: 'pricing', sum: 5, rows: 1, causeKey: '0:1@e7' },
		]);
		expect(Object.fromEntries([...byLead].map(([lead, rules]) => [lead, Object.fromEntries(rules)]))).toEqual({
			a: { pricing: { sum: 8.5, rows: 3, evidence: '2@e2', written: { at: NOW - DAY, storedAt: NOW - DAY + 5 } }, demo: { sum: 30, rows: 1, evidence: '1@e9' } },
			b: { pricing: { sum: 5, rows: 1, evidence: '1@e7' } },
		});
	});
});

describe('recordedOfSummary', () => {
	it('reads back what summaryOf stores, times included', () => {
		const recorded = new Map<string, RecordedRule>([
			['pricing', { sum: 8.5, rows: 3, evidence: '2@e2', written: { at: NOW - DAY, storedAt: NOW - DAY + 5 } }],
			['demo', { sum: 30, rows: 1, evidence: '1@e9' }],
		]);
		const stored = JSON.parse(JSON.stringify(summaryOf(recorded)));
		expect(stored).toEqual({ pricing: [8.5, 3, '2@e2', NOW - DAY, NOW - DAY + 5], demo: [30, 1, '1@e9', null, null] });
		expect(recordedOfSummary(stored)).toEqual(recorded);
	});

	// [case, what the column holds]: nothing to trust, so the rows are summed instead
	const untrusted: Array<[string, unknown]> = [
		['never stored', null],
		['not an object', [[1, 1, 'e', null, null]]],
		['a rule of another shape', { pricing: [8.5, 3, '2@e2', NOW, NOW], demo: { sum: 30 } }],
		['a row count that is no count', { pricing: [8.5, 2.5, '2@e2', NOW, NOW] }],
		['a time that is no number', { pricing: [8.5, 3, '2@e2', 'yesterday', NOW] }],
	];
	it.each(untrusted)('is null for a summary %s', (_, summary) => {
		expect(recordedOfSummary(summary)).toBeNull();
	});

	it('is an empty record for a lead scored with no points yet', () => {
		expect(recordedOfSummary({})).toEqual(new Map());
	});
});

describe('scoreRowsOf', () => {
	// [case, the rule's score now, what its rows recorded, the row to write (null: none)]
	const cases: Array<[string, RuleScore, RecordedRule | undefined, { delta: number; cause: string; causeKey: string } | null]> = [
		['first points of a rule', rule('pricing', 5, '1@e1'), undefined, { delta: 5, cause: 'pricing matched', causeKey: '0:1@e1' }],
		['a replay: the rows already add up', rule('pricing', 5, '1@e1'), { sum: 5, rows: 1, evidence: '1@e1' }, null],
		['new evidence adds the difference, keyed by the row count', rule('pricing', 10, '2@e2'), { sum: 5, rows: 1, evidence: '1@e1' }, { delta: 5, cause: 'pricing matched', causeKey: '1:2@e2' }],
		['decay on the same evidence says so', rule('pricing', 3.333, '2@e2'), { sum: 10, rows: 2, evidence: '2@e2' }, { delta: -6.67, cause: 'recomputed (decay or changed rules): pricing matched', causeKey: '2:2@e2' }],
		['float noise below a hundredth is no change', rule('pricing', 4.999_999, '1@e1'), { sum: 5.001, rows: 1, evidence: '1@e1' }, null],
		['a rule at zero with nothing recorded writes nothing', rule('pricing', 0, ''), undefined, null],
	];
	it.each(cases)('%s', (_, now, recorded, expected) => {
		const rows = scoreRowsOf(result(now), recorded ? new Map([[now.rule, recorded]]) : undefined);
		expect(rows).toEqual(expected ? [{ rule: now.rule, scoreAfter: Math.round(now.points * 100) / 100, ...expected }] : []);
	});

	it('gives every row the total after the whole rescore, the sum of the rules as the ledger rounds them', () => {
		// Unrounded, 1.004 + 2.114 + 3.004 is 6.122 (6.12); the ledger records 1, 2.11 and 3, which add up to 6.11.
		const rows = scoreRowsOf(result(rule('a', 1.004, 'x'), rule('b', 2.114, 'y'), rule('c', 3.004, 'z')));
		expect(rows.map((row) => row.delta)).toEqual([1, 2.11, 3]);
		expect(rows.map((row) => row.scoreAfter)).toEqual([6.11, 6.11, 6.11]);
	});
});

describe('earlierTouch', () => {
	const jan = { at: '2026-01-01T00:00:00Z', source: 'google' };
	const feb = { at: '2026-02-01T00:00:00Z', source: 'direct' };
	const timeless = { source: 'newsletter' };
	// [a, b, earlier]
	const cases: Array<[object | null, object | null, object | null]> = [
		[null, null, null],
		[jan, null, jan],
		[null, feb, feb],
		[feb, jan, jan],
		[jan, feb, jan],
		[timeless, feb, feb],
		[feb, timeless, feb],
		[timeless, { ...timeless, source: 'x' }, timeless],
		[jan, { ...jan, source: 'tie' }, jan],
	];
	it.each(cases)('%j vs %j → %j', (a, b, expected) => {
		expect(earlierTouch(a, b)).toEqual(expected);
	});
});

describe('browsersHistory', () => {
	/** Events as the store reads them, by column: each a pageview of /pricing at NOW, stored a millisecond later. */
	const events = (...eventIds: string[]): StoredEvents => [eventIds, eventIds.map(() => 'pageview'), eventIds.map(() => null), eventIds.map(() => '/pricing'), eventIds.map(() => NOW), eventIds.map(() => NOW + 1)];
	const session = (id: string): StoredSession => [id, NOW - DAY, NOW - DAY + 5];

	it('gives the lead its browsers in order, the events of each and its stored sessions, each row once', () => {
		const history = browsersHistory(
			'a',
			[
				['v1', 'laptop', { channel: 'Direct' }, NOW - 2 * DAY, events('e1', 'e2'), [session('s1')]],
				['v2', 'phone', null, NOW - DAY, events('e3'), [session('s2'), session('s2')]],
				['v3', 'tablet', null, NOW, events(), []],
			],
			new Set(),
		);
		expect(history.visitors).toEqual([
			{ id: 'v1', anonymousId: 'laptop', leadId: 'a', firstTouch: { channel: 'Direct' }, firstSeenAt: NOW - 2 * DAY, linkedNow: false },
			{ id: 'v2', anonymousId: 'phone', leadId: 'a', firstTouch: null, firstSeenAt: NOW - DAY, linkedNow: false },
			{ id: 'v3', anonymousId: 'tablet', leadId: 'a', firstTouch: null, firstSeenAt: NOW, linkedNow: false },
		]);
		expect(history.events.map((entry) => entry.eventId)).toEqual(['e1', 'e2', 'e3']);
		expect(history.events[0]).toEqual({ eventId: 'e1', type: 'pageview', name: null, url: '/pricing', occurredAt: NOW, storedAt: NOW + 1 });
		expect(history.visits).toEqual([
			{ id: 's1', startedAt: NOW - DAY, storedAt: NOW - DAY + 5 },
			{ id: 's2', startedAt: NOW - DAY, storedAt: NOW - DAY + 5 },
		]);
	});

	it('counts the events and visits of a browser linked by this call as stored now, after every ledger row', () => {
		const history = browsersHistory(
			'a',
			[
				['v1', 'laptop', null, NOW, events('e1'), [session('s1')]],
				['v2', 'phone', null, NOW, events('e2'), [session('s2')]],
			],
			new Set(['phone']),
		);
		expect(history.visitors.map((visitor) => visitor.linkedNow)).toEqual([false, true]);
		expect(history.events.map((entry) => entry.storedAt)).toEqual([NOW + 1, Infinity]);
		expect(history.visits.map((visit) => visit.storedAt)).toEqual([NOW - DAY + 5, Infinity]);
	});

	it('is empty for a lead with no browser', () => {
		expect(browsersHistory('a', [], new Set())).toEqual({ visitors: [], events: [], visits: [] });
	});
});

describe('rescore', () => {
	const stages: LifecycleStage[] = [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore: 40 }, { name: 'customer' }];
	const rules = compileScoringRules({
		leadScoringRules: [
			{ id: 'demo', event: 'demo_request', score: 30 },
			{ id: 'work', field: 'emailDomain', operator: 'equals', value: 'acme.io', score: 15 },
		],
	});
	const lead = (lifecycleStage: string, email = 'jane@acme.io'): StoredLead => ({
		id: 'a', email, company: null, jobTitle: null, country: null, source: null, phone: null, lifecycleStage, firstTouch: { at: '2026-03-01T00:00:00Z' }, score: 0, engagementScore: 0, fitScore: 0,
	});
	const demo = { eventId: 'e1', type: 'custom', name: 'demo_request', occurredAt: NOW - DAY };

	// [case, stored stage, email, events, total, stage after, stage change]
	const cases: Array<[string, string, string, Array<typeof demo>, number, string, { from: string; to: string } | null]> = [
		['a work address and a demo request reach mql', 'subscriber', 'jane@acme.io', [demo], 45, 'mql', { from: 'subscriber', to: 'mql' }],
		['a free address without events stays', 'subscriber', 'jane@gmail.com', [], 0, 'subscriber', null],
		['fit alone moves a subscriber to lead', 'subscriber', 'jane@acme.io', [], 15, 'lead', { from: 'subscriber', to: 'lead' }],
		['stages only move forward', 'mql', 'jane@gmail.com', [], 0, 'mql', null],
		['a customer stays a customer', 'customer', 'jane@acme.io', [demo], 45, 'customer', null],
	];
	it.each(cases)('%s', (_, stage, email, events, total, after, change) => {
		const rescored = rescore({ lead: lead(stage, email), events, tags: [], visits: [], visitors: [] }, { rules, stages, now: NOW });
		expect({ total: rescored.total, stage: rescored.stage, stageChange: rescored.stageChange, rows: rescored.scoreRows.map((row) => [row.rule, row.delta]) }).toEqual({
			total,
			stage: after,
			stageChange: change,
			rows: rescored.score.rules.filter((entry) => entry.points !== 0).map((entry) => [entry.rule, entry.points]),
		});
	});

	it('keeps the earliest first touch of the lead and its visitors', () => {
		const visitors = [
			{ id: 'v1', anonymousId: 'x', leadId: 'a', firstTouch: { at: '2026-02-01T00:00:00Z', source: 'ads' } },
			{ id: 'v2', anonymousId: 'y', leadId: 'a', firstTouch: { at: '2026-04-01T00:00:00Z' } },
		];
		const rescored = rescore({ lead: lead('subscriber'), events: [], visits: [], tags: [], visitors }, { rules, stages, now: NOW });
		expect(rescored.firstTouch).toEqual({ at: '2026-02-01T00:00:00Z', source: 'ads' });
	});

	it('is unchanged only when the stored scores, stage and first touch and the ledger already say it all', () => {
		const first = rescore({ lead: lead('subscriber'), events: [demo], tags: [], visits: [], visitors: [] }, { rules, stages, now: NOW });
		expect(first.unchanged).toBe(false);
		const recorded = recordedRules(first.scoreRows.map((row) => ({ leadId: 'a', rule: row.rule, sum: row.delta, rows: 1, causeKey: row.causeKey }))).get('a');
		const storedAs = (changes: Partial<StoredLead>, visitors: LinkedVisitor[] = []) =>
			rescore(
				{ lead: { ...lead(first.stage), score: first.total, engagementScore: first.engagement, fitScore: first.fit, ...changes }, events: [demo], tags: [], visits: [], visitors, recorded },
				{ rules, stages, now: NOW },
			).unchanged;
		expect(storedAs({})).toBe(true);
		expect(storedAs({ score: first.total + 1 })).toBe(false);
		expect(storedAs({ fitScore: 0 })).toBe(false);
		expect(storedAs({ lifecycleStage: 'subscriber' })).toBe(false);
		expect(storedAs({}, [{ id: 'v1', anonymousId: 'x', leadId: 'a', firstTouch: { at: '2026-01-01T00:00:00Z' } }])).toBe(false);
		expect(storedAs({}, [{ id: 'v1', anonymousId: 'x', leadId: 'a', firstTouch: { at: '2026-05-01T00:00:00Z' } }])).toBe(true);
	});

	it('records nothing new when its rows already explain the score', () => {
		const first = rescore({ lead: lead('subscriber'), events: [demo], tags: [], visits: [], visitors: [] }, { rules, stages, now: NOW });
		const recorded = recordedRules(first.scoreRows.map((row) => ({ leadId: 'a', rule: row.rule, sum: row.delta, rows: 1, causeKey: row.causeKey })));
		const again = rescore({ lead: lead(first.stage), events: [demo], visits: [], tags: [], visitors: [], recorded: recorded.get('a') }, { rules, stages, now: NOW });
		expect({ rows: again.scoreRows, stageChange: again.stageChange, total: again.total }).toEqual({ rows: [], stageChange: null, total: 45 });
	});
});
