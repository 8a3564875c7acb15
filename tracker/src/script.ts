import { configure } from './rules';
import { consent, identify, optOut, reset, start, track } from './tracker';

const api = { track, identify, consent, reset, optOut };
type Call = [method: keyof typeof api, ...args: unknown[]];

/**
 * The script-tag build: options from the tag's data-* attributes (JSON values; the site key as
 * it is written, even where it looks like a number), a relative endpoint resolved against the
 * script's own URL. Calls go through window.tcrm('track', 'signup', { plan: 'pro' }). Calls made
 * before the script ran were queued by the site's stub,
 * `window.tcrm = window.tcrm || function () { (tcrm.q = tcrm.q || []).push(arguments) }`,
 * and are replayed in order. Nothing throws into the page: not the start, not a call.
 */
try {
	const script = document.currentScript as HTMLScriptElement;
	const options: Record<string, unknown> = { ...script.dataset };
	for (const key in options)
		try {
			if (key != 'site') options[key] = JSON.parse(options[key] as string);
		} catch {
			// Text, as written (an endpoint, a mistake the debug warning names).
		}
	if (configure(options, script.src)) start();
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
