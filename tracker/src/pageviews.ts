import { on, safe } from './debug';

/**
 * Calls `onPageview` once per real URL change of a single-page app: pushState and replaceState
 * (wrapped, since browsers fire no event for them), back and forward (popstate), fragment
 * changes only where the site routes by fragment, and back-forward cache restores, which show
 * the page again without loading it. A change to the same URL (a router replacing its state,
 * a click on the current link) is no page view.
 */
export function watchPageviews(hashRouting: boolean, onPageview: () => void): void {
	const current = () => (hashRouting ? location.href : location.href.split('#')[0]);
	let last = current();
	const check = safe((restored?: PageTransitionEvent) => {
		if (current() != last || restored?.persisted) {
			last = current();
			onPageview();
		}
	});
	for (const method of ['pushState', 'replaceState'] as const) {
		const original = history[method];
		history[method] = function (this: History, ...args: Parameters<History['pushState']>) {
			original.apply(this, args);
			check();
		};
	}
	on('popstate', () => check());
	if (hashRouting) on('hashchange', () => check());
	on('pageshow', check);
}
