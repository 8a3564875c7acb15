/**
 * How the retention job deletes, as plain settings: its batches and tables. Where a site's cutoff
 * lies is lib/retention.ts, which the Lead Scorer reads too.
 */

/** Rows per delete statement unless told otherwise: each batch is one short transaction. */
export const DEFAULT_BATCH_SIZE = 5000;
export const MAX_BATCH_SIZE = 50_000;

/** The tables the job deletes from, in the order it deletes (a session's events before the session). */
export const RETENTION_TABLES = ['visitor_events', 'visitor_sessions', 'outbox'] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];
