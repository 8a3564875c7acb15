/**
 * What the retention job keeps, as plain rules: how many days a site's config says, and where that
 * puts the cutoff. The job (./retention.ts) deletes raw rows older than the cutoff; the rollup fold
 * must not recompute an hour before it, since the raw rows of those hours are gone or going.
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Rows per delete statement unless told otherwise: each batch is one short transaction. */
export const DEFAULT_BATCH_SIZE = 5000;
export const MAX_BATCH_SIZE = 50_000;

/** The tables the job deletes from, in the order it deletes (a session's events before the session). */
export const RETENTION_TABLES = ['visitor_events', 'visitor_sessions', 'outbox'] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];

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
