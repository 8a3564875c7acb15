import type { Interval, TimeRange } from '../analytics/queries';
import { instant } from '../routes/inputs';

/**
 * The period a dashboard shows. Presets are whole UTC hours or days ending with the current one,
 * so each chart point is a whole hour or day and the previous period is the same number of whole
 * hours or days just before. A custom period runs from the start of its From date to the end of
 * its To date (UTC), as the JSON routes read from and to.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** The JSON routes' limits, so the pages and the routes accept the same periods. */
export const MAX_RANGE_DAYS = 366;
export const MAX_HOURLY_RANGE_DAYS = 31;

export const PRESETS = {
	'24h': { label: 'Last 24 hours', hours: 24 },
	'7d': { label: 'Last 7 days', days: 7 },
	'30d': { label: 'Last 30 days', days: 30 },
	'90d': { label: 'Last 90 days', days: 90 },
} as const;
export type Preset = keyof typeof PRESETS;
export const DEFAULT_PRESET: Preset = '7d';

export interface PeriodQuery {
	range?: string;
	from?: string;
	to?: string;
	interval?: string;
}

export interface DashboardRange extends TimeRange {
	preset: Preset | 'custom';
	/** What the form shows: the query as the person chose it ('' = automatic interval). */
	chosen: { range: Preset | 'custom'; from: string; to: string; interval: '' | Interval };
	/** Set when the chosen interval could not be used and another was. */
	note?: string;
}

export type RangeResult = { ok: true; range: DashboardRange } | { ok: false; field: string; message: string; chosen: DashboardRange['chosen'] };

const isPreset = (value: string): value is Preset => Object.hasOwn(PRESETS, value);
const startOfUtcDay = (at: Date) => Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
const dateOnly = (at: Date) => at.toISOString().slice(0, 10);

function presetBounds(preset: Preset, now: Date): { from: Date; to: Date } {
	const spec = PRESETS[preset];
	if ('hours' in spec) {
		const nextHour = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS + HOUR_MS;
		return { from: new Date(nextHour - spec.hours * HOUR_MS), to: new Date(nextHour) };
	}
	const tomorrow = startOfUtcDay(now) + DAY_MS;
	return { from: new Date(tomorrow - spec.days * DAY_MS), to: new Date(tomorrow) };
}

/** A custom bound: a date (a To date includes that whole day) or a date-time with a zone. */
function customBound(value: string, end: boolean): Date | string {
	const parsed = instant.safeParse(value);
	if (!parsed.success) return parsed.error.issues[0].message;
	return new Date(parsed.data.at.getTime() + (end && parsed.data.dateOnly ? DAY_MS : 0));
}

/**
 * What a date field shows for a custom bound: the UTC date it falls on (for a To bound, the date of
 * the last instant it includes), as <input type=date> takes only YYYY-MM-DD and shows nothing for a
 * date-time such as 2026-12-07T10:00:00+14:00. Empty when the bound cannot be read: the page says why.
 */
export function dateFieldValue(value: string, end: boolean): { date: string; timed: boolean } {
	const parsed = value ? instant.safeParse(value) : undefined;
	if (!parsed?.success) return { date: '', timed: false };
	const { at, dateOnly: whole } = parsed.data;
	return { date: dateOnly(end && !whole ? new Date(at.getTime() - 1) : at), timed: !whole };
}

/** Beyond four months, daily points crowd a chart: weeks serve better. */
const MAX_AUTOMATIC_DAILY_DAYS = 120;

/** Hours for a period of two days or less, weeks past four months, days between, unless the person chose. */
function intervalFor(chosen: '' | Interval, days: number): { interval: Interval; note?: string } {
	if (chosen === 'hour' && days > MAX_HOURLY_RANGE_DAYS) return { interval: 'day', note: `Hourly points cover at most ${MAX_HOURLY_RANGE_DAYS} days; shown by day.` };
	if (chosen) return { interval: chosen };
	return { interval: days <= 2 ? 'hour' : days <= MAX_AUTOMATIC_DAILY_DAYS ? 'day' : 'week' };
}

const INTERVALS: readonly Interval[] = ['hour', 'day', 'week'];

/** Reads the period of a dashboard query; `now` fixes the presets. */
export function resolveRange(query: PeriodQuery, now: Date): RangeResult {
	const requested = query.range ?? DEFAULT_PRESET;
	const preset = requested === 'custom' || isPreset(requested) ? requested : undefined;
	const interval = INTERVALS.find((choice) => choice === query.interval) ?? '';
	const chosen: DashboardRange['chosen'] = { range: preset ?? DEFAULT_PRESET, from: query.from ?? '', to: query.to ?? '', interval };
	const refuse = (field: string, message: string): RangeResult => ({ ok: false, field, message, chosen });
	if (!preset) return refuse('Period', `must be one of ${[...Object.values(PRESETS).map((spec) => spec.label), 'Custom'].join(', ')}`);
	if (query.interval && !interval) return refuse('Interval', 'must be Automatic, Hour, Day or Week');

	let from: Date;
	let to: Date;
	if (preset === 'custom') {
		if (!query.from || !query.to) return refuse(query.from ? 'To' : 'From', 'is needed for a custom period: give both From and To dates');
		const start = customBound(query.from, false);
		if (typeof start === 'string') return refuse('From', start);
		const end = customBound(query.to, true);
		if (typeof end === 'string') return refuse('To', end);
		if (start >= end) return refuse('From', 'must be on or before To');
		[from, to] = [start, end];
	} else {
		({ from, to } = presetBounds(preset, now));
		chosen.from = dateOnly(from);
		chosen.to = dateOnly(new Date(to.getTime() - 1));
	}
	const days = (to.getTime() - from.getTime()) / DAY_MS;
	if (days > MAX_RANGE_DAYS) return refuse('From', `and To may be at most ${MAX_RANGE_DAYS} days apart (they are ${Math.ceil(days)} days apart)`);
	return { ok: true, range: { preset, from, to, chosen, ...intervalFor(interval, days) } };
}

/** The period of the same length just before `range`, for "against the previous period". */
export function previousRange(range: TimeRange): TimeRange {
	const length = range.to.getTime() - range.from.getTime();
	return { from: new Date(range.from.getTime() - length), to: range.from, interval: range.interval };
}

/** The query string that asks for the same period (for the nav, the CSV links and the form). */
export function periodQuery(chosen: DashboardRange['chosen']): string {
	const params = new URLSearchParams({ range: chosen.range });
	if (chosen.range === 'custom') {
		params.set('from', chosen.from);
		params.set('to', chosen.to);
	}
	if (chosen.interval) params.set('interval', chosen.interval);
	return params.toString();
}

/** How the period reads in a heading. */
export function describeRange(range: DashboardRange): string {
	return range.preset === 'custom' ? 'Custom period' : PRESETS[range.preset].label;
}
