/**
 * What a rescore records, decided from what the database holds: the score rows that explain the
 * change since the last recorded ones (keyed so a replay or a concurrent scoring of the same
 * change writes nothing new), the stage move, and the lead's earliest first touch. The store only
 * reads the inputs and writes the answer.
 */
import type { LifecycleStage } from '../../lib/contracts/siteConfig';
import type { Prisma } from '../../lib/db/generated/client';
import { emailFacts } from '../shared/contact';
import { retainedEvidence } from './retained';
import { scoreLead, type CompiledRules, type ScoreResult, type ScoringEvent, type Visit } from './scoring';
import { nextStage } from './stages';

/** Scores are stored rounded to this many decimals: float noise is no score change. */
const round = (value: number) => Math.round(value * 100) / 100;

/**
 * A score as its ledger adds up: each rule's points rounded as its rows record them, then summed.
 * Rounding the unrounded total instead could differ from the ledger by a hundredth per decayed rule.
 */
const roundedSum = (rules: ReadonlyArray<{ points: number }>) => round(rules.reduce((sum, rule) => sum + round(rule.points), 0));

/** The lead columns a rescore reads. */
export interface StoredLead {
	id: string;
	email: string;
	company: string | null;
	jobTitle: string | null;
	country: string | null;
	source: string | null;
	phone: string | null;
	lifecycleStage: string;
	firstTouch: Prisma.JsonValue | null;
	/** The scores as last stored. */
	score: number;
	engagementScore: number;
	fitScore: number;
}

/** What a lead's `lead_scores` rows of one rule add up to. */
export interface RecordedRule {
	sum: number;
	/** Rows of the rule so far: the next row's key starts with this count. */
	rows: number;
	/** The evidence (cause key without its count) of the latest row. */
	evidence: string;
	/** When the latest row was written: the scoring time it records (`at`) and the database's clock then (`storedAt`), epoch ms. */
	written?: { at: number; storedAt: number };
}

/**
 * A rule's `lead_scores` rows of one lead, as the store reads them, summed by the database: how
 * many and what they add up to, and the latest row's key and times (epoch ms) when it gives them.
 */
export interface LedgerSummary {
	leadId: string;
	rule: string;
	sum: number;
	rows: number;
	causeKey: string;
	occurredAt?: number;
	createdAt?: number;
}

/** What each lead's rows record per rule, from one summary per lead and rule. */
export function recordedRules(summaries: readonly LedgerSummary[]): Map<string, Map<string, RecordedRule>> {
	const byLead = new Map<string, Map<string, RecordedRule>>();
	for (const summary of summaries) {
		let byRule = byLead.get(summary.leadId);
		if (!byRule) byLead.set(summary.leadId, (byRule = new Map()));
		byRule.set(summary.rule, {
			sum: summary.sum,
			rows: summary.rows,
			evidence: summary.causeKey.slice(summary.causeKey.indexOf(':') + 1),
			written: summary.occurredAt !== undefined && summary.createdAt !== undefined ? { at: summary.occurredAt, storedAt: summary.createdAt } : undefined,
		});
	}
	return byLead;
}

/**
 * One rule of a lead's `ledger_summary`: `[sum, rows, evidence, at, storedAt]`, a {@link RecordedRule}
 * as the Lead Scorer stores it with every row it writes (times in epoch ms, null when unknown).
 */
export type SummaryEntry = [sum: number, rows: number, evidence: string, at: number | null, storedAt: number | null];

const isTime = (value: unknown): value is number | null => value === null || typeof value === 'number';

/**
 * What a lead's stored `ledger_summary` says its rows record per rule; null when there is none to
 * trust (never stored, or not of its shape), and the rows must be summed instead.
 */
export function recordedOfSummary(summary: unknown): Map<string, RecordedRule> | null {
	if (summary === null || typeof summary !== 'object' || Array.isArray(summary)) return null;
	const recorded = new Map<string, RecordedRule>();
	// Read on every rescore of every lead: one pass over the keys, no entry arrays built.
	for (const rule in summary) {
		const entry: unknown = (summary as Record<string, unknown>)[rule];
		if (!Array.isArray(entry) || entry.length !== 5) return null;
		const sum: unknown = entry[0];
		const rows: unknown = entry[1];
		const evidence: unknown = entry[2];
		const at: unknown = entry[3];
		const storedAt: unknown = entry[4];
		if (typeof sum !== 'number' || !Number.isInteger(rows) || typeof evidence !== 'string' || !isTime(at) || !isTime(storedAt)) return null;
		recorded.set(rule, { sum, rows: rows as number, evidence, written: at !== null && storedAt !== null ? { at, storedAt } : undefined });
	}
	return recorded;
}

/** The `ledger_summary` of what a lead's rows record: what {@link recordedOfSummary} reads back. */
export function summaryOf(recorded: ReadonlyMap<string, RecordedRule>): Record<string, SummaryEntry> {
	const summary: Record<string, SummaryEntry> = {};
	for (const [rule, { sum, rows, evidence, written }] of recorded) summary[rule] = [sum, rows, evidence, written?.at ?? null, written?.storedAt ?? null];
	return summary;
}

/** A `lead_scores` row to add. */
export interface ScoreRow {
	rule: string;
	delta: number;
	scoreAfter: number;
	cause: string;
	causeKey: string;
}

/** One row per rule whose rounded points differ from what its rows recorded. */
export function scoreRowsOf(score: ScoreResult, recorded: ReadonlyMap<string, RecordedRule> = new Map()): ScoreRow[] {
	const total = roundedSum(score.rules);
	const rows: ScoreRow[] = [];
	for (const rule of score.rules) {
		const previous = recorded.get(rule.rule);
		const delta = round(round(rule.points) - round(previous?.sum ?? 0));
		if (delta === 0) continue;
		const sameEvidence = previous !== undefined && previous.evidence === rule.causeKey;
		rows.push({
			rule: rule.rule,
			delta,
			scoreAfter: total,
			cause: sameEvidence ? `recomputed (decay or changed rules): ${rule.cause}` : rule.cause,
			// The rule's row count makes the key: a replay sees the rows it wrote and finds no delta,
			// and two concurrent scorings of the same change collide on the key instead of both counting.
			causeKey: `${previous?.rows ?? 0}:${rule.causeKey}`,
		});
	}
	return rows;
}

/** A first touch's `at`, epoch ms; Infinity when it has no readable time. */
function touchTime(touch: Prisma.JsonValue): number {
	const value = typeof touch === 'object' && touch !== null && !Array.isArray(touch) ? (touch as { at?: unknown }).at : undefined;
	const time = typeof value === 'string' ? Date.parse(value) : NaN;
	return Number.isNaN(time) ? Infinity : time;
}

/** The earlier of two first touches by their `at`; one without a readable time loses. */
export function earlierTouch(a: Prisma.JsonValue | null, b: Prisma.JsonValue | null): Prisma.JsonValue | null {
	if (a === null) return b;
	if (b === null) return a;
	return touchTime(b) < touchTime(a) ? b : a;
}

/** A visitor linked to a lead, as far as scoring reads it. */
export interface LinkedVisitor {
	id: string;
	anonymousId: string;
	leadId: string;
	firstTouch: Prisma.JsonValue | null;
	/** When the browser was first seen, epoch ms: a browser first seen before the retention cutoff may have lost raw rows. */
	firstSeenAt?: number;
	/** Linked by this scoring's call: its history joins the lead's now, whenever it was stored. */
	linkedNow?: boolean;
}

/** When a row of a browser's history joined the lead's: now, for a browser linked now (no ledger row counted it). */
const joinedAt = (storedAt: number, browser: LinkedVisitor): number => (browser.linkedNow ? Infinity : storedAt);

/**
 * A browser's stored events as the store reads them, one array per column:
 * `[eventIds, types, names, urls, occurredAt, storedAt]`, times in epoch ms. Columns rather than a
 * tuple per event: Postgres aggregates each column once, and a parsed column of times is one array
 * of plain numbers instead of a number object per event.
 */
export type StoredEvents = [
	eventIds: readonly string[],
	types: readonly string[],
	names: ReadonlyArray<string | null>,
	urls: ReadonlyArray<string | null>,
	occurredAt: readonly number[],
	storedAt: readonly number[],
];

/** A stored session as the store reads a browser's: `[id, startedAt, storedAt]`, `storedAt` the database's clock when the row was written. */
export type StoredSession = [id: string, startedAt: number, storedAt: number];

/**
 * One of a lead's browsers as the store reads it, with everything it did:
 * `[visitorId, anonymousId, firstTouch, firstSeenAt, events, sessions]`.
 */
export type StoredBrowser = [id: string, anonymousId: string, firstTouch: Prisma.JsonValue | null, firstSeenAt: number, events: StoredEvents, sessions: readonly StoredSession[]];

/**
 * A lead's visitors, events and visits from its browsers as stored. A visitor is one browser, so its
 * events are those of its anonymous id, whether the Visitor Processor has linked them yet or not;
 * its visits are the session rows the Visitor Processor wrote, never counted from the events'
 * session ids or a visitor's counter, so a visit exists for scoring exactly when it exists as a
 * session. `linked`: the browsers (anonymous ids) this call linked.
 */
export function browsersHistory(leadId: string, browsers: readonly StoredBrowser[], linked: ReadonlySet<string>): Pick<LeadHistory, 'visitors' | 'events' | 'visits'> {
	const visitors: LinkedVisitor[] = [];
	const events: ScoringEvent[] = [];
	const visits = new Map<string, Visit>();
	for (const [id, anonymousId, firstTouch, firstSeenAt, stored, sessions] of browsers) {
		const visitor: LinkedVisitor = { id, anonymousId, leadId, firstTouch, firstSeenAt, linkedNow: linked.has(anonymousId) };
		visitors.push(visitor);
		const [eventIds, types, names, urls, occurredAt, storedAt] = stored;
		for (let n = 0; n < eventIds.length; n++) events.push({ eventId: eventIds[n], type: types[n], name: names[n], url: urls[n], occurredAt: occurredAt[n], storedAt: joinedAt(storedAt[n], visitor) });
		for (const [sessionId, startedAt, storedAt] of sessions) visits.set(sessionId, { id: sessionId, startedAt, storedAt: joinedAt(storedAt, visitor) });
	}
	return { visitors, events, visits: [...visits.values()] };
}

/** Everything scoring reads about one lead. */
export interface LeadHistory {
	lead: StoredLead;
	events: readonly ScoringEvent[];
	/** Its visitors' stored sessions. */
	visits: readonly Visit[];
	tags: readonly string[];
	/** The lead's score rows so far, per rule. */
	recorded?: ReadonlyMap<string, RecordedRule>;
	/** The lead's visitors. */
	visitors: readonly LinkedVisitor[];
}

export interface ScoringRules {
	rules: CompiledRules;
	stages: readonly LifecycleStage[];
	/** Scoring time, epoch ms. */
	now: number;
	/** The site's retention cutoff at `now`, epoch ms: raw rows older may be gone. Absent: none is. */
	cutoff?: number;
}

export interface Rescored {
	score: ScoreResult;
	total: number;
	engagement: number;
	fit: number;
	stage: string;
	firstTouch: Prisma.JsonValue | null;
	/** Rows to add to `lead_scores`. */
	scoreRows: ScoreRow[];
	/** The stage move to record in `lead_stage_changes`, or null when the stage stays. */
	stageChange: { from: string; to: string } | null;
	/**
	 * The lead's row already holds these scores, stage and first touch, and its ledger explains them:
	 * nothing to record but the time it was scored.
	 */
	unchanged: boolean;
}

/** One lead's score from its whole history, and what to record of it. */
export function rescore(history: LeadHistory, scoring: ScoringRules): Rescored {
	const { lead } = history;
	const mail = emailFacts(lead.email);
	const score = scoreLead(
		scoring.rules,
		history.events,
		{
			emailDomain: mail.domain,
			company: lead.company,
			jobTitle: lead.jobTitle,
			country: lead.country,
			source: lead.source,
			phone: lead.phone,
			freeMail: mail.freeMail,
			disposableEmail: mail.disposable,
			tags: history.tags,
		},
		scoring.now,
		history.visits,
		retainedEvidence(scoring.rules, history, scoring.now, scoring.cutoff ?? null),
	);
	const total = roundedSum(score.rules);
	const engagement = roundedSum(score.rules.filter((rule) => rule.kind !== 'fit'));
	const fit = roundedSum(score.rules.filter((rule) => rule.kind === 'fit'));
	const stage = nextStage(scoring.stages, lead.lifecycleStage, total);
	// earlierTouch hands back one of its arguments: the stored touch itself when no browser's is earlier.
	const firstTouch = history.visitors.reduce((first, visitor) => earlierTouch(first, visitor.firstTouch), lead.firstTouch);
	const scoreRows = scoreRowsOf(score, history.recorded);
	return {
		score,
		total,
		engagement,
		fit,
		stage,
		firstTouch,
		scoreRows,
		stageChange: stage === lead.lifecycleStage ? null : { from: lead.lifecycleStage, to: stage },
		unchanged:
			scoreRows.length === 0 && stage === lead.lifecycleStage && firstTouch === lead.firstTouch && total === lead.score && engagement === lead.engagementScore && fit === lead.fitScore,
	};
}
