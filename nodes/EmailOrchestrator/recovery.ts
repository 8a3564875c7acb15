/**
 * Which stage-triggered enrollments the live path missed: pure rules for the self-healing step of
 * Send Due. The Lead Scorer records each stage move once and reports it once ("Stage Changed"),
 * so when its hand-off to the Email Orchestrator is lost after that record was committed, a
 * replay finds the move already there and nothing tells the Email Orchestrator again. The
 * recorded moves are the durable fact; this decides which of them still owe an enrollment.
 */
import type { LifecycleStage, SequenceTrigger } from '../../lib/contracts/siteConfig';
import { enteredStages, triggeredBy } from './triggers';

/** How far back recorded moves are looked at: a lead's news older than this is no longer worth a welcome. */
export const RECOVERY_LOOK_BACK_MS = 7 * 86_400_000;
/** Moves younger than this are left to the live hand-off, which normally follows within seconds. */
export const RECOVERY_GRACE_MS = 30_000;

export interface RecordedMove {
	leadId: string;
	from: string;
	to: string;
	occurredAt: Date;
}

export interface RecoverableSequence {
	id: string;
	trigger: SequenceTrigger | null;
	/** When the sequence came to exist: moves before it started nothing on the live path either. */
	createdAt: Date;
}

/** The moves one run looks at: within the look-back, and past the live path's grace. */
export function recoveryWindow(now: Date): { since: Date; until: Date } {
	return { since: new Date(now.getTime() - RECOVERY_LOOK_BACK_MS), until: new Date(now.getTime() - RECOVERY_GRACE_MS) };
}

/**
 * The (lead, sequence) pairs to enroll: for each move in the window, the sequences whose stage
 * trigger it entered (as the live path's {@link enteredStages} and {@link triggeredBy} count it)
 * and which existed when it happened, unless the lead has any enrollment in that sequence (active,
 * completed or unenrolled: re-entering is never a side effect). One pair per lead and sequence,
 * dated by its earliest move, so the enrollment counts from when the lead got there.
 */
export function missedEnrollments<S extends RecoverableSequence>(input: {
	stages: readonly LifecycleStage[];
	sequences: readonly S[];
	moves: readonly RecordedMove[];
	enrolled: ReadonlyArray<{ leadId: string; sequenceId: string }>;
	now: Date;
}): Array<{ leadId: string; sequence: S; at: Date }> {
	const { since, until } = recoveryWindow(input.now);
	const key = (leadId: string, sequenceId: string) => `${leadId}:${sequenceId}`;
	const enrolled = new Set(input.enrolled.map((row) => key(row.leadId, row.sequenceId)));
	const missed = new Map<string, { leadId: string; sequence: S; at: Date }>();
	const moves = [...input.moves].sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime());
	for (const move of moves) {
		if (move.occurredAt < since || move.occurredAt > until) continue;
		const stages = enteredStages(input.stages, { from: move.from, to: move.to }, move.to);
		for (const sequence of triggeredBy(input.sequences, { stages, tags: [], events: [] })) {
			const pair = key(move.leadId, sequence.id);
			if (move.occurredAt < sequence.createdAt || enrolled.has(pair) || missed.has(pair)) continue;
			missed.set(pair, { leadId: move.leadId, sequence, at: move.occurredAt });
		}
	}
	return [...missed.values()];
}
