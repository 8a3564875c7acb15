import { on } from './debug';
import { clip } from './text';
import type { Emit } from './tracker';

/**
 * Clicks on links that leave the site (outbound) or fetch a file (download). Listened for in the
 * capture phase, so a page that stops propagation still counts; middle clicks too (auxclick),
 * as they open the link in a new tab. The page's navigation is never delayed: a beacon on
 * pagehide carries the event.
 */
export function watchLinks(emit: Emit): void {
	const onClick = (event: MouseEvent) => {
		const link = (event.target as Element).closest?.('a');
		const props = { url: clip(`${link?.href}`, 1000) };
		if (!link || !/^https?:/.test(props.url) || (event.type != 'click' && event.button != 1)) return;
		if (link.hasAttribute('download') || /\.(pdf|docx?|xlsx?|pptx?|csv|txt|zip|rar|7z|gz|dmg|exe|msi|pkg|apk|mp[34])$/i.test(link.pathname))
			emit('download', clip(link.pathname.split('/').pop()!, 100), props);
		else if (link.host != location.host) emit('outbound', link.hostname, props);
	};
	on('click', onClick, true);
	on('auxclick', onClick, true);
}
