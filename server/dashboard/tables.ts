/**
 * A dashboard table, defined once and drawn twice: as HTML on the page and as a CSV download, so
 * the two always hold the same rows. Cells keep their raw values; each column's kind says how a
 * person reads them (formatted on the page, plain numbers in the CSV).
 */
import { formatMoney } from '../../lib/money';

/** Money as every page writes it (lib/money.ts). */
export { formatMoney };

/** money cells hold an amount in the currency the column's label names. */
export type ColumnKind = 'text' | 'count' | 'percent' | 'seconds' | 'time' | 'decimal' | 'money';

export interface Column {
	label: string;
	kind: ColumnKind;
}

/** percent cells hold a ratio (0.25 is 25 %); time cells a Date; a null cell is "no value" (nothing to divide by). */
export type Cell = string | number | Date | null;

export interface Table {
	/** Its name in the CSV link (?table=…) and the file name. */
	name: string;
	title: string;
	columns: Column[];
	rows: Cell[][];
	/** What an empty table says instead. */
	empty: string;
}

const numbers = new Intl.NumberFormat('en-US');
const decimals = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** 95 → "1m 35s", 3725 → "1h 02m"; under a minute in seconds. */
export function formatDuration(seconds: number): string {
	const whole = Math.round(seconds);
	if (whole < 60) return `${whole}s`;
	if (whole < 3600) return `${Math.floor(whole / 60)}m ${String(whole % 60).padStart(2, '0')}s`;
	return `${Math.floor(whole / 3600)}h ${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}

export const formatCount = (value: number) => numbers.format(value);

/** A count's noun, singular for one: "visitor", "visitors". */
export const nounOf = (count: number, singular: string, plural = `${singular}s`) => (count === 1 ? singular : plural);
export const formatPercent = (ratio: number) => `${decimals.format(ratio * 100)}%`;


/** A time cell: the hour or the day it starts, in UTC. */
export function formatTime(at: Date, withHour: boolean): string {
	const iso = at.toISOString();
	return withHour ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
}

/** How a cell reads on the page. */
export function displayCell(cell: Cell, kind: ColumnKind, withHour: boolean): string {
	if (cell === null) return '—';
	if (cell instanceof Date) return formatTime(cell, withHour);
	if (typeof cell === 'string') return cell;
	switch (kind) {
		case 'percent':
			return formatPercent(cell);
		case 'seconds':
			return formatDuration(cell);
		case 'decimal':
			return decimals.format(cell);
		case 'money':
			return formatMoney(cell);
		default:
			return formatCount(cell);
	}
}

/**
 * A cell a spreadsheet would run as a formula (=, +, -, @, or a tab or carriage return that some
 * read as one) gets a leading apostrophe: a page path or a channel name is the visitors' text.
 */
function csvText(text: string): string {
	const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
	return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function csvCell(cell: Cell, kind: ColumnKind): string {
	if (cell === null) return '';
	if (cell instanceof Date) return cell.toISOString();
	if (typeof cell === 'string') return csvText(cell);
	// Numbers are ours, never a visitor's text: written plainly, a negative one included.
	if (kind === 'percent') return String(Math.round(cell * 10_000) / 100);
	if (kind === 'seconds' || kind === 'decimal') return String(Math.round(cell * 100) / 100);
	// Two decimals and no separator, so a spreadsheet reads it as a number.
	if (kind === 'money') return cell.toFixed(2);
	return String(cell);
}

/** RFC 4180 CSV with a header row; percent columns as percentages, their header saying so. */
export function toCsv(table: Table): string {
	const header = table.columns.map((column) => csvText(column.kind === 'percent' ? `${column.label} (%)` : column.kind === 'seconds' ? `${column.label} (seconds)` : column.label));
	const lines = [header.join(','), ...table.rows.map((row) => row.map((cell, index) => csvCell(cell, table.columns[index].kind)).join(','))];
	return `${lines.join('\r\n')}\r\n`;
}
