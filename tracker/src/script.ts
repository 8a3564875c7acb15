import type { TrackerOptions } from './rules';
import { boot, consent, identify, optOut, reset, track, whenReady } from './tracker';

/** A consent choice counts at once, even where the settings never arrive; the rest waits for them. */
const api = { track: whenReady(track), identify: whenReady(identify), reset: whenReady(reset), consent, optOut };
type Call = [method: keyof typeof api, ...args: unknown[]];

/**
 * The script-tag build: options from the tag's data-* attributes, a relative endpoint resolved
 * against the script's own URL. Calls go through window.tcrm('track', 'signup', { plan: 'pro' }). Calls made
 * before the script ran were queued by the site's stub,
 * `window.tcrm = window.tcrm || function () { (tcrm.q = tcrm.q || []).push(arguments) }`,
 * and are replayed in order. Nothing throws into the page: not the start, not a call.
 */
try {
	const script = document.currentScript as HTMLScriptElement;
	boot(script.dataset as unknown as TrackerOptions, script.src);
	const global = window as Window & { tcrm?: ((...call: Call) => void) & { q?: Call[] } };
	const queued = global.tcrm?.q || [];
	const tcrm = (global.tcrm = (method: Call[0], ...args: unknown[]) => {
		try {
			(api[method] as (...a: unknown[]) => void)(...args);
		} catch {
			// Never into the page.
		}
	});
	for (const call of queued) tcrm(...call);
} catch {
	// Never into the page.
}
