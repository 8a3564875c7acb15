import { missedEnrollments, RECOVERY_GRACE_MS, RECOVERY_LOOK_BACK_MS, recoveryWindow } from '../../nodes/EmailOrchestrator/recovery';
import { enteredStages, movesEntering } from '../../nodes/EmailOrchestrator/triggers';

const STAGES = [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore: 40 }, { name: 'sql', minScore: 80 }, { name: 'customer' }];
const NOW = new Date('2026-06-10T12:00:00Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms);
const MINUTE = 60_000;
const DAY = 86_400_000;

describe('movesEntering', () => {
	it('says exactly which moves enteredStages counts as entering a stage, for every pair of stages', () => {
		const names = [...STAGES.map((stage) => stage.name), 'trial', 'removed'];
		for (const stage of [...STAGES.map((candidate) => candidate.name), 'trial']) {
			const { to, fromNot } = movesEntering(STAGES, stage);
			for (const from of names) {
				for (const target of names) {
					const query = to.includes(target) && !fromNot.includes(from);
					expect([stage, from, target, query]).toEqual([stage, from, target, enteredStages(STAGES, { from, to: target }, target).includes(stage)]);
				}
			}
		}
	});

	it('gives the forms a query tests', () => {
		expect(movesEntering(STAGES, 'lead')).toEqual({ to: ['lead', 'mql', 'sql', 'customer'], fromNot: ['lead', 'mql', 'sql', 'customer'] });
		// a stage the config does not have is entered only by a move to it, from anywhere
		expect(movesEntering(STAGES, 'trial')).toEqual({ to: ['trial'], fromNot: [] });
	});
});

describe('missedEnrollments', () => {
	const welcome = { id: 'welcome', trigger: { stage: 'lead' }, createdAt: ago(30 * DAY) };
	const nurture = { id: 'nurture', trigger: { stage: 'mql' }, createdAt: ago(30 * DAY) };
	const vip = { id: 'vip', trigger: { tag: 'vip' }, createdAt: ago(30 * DAY) };
	const demo = { id: 'demo', trigger: { event: 'lead' }, createdAt: ago(30 * DAY) };
	const manual = { id: 'manual', trigger: null, createdAt: ago(30 * DAY) };
	const sequences = [welcome, nurture, vip, demo, manual];
	const move = (leadId: string, from: string, to: string, occurredAt: Date) => ({ leadId, from, to, occurredAt });
	const decide = (moves: ReturnType<typeof move>[], enrolled: Array<{ leadId: string; sequenceId: string }> = [], list = sequences) =>
		missedEnrollments({ stages: STAGES, sequences: list, moves, enrolled, now: NOW }).map(({ leadId, sequence, at }) => [leadId, sequence.id, at.toISOString()]);

	it('enrolls a lead that entered a sequence’s stage and has no enrollment in it, as of the move', () => {
		const at = ago(5 * MINUTE);
		expect(decide([move('ana', 'subscriber', 'lead', at)])).toEqual([['ana', 'welcome', at.toISOString()]]);
	});

	it('counts the stages a jump passes, as the live path does, and never a tag, event or manual sequence', () => {
		const at = ago(5 * MINUTE);
		expect(decide([move('bo', 'subscriber', 'mql', at)])).toEqual([
			['bo', 'welcome', at.toISOString()],
			['bo', 'nurture', at.toISOString()],
		]);
		// a move back down enters nothing
		expect(decide([move('bo', 'mql', 'lead', at)])).toEqual([]);
	});

	it('leaves a lead with any enrollment in the sequence alone', () => {
		const at = ago(5 * MINUTE);
		expect(decide([move('cy', 'subscriber', 'mql', at)], [{ leadId: 'cy', sequenceId: 'welcome' }])).toEqual([['cy', 'nurture', at.toISOString()]]);
		expect(decide([move('cy', 'subscriber', 'lead', at)], [{ leadId: 'cy', sequenceId: 'welcome' }])).toEqual([]);
	});

	it('ignores moves before the sequence existed, beyond the look-back, or within the live path’s grace', () => {
		const fresh = { ...welcome, createdAt: ago(10 * MINUTE) };
		expect(decide([move('di', 'subscriber', 'lead', ago(11 * MINUTE))], [], [fresh])).toEqual([]);
		expect(decide([move('di', 'subscriber', 'lead', ago(9 * MINUTE))], [], [fresh])).toEqual([['di', 'welcome', ago(9 * MINUTE).toISOString()]]);
		expect(decide([move('ed', 'subscriber', 'lead', ago(RECOVERY_LOOK_BACK_MS + 1))])).toEqual([]);
		expect(decide([move('ed', 'subscriber', 'lead', ago(RECOVERY_LOOK_BACK_MS))])).toEqual([['ed', 'welcome', ago(RECOVERY_LOOK_BACK_MS).toISOString()]]);
		expect(decide([move('fa', 'subscriber', 'lead', ago(RECOVERY_GRACE_MS - 1))])).toEqual([]);
		expect(decide([move('fa', 'subscriber', 'lead', ago(RECOVERY_GRACE_MS))])).toEqual([['fa', 'welcome', ago(RECOVERY_GRACE_MS).toISOString()]]);
	});

	it('enrolls once per lead and sequence, from its earliest move', () => {
		const first = ago(3 * DAY);
		const again = ago(DAY);
		expect(decide([move('gi', 'subscriber', 'sql', again), move('gi', 'old-stage', 'lead', first)])).toEqual([
			['gi', 'welcome', first.toISOString()],
			['gi', 'nurture', again.toISOString()],
		]);
	});
});

describe('recoveryWindow', () => {
	it('spans the look-back up to the grace before now', () => {
		expect(recoveryWindow(NOW)).toEqual({ since: ago(7 * DAY), until: ago(30_000) });
	});
});
