import { DEFAULTS } from './rules';
import { boot, consent, identify, optOut, reset, track } from './tracker';

const api = { track, identify, consent, reset, optOut };
type Call = [method: keyof typeof api, ...args: unknown[]];

/**
 * The script-tag build: options from the tag's data-* attributes (JSON values; text where the
 * option is text), a relative endpoint resolved against the script's own URL. Calls go through
 * window.tcrm('track', 'signup', { plan: 'pro' }). Calls made before the script ran were queued
 * by the site's stub, `window.tcrm = window.tcrm || function () { (tcrm.q = tcrm.q || []).push(arguments) }`,
 * and are replayed in order.
 */
try {
	const script = document.currentScript as HTMLScriptElement;
	const options: Record<string, unknown> = {};
	for (const [key, value] of Object.entries(script.dataset)) {
		try {
			options[key] = typeof DEFAULTS[key as 'site'] == 'string' ? value : JSON.parse(value!);
		} catch {
			options[key] = value;
		}
	}
	boot(options as never, script.src);
	const global = window as Window & { tcrm?: ((...call: Call) => void) & { q?: Call[] } };
	const queued = global.tcrm?.q ?? [];
	const tcrm = (global.tcrm = (...[method, ...args]: Call) => (api[method] as (...a: unknown[]) => void)?.(...args));
	queued.forEach((call) => tcrm(...call));
} catch {
	// Never into the page.
}
