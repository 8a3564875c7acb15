import type { LeadPayloadInput } from '../../lib/contracts/lead';
import type { EventContext, TrackEvent, TrackEventType } from '../../lib/contracts/tracking';
import { CLICK_ID, UTM, clip, config, configure, relevanceOf, sessionOver, sessionSummary, startSession, updateSession, uuidv7, warn, type Props, type Session, type TrackerOptions } from './rules';

/**
 * The tracker's glue: the page's events, storage and the network, in one module so that the
 * bundle is one closure of short local names. Every entry point (public API, listeners, timers)
 * goes through safe(), so nothing it does throws into the page.
 */

/** What identify() may say about the lead besides the address: the lead contract's fields. */
export type Traits = Omit<LeadPayloadInput, 'site' | 'email' | 'eventId' | 'anonymousId'>;
export type { TrackerOptions };
type Item = TrackEvent | LeadPayloadInput;

const safe =
	<A extends unknown[]>(run: (...args: A) => unknown) =>
	(...args: A): void => {
		try {
			run(...args);
		} catch (error) {
			warn(error);
		}
	};

const on = (type: string, listener: (event: never) => unknown, options?: boolean | AddEventListenerOptions) => addEventListener(type, safe(listener) as EventListener, options);

/**
 * JSON values under `tcrm.` keys in localStorage, or in sessionStorage in cookieless mode, where
 * nothing outlives the tab. The visitor's consent choice is always in localStorage: an opt-out
 * that lasted only as long as the tab would not be one. It holds no identifier. Where storage is
 * blocked (privacy settings, sandboxed iframes) reading fails quietly and nothing is sent.
 */
const storage = (forTabOnly?: unknown) => (forTabOnly ? sessionStorage : localStorage);

function get<T>(key: string, store = storage(config!.cookieless)): T | undefined {
	try {
		return JSON.parse(store.getItem('tcrm.' + key)!);
	} catch {
		return undefined;
	}
}

const put = (key: string, value: unknown, store = storage(config!.cookieless)) => store.setItem('tcrm.' + key, JSON.stringify(value));

const drop = (keys: string[], store = storage(config!.cookieless)) => keys.map((key) => store.removeItem('tcrm.' + key));

const granted = () => get('consent', storage()) == 'granted';

/**
 * Whether anything may be sent: not before init(), not after an opt-out, not when the browser
 * signals Global Privacy Control or Do Not Track (unless the site config says it does not
 * honour them: the receiver drops such batches anyway), and only after consent where the site
 * asks for it.
 */
const allowed = () =>
	config &&
	get('consent', storage()) != 'denied' &&
	!(config.respectGlobalPrivacyControl && (navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl) &&
	!(config.respectDoNotTrack && navigator.doNotTrack == '1') &&
	(!config.cookieConsent || granted());

/**
 * The queue: events and leads in the order they happened, kept in storage so that a page closed
 * offline loses nothing. Requests are cut from its head when sent: up to 50 events (the
 * receiver's limit) and about 16,000 characters, so that several fit the browser's 64 KB beacon
 * quota at once; a lead goes alone, to the lead endpoint.
 */
let timer = 0;
let sending = false;
let failures = 0;

const queue = () => get<Item[]>('queue') || [];

/** The request at the head of `items`: its URL, its body and the items it carries. A batch is stamped with its send time, from which the receiver corrects the client's clock. */
function request(items: Item[]): [string, string, Item[]] {
	const batch: Item[] = [];
	for (const item of items) {
		if ('email' in item) {
			if (batch[0]) break;
			return [new URL('lead', config!.endpoint).href, JSON.stringify(item), [item]];
		}
		if (batch[49] || JSON.stringify(batch).length > 16e3) break;
		batch.push(item);
	}
	return [config!.endpoint, JSON.stringify({ site: config!.site, consent: granted() ? 'granted' : undefined, sentAt: Date.now(), events: batch }), batch];
}

/** Drops what the receiver got, by id: other tabs (and this one) may have queued more meanwhile. */
function forget(sent: Item[]): void {
	const done = JSON.stringify(sent);
	put(
		'queue',
		queue().filter((item) => !done.includes(JSON.stringify(item))),
	);
}

const schedule = (delay: number) => (timer ||= setTimeout(safe(flush), delay));

/**
 * Sends the head of the queue, then the next. A network error, a 429 or a 5xx keeps it and
 * retries after an exponential backoff with jitter (2 s doubling up to about 4 min), or as soon
 * as the browser is back online. Any other answer is final: a request the receiver refused as
 * invalid would be refused forever, and must not block the queue behind it.
 *
 * When the page may be gone in a moment (`leaving`), the queue goes out as beacons, which the
 * browser delivers after the page is closed, or by fetch with keepalive where a beacon is over
 * its quota. Offline, a beacon is accepted and then lost, so the queue waits for the next page.
 */
function flush(leaving?: boolean): void {
	clearTimeout(timer);
	timer = 0;
	const [url, body, items] = request(queue());
	if (!items[0] || (sending && !leaving) || !navigator.onLine) return;
	if (leaving && navigator.sendBeacon(url, body)) {
		forget(items);
		return flush(leaving);
	}
	sending = true;
	fetch(url, { method: 'POST', body, keepalive: leaving })
		.then((response) => {
			if (response.status == 429 || response.status > 499) throw 0;
			sending = false;
			failures = 0;
			forget(items);
			flush();
		})
		.catch(() => {
			sending = false;
			schedule(2e3 * 2 ** Math.min(failures++, 7) * (0.5 + Math.random()));
		});
}

/** Steady state: one request every 2 s at most. The newest 1,000 items are kept. */
function enqueue(item: Item): void {
	put('queue', [...queue(), item].slice(-1e3));
	schedule(2e3);
}

let started = false;
/** Where the visitor came from; only the first page view of a document carries it. */
let referrer = document.referrer;
/** Scroll depth and the moment the current page became visible (0 while hidden). */
let depth = 0;
let visibleSince = 0;

function anonymousId(): string {
	let id = get<string>('id');
	if (!id) put('id', (id = uuidv7()));
	return id;
}

const queueEvent = (session: Session, event: Pick<TrackEvent, 'type' | 'ts' | 'url'> & Partial<TrackEvent>) =>
	enqueue({ id: uuidv7(event.ts), anonymousId: anonymousId(), sessionId: session.id, ...event });

/**
 * Every event goes through here: the session it belongs to (a session that ended gets its summary
 * first), its relevance from the site's rules, and only at or above the threshold into the queue.
 * Rules match the page's path, or with hash routing the route in the fragment (#/pricing, #!/pricing).
 * navigator.webdriver marks a browser driven by WebDriver, Puppeteer or Playwright.
 */
function emit(type: TrackEventType, name?: string, props?: Props, context?: EventContext, campaign = ''): void {
	if (!allowed()) return;
	const { hashRouting, eventRelevance, relevanceThreshold, engagementThresholds } = config!;
	const now = Date.now();
	const url = clip(location.href, 2048);
	let session = get<Session>('session');
	if (sessionOver(session, now, campaign, config!.sessionTimeout * 1e3, config!.maxSessionDuration * 1e3)) {
		if (session) queueEvent(session, { type: 'session_end', ts: session.last, url: session.exit, props: sessionSummary(session, engagementThresholds) });
		session = startSession(now, campaign, url);
	}
	const relevance = relevanceOf(eventRelevance, type, name, (hashRouting && location.hash.match(/^#!?(\/[^?]*)/)?.[1]) || location.pathname);
	updateSession(session!, type, now, url, relevance, props);
	put('session', session);
	if (relevance >= relevanceThreshold)
		queueEvent(session!, {
			type,
			name,
			ts: now,
			url,
			title: clip(document.title, 512),
			referrer: type == 'pageview' && /^http/.test(referrer) ? clip(referrer, 2048) : undefined,
			relevance,
			props,
			context: navigator.webdriver ? { ...context, automation: true } : context,
		});
	if (type == 'pageview') referrer = '';
}

/**
 * Engaged time is the time the page is visible; every moment it stops being so (hidden, left,
 * replaced by an SPA route) reports the time since the last report, so the reports add up and
 * nothing is counted twice.
 */
function reportEngagement(stillVisible?: boolean): void {
	const engagedMs = visibleSince && Date.now() - visibleSince;
	visibleSince = stillVisible ? Date.now() : 0;
	if (engagedMs > 999) emit('engagement', undefined, { engagedMs });
}

/**
 * A page view, with the landing page's campaign parameters, click ids, language and time zone
 * (no screen size: it tells dashboards little that the user agent does not, and helps
 * fingerprinting), and the campaign as one key so that a visit from a new campaign starts a new
 * session. Its scroll depth starts from the top, its time from now.
 */
function pageview(): void {
	depth = 0;
	visibleSince = document.hidden ? 0 : Date.now();
	const context: EventContext & Record<string, unknown> = { language: navigator.language, timezone: Intl.DateTimeFormat().resolvedOptions().timeZone };
	let campaign = '';
	new URLSearchParams(location.search).forEach((value, name) => {
		if (UTM.test(name)) context[name] = clip(value, 200);
		else if (CLICK_ID.test(name)) (context.clickIds ||= {})[name as 'gclid'] = clip(value, 500);
		else return;
		campaign += name + value;
	});
	emit('pageview', undefined, undefined, context, clip(campaign, 1000));
}

/**
 * Clicks on links that leave the site (outbound) or fetch a file (download). Listened for in the
 * capture phase, so a page that stops propagation still counts; middle clicks too (auxclick),
 * as they open the link in a new tab. The page's navigation is never delayed: a beacon on
 * pagehide carries the event.
 */
function onClick(event: MouseEvent): void {
	const link = (event.target as Element).closest?.('a');
	if (!link || !/^http/.test(link.protocol) || event.button == 2) return;
	const props = { url: clip(link.href, 1000) };
	if (link.hasAttribute('download') || /\.(pdf|docx?|xlsx?|pptx?|csv|txt|zip|rar|7z|gz|dmg|exe|msi|pkg|apk|mp[34])$/i.test(link.pathname))
		emit('download', clip(link.pathname.split('/').pop()!, 100), props);
	else if (link.host != location.host) emit('outbound', link.hostname, props);
}

/** The lead field a form field fills, by its name or input type, and that field's length in the lead contract. */
const LEAD_FIELDS: [keyof LeadPayloadInput, RegExp, number][] = [
	['email', /mail/i, 254],
	['phone', /phone|tel/i, 40],
	['lastName', /last|surname/i, 100],
	['company', /company|organi/i, 100],
	['firstName', /first|^name$|full.?name/i, 100],
];

/**
 * Every form submission is an event, named by the form's id or name attribute (read as
 * attributes: a field named "id" would shadow form.id). With the visitor's consent (whatever the
 * site's consent setting), a form with an email field is a lead: email, name, phone and company.
 * Never read: passwords, hidden and file fields, payment fields (autocomplete cc-*) and anything
 * named like a secret. A ticked box named like consent or a newsletter is marketing consent.
 */
function onSubmit(event: SubmitEvent): void {
	const form = event.target as HTMLFormElement;
	const lead: Record<string, unknown> = { formId: clip(form.getAttribute('id') || form.getAttribute('name') || '', 100) || undefined };
	emit('form_submit', lead.formId as string);
	for (const field of form.elements as unknown as HTMLInputElement[]) {
		const { name, type, value } = field;
		if (!value || /pass|hidden|file|cc-|card|cvv|cvc|iban|ssn|secret|token/i.test(name + type + field.autocomplete)) continue;
		if (/checkbox|radio/.test(type)) {
			if (field.checked && /consent|opt.?in|newsletter|gdpr|marketing/i.test(name)) lead.consent = true;
		} else {
			const [key, , max] = LEAD_FIELDS.find(([, pattern]) => pattern.test(name) || pattern.test(type)) || [];
			if (key) lead[key] ??= clip(value.trim(), max!);
		}
	}
	if (lead.email && granted()) identify(lead.email as string, lead);
}

function leave(): void {
	reportEngagement();
	flush(true);
}

/** Starts listening (once) and counts the current page; until tracking is allowed nothing is read or sent. */
function start(): void {
	if (started || !allowed()) return;
	started = true;
	on('online', () => flush());
	schedule(2e3);
	/**
	 * One page view per real URL change of a single-page app: pushState and replaceState (wrapped,
	 * since browsers fire no event for them), back and forward (popstate), fragment changes only
	 * where the site routes by fragment, and back-forward cache restores, which show the page again
	 * without loading it. A change to the same URL (a router replacing its state, a click on the
	 * current link) is no page view.
	 */
	const current = () => (config!.hashRouting ? location.href : location.href.split('#')[0]);
	let last = current();
	const check = safe((restored?: PageTransitionEvent) => {
		if (current() != last || restored?.persisted) {
			last = current();
			reportEngagement(true);
			pageview();
		}
	});
	for (const method of ['pushState', 'replaceState'] as const) {
		const original = history[method];
		history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
			original.apply(this, args);
			check();
		};
	}
	for (const type of ['popstate', 'hashchange', 'pageshow']) on(type, check);
	on(
		'scroll',
		() => {
			// One scroll event per quarter of the page reached (25, 50, 75, 100), the deepest one only.
			const reached = Math.floor(((scrollY + innerHeight) / document.documentElement.scrollHeight) * 4) * 25;
			if (reached > depth) emit('scroll', `${(depth = reached)}%`, { depth });
		},
		{ passive: true },
	);
	on('click', onClick, true);
	on('auxclick', onClick, true);
	on('submit', onSubmit, true);
	on('visibilitychange', () => (document.hidden ? leave() : (visibleSince ||= Date.now())));
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
export const track = safe((name: string, props?: Props) => emit('custom', clip(name, 100), props));

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
	put('consent', state == 'granted' ? state : 'denied', storage());
	if (state == 'granted') return start();
	drop(['id', 'session', 'queue'], storage());
	drop(['id', 'session', 'queue'], storage(1));
});

/** A persistent opt-out: consent('denied'). */
export const optOut = () => consent('denied');

/** Forgets who the visitor is (after a logout): the next event starts a new anonymous id and session. */
export const reset = safe(() => drop(['id', 'session']));
