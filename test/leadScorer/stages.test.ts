import type { LifecycleStage } from '../../lib/contracts/siteConfig';
import { nextStage } from '../../nodes/LeadScorer/stages';

const STAGES: LifecycleStage[] = [
	{ name: 'subscriber', minScore: 0 },
	{ name: 'lead', minScore: 10 },
	{ name: 'mql', minScore: 40 },
	{ name: 'sql', minScore: 80 },
	{ name: 'customer' },
];

describe('nextStage', () => {
	it.each([
		['subscriber', 5, 'subscriber'],
		['subscriber', 10, 'lead'],
		['subscriber', 45, 'mql'],
		['lead', 1000, 'sql'],
		// forward only: a decayed score keeps the stage reached
		['mql', 12, 'mql'],
		['sql', -50, 'sql'],
		// customer is set outside scoring and never left by it
		['customer', 0, 'customer'],
		['customer', 500, 'customer'],
	])('%s at %d → %s', (current, score, expected) => {
		expect(nextStage(STAGES, current, score)).toBe(expected);
	});

	it('places a lead whose stage the config does not know by its score', () => {
		expect(nextStage(STAGES, 'legacy', 50)).toBe('mql');
		expect(nextStage(STAGES, 'legacy', -5)).toBe('subscriber');
	});
});
