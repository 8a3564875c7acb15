import type { LifecycleStage } from '../../lib/contracts/siteConfig';

/**
 * The stage a lead should be in for a score. Stages only move forward on score: decay lowers a
 * score over weeks, and a lead that drifted back from MQL to lead would re-enter MQL (and re-run
 * its sequences) on the next visit. A stage without `minScore` past the first (customer by
 * default) is set by events outside scoring, so a lead in it stays there whatever its score.
 */
export function nextStage(stages: readonly LifecycleStage[], current: string, score: number): string {
	const index = stages.findIndex((stage) => stage.name === current);
	if (index > 0 && stages[index].minScore === undefined) return current;
	let target = -1;
	stages.forEach((stage, i) => {
		if (stage.minScore !== undefined && score >= stage.minScore) target = i;
	});
	if (index < 0) return stages[Math.max(target, 0)].name;
	return target > index ? stages[target].name : current;
}
