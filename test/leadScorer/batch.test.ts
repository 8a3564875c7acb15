import { browserClaims, mergeEntries, mergeProperties, otherOwner, reportOnce, type LeadEntry } from '../../nodes/LeadScorer/batch';

const at = (minute: number) => new Date(Date.UTC(2026, 10, 20, 12, minute));
const entry = (email: string, fields: LeadEntry['fields'], payload: Partial<LeadEntry['payload']> = {}, minute = 0): LeadEntry => ({
	email,
	fields,
	receivedAt: at(minute),
	payload: { consent: false, ...payload },
});

describe('mergeEntries', () => {
	// [case, entries in item order, rows: email, fields, index of the first entry, consent]
	const cases: Array<[string, LeadEntry[], Array<[string, LeadEntry['fields'], number, boolean]>]> = [
		['one entry is one row', [entry('a@x.io', { firstName: 'Ann' })], [['a@x.io', { firstName: 'Ann' }, 0, false]]],
		[
			'later fields win, missing ones keep the earlier value',
			[entry('a@x.io', { firstName: 'Ann', company: 'Acme' }), entry('a@x.io', { firstName: 'Anna', phone: '+34600000000' })],
			[['a@x.io', { firstName: 'Anna', company: 'Acme', phone: '+34600000000' }, 0, false]],
		],
		['consent once given stays', [entry('a@x.io', {}, { consent: true }), entry('a@x.io', {}, { consent: false })], [['a@x.io', {}, 0, true]]],
		['consent given later counts', [entry('a@x.io', {}), entry('a@x.io', {}, { consent: true })], [['a@x.io', {}, 0, true]]],
		[
			'rows come sorted by address, each with its first entry',
			[entry('c@x.io', {}), entry('a@x.io', { lastName: 'Ash' }), entry('b@x.io', {}), entry('a@x.io', {})],
			[
				['a@x.io', { lastName: 'Ash' }, 1, false],
				['b@x.io', {}, 2, false],
				['c@x.io', {}, 0, false],
			],
		],
	];
	it.each(cases)('%s', (_, entries, expected) => {
		expect(mergeEntries(entries).map((row) => [row.email, row.fields, entries.indexOf(row.first), row.consent])).toEqual(expected);
	});

	it('merges the entries’ properties in order: a later value of a name replaces the earlier one', () => {
		const withProperties = (properties?: Record<string, unknown>) => entry('a@x.io', {}, { properties });
		const rows = (entries: LeadEntry[]) => mergeEntries(entries).map((row) => row.properties);
		expect(rows([withProperties({ message: 'hi', plan: 'team' }), withProperties(), withProperties({ plan: 'business', seats: 5 })])).toEqual([{ message: 'hi', plan: 'business', seats: 5 }]);
		expect(rows([withProperties(), withProperties()])).toEqual([undefined]);
		expect(mergeProperties({ kept: 1, plan: 'team' }, { plan: 'business' })).toEqual({ kept: 1, plan: 'business' });
		expect([mergeProperties(null, { plan: 'team' }), mergeProperties({ kept: 1 }, undefined), mergeProperties('sealed?', undefined)]).toEqual([{ plan: 'team' }, { kept: 1 }, undefined]);
	});

	it('does not change the entries it merges', () => {
		const first = entry('a@x.io', { firstName: 'Ann' });
		mergeEntries([first, entry('a@x.io', { firstName: 'Anna' })]);
		expect(first.fields).toEqual({ firstName: 'Ann' });
	});
});

describe('browserClaims', () => {
	const leadOf = (email: string) => `lead:${email}`;
	// [case, entries, claims: anonymous id, lead, minute seen]
	const cases: Array<[string, LeadEntry[], Array<[string, string, number]>]> = [
		['entries without a browser claim none', [entry('a@x.io', {})], []],
		['an entry claims its browser', [entry('a@x.io', {}, { anonymousId: 'anon-1' }, 5)], [['anon-1', 'lead:a@x.io', 5]]],
		[
			'the first entry naming a browser claims it',
			[entry('a@x.io', {}, { anonymousId: 'anon-1' }, 1), entry('b@x.io', {}, { anonymousId: 'anon-1' }, 2)],
			[['anon-1', 'lead:a@x.io', 1]],
		],
		[
			'claims come sorted by anonymous id',
			[entry('a@x.io', {}, { anonymousId: 'anon-9' }), entry('a@x.io', {}, { anonymousId: 'anon-2' }), entry('b@x.io', {}, { anonymousId: 'anon-5' })],
			[
				['anon-2', 'lead:a@x.io', 0],
				['anon-5', 'lead:b@x.io', 0],
				['anon-9', 'lead:a@x.io', 0],
			],
		],
	];
	it.each(cases)('%s', (_, entries, expected) => {
		expect(browserClaims(entries, leadOf).map((claim) => [claim.anonymousId, claim.leadId, claim.at.getUTCMinutes()])).toEqual(expected);
	});
});

describe('reportOnce', () => {
	const recorded = { scoreRows: 2, stageChange: { from: 'subscriber', to: 'lead' }, lead: 'x' };
	it.each([
		[['a'], [2]],
		[['a', 'a', 'a'], [2, 0, 0]],
		[['a', 'b', 'a', 'b'], [2, 2, 0, 0]],
	])('items of leads %j report %j rows', (leadIds, rows) => {
		const outcomes = reportOnce(leadIds, (lead) => ({ ...recorded, lead }));
		expect(outcomes.map((outcome) => outcome.scoreRows)).toEqual(rows);
		expect(outcomes.map((outcome) => outcome.stageChange !== null)).toEqual(rows.map((count) => count > 0));
		expect(outcomes.map((outcome) => outcome.lead)).toEqual(leadIds);
	});
});

describe('otherOwner', () => {
	it.each([
		['a', undefined, undefined],
		['a', null, undefined],
		['a', 'a', undefined],
		['a', 'b', 'b'],
	])('lead %s, browser owned by %s → %s', (lead, owner, expected) => {
		expect(otherOwner(lead, owner)).toBe(expected);
	});
});
