/**
 * Which of a site's conversion rules (`crm.conversionRules`) a tracked event satisfies.
 * Plain functions over structural types, so the node and the tests share them.
 */
import { eventNames } from '../shared/events';
import { compilePathPattern, urlPath, type PathOptions, type PathPattern } from '../shared/paths';

/** The part of a tracked event the rules read. */
export interface ConversionEvent {
	type: string;
	/** Custom event name, or a label refining the type (e.g. the form id of a form_submit). */
	name?: string | null;
	/** Absolute URL of the page, or a path. */
	url?: string | null;
}

export interface ConversionSession {
	engagementScore: number;
}

/** The criteria of a conversion rule; any object with them (e.g. a site config rule) can be matched. */
export interface ConversionRuleCriteria {
	event?: string;
	urlPattern?: string;
	minEngagementScore?: number;
}

const PAGEVIEW = 'pageview';

// Keyed by the rule object and checked against its pattern, so a rule edited in place recompiles.
const compiled = new WeakMap<ConversionRuleCriteria, PathPattern>();

function patternOf(rule: ConversionRuleCriteria, source: string): PathPattern {
	const cached = compiled.get(rule);
	if (cached?.source === source) return cached;
	const pattern = compilePathPattern(source);
	compiled.set(rule, pattern);
	return pattern;
}

/**
 * A rule's `event` names the event type or the custom event name. Without `event`, a rule with
 * a `urlPattern` is a destination goal and matches page views only: the clicks, scrolls and
 * engagement pings that follow on the thank-you page must not convert again.
 */
function eventMatches(rule: ConversionRuleCriteria, event: ConversionEvent): boolean {
	if (rule.event !== undefined) return eventNames(event).includes(rule.event);
	return rule.urlPattern === undefined || event.type === PAGEVIEW;
}

/**
 * The rules the event satisfies, in the order given. Every criterion a rule has must hold;
 * a rule with no criterion at all matches nothing rather than every event of the site.
 * Patterns are compiled once per rule object and reused across calls.
 */
export function matchConversionRules<R extends ConversionRuleCriteria>(
	event: ConversionEvent,
	session: ConversionSession,
	rules: readonly R[],
	options: PathOptions = {},
): R[] {
	let path: string | null | undefined;
	return rules.filter((rule) => {
		if (rule.event === undefined && rule.urlPattern === undefined && rule.minEngagementScore === undefined) return false;
		if (!eventMatches(rule, event)) return false;
		// Written as a negated >= so that a NaN score fails the rule.
		if (rule.minEngagementScore !== undefined && !(session.engagementScore >= rule.minEngagementScore)) return false;
		if (rule.urlPattern === undefined) return true;
		if (path === undefined) path = event.url ? urlPath(event.url, options) : null;
		return path !== null && patternOf(rule, rule.urlPattern).testPath(path);
	});
}
