import type { LeadPayloadInput } from '../../lib/contracts/lead';
import type { TrackEvent } from '../../lib/contracts/tracking';
import { on, safe, warn } from './debug';
import { granted } from './privacy';
import { get, put } from './storage';
import { config } from './tracking-config';

/**
 * The queue: events and leads in the order they happened, kept in storage so that a page closed
 * offline loses nothing. Requests are cut from its head when sent: up to 50 events (the
 * receiver's limit) and about 16,000 characters, so that several fit the browser's 64 KB beacon
 * quota at once; a lead goes alone, to the lead endpoint.
 */
type Item = TrackEvent | LeadPayloadInput;

let timer: ReturnType<typeof setTimeout> | 0 = 0;
let sending = false;
let failures = 0;

const queue = () => get<Item[]>('queue') ?? [];

function nextRequest(items: Item[]): Item[] {
	const batch: Item[] = [];
	for (const item of items) {
		if ('email' in item ? batch[0] : batch[49] || JSON.stringify(batch).length > 16e3) break;
		batch.push(item);
		if ('email' in item) break;
	}
	return batch;
}

/** URL and body of a request. A batch is stamped with its send time, from which the receiver corrects the client's clock. */
const request = (items: Item[]): [string, string] =>
	'email' in items[0]
		? [config!.lead, JSON.stringify(items[0])]
		: [config!.endpoint, JSON.stringify({ site: config!.site, consent: granted() ? 'granted' : undefined, sentAt: Date.now(), events: items })];

const idOf = (item: Item) => ('email' in item ? item.eventId : item.id);

/** Drops what the receiver got, by id: other tabs (and this one) may have queued more meanwhile. */
function forget(sent: Item[]): void {
	const done = sent.map(idOf);
	put('queue', queue().filter((item) => !done.includes(idOf(item))));
}

const schedule = (delay: number) => (timer ||= setTimeout(safe(flush), delay));

/**
 * Sends the head of the queue, then the next. A network error, a 429 or a 5xx keeps it and
 * retries after an exponential backoff with jitter (2 s doubling up to 5 min), or as soon as the
 * browser is back online. Any other answer is final: a request the receiver refused as invalid
 * would be refused forever, and must not block the queue behind it.
 */
function flush(): void {
	clearTimeout(timer);
	timer = 0;
	const items = nextRequest(queue());
	if (!items[0] || sending || !navigator.onLine) return;
	const [url, body] = request(items);
	sending = true;
	fetch(url, { method: 'POST', body })
		.then((response) => {
			if (response.status == 429 || response.status > 499) throw 0;
			if (!response.ok) warn(`${url} refused a request: ${response.status}`);
			sending = false;
			failures = 0;
			forget(items);
			flush();
		})
		.catch(() => {
			sending = false;
			schedule(Math.min(2e3 * 2 ** failures++, 3e5) * (0.5 + Math.random()));
		});
}

/** Steady state: one request every 2 s at most; a lead at once. The newest 1,000 items are kept. */
export function enqueue(item: Item): void {
	put('queue', [...queue(), item].slice(-1e3));
	schedule('email' in item ? 0 : 2e3);
}

/**
 * The page may be gone in a moment: everything queued goes out as beacons, which the browser
 * delivers after the page is closed (fetch with keepalive where beacons are unavailable or over
 * their quota). Offline, a beacon is accepted and then lost, so items stay queued for the next
 * page unless the browser is online; an item sent twice is stored once.
 */
export function flushOnExit(): void {
	const sent: Item[] = [];
	for (let items = queue(), batch; (batch = nextRequest(items))[0]; items = items.slice(batch.length)) {
		const [url, body] = request(batch);
		if (navigator.sendBeacon?.(url, body)) sent.push(...batch);
		else fetch(url, { method: 'POST', body, keepalive: true }).catch(() => {});
	}
	if (navigator.onLine) forget(sent);
}

export function startDelivery(): void {
	on('online', () => {
		failures = 0;
		flush();
	});
	schedule(2e3);
}
