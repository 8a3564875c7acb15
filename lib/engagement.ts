import { EVENT_TYPES, type TrackEvent, type TrackEventType } from './contracts/tracking';

export type EngagementLevel = 'low' | 'medium' | 'high';

/**
 * A session's engagement, scored in one place: the Visitor Processor scores the sessions it
 * builds from stored events, the receiver the tracker's own summary in a session_end event, and
 * both with these functions, so a session's event and its visitor_sessions row agree.
 */

/** What a session did; a Session from sessionize() fits as it is. */
export interface EngagementMetrics {
	pageviews: number;
	engagedTimeMs: number;
	/** Deepest scroll in percent (0–100). */
	maxScrollDepth: number;
	typeCounts?: Partial<Record<TrackEventType, number>>;
	/** Sum of the relevance (1–10) the site gave the session's events. */
	relevanceSum?: number;
}

export interface EngagementScore {
	/** 0–100, the rounded sum of the components. */
	score: number;
	/** Points per component, unrounded, so a user can see why a session scored what it did. */
	components: { pages: number; time: number; scroll: number; interactions: number; relevance: number };
}

/**
 * The formula. Each component saturates, so no single behaviour (a tab left open for an hour,
 * fifty pageviews of a crawler-like visitor) can make a session highly engaged on its own; the
 * maxima add up to 100.
 * - pages: 4 points per pageview, up to 20 (five pages).
 * - time: 30 × √(engaged seconds / 300), up to 30 at five minutes. The square root rewards the
 *   first minute most: 30 s give 9.5 points, 2 min 19, 5 min 30.
 * - scroll: 15 × deepest scroll / 100.
 * - interactions: points per meaningful event, up to 25: a form submit (15) or an identify (10)
 *   shows intent; a download (8), an outbound click (5), a custom event (3) or a click (1) shows
 *   interest. Scrolls, engagement pings and session ends are measured by the other components.
 * - relevance: 10 × (sum of event relevance / 50), up to 10: what the site itself declared
 *   important (config eventRelevance) counts even when it is none of the event types above.
 */
export const ENGAGEMENT_FORMULA = {
	pages: { perPageview: 4, max: 20 },
	time: { saturationSeconds: 300, max: 30 },
	scroll: { max: 15 },
	interactions: { weights: { form_submit: 15, identify: 10, download: 8, outbound: 5, custom: 3, click: 1 }, max: 25 },
	relevance: { saturation: 50, max: 10 },
} as const;

const clamp = (value: number, max: number) => (value > 0 ? (value < max ? value : max) : 0);

export function scoreEngagement(metrics: EngagementMetrics): EngagementScore {
	const { pages, time, scroll, interactions, relevance } = ENGAGEMENT_FORMULA;
	const seconds = clamp(metrics.engagedTimeMs / 1000, time.saturationSeconds);
	let interactionPoints = 0;
	for (const [type, weight] of Object.entries(interactions.weights) as [TrackEventType, number][]) {
		interactionPoints += weight * Math.max(0, metrics.typeCounts?.[type] ?? 0);
	}
	const components = {
		pages: clamp(metrics.pageviews * pages.perPageview, pages.max),
		time: time.max * Math.sqrt(seconds / time.saturationSeconds),
		scroll: (scroll.max * clamp(metrics.maxScrollDepth, 100)) / 100,
		interactions: clamp(interactionPoints, interactions.max),
		relevance: (relevance.max * clamp(metrics.relevanceSum ?? 0, relevance.saturation)) / relevance.saturation,
	};
	const total = components.pages + components.time + components.scroll + components.interactions + components.relevance;
	return { score: Math.round(total), components };
}

/** low below `medium`, high from `high` on (site config tracking.engagementThresholds). */
export function engagementLevel(score: number, thresholds: { medium: number; high: number }): EngagementLevel {
	if (score >= thresholds.high) return 'high';
	return score >= thresholds.medium ? 'medium' : 'low';
}

/** The score of a session and its level by the site's thresholds. */
export function sessionEngagement(metrics: EngagementMetrics, thresholds: { medium: number; high: number }): { score: number; level: EngagementLevel } {
	const { score } = scoreEngagement(metrics);
	return { score, level: engagementLevel(score, thresholds) };
}

const counter = (props: NonNullable<TrackEvent['props']>, name: string) => {
	const value = props[name];
	return typeof value === 'number' && value > 0 ? value : 0;
};

/**
 * The metrics of a tracker's session summary (a session_end event's properties under their
 * stored names, see SESSION_KEYS): its counts per event type, engaged time, scroll depth and
 * relevance. As sessionize() does, a session without engagement reports is engaged for its span.
 */
export function summaryMetrics(props: NonNullable<TrackEvent['props']>): EngagementMetrics {
	const typeCounts: Partial<Record<TrackEventType, number>> = {};
	for (const type of EVENT_TYPES) typeCounts[type] = counter(props, type);
	const reported = typeCounts.engagement! > 0 || counter(props, 'engagedMs') > 0;
	return {
		pageviews: counter(props, 'pages'),
		engagedTimeMs: reported ? counter(props, 'engagedMs') : Math.max(0, counter(props, 'last') - counter(props, 'start')),
		maxScrollDepth: counter(props, 'maxScrollDepth'),
		typeCounts,
		relevanceSum: counter(props, 'relevanceSum'),
	};
}
