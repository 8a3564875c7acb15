import type { Page } from 'playwright-core';

/**
 * The tables of the page wider than the region they sit in, by id, with both widths: a table the
 * region has to scroll sideways shows its last columns cut at the card's edge. A header or cell
 * whose own text is cut (its content wider than its box) counts too.
 */
export function overflowingTables(page: Page): Promise<Array<{ table: string; width: number; room: number }>> {
	return page.$$eval('div.scroll', (regions) =>
		regions.flatMap((region) => {
			const table = region.querySelector('table');
			if (!table || !(region as HTMLElement).offsetParent) return [];
			const cut = Array.from(table.querySelectorAll('th, td')).some((cell) => cell.scrollWidth > cell.clientWidth + 1);
			return region.scrollWidth > region.clientWidth || cut ? [{ table: table.id, width: region.scrollWidth, room: region.clientWidth }] : [];
		}),
	);
}
