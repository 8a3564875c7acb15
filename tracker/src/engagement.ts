import { on } from './debug';
import type { Emit } from './tracker';

/**
 * Scroll depth and engaged time of the current page. Engaged time is the time the page is
 * visible; every moment it stops being so (hidden, left, replaced by an SPA route) reports the
 * time since the last report, so the reports add up and nothing is counted twice.
 */
let depth = 0;
let visibleSince = 0;

export function reportEngagement(emit: Emit, stillVisible?: boolean): void {
	const engagedMs = visibleSince && Date.now() - visibleSince;
	visibleSince = stillVisible ? Date.now() : 0;
	if (engagedMs > 999) emit('engagement', undefined, { engagedMs });
}

/** A new page view: its scroll depth starts from the top, its time from now. */
export function newPage(): void {
	depth = 0;
	visibleSince = document.hidden ? 0 : Date.now();
}

export const becameVisible = () => (visibleSince ||= Date.now());

/** One scroll event per quarter of the page reached (25, 50, 75, 100), the deepest one only. */
export const watchScroll = (emit: Emit) =>
	on(
		'scroll',
		() => {
			const reached = Math.min(Math.floor(((scrollY + innerHeight) / document.documentElement.scrollHeight) * 4) * 25, 100);
			if (reached > depth) emit('scroll', `${(depth = reached)}%`, { depth });
		},
		{ passive: true },
	);
