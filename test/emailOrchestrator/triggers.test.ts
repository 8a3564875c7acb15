import { enteredStages, triggeredBy } from '../../nodes/EmailOrchestrator/triggers';

const STAGES = [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore: 40 }, { name: 'sql', minScore: 80 }, { name: 'customer' }];

describe('enteredStages', () => {
	it('lists every stage passed by a stage change, and the current stage without one', () => {
		expect(enteredStages(STAGES, { from: 'subscriber', to: 'lead' }, 'lead')).toEqual(['lead']);
		expect(enteredStages(STAGES, { from: 'subscriber', to: 'sql' }, 'sql')).toEqual(['lead', 'mql', 'sql']);
		expect(enteredStages(STAGES, null, 'mql')).toEqual(['mql']);
		expect(enteredStages(STAGES, undefined, 'subscriber')).toEqual(['subscriber']);
		// a stage no longer in the config: only the target
		expect(enteredStages(STAGES, { from: 'subscriber', to: 'trial' }, 'trial')).toEqual(['trial']);
		// from a stage removed from the config: every stage up to the target
		expect(enteredStages(STAGES, { from: 'old', to: 'lead' }, 'lead')).toEqual(['subscriber', 'lead']);
	});
});

describe('triggeredBy', () => {
	const sequences = [
		{ name: 'welcome', trigger: { stage: 'lead' } },
		{ name: 'nurture', trigger: { stage: 'mql' } },
		{ name: 'vip', trigger: { tag: 'vip' } },
		{ name: 'demo', trigger: { event: 'demo_request' } },
		{ name: 'manual', trigger: null },
	];
	const names = (facts: { stages?: string[]; tags?: string[]; events?: string[] }) => triggeredBy(sequences, { stages: [], tags: [], events: [], ...facts }).map((s) => s.name);

	it('matches stages entered, tags held and the item event; never a sequence without a trigger', () => {
		expect(names({ stages: ['lead', 'mql'] })).toEqual(['welcome', 'nurture']);
		expect(names({ tags: ['vip', 'b2b'] })).toEqual(['vip']);
		expect(names({ events: ['custom', 'demo_request'] })).toEqual(['demo']);
		expect(names({ events: ['pageview'] })).toEqual([]);
		expect(names({})).toEqual([]);
	});
});
