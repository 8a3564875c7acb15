/**
 * A lead's score, always computed from its whole history (events, visits and lead fields) at one point
 * in time. Recomputing instead of adding keeps merged histories honest (an event seen through two
 * visitors counts once) and lets decay, caps and rule edits apply to the past as well. Evidence the
 * retention job deleted is part of the history as the score ledger remembers it (./retained.ts).
 */
import type { EventScoringRule, FitScoringRule, LeadScoringRule, VisitScoringRule } from '../../lib/contracts/siteConfig';
import { boundedMemo } from '../../lib/memo';
import { compilePathPattern, urlPath, type PathPattern } from '../shared/paths';

const DAY_MS = 86_400_000;

export interface ScoringEvent {
	/** The tracker's event id: names the cause of a rule's points. */
	eventId: string;
	type: string;
	name?: string | null;
	/** Absolute URL or path of the page. */
	url?: string | null;
	/** Epoch milliseconds. */
	occurredAt: number;
	/**
	 * When the event joined the lead's history, epoch ms of the database's clock (its receipt, or
	 * the link of its browser to the lead): tells a rescore which events a ledger row counted.
	 */
	storedAt?: number;
}

/** The lead fields fit rules read (`FIT_FIELDS` of the site config). */
export interface LeadFacts {
	emailDomain?: string | null;
	company?: string | null;
	jobTitle?: string | null;
	country?: string | null;
	source?: string | null;
	phone?: string | null;
	freeMail?: boolean;
	disposableEmail?: boolean;
	tags?: readonly string[];
}

export interface RuleScore {
	/** The rule's id, or one derived from its criteria when the config gives none. */
	rule: string;
	kind: 'event' | 'fit' | 'visit';
	group: string | null;
	/** Points after the rule's, its group's and the total cap. */
	points: number;
	/** Points before any cap (with decay applied). */
	raw: number;
	/** Events the rule matched (fit rules: 1 when the field matched, else 0; visit rules: the visits it scored). */
	matches: number;
	/** Human-readable reason for the points. */
	cause: string;
	/**
	 * What the points rest on (matched event count and latest event, or the matched field value):
	 * unchanged while only time passes, so a stored delta can tell new evidence from decay.
	 */
	causeKey: string;
}

export interface ScoreResult {
	total: number;
	engagement: number;
	fit: number;
	/** One entry per rule, in config order; their points add up to `total`. */
	rules: RuleScore[];
}

interface CompiledEventRule {
	kind: 'event';
	id: string;
	/** Its place in the config's order of all rules: where its score goes in a breakdown. */
	position: number;
	group: string | null;
	event: string;
	score: number;
	cap: number;
	/** ln 2 / half-life in ms, 0 without decay: one multiply and one exp per match. */
	decayRate: number;
	path: PathPattern | null;
	/**
	 * The parts of its cause that depend on the rule alone, written once when compiled rather than for
	 * every lead scored: the whole cause without a match, and what follows the match count.
	 */
	causes: { none: string; matched: string };
}

export interface CompiledVisitRule {
	kind: 'visit';
	id: string;
	/** Its place in the config's order of all rules: where its score goes in a breakdown. */
	position: number;
	group: string | null;
	visits: number;
	perVisit: boolean;
	score: number;
	cap: number;
	decayRate: number;
}

interface CompiledFitRule {
	kind: 'fit';
	id: string;
	/** Its place in the config's order of all rules: where its score goes in a breakdown. */
	position: number;
	group: string | null;
	rule: FitScoringRule;
	regex: RegExp | null;
	values: ReadonlySet<string> | null;
}

export interface CompiledRules {
	events: CompiledEventRule[];
	fits: CompiledFitRule[];
	visits: CompiledVisitRule[];
	/** Config order of all rules, so the breakdown reads like the config. */
	order: Array<CompiledEventRule | CompiledFitRule | CompiledVisitRule>;
	groupCaps: Readonly<Record<string, number>>;
	maxScore: number;
	hashRouting: boolean;
}

export interface ScoringConfig {
	leadScoringRules: readonly LeadScoringRule[];
	maxScore?: number;
	groupCaps?: Readonly<Record<string, number>>;
}

function isEventRule(rule: LeadScoringRule): rule is EventScoringRule {
	return 'event' in rule;
}

function isVisitRule(rule: LeadScoringRule): rule is VisitScoringRule {
	return 'visits' in rule;
}

function derivedId(rule: LeadScoringRule): string {
	if (isEventRule(rule)) return `event:${rule.event}${rule.urlPattern ? `@${rule.urlPattern}` : ''}`;
	if (isVisitRule(rule)) return `visits:${rule.visits}${rule.perVisit ? '+' : ''}`;
	const value = Array.isArray(rule.value) ? rule.value.join('|') : (rule.value ?? '');
	return `fit:${rule.field}:${rule.operator}${value === '' ? '' : `:${value}`}`;
}

/** Compiles a site's scoring rules once per execution; rule ids are made unique (`#2`, `#3` …). */
export function compileScoringRules(config: ScoringConfig, options: { hashRouting?: boolean } = {}): CompiledRules {
	const seen = new Map<string, number>();
	const compiled: CompiledRules = {
		events: [],
		fits: [],
		visits: [],
		order: [],
		groupCaps: config.groupCaps ?? {},
		maxScore: config.maxScore ?? Infinity,
		hashRouting: options.hashRouting ?? false,
	};
	for (const rule of config.leadScoringRules) {
		const base = rule.id ?? derivedId(rule);
		const count = (seen.get(base) ?? 0) + 1;
		seen.set(base, count);
		const id = count === 1 ? base : `${base}#${count}`;
		const group = rule.group ?? null;
		if (isVisitRule(rule)) {
			const entry: CompiledVisitRule = {
				kind: 'visit',
				id,
				position: compiled.order.length,
				group,
				visits: rule.visits,
				perVisit: rule.perVisit ?? false,
				score: rule.score,
				cap: rule.cap ?? Infinity,
				decayRate: rule.halfLifeDays ? Math.LN2 / (rule.halfLifeDays * DAY_MS) : 0,
			};
			compiled.visits.push(entry);
			compiled.order.push(entry);
		} else if (isEventRule(rule)) {
			const path = rule.urlPattern ? compilePathPattern(rule.urlPattern) : null;
			const decayRate = rule.halfLifeDays ? Math.LN2 / (rule.halfLifeDays * DAY_MS) : 0;
			const on = path ? ` on ${path.source}` : '';
			const entry: CompiledEventRule = {
				kind: 'event',
				id,
				position: compiled.order.length,
				group,
				event: rule.event,
				score: rule.score,
				cap: rule.cap ?? Infinity,
				decayRate,
				path,
				causes: { none: `no ${rule.event} event${on}`, matched: ` × ${rule.event}${on} (${rule.score} each${decayRate ? ', decayed' : ''}` },
			};
			compiled.events.push(entry);
			compiled.order.push(entry);
		} else {
			const entry: CompiledFitRule = {
				kind: 'fit',
				id,
				position: compiled.order.length,
				group,
				rule,
				regex: rule.operator === 'matches' && typeof rule.value === 'string' ? new RegExp(rule.value, 'i') : null,
				values: rule.operator === 'in' && Array.isArray(rule.value) ? new Set(rule.value.map((v) => v.toLowerCase())) : null,
			};
			compiled.fits.push(entry);
			compiled.order.push(entry);
		}
	}
	return compiled;
}

/**
 * Paths of URLs already parsed, per routing mode. A lead is rescored from its whole history on
 * every new event, so the same URLs come back again and again; parsing them is most of the cost
 * of matching. Bounded by clearing: a site has far fewer distinct URLs than the bound.
 */
const PATH_CACHE_SIZE = 50_000;
const pathsOf = [false, true].map((hashRouting) => boundedMemo(PATH_CACHE_SIZE, (url) => urlPath(url, { hashRouting })));

const cachedPath = (url: string, hashRouting: boolean): string | null => pathsOf[hashRouting ? 1 : 0](url);

/** `score · 2^(-age / halfLife)` as `exp(-age · ln2 / halfLife)`; a time after `now` (clock skew) counts in full. */
export function decayed(score: number, rate: number, age: number): number {
	return rate === 0 || age <= 0 ? score : score * Math.exp(-age * rate);
}

/** Per event rule: sum of decayed points, match count and the latest matching event. */
interface EventTally {
	raw: number;
	matches: number;
	latestAt: number;
	latestId: string;
}

/**
 * Runs every event through every event rule. Points decay as `score · 2^(-age / halfLife)`,
 * written as `exp(-age · ln2 / halfLife)`; an event dated after `now` (clock skew) counts in full.
 * With `storedUntil`, rule `r` counts only the events stored by `storedUntil[r]`: what a ledger
 * row of the rule counted.
 */
export function tallyEvents(rules: CompiledRules, events: readonly ScoringEvent[], now: number, storedUntil?: readonly number[]): EventTally[] {
	const tallies: EventTally[] = rules.events.map(() => ({ raw: 0, matches: 0, latestAt: -Infinity, latestId: '' }));
	const ruleCount = rules.events.length;
	for (const event of events) {
		let path: string | null | undefined;
		for (let r = 0; r < ruleCount; r++) {
			const rule = rules.events[r];
			if (rule.event !== event.type && rule.event !== event.name) continue;
			if (rule.path) {
				if (path === undefined) path = event.url ? cachedPath(event.url, rules.hashRouting) : null;
				if (path === null || !rule.path.testPath(path)) continue;
			}
			if (storedUntil && (event.storedAt ?? -Infinity) > storedUntil[r]) continue;
			const age = now - event.occurredAt;
			const tally = tallies[r];
			tally.raw += decayed(rule.score, rule.decayRate, age);
			tally.matches++;
			if (event.occurredAt > tally.latestAt || (event.occurredAt === tally.latestAt && event.eventId > tally.latestId)) {
				tally.latestAt = event.occurredAt;
				tally.latestId = event.eventId;
			}
		}
	}
	return tallies;
}

/**
 * One visit of a lead: a `visitor_sessions` row of one of its visitors, as the Visitor Processor
 * wrote it. Only stored sessions are visits; events not sessionized yet count once they are.
 */
export interface Visit {
	/** The session's id: names the latest visit as a cause. */
	id: string;
	/** When the session started, epoch ms. */
	startedAt: number;
	/** When the session joined the lead's history, epoch ms of the database's clock (see ScoringEvent). */
	storedAt?: number;
}

/**
 * Evidence of a rule that the raw rows no longer hold (the retention job deleted it), as the
 * lead's score ledger remembers it: it counts as if still stored.
 */
export interface RetainedEvidence {
	/** Matched events (visit rules: visits) no longer stored; they came before every stored one. */
	count: number;
	/** Their points now: the ledger's, decayed. */
	points: number;
	/** The latest evidence the ledger names: the rule's latest when none of its evidence is stored. */
	latestId: string;
}

/**
 * A visit rule over the lead's stored visits, oldest first, after `earlier` visits no longer stored
 * (whose points are not in `raw`): once the lead has `visits` visits, the latest stored one gives
 * `score`; with `perVisit`, that visit and each later one do.
 */
export function visitTally(rule: CompiledVisitRule, visits: readonly Visit[], now: number, earlier = 0): { raw: number; matches: number; total: number } {
	const total = earlier + visits.length;
	let raw = 0;
	let matches = 0;
	if (total >= rule.visits && rule.perVisit) {
		for (let v = Math.max(rule.visits - 1 - earlier, 0); v < visits.length; v++) raw += decayed(rule.score, rule.decayRate, now - visits[v].startedAt);
		matches = total - rule.visits + 1;
	} else if (total >= rule.visits) {
		const latest = visits.at(-1);
		if (latest) raw = decayed(rule.score, rule.decayRate, now - latest.startedAt);
		matches = 1;
	}
	return { raw, matches, total };
}

/** A visit rule's points from the lead's visits, oldest first, and from its visits no longer stored. */
function visitScore(rule: CompiledVisitRule, visits: readonly Visit[], now: number, retained: RetainedEvidence | undefined): RuleScore {
	const tally = visitTally(rule, visits, now, retained?.count);
	const reached = tally.total >= rule.visits;
	// A visit rule without perVisit is dated by the latest visit: the ledger's points only while none is stored.
	const raw = tally.raw + (retained && (rule.perVisit || visits.length === 0) ? retained.points : 0);
	const latest = visits.at(-1)?.id ?? retained?.latestId;
	const what = rule.perVisit ? `visit ${rule.visits} onwards` : `at least ${rule.visits} visits`;
	return {
		rule: rule.id,
		kind: 'visit',
		group: rule.group,
		raw,
		points: clampToCap(raw, rule.cap),
		matches: tally.matches,
		cause: reached
			? `${tally.total} visits (${what}: ${rule.score}${rule.perVisit ? ' each' : ''}${rule.decayRate ? ', decayed' : ''}${pastRetention(retained)}), latest session ${latest}`
			: `${tally.total} of ${rule.visits} visits`,
		causeKey: reached ? `${tally.total}:${latest}` : 'none',
	};
}

/** What a cause adds for evidence no longer stored. */
const pastRetention = (retained: RetainedEvidence | undefined) => (retained ? `, ${retained.count} no longer stored` : '');

function textOf(facts: LeadFacts, field: FitScoringRule['field']): string[] {
	switch (field) {
		case 'tag':
			return [...(facts.tags ?? [])];
		case 'freeMail':
			return facts.freeMail ? ['true'] : [];
		case 'disposableEmail':
			return facts.disposableEmail ? ['true'] : [];
		default: {
			const value = facts[field]?.trim();
			return value ? [value] : [];
		}
	}
}

/** The field value a fit rule matched, or null when it does not apply. */
function fitMatch(entry: CompiledFitRule, facts: LeadFacts): string | null {
	const { operator, field, value } = entry.rule;
	const values = textOf(facts, field);
	for (const candidate of values) {
		const lower = candidate.toLowerCase();
		const hit =
			operator === 'exists' ||
			(operator === 'isTrue' && lower === 'true') ||
			(operator === 'equals' && lower === String(value).toLowerCase()) ||
			(operator === 'contains' && lower.includes(String(value).toLowerCase())) ||
			(operator === 'in' && entry.values !== null && entry.values.has(lower)) ||
			(operator === 'matches' && entry.regex !== null && entry.regex.test(candidate));
		if (hit) return candidate;
	}
	return null;
}

/**
 * Lowers positive contributions so their sum with the negative ones is at most `cap`, in
 * proportion to each, so every rule keeps its share of the explanation.
 */
function capPositive(scores: RuleScore[], cap: number): void {
	let positive = 0;
	let negative = 0;
	for (const score of scores) {
		if (score.points > 0) positive += score.points;
		else negative += score.points;
	}
	if (positive + negative <= cap || positive === 0) return;
	const factor = Math.max(0, cap - negative) / positive;
	for (const score of scores) if (score.points > 0) score.points *= factor;
}

function clampToCap(value: number, cap: number): number {
	return Math.max(-cap, Math.min(cap, value));
}

/** No evidence beyond the raw rows. */
const NOTHING_RETAINED: ReadonlyMap<string, RetainedEvidence> = new Map();

/** Visits oldest first, as visit rules count them. */
export const oldestFirst = (visits: readonly Visit[]): Visit[] => [...visits].sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : 1));

/**
 * The score of a lead at time `now` (epoch ms) from all its events, its visits (stored sessions),
 * its fields, and per rule id the evidence the raw rows no longer hold.
 */
export function scoreLead(
	rules: CompiledRules,
	events: readonly ScoringEvent[],
	facts: LeadFacts,
	now: number,
	visits: readonly Visit[] = [],
	retained: ReadonlyMap<string, RetainedEvidence> = NOTHING_RETAINED,
): ScoreResult {
	const tallies = tallyEvents(rules, events, now);
	const ordered = new Array<RuleScore>(rules.order.length);
	rules.events.forEach((rule, index) => {
		const tally = tallies[index];
		const kept = retained.get(rule.id);
		const raw = tally.raw + (kept?.points ?? 0);
		const matches = tally.matches + (kept?.count ?? 0);
		const latestId = tally.matches > 0 ? tally.latestId : kept?.latestId;
		ordered[rule.position] = {
			rule: rule.id,
			kind: 'event',
			group: rule.group,
			raw,
			points: clampToCap(raw, rule.cap),
			matches,
			cause: matches === 0 ? rule.causes.none : `${matches}${rule.causes.matched}${pastRetention(kept)}), latest ${latestId}`,
			causeKey: matches === 0 ? 'none' : `${matches}:${latestId}`,
		};
	});
	if (rules.visits.length > 0) {
		const sorted = oldestFirst(visits);
		for (const rule of rules.visits) ordered[rule.position] = visitScore(rule, sorted, now, retained.get(rule.id));
	}
	for (const rule of rules.fits) {
		const matched = fitMatch(rule, facts);
		const points = matched === null ? 0 : rule.rule.score;
		ordered[rule.position] = {
			rule: rule.id,
			kind: 'fit',
			group: rule.group,
			raw: points,
			points,
			matches: matched === null ? 0 : 1,
			cause: matched === null ? `${rule.rule.field} does not match` : `${rule.rule.field} "${matched}" ${rule.rule.operator}${rule.rule.value === undefined ? '' : ` ${String(rule.rule.value)}`}`,
			causeKey: matched === null ? 'none' : `match:${matched.toLowerCase()}`,
		};
	}
	for (const [group, cap] of Object.entries(rules.groupCaps)) {
		capPositive(
			ordered.filter((score) => score.group === group),
			cap,
		);
	}
	capPositive(ordered, rules.maxScore);
	let engagement = 0;
	let fit = 0;
	for (const score of ordered) {
		if (score.kind !== 'fit') engagement += score.points;
		else fit += score.points;
	}
	return { total: engagement + fit, engagement, fit, rules: ordered };
}
