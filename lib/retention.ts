/**
 * Where a site's retention puts the cutoff, as plain rules: the receiver's retention job deletes raw
 * rows older than it (server/retention), the rollup fold recomputes no hour before it, and the Lead
 * Scorer knows a lead's history older than it may be gone.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * The days a stored site config keeps raw rows: its privacy.dataRetention, a whole number of days
 * from 1 on. Null when it names none (a site row not written from a config file, whose config the
 * schema never filled in): such a site keeps everything.
 */
export function retentionDaysOf(config: unknown): number | null {
	const privacy = config && typeof config === 'object' ? (config as { privacy?: unknown }).privacy : undefined;
	const days = privacy && typeof privacy === 'object' ? (privacy as { dataRetention?: unknown }).dataRetention : undefined;
	return typeof days === 'number' && Number.isInteger(days) && days > 0 ? days : null;
}

/**
 * Rows older than this go: `days` before `now`, down to the start of its UTC hour, so that every
 * rollup hour lies wholly before the cutoff (left as it is by the fold) or wholly after it.
 */
export function retentionCutoff(days: number, now: Date): Date {
	return new Date(Math.floor((now.getTime() - days * DAY_MS) / HOUR_MS) * HOUR_MS);
}
