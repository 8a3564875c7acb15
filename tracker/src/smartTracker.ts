import type { TrackEvent, TrackEventType } from '../../lib/contracts/tracking';
import type { Session } from './sessionManager';
import type { RelevanceRule } from './tracking-config';

/** Relevance of an event no rule matches, when it is not 5: intent (forms, downloads) above ambient signals. */
const DEFAULT_RELEVANCE: Partial<Record<TrackEventType, number>> = { form_submit: 8, download: 7, click: 3, scroll: 2, engagement: 2 };

/** Lower case without trailing slashes, as the server's path patterns compare paths. */
const normalize = (path: string) => path.replace(/(.)\/+$/, '$1').toLowerCase();

/**
 * The site config's path glob: `*` within a segment, `**` across segments, and a whole `/**`
 * segment also matches no segment (`/docs/**` matches `/docs`), as on the server. As a regular
 * expression with several stars backtracks polynomially, paths are matched on their first 200
 * characters, which keeps a pathological pattern from freezing the visitor's page.
 */
export const pathMatches = (pattern: string, path: string) =>
	RegExp(
		`^${normalize(pattern)
			.replace(/[.+?^${}()|[\]\\]/g, '\\$&')
			.replace(/\/\*\*(?=\/|$)|\*\*?/g, (star) => (star == '*' ? '[^/]*' : star == '**' ? '.*' : '(/.*)?'))}$`,
	).test(normalize(path).slice(0, 200));

/**
 * The first rule that matches decides, so a site orders its rules from specific to general. A
 * relevance outside 1–10 is brought within: one bad rule must not make every batch invalid.
 */
export function relevanceOf(rules: RelevanceRule[], type: TrackEventType, name: string | undefined, path: string): number {
	const rule = rules.find((rule) => (!rule.type || rule.type == type) && (!rule.name || rule.name == name) && (!rule.urlPattern || pathMatches(rule.urlPattern, path)));
	return rule ? Math.min(Math.max(rule.relevance | 0, 1), 10) : (DEFAULT_RELEVANCE[type] ?? 5);
}

/**
 * The session_end event's properties: the session's counters, its length, and its engagement.
 * The score (0–100) adds pages (4 each, up to 20), engaged time (1 per 10 s, up to 30), scroll
 * depth (up to 15) and the scored events (half their relevance sum, up to 35), so a visit of one
 * page that reads and acts counts as much as one that clicks through; the site's thresholds
 * make it low, medium or high.
 */
export function sessionSummary(session: Session, thresholds: { medium: number; high: number }): TrackEvent['props'] {
	const score = Math.round(Math.min(session.pages * 4, 20) + Math.min(session.engagedMs / 1e4, 30) + session.maxScrollDepth * 0.15 + Math.min(session.relevanceSum / 2, 35));
	return {
		...session,
		durationMs: session.last - session.start,
		engagementScore: score,
		engagement: score < thresholds.medium ? 'low' : score < thresholds.high ? 'medium' : 'high',
	};
}
