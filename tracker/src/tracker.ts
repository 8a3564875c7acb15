import type { LeadPayloadInput } from '../../lib/contracts/lead';
import type { TrackerSettings } from '../../lib/contracts/trackerSettings';
import type { TrackEvent, TrackEventType } from '../../lib/contracts/tracking';
import { campaignOf, configure, relevanceOf, sessionOver, startSession, updateSession, uuidv7, type Config, type Props, type Session, type TrackerOptions } from './rules';

/**
 * The tracker's glue: the page's events, storage and the network, in one module so that the
 * bundle is one closure of short local names. Nothing it does may throw into the page: every
 * listener and timer goes through safe(), and so does every public call (the script tag's
 * tcrm() in script.ts, the ESM build's exports in index.ts).
 */

/** What identify() may say about the lead besides the address: the lead contract's fields. */
export type Traits = Omit<LeadPayloadInput, 'site' | 'email' | 'eventId' | 'anonymousId'>;
export type { TrackerOptions };
type Item = TrackEvent | LeadPayloadInput;

export const safe =
	<A extends unknown[]>(run: (...args: A) => unknown) =>
	(...args: A): void => {
		try {
			run(...args);
		} catch {
			// Never into the page.
		}
	};

/** The site and its settings from the receiver; undefined until they arrived. */
let config: Config | undefined;

/**
 * JSON values under `tcrm.` keys in localStorage, or in sessionStorage in cookieless mode, where
 * nothing outlives the tab. The visitor's consent choice (with the version it was made under) is
 * always in localStorage: an opt-out that lasted only as long as the tab would not be one. It
 * holds no identifier. Where storage is blocked (privacy settings, sandboxed iframes) reading it
 * throws, safe() swallows it, and nothing is sent.
 */
const storage = (key: string) => (config?.cookieless && key != 'consent' ? sessionStorage : localStorage);

const get = <T>(key: string): T | null => JSON.parse(storage(key).getItem('tcrm.' + key)!);

/** Stores `value` and returns it. */
const put = <T>(key: string, value: T): T => (storage(key).setItem('tcrm.' + key, JSON.stringify(value)), value);

/**
 * The visitor's consent choice and the version of the banner or policy it was made under, as
 * [state, version]; trackers before the version (0.1.0) stored the state alone, which reads as
 * [state]. Nothing chosen yet reads as [null].
 */
const choice = () => ([] as unknown[]).concat(get('consent')) as [state?: 'granted' | 'denied' | null, version?: string | null];

/** Deletes the keys from both storages: where they are may have changed with the site's cookieless setting. */
const erase = (...keys: string[]) => [localStorage, sessionStorage].map((store) => keys.map((key) => store.removeItem('tcrm.' + key)));

/**
 * Whether anything may be sent: not before the settings arrived, then as the visitor chose, and
 * without a choice only where the site does not ask for consent. A browser that signals Global
 * Privacy Control or Do Not Track gets no settings where the site honours them (the receiver
 * reads the headers).
 */
const allowed = (chosen = choice()[0]) => config && (chosen ? chosen == 'granted' : !config.consent);

/**
 * The queue: events and leads in the order they happened, kept in storage so that a page closed
 * offline loses nothing. Requests are cut from its head when sent: up to 50 events (the
 * receiver's limit) and about 16,000 characters, so that several fit the browser's 64 KB beacon
 * quota at once; a lead goes alone, to the lead endpoint.
 */
let timer = 0;
let sending: unknown;
let failures = 0;

const queue = () => get<Item[]>('queue') || [];

const schedule = (delay: number) => (timer ||= setTimeout(safe(flush), delay));

/**
 * Sends the head of the queue, then the next. A batch carries the visitor's consent choice and its
 * version, which the receiver records when they changed, and is stamped with its send time, from
 * which the receiver corrects the client's clock, and with navigator.webdriver, which marks a browser
 * driven by WebDriver, Puppeteer or Playwright. A network error, a 429 or a 5xx keeps it and
 * retries after an exponential backoff with jitter (2 s doubling up to about 4 min), or as soon
 * as the browser is back online. Any other answer is final: a request the receiver refused as
 * invalid would be refused forever, and must not block the queue behind it. What was sent is
 * dropped by id: other tabs (and this one) may have queued more meanwhile.
 *
 * When the page may be gone in a moment (`leaving`), the queue goes out as beacons, which the
 * browser delivers after the page is closed, or by fetch with keepalive where a beacon is over
 * its quota. Offline, a beacon is accepted and then lost, so the queue waits for the next page.
 */
const flush = (leaving?: boolean): void => {
	clearTimeout(timer);
	timer = 0;
	const items: Item[] = [];
	let url = config!.endpoint;
	let payload: unknown = { site: config!.site, consent: choice()[0] || undefined, consentVersion: choice()[1] || undefined, sentAt: Date.now(), automation: navigator.webdriver, events: items };
	for (const item of queue()) {
		if ((item as LeadPayloadInput).email) {
			if (!items[0]) {
				items.push((payload = item));
				url = new URL('lead', url).href;
			}
			break;
		}
		if (items[49] || JSON.stringify(items).length > 16e3) break;
		items.push(item);
	}
	const body = JSON.stringify(payload);
	// Ids are UUIDs: the body holds the ids of the items it carries, and no other item's.
	const forget = () => put('queue', queue().filter((item) => !body.includes((item as TrackEvent).id || (item as LeadPayloadInput).eventId!)));
	if (!items[0] || (sending && !leaving) || !navigator.onLine) return;
	if (leaving && navigator.sendBeacon(url, body)) {
		forget();
		return flush(leaving);
	}
	sending = fetch(url, { method: 'POST', body, keepalive: leaving })
		.then((response) => {
			if (response.status > 499 || response.status == 429) throw 0;
			failures = sending = 0;
			forget();
			flush();
		})
		.catch(() => {
			sending = 0;
			schedule(2e3 * 2 ** Math.min(failures++, 7) * (0.5 + Math.random()));
		});
};

/** Steady state: one request every 2 s at most. The newest 1,000 items are kept. */
const enqueue = (item: Item): void => {
	put('queue', [...queue(), item].slice(-1e3));
	schedule(2e3);
};

let started: unknown;
/** Where the visitor came from; only the first page view of a document carries it (undefined after). */
let referrer: string | undefined = document.referrer;
/** Scroll depth and the moment the current page became visible (0 while hidden). */
let depth = 0;
let visibleSince = 0;

const anonymousId = () => get<string>('id') || put('id', uuidv7());

const queueEvent = (session: Pick<Session, 'id'>, event: Pick<TrackEvent, 'type' | 'ts' | 'url'> & Partial<TrackEvent>) =>
	enqueue({ id: uuidv7(event.ts), anonymousId: anonymousId(), sessionId: session.id, ...event });

/**
 * Records the visitor's choice, for good, with the version of the banner or policy it was made
 * under (the site's own label, at most 64 characters), which every batch then carries: 'granted'
 * starts tracking; anything else is a refusal, which stops it and deletes the ids, the session
 * and the queue of unsent events. A browser that was tracked first tells the receiver, which
 * records the withdrawal: one beacon with the refusal and one event of this browser on this page
 * (a batch holds one at least), which the receiver drops with its batch. The unsent events go
 * unsent. Before the settings arrived (or offline) it cannot be sent, and is not.
 */
export const consent = (state: 'granted' | 'denied', version?: string): void => {
	put('consent', [state == 'granted' ? state : 'denied', version]);
	if (state == 'granted') return start();
	const id = get<string>('id');
	if (id && config) {
		erase('queue');
		// The id stands for the session too: a browser may have none, and the receiver keeps nothing of it.
		queueEvent({ id }, { type: 'pageview', ts: Date.now(), url: location.href });
		flush(true);
	}
	erase('id', 'session', 'queue');
};

/**
 * Every event goes through here: the session it belongs to (a session that ended gets its summary
 * first), its relevance from the site's rules, and only at or above the threshold into the queue.
 * Rules match the page's path, or with hash routing the route in the fragment (#/pricing, #!/pricing).
 * `campaign` is a page view's campaign parameters as one key. Events are emitted after the first
 * page view, so the referrer goes with that one only.
 */
const emit = (type: TrackEventType, name?: string, props?: Props, campaign?: string): void => {
	if (!allowed()) return;
	const now = Date.now();
	const url = location.href;
	let session = get<Session>('session');
	if (sessionOver(session, now, campaign, config!.timeout, config!.maxLength)) {
		if (session) queueEvent(session, { type: 'session_end', ts: session.l, url: session.x!, props: session as unknown as Props });
		session = startSession(now, campaign);
	}
	const relevance = relevanceOf(config!.rules, type, name, (config!.hashRouting && location.hash.match(/^#!?(\/[^?]*)/)?.[1]) || location.pathname);
	updateSession(session!, type, now, url, relevance, props);
	put('session', session);
	if (relevance >= config!.threshold)
		queueEvent(session!, { type, ts: now, url, title: document.title, relevance, name, props, referrer });
};

/**
 * Engaged time is the time the page is visible; every moment it stops being so (hidden, left,
 * replaced by an SPA route) reports the time since the last report, so the reports add up and
 * nothing is counted twice. A page view starts the count again.
 */
const reportEngagement = (): void => {
	const engagedMs = visibleSince && Date.now() - visibleSince;
	visibleSince = 0;
	if (engagedMs > 999) emit('engagement', undefined, { engagedMs });
};

/**
 * A page view. Its language the receiver takes from the request's Accept-Language; no screen
 * size or time zone: they tell dashboards little that the user agent and the country do not, and
 * help fingerprinting. Its URL carries the landing page's campaign parameters and click ids,
 * which the receiver takes into the context; here they are only one key, so that a visit from a
 * new campaign starts a new session. Its scroll depth starts from the top, its time from now.
 */
const pageview = (): void => {
	depth = 0;
	visibleSince = document.hidden ? 0 : Date.now();
	emit('pageview', undefined, undefined, campaignOf(location.search));
	referrer = undefined;
};

/**
 * Clicks on links that leave the site (outbound) or fetch a file (download); middle clicks too
 * (auxclick), as they open the link in a new tab. The page's navigation is never delayed: a
 * beacon on pagehide carries the event.
 */
const onClick = (event: MouseEvent): void => {
	// A click outside a link finds none, and reading its protocol throws into safe(): no event.
	const link = (event.target as Element).closest('a')!;
	if (!/^http/.test(link.protocol) || event.button == 2) return;
	const props = { url: link.href };
	if (link.hasAttribute('download') || RegExp(config!.downloads, 'i').test(link.pathname))
		emit('download', link.pathname.split('/').pop(), props);
	else if (link.host != location.host) emit('outbound', link.hostname, props);
};

/**
 * Every form submission is an event, named by the form's id or name attribute (read as
 * attributes: a field named "id" would shadow form.id). With the visitor's consent (whatever the
 * site's consent setting), a form with an email field is a lead: its fields go along, and the
 * receiver maps them to the lead's name, phone, company and marketing consent (withFormFields in
 * server/ingest/normalize.ts). Never read: passwords, hidden and file fields, payment fields
 * (autocomplete cc-*), anything named like a secret, and unticked boxes.
 */
const onSubmit = (event: SubmitEvent): void => {
	const form = event.target as HTMLFormElement;
	const formId = form.getAttribute('id') || form.getAttribute('name') || undefined;
	const fields: [string, string, string][] = [];
	let email = '';
	emit('form_submit', formId);
	for (const field of form.elements as unknown as HTMLInputElement[]) {
		const { name, type, value } = field;
		if (value && (field.checked || !/checkbox|radio/.test(type)) && !/pass|hidden|file|cc-|card|cv[cv]|iban|ssn|secret|token/i.test(name + type + field.autocomplete)) {
			fields.push([name, type, value]);
			if (/mail/i.test(name + type)) email ||= value.trim();
		}
	}
	if (email && choice()[0] == 'granted') identify(email, { formId, fields });
};

const leave = (): void => {
	reportEngagement();
	flush(true);
};

/** Starts listening (once) and counts the current page; until tracking is allowed nothing is read or sent. */
const start = (): void => {
	if (started || !allowed()) return;
	started = 1;
	schedule(2e3);
	/**
	 * One page view per real URL change of a single-page app: pushState and replaceState (wrapped,
	 * since browsers fire no event for them), back and forward (popstate), fragment changes only
	 * where the site routes by fragment (they fire popstate too), and back-forward cache restores,
	 * which show the page again without loading it. A change to the same URL (a router replacing its state, a click on the
	 * current link) is no page view.
	 */
	// Without hash routing the fragment is no part of the route (no URL contains a space to split at).
	const current = () => location.href.split(config!.hashRouting ? ' ' : '#')[0];
	let last = current();
	const check = safe((restored?: PageTransitionEvent) => {
		if (current() != last || restored?.persisted) {
			last = current();
			reportEngagement();
			pageview();
		}
	});
	for (const method of ['pushState', 'replaceState'] as const) {
		const original = history[method];
		// The original returns nothing: check() gets no pageshow event.
		history[method] = (...args: Parameters<History['pushState']>) => check(original.apply(history, args) as undefined);
	}
	/** Window listeners, in the capture phase: a page that stops propagation still counts clicks and submits. */
	const listeners: Record<string, (event: never) => unknown> = {
		online: () => flush(),
		popstate: check,
		pageshow: check,
		scroll() {
			// One scroll event per quarter of the page reached (25, 50, 75, 100), the deepest one only.
			// | 0 floors a small positive number.
			const reached = ((((scrollY + innerHeight) / document.documentElement.scrollHeight) * 4) | 0) * 25;
			if (reached > depth) emit('scroll', `${(depth = reached)}%`, { depth });
		},
		click: onClick,
		auxclick: onClick,
		submit: onSubmit,
		visibilitychange: () => (document.hidden ? leave() : (visibleSince ||= Date.now())),
		pagehide: leave,
	};
	for (const type in listeners) addEventListener(type, safe(listeners[type]) as EventListener, true);
	pageview();
};

/** Calls made before the settings arrived, run in order once they have. */
let waiting: [(...args: never[]) => unknown, unknown[]][] | 0 = [];

/** A public call: safe, and held back until the settings arrived (the rules that score it, the storage it uses). */
export const whenReady =
	<A extends unknown[]>(run: (...args: A) => unknown) =>
	(...args: A) =>
		waiting ? waiting.push([run as (...args: never[]) => unknown, args]) : safe(run)(...args);

/**
 * Reads the site's settings from the endpoint (GET, cached by the browser for minutes), then
 * starts and runs the calls made meanwhile. `base` resolves a relative endpoint: the page for
 * init(), the script's own URL for the script tag. Without settings (an unknown site, an origin
 * the site does not allow, no network) the tracker stays off for this page.
 */
export const boot = (options: TrackerOptions, base: string): void => {
	const where = configure(options, base);
	if (where)
		fetch(`${where.endpoint}?site=${where.site}`)
			.then((response) => response.ok && response.json())
			.then((settings: TrackerSettings | false) => {
				if (!settings || config) return;
				// The settings win over anything else the options held: a tag cannot turn cookieless mode off.
				config = { ...where, ...settings };
				start();
				const calls = waiting as [(...args: unknown[]) => unknown, unknown[]][];
				waiting = 0;
				calls.map(([run, args]) => safe(run)(...args));
			})
			// Offline, refused, or no settings for this browser (204): nothing to tell the page.
			.catch(() => 0);
};

/**
 * A custom event, scored by the site's rules like any other. Its properties must keep to the
 * contract (at most 50; strings, numbers, booleans or null), or the receiver refuses the batch.
 */
export const track = (name: string, props?: Props) => emit('custom', name + '', props);

/**
 * Makes the anonymous visitor a lead: POST /api/lead with the anonymous id, so the receiver joins
 * the earlier events to the lead, and the browser's time zone (unless `traits` names one), the
 * wall clock of the lead's email send windows. Queued like events, so it survives being offline.
 */
export const identify = (email: string, traits?: Traits) => allowed() && enqueue({ timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, ...traits, site: config!.site, email, anonymousId: anonymousId(), eventId: uuidv7() });

/** A persistent opt-out: consent('denied'). */
export const optOut = () => consent('denied');

/** Forgets who the visitor is (after a logout): the next event starts a new anonymous id and session. */
export const reset = () => erase('id', 'session');
