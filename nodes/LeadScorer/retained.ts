/**
 * What the score ledger keeps of evidence the retention job deleted. The job deletes a site's raw
 * events and visits older than its privacy.dataRetention, and leads keep their scores: a rescore
 * reads what is left, so the points of the evidence that is gone come from the ledger. A rule's
 * latest row says how much evidence its rows counted, and when (the database's clock); the
 * evidence stored by then and still there is scored again, and what the row counted beyond it is
 * gone. It is worth the rows' points decayed from then to now, less what is still there is worth
 * now: decay is a factor per elapsed time, so the decay of a sum is the sum of each part's.
 */
import type { LeadHistory, RecordedRule } from './rescore';
import { decayed, oldestFirst, tallyEvents, visitTally, type CompiledRules, type RetainedEvidence } from './scoring';

/** The count and latest id of the evidence a rule's row recorded (`count:latestId`); null when it matched nothing. */
function recordedEvidence(evidence: string): { count: number; latestId: string } | null {
	const match = /^(\d+):(.+)$/.exec(evidence);
	return match ? { count: Number(match[1]), latestId: match[2] } : null;
}

/**
 * A rule's evidence that its latest row counted and the raw rows no longer hold, given how much of
 * what the row counted is still stored and what that is worth now with `earlier` items before it.
 * Its points keep the rule's sign: caps recorded fewer points than the evidence was worth, and the
 * part still stored never makes the part gone count against the rule.
 */
function missingEvidence(
	mark: RecordedRule | undefined,
	rule: { score: number; decayRate: number },
	now: number,
	stored: number,
	storedRaw: (earlier: number) => number,
): RetainedEvidence | null {
	if (!mark?.written) return null;
	const evidence = recordedEvidence(mark.evidence);
	if (!evidence || evidence.count <= stored) return null;
	const count = evidence.count - stored;
	const points = decayed(mark.sum, rule.decayRate, now - mark.written.at) - storedRaw(count);
	return { count, points: rule.score < 0 ? Math.min(points, 0) : Math.max(points, 0), latestId: evidence.latestId };
}

/**
 * Whether the retention job cut the lead's history: its first browser was first seen before the
 * site's retention `cutoff`, and the event it was first seen with is gone (the job deletes the
 * oldest rows first). Events go only through the job, but sessions also go when late events rebuild
 * them, and rule edits change what is matched: neither may pass for deleted evidence elsewhere.
 */
function historyCut(history: LeadHistory, cutoff: number): boolean {
	const firstSeen = Math.min(...history.visitors.map((visitor) => visitor.firstSeenAt ?? Infinity));
	return firstSeen < cutoff && !history.events.some((event) => event.occurredAt <= firstSeen);
}

/**
 * Per rule id, the evidence of the lead's history that the raw rows no longer hold, worth its points
 * at `now`; none unless the retention job cut the history. A rule of such a lead that lost evidence
 * keeps the points its rows recorded, decaying, and new evidence adds to them: an edit of the rule
 * applies to new evidence only. Every other rule is recomputed from the rows as they are.
 */
export function retainedEvidence(rules: CompiledRules, history: LeadHistory, now: number, cutoff: number | null): Map<string, RetainedEvidence> {
	const retained = new Map<string, RetainedEvidence>();
	const { recorded } = history;
	if (cutoff === null || !recorded || !historyCut(history, cutoff)) return retained;
	const marks = rules.events.map((rule) => recorded.get(rule.id));
	const stored = tallyEvents(rules, history.events, now, marks.map((mark) => mark?.written?.storedAt ?? -Infinity));
	rules.events.forEach((rule, index) => {
		const missing = missingEvidence(marks[index], rule, now, stored[index].matches, () => stored[index].raw);
		if (missing) retained.set(rule.id, missing);
	});
	for (const rule of rules.visits) {
		const mark = recorded.get(rule.id);
		const visits = oldestFirst(history.visits.filter((visit) => (visit.storedAt ?? -Infinity) <= (mark?.written?.storedAt ?? -Infinity)));
		const missing = missingEvidence(mark, rule, now, visits.length, (earlier) => visitTally(rule, visits, now, earlier).raw);
		if (missing) retained.set(rule.id, missing);
	}
	return retained;
}
