import type { SiteConfig } from '../../lib/contracts/siteConfig';
import { warn } from './debug';
import { storage } from './storage';

type Tracking = SiteConfig['tracking'];

export type RelevanceRule = Tracking['eventRelevance'][number];

/**
 * Options of init() and of the script tag's data-* attributes (data-session-timeout is
 * sessionTimeout). They carry the names and units of the site config's tracking and privacy
 * sections, so a site copies its values over as they are.
 */
export type TrackerOptions = { site: string; endpoint?: string } & Partial<
	Pick<Tracking, 'sessionTimeout' | 'maxSessionDuration' | 'debugMode' | 'relevanceThreshold' | 'eventRelevance' | 'engagementThresholds' | 'hashRouting' | 'cookieless'> &
		Pick<SiteConfig['privacy'], 'cookieConsent' | 'respectGlobalPrivacyControl' | 'respectDoNotTrack'>
>;

/** Defaults as in the site config schema: a tracker without options behaves as a site config without them. */
export const DEFAULTS = {
	site: '',
	endpoint: '/api/track',
	sessionTimeout: 1800,
	maxSessionDuration: 43_200,
	debugMode: false,
	relevanceThreshold: 1,
	eventRelevance: [] as RelevanceRule[],
	engagementThresholds: { medium: 30, high: 60 },
	hashRouting: false,
	cookieless: false,
	cookieConsent: true,
	respectGlobalPrivacyControl: true,
	respectDoNotTrack: true,
};

export type Config = typeof DEFAULTS & {
	/** The lead endpoint: the track endpoint's sibling `lead` (/api/track → /api/lead). */
	lead: string;
	store: Storage;
};

/** The running tracker's configuration; undefined until init() accepted one. */
export let config: Config | undefined;

/**
 * Takes the options over the defaults, once. Every mistake (unknown options, a missing site
 * key, an endpoint that is no http(s) URL) is named in ONE console warning, in debug mode; the
 * last two leave the tracker off, since it could only send what the receiver refuses. A
 * relative endpoint resolves against `base`: the script's own URL for the script tag, so the
 * receiver that served the script is the one that receives.
 */
export function configure(options: Record<string, unknown>, base: string): Config | undefined {
	const candidate = { ...DEFAULTS, ...options } as Config;
	const mistakes = Object.keys(options)
		.filter((key) => !(key in DEFAULTS))
		.map((key) => `${key} (unknown)`);
	if (!candidate.site) mistakes.push('site (data-site is required)');
	try {
		const url = new URL(candidate.endpoint, base);
		if (!/^https?:/.test(url.protocol)) throw url;
		candidate.endpoint = url.href;
		candidate.lead = new URL('lead', url).href;
	} catch {
		candidate.site = '';
		mistakes.push('endpoint (must be an http(s) URL)');
	}
	candidate.store = storage(candidate.cookieless);
	config ??= candidate.site ? candidate : undefined;
	// A rejected config is not the running one, yet its debugMode decides whether to tell.
	if (mistakes[0]) warn(`check the options: ${mistakes.join(', ')}${config ? '' : '; tracking is off'}`, candidate.debugMode);
	return config;
}
