import type { Page } from 'playwright-core';

/** What the dashboard tests share: dates relative to today (UTC), the period a page states, and its CSV downloads read back. */

const DAY = 86_400_000;
const HOUR = 3_600_000;

export const startOfToday = (): number => {
	const now = new Date();
	return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
};

/** `hour` (UTC) of the day `days` days before today: 0 to 6 lie in "Last 7 days", 7 to 13 in the 7 days before it. */
export const daysAgo = (days: number, hour = 12): Date => new Date(startOfToday() - days * DAY + hour * HOUR);

/** The page's stated bounds, which a test checks and then uses for its own SQL. */
export async function pageBounds(page: Page): Promise<Record<string, string>> {
	const pairs = await page.$$eval('#period time[data-bound]', (times) => times.map((time) => [(time as HTMLElement).dataset.bound!, time.getAttribute('datetime')!] as const));
	return Object.fromEntries(pairs);
}

/** RFC 4180 rows (quoted cells may hold commas, quotes and line breaks). */
export function parseCsv(text: string): string[][] {
	const rows: string[][] = [];
	let row: string[] = [];
	let cell = '';
	let quoted = false;
	for (let index = 0; index < text.length; index++) {
		const char = text[index];
		if (quoted) {
			if (char === '"' && text[index + 1] === '"') {
				cell += '"';
				index++;
			} else if (char === '"') quoted = false;
			else cell += char;
		} else if (char === '"') quoted = true;
		else if (char === ',') {
			row.push(cell);
			cell = '';
		} else if (char === '\n') {
			rows.push([...row, cell.replace(/\r$/, '')]);
			row = [];
			cell = '';
		} else cell += char;
	}
	return rows;
}
