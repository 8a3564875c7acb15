/** Which sequences a lead's news starts: pure rules for the Enroll by Trigger operation. */
import type { LifecycleStage, SequenceTrigger } from '../../lib/contracts/siteConfig';

/**
 * The stages a lead entered: from the item's `stageChange` (the Lead Scorer's "Stage Changed"
 * output), every stage after `from` up to and including `to`, so a lead that jumped from
 * subscriber to MQL also counts as having reached lead; without one, the lead's current stage.
 */
export function enteredStages(stages: readonly LifecycleStage[], stageChange: unknown, current: string): string[] {
	const change = stageChange as { from?: unknown; to?: unknown } | null | undefined;
	if (!change || typeof change.to !== 'string') return [current];
	const names = stages.map((stage) => stage.name);
	const from = typeof change.from === 'string' ? names.indexOf(change.from) : -1;
	const to = names.indexOf(change.to);
	if (to < 0) return [change.to];
	return names.slice(from + 1, to + 1);
}

/** The sequences whose trigger the lead meets: a stage it entered, a tag it has, or a name of the item's event (eventNames). */
export function triggeredBy<T extends { trigger: SequenceTrigger | null }>(sequences: readonly T[], facts: { stages: readonly string[]; tags: readonly string[]; events: readonly string[] }): T[] {
	return sequences.filter(({ trigger }) => {
		if (!trigger) return false;
		if ('stage' in trigger) return facts.stages.includes(trigger.stage);
		if ('tag' in trigger) return facts.tags.includes(trigger.tag);
		return facts.events.includes(trigger.event);
	});
}

/**
 * The stage moves that enter `stage` as {@link enteredStages} counts them, in a form a query can
 * test: a move from → to enters it when `to` is among `to` and `from` is not among `fromNot`. A
 * from-stage the config no longer has counts as before every stage, as it does there.
 */
export function movesEntering(stages: readonly LifecycleStage[], stage: string): { to: string[]; fromNot: string[] } {
	const names = stages.map((candidate) => candidate.name);
	const enters = (from: string | undefined, to: string) => enteredStages(stages, { from, to }, to).includes(stage);
	const to = [...new Set([...names, stage])].filter((target) => enters(undefined, target));
	return { to, fromNot: names.filter((from) => !to.some((target) => enters(from, target))) };
}
