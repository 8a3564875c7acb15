import type { LeadPayloadInput } from '../../lib/contracts/lead';
import type { EventContext, TrackEvent, TrackEventType } from '../../lib/contracts/tracking';
import { automated, landing } from './attribution';
import { on, safe } from './debug';
import { enqueue, flushOnExit, startDelivery } from './delivery';
import { becameVisible, newPage, reportEngagement, watchScroll } from './engagement';
import { watchForms } from './forms';
import { watchLinks } from './links';
import { watchPageviews } from './pageviews';
import { allowed, granted, storeConsent } from './privacy';
import { sessionOver, startSession, updateSession, type Session } from './sessionManager';
import { relevanceOf, sessionSummary } from './smartTracker';
import { drop, get, put, storage } from './storage';
import { clip } from './text';
import { config, configure, type TrackerOptions } from './tracking-config';
import { uuidv7 } from './uuid';

export type Emit = (type: TrackEventType, name?: string, props?: TrackEvent['props'], context?: EventContext, campaign?: string) => void;
/** What identify() may say about the lead besides the address: the lead contract's fields. */
export type Traits = Omit<LeadPayloadInput, 'site' | 'email' | 'eventId' | 'anonymousId'>;
export type { TrackerOptions };

let started = false;
/** Where the visitor came from; only the first page view of a document carries it. */
let referrer = document.referrer;

function anonymousId(): string {
	let id = get<string>('id');
	if (!id) put('id', (id = uuidv7()));
	return id;
}

const queue = (session: Session, event: Pick<TrackEvent, 'type' | 'ts' | 'url'> & Partial<TrackEvent>) =>
	enqueue({ id: uuidv7(event.ts), anonymousId: anonymousId(), sessionId: session.id, ...event });

/**
 * Every event goes through here: the session it belongs to (a session that ended gets its summary
 * first), its relevance from the site's rules, and only at or above the threshold into the queue.
 * Rules match the page's path, or with hash routing the route in the fragment (#/pricing, #!/pricing).
 */
const emit: Emit = (type, name, props, context, campaign = '') => {
	if (!allowed()) return;
	const { hashRouting, eventRelevance, relevanceThreshold, engagementThresholds } = config!;
	const now = Date.now();
	const url = clip(location.href, 2048);
	let session = get<Session>('session');
	if (sessionOver(session, now, campaign, config!.sessionTimeout * 1e3, config!.maxSessionDuration * 1e3)) {
		if (session) queue(session, { type: 'session_end', ts: session.last, url: session.exit, props: sessionSummary(session, engagementThresholds) });
		session = startSession(now, campaign, url);
	}
	const route = hashRouting && /^#!?\//.test(location.hash) ? location.hash.replace(/^#!?/, '').split('?')[0] : location.pathname;
	const relevance = relevanceOf(eventRelevance, type, name, route);
	updateSession(session!, type, now, url, relevance, props);
	put('session', session);
	if (relevance < relevanceThreshold) return;
	queue(session!, {
		type,
		name,
		ts: now,
		url,
		title: clip(document.title, 512) || undefined,
		referrer: type == 'pageview' && /^https?:/.test(referrer) ? clip(referrer, 2048) : undefined,
		relevance,
		props,
		context: context ?? (automated() ? { automation: true } : undefined),
	});
	if (type == 'pageview') referrer = '';
};

function pageview(): void {
	newPage();
	emit('pageview', undefined, undefined, ...landing());
}

function leave(): void {
	reportEngagement(emit);
	flushOnExit();
}

/** Starts listening (once) and counts the current page; until tracking is allowed nothing is read or sent. */
function start(): void {
	if (started || !allowed()) return;
	started = true;
	startDelivery();
	watchPageviews(config!.hashRouting, () => {
		reportEngagement(emit, true);
		pageview();
	});
	watchScroll(emit);
	watchLinks(emit);
	// A form becomes a lead only with the visitor's consent, whatever the site's consent setting.
	watchForms(emit, ({ email, ...traits }) => email && granted() && identify(email, traits));
	on('visibilitychange' as 'focus', () => (document.hidden ? leave() : becameVisible()));
	on('pagehide', leave);
	pageview();
}

/** `base` resolves a relative endpoint: the page for init(), the script's own URL for the script tag. */
export const boot = safe((options: TrackerOptions, base: string) => configure(options, base) && start());

/** Starts the tracker with a site's options (TrackerOptions); the script tag does it with its data-* attributes. Only the first call counts. */
export const init = (options: TrackerOptions) => boot(options, location.href);

/**
 * A custom event, scored by the site's rules like any other. Its properties must keep to the
 * contract (at most 50, values up to 1,000 characters), or the receiver refuses the batch.
 */
export const track = safe((name: string, props?: TrackEvent['props']) => emit('custom', clip(name, 100), props));

/**
 * Makes the anonymous visitor a lead: POST /api/lead with the anonymous id, so the receiver joins
 * the earlier events to the lead. Queued like events, so it survives being offline.
 */
export const identify = safe((email: string, traits?: Traits) => allowed() && enqueue({ ...traits, site: config!.site, email, anonymousId: anonymousId(), eventId: uuidv7() }));

/**
 * Records the visitor's choice, for good: 'granted' starts tracking; anything else is a refusal,
 * which stops it and deletes the ids, the session and the queue of unsent events.
 */
export const consent = safe((state: 'granted' | 'denied') => {
	storeConsent(state == 'granted' ? state : 'denied');
	if (state == 'granted') return start();
	for (const key of ['id', 'session', 'queue']) {
		drop(key, storage());
		drop(key, storage(1));
	}
});

/** A persistent opt-out: consent('denied'). */
export const optOut = () => consent('denied');

/** Forgets who the visitor is (after a logout): the next event starts a new anonymous id and session. */
export const reset = safe(() => {
	drop('id');
	drop('session');
});
