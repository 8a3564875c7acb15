import type { SiteConfig } from './siteConfig';
import type { TrackEventType } from './tracking';

/**
 * What the tracker needs of its site's config, as `GET /api/track?site=KEY` answers it. The site
 * config on the receiver is the one place a site's tracking is set: the script tag names only
 * the site and the endpoint, and every page picks up a changed rule without being redeployed.
 * The receiver also does here what would otherwise cost bytes in every visitor's download:
 * defaults, units, path globs compiled to regular expressions, the default relevance of each
 * event type. The tracker reads this shape and nothing else (tracker/src/rules.ts). Global
 * Privacy Control and Do Not Track are decided by the receiver from the request's Sec-GPC and
 * DNT headers, which it trusts over anything the page could say (doNotTrack).
 */
export interface TrackerSettings {
	/** Relevance rules in the site's order, the first match decides; the last ones match any event. */
	rules: TrackerRelevanceRule[];
	/** Events scored below it are not sent. */
	threshold: number;
	/** Inactivity after which the next event starts a new session, in milliseconds. */
	timeout: number;
	/** Longest session, in milliseconds. */
	maxLength: number;
	hashRouting: boolean;
	cookieless: boolean;
	/** Whether tracking waits for the visitor's consent (privacy.cookieConsent). */
	consent: boolean;
	/** A case-insensitive regular expression over a link's path: the files whose links are downloads. */
	downloads: string;
}

export interface TrackerRelevanceRule {
	type?: TrackEventType;
	name?: string;
	/** A case-insensitive regular expression over the page's path (pathPatternSource). */
	path?: string;
	relevance: number;
}

/** Relevance of an event no rule of the site matches, when it is not 5: intent (forms, downloads) above ambient signals. */
const DEFAULT_RELEVANCE: Partial<Record<TrackEventType, number>> = { form_submit: 8, download: 7, scroll: 2, engagement: 2 };

/**
 * A path glob as a regular expression over `location.pathname`, matched case-insensitively:
 * `*` within a segment, `**` across segments, a whole `/**` segment also no segment (`/docs/**`
 * matches `/docs`), trailing slashes ignored on both sides, and any `?query` or `#fragment` in
 * the pattern dropped, as the Conversion Detector's patterns are (compilePathPattern).
 */
export function pathPatternSource(pattern: string): string {
	const path = pattern.split(/[?#]/)[0].replace(/(.)\/+$/, '$1');
	const body = path
		.replace(/[^\w*/]/g, '\\$&')
		.replace(/\/\*\*(?=\/|$)|\*\*?/g, (star) => (star.length == 3 ? '(/.*)?' : star.length == 2 ? '.*' : '[^/]*'));
	return `^${body}/*$`;
}

export function trackerSettings({ tracking, privacy }: Pick<SiteConfig, 'tracking' | 'privacy'>): TrackerSettings {
	const rules: TrackerRelevanceRule[] = tracking.eventRelevance.map(({ type, name, urlPattern, relevance }) => ({
		type,
		name,
		path: urlPattern && pathPatternSource(urlPattern),
		relevance,
	}));
	for (const [type, relevance] of Object.entries(DEFAULT_RELEVANCE)) rules.push({ type: type as TrackEventType, relevance });
	rules.push({ relevance: 5 });
	return {
		rules,
		// Without smart events every event is sent, whatever its relevance.
		threshold: tracking.enableSmartEvents ? tracking.relevanceThreshold : 1,
		timeout: tracking.sessionTimeout * 1000,
		maxLength: tracking.maxSessionDuration * 1000,
		hashRouting: tracking.hashRouting,
		cookieless: tracking.cookieless,
		consent: privacy.cookieConsent,
		downloads: `\\.(${tracking.downloadExtensions.join('|')})$`,
	};
}

