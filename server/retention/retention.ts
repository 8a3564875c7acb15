import type { PrismaClient } from '../../lib/db';
import { uuidv7s } from '../../lib/ids';
import { retentionCutoff, retentionDaysOf } from '../../lib/retention';
import { DEFAULT_BATCH_SIZE, RETENTION_TABLES, type RetentionTable } from './policy';

/**
 * The retention job: per site, raw rows older than the site's cutoff (see ./policy.ts) are deleted
 * in batches, each batch one short transaction, and counted in the site's retention_runs row by the
 * same statement. This module is the one writer of retention_runs and the one place that deletes
 * raw rows by age.
 *
 * What goes, per site:
 * - visitor_sessions whose last activity is before the cutoff, and visitor_events of those sessions;
 *   a visit goes whole, so the Visitor Processor never rebuilds a session from part of its events.
 * - visitor_events no session holds (bots, events not processed yet) that occurred before it.
 * - outbox rows delivered, written before it. Pending and dead rows stay, and so do the events and
 *   sessions of their browser (the outbox partition): a delivery still to make carries its events.
 *
 * - analytics_page_sessions rows (a copy per session and page the rollup fold keeps for page filters)
 *   of the sessions that started before it: the fold leaves those hours as they are, and the rows
 *   hold the visitor's id. A page filter's figures of those hours are then its page's rollup rows.
 *
 * What stays: visitors, leads, their scores, conversions (a deleted session leaves them with no
 * session), activities, emails, and the dashboards' other rollups. The deletes run with the transaction
 * setting crm.retention = 'on', which the rollup triggers skip (migration 20261205150000_retention_runs):
 * the figures of the deleted hours stay as the rollups hold them, and the events they counted stay counted.
 */

/** Raw statements and transactions: Prisma Client on Postgres or the embedded PGlite. */
export type RetentionDatabase = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe' | '$transaction'>;

/** A site as the job needs it: a registered site of the receiver, or a row of the sites table. */
export interface RetentionSite {
	id: string;
	key: string;
	config: unknown;
}

/** Browsers of the site ($1) with a delivery still to make (named by status, so the (site_id, status) index skips the delivered rows). */
const WAITING_BROWSERS = `SELECT o.partition_key FROM outbox o WHERE o.site_id = $1::uuid AND o.status IN ('pending', 'dead')`;

/** Ids of the rows of each table that are older than the cutoff ($2) for the site ($1). */
const EXPIRED: Record<RetentionTable, string> = {
	visitor_events: `SELECT e.id FROM visitor_events e LEFT JOIN visitor_event_links l ON l.site_id = e.site_id AND l.event_id = e.event_id LEFT JOIN visitor_sessions s ON s.id = l.session_id
		WHERE e.site_id = $1::uuid AND e.occurred_at < $2::timestamptz AND (s.id IS NULL OR s.last_activity_at < $2::timestamptz)
			AND e.anonymous_id NOT IN (${WAITING_BROWSERS})`,
	visitor_sessions: `SELECT s.id FROM visitor_sessions s
		WHERE s.site_id = $1::uuid AND s.last_activity_at < $2::timestamptz
			AND s.visitor_id NOT IN (SELECT v.id FROM visitors v WHERE v.site_id = $1::uuid AND v.anonymous_id IN (${WAITING_BROWSERS}))`,
	outbox: `SELECT o.id FROM outbox o WHERE o.site_id = $1::uuid AND o.status = 'delivered' AND o.created_at < $2::timestamptz`,
};

const COUNTER: Record<RetentionTable, string> = { visitor_events: 'deleted_events', visitor_sessions: 'deleted_sessions', outbox: 'deleted_outbox' };

/** An event's link goes with the event. */
const UNLINK: Partial<Record<RetentionTable, string>> = {
	visitor_events: `, unlinked AS (DELETE FROM visitor_event_links l USING gone g WHERE l.site_id = g.site_id AND l.event_id = g.event_id)`,
};

/** Deletes up to $3 expired rows of `table` and adds them to the run ($4) in the same statement; answers how many. */
const deleteBatch = (table: RetentionTable) => `WITH gone AS (DELETE FROM ${table} t WHERE t.id IN (${EXPIRED[table]} LIMIT $3::int) RETURNING t.*)${UNLINK[table] ?? ''},
	counted AS (SELECT count(*)::int AS rows FROM gone)
	UPDATE retention_runs r SET ${COUNTER[table]} = r.${COUNTER[table]} + counted.rows, batches = r.batches + (counted.rows > 0)::int
	FROM counted WHERE r.id = $4::uuid
	RETURNING counted.rows AS rows`;

/** Deletes up to $3 analytics_page_sessions rows of sessions that started before the cutoff ($2); answers how many (by its key's index). */
const DELETE_PAGE_SESSIONS = `DELETE FROM analytics_page_sessions t WHERE (t.site_id, t.started_at, t.session_id, t.path) IN (
	SELECT m.site_id, m.started_at, m.session_id, m.path FROM analytics_page_sessions m WHERE m.site_id = $1::uuid AND m.started_at < $2::timestamptz LIMIT $3::int)`;
const COUNT_PAGE_SESSIONS = `SELECT count(*)::float8 AS rows FROM analytics_page_sessions WHERE site_id = $1::uuid AND started_at < $2::timestamptz`;

const countExpired = (table: RetentionTable) => `SELECT count(*)::float8 AS rows FROM (${EXPIRED[table]}) expired`;

const START_RUN = `INSERT INTO retention_runs (id, site_id, retention_days, cutoff) VALUES ($1::uuid, $2::uuid, $3::int, $4::timestamptz)`;
const FINISH_RUN = `UPDATE retention_runs SET finished_at = now() WHERE id = $1::uuid`;
const STOP_RUN = `UPDATE retention_runs SET error = $2 WHERE id = $1::uuid`;

/** A batch takes milliseconds; these bounds only turn one that is stuck into the run's error rather than a hang. */
const BATCH_TRANSACTION = { maxWait: 30_000, timeout: 60_000 };

export interface RetentionOptions {
	/** Count what would be deleted; delete and record nothing. */
	dryRun?: boolean;
	/** Rows per delete statement (default DEFAULT_BATCH_SIZE). */
	batchSize?: number;
	/** The time the cutoffs are counted back from (default: when the run starts). */
	now?: Date;
	/** Stops the run between two batches; the site's record then says it stopped, and why. */
	signal?: AbortSignal;
}

export interface RetentionResult {
	siteId: string;
	site: string;
	/** The site's privacy.dataRetention; null: it names none and keeps everything. */
	days: number | null;
	cutoff: Date | null;
	dryRun: boolean;
	/** Rows deleted per table (in a dry run: that a run would delete now). */
	rows: Record<RetentionTable, number>;
	/** analytics_page_sessions rows deleted (in a dry run: that a run would delete now); not recorded in retention_runs. */
	pageSessions: number;
	/** Delete statements that removed rows. */
	batches: number;
	/** The site's retention_runs row; null in a dry run and for a site that keeps everything. */
	runId: string | null;
	/** Why the run stopped before it finished; null when it finished. */
	error: string | null;
}

const noRows = (): Record<RetentionTable, number> => ({ visitor_events: 0, visitor_sessions: 0, outbox: 0 });
const messageOf = (reason: unknown) => (reason instanceof Error ? reason.message : String(reason));

async function deleteExpired(db: RetentionDatabase, table: RetentionTable, siteId: string, cutoff: string, batchSize: number, runId: string): Promise<number> {
	return db.$transaction(async (tx) => {
		// Two runs for one site (two receivers, or the command beside one) take turns per batch, so each counts only what it deleted.
		await tx.$executeRawUnsafe('SELECT pg_advisory_xact_lock(hashtext($1))', `retention:${siteId}`);
		await tx.$executeRawUnsafe(`SET LOCAL crm.retention = 'on'`);
		const [counted] = await tx.$queryRawUnsafe<Array<{ rows: number }>>(deleteBatch(table), siteId, cutoff, batchSize, runId);
		return counted.rows;
	}, BATCH_TRANSACTION);
}

/** Applies one site's retention (see the header). A failure ends this site's run, recorded with its reason; it is returned, not thrown. */
export async function retainSite(db: RetentionDatabase, site: RetentionSite, options: RetentionOptions = {}): Promise<RetentionResult> {
	const days = retentionDaysOf(site.config);
	const dryRun = options.dryRun ?? false;
	const result: RetentionResult = { siteId: site.id, site: site.key, days, cutoff: null, dryRun, rows: noRows(), pageSessions: 0, batches: 0, runId: null, error: null };
	if (days === null) return result;
	const cutoff = retentionCutoff(days, options.now ?? new Date());
	result.cutoff = cutoff;
	const at = cutoff.toISOString();
	if (dryRun) {
		for (const table of RETENTION_TABLES) {
			const [counted] = await db.$queryRawUnsafe<Array<{ rows: number }>>(countExpired(table), site.id, at);
			result.rows[table] = counted.rows;
		}
		const [pages] = await db.$queryRawUnsafe<Array<{ rows: number }>>(COUNT_PAGE_SESSIONS, site.id, at);
		result.pageSessions = pages.rows;
		return result;
	}
	const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
	const [runId] = uuidv7s(1);
	await db.$executeRawUnsafe(START_RUN, runId, site.id, days, at);
	result.runId = runId;
	try {
		for (const table of RETENTION_TABLES) {
			let deleted: number;
			do {
				options.signal?.throwIfAborted();
				deleted = await deleteExpired(db, table, site.id, at, batchSize, runId);
				result.rows[table] += deleted;
				if (deleted > 0) result.batches++;
			} while (deleted === batchSize);
		}
		let deleted: number;
		do {
			options.signal?.throwIfAborted();
			deleted = await db.$executeRawUnsafe(DELETE_PAGE_SESSIONS, site.id, at, batchSize);
			result.pageSessions += deleted;
		} while (deleted === batchSize);
		await db.$executeRawUnsafe(FINISH_RUN, runId);
	} catch (error) {
		result.error = options.signal?.aborted ? `stopped before finishing: ${messageOf(options.signal.reason)}` : messageOf(error);
		await db.$executeRawUnsafe(STOP_RUN, runId, result.error).catch(() => undefined);
	}
	return result;
}

/** Applies each site's retention in turn; see retainSite. */
export async function runRetention(db: RetentionDatabase, sites: readonly RetentionSite[], options: RetentionOptions = {}): Promise<RetentionResult[]> {
	const now = options.now ?? new Date();
	const results: RetentionResult[] = [];
	for (const site of sites) {
		if (options.signal?.aborted) break;
		results.push(await retainSite(db, site, { ...options, now }));
	}
	return results;
}

/** The sites of the database with their stored configs; only the one with `key` when given. */
export async function sitesInDatabase(db: Pick<PrismaClient, '$queryRawUnsafe'>, key?: string): Promise<RetentionSite[]> {
	return db.$queryRawUnsafe<RetentionSite[]>(`SELECT id::text, key, config FROM sites WHERE $1::text IS NULL OR key = $1::text ORDER BY key`, key ?? null);
}

/**
 * The site's retention cutoff now, from its stored config; null when it keeps everything. The rollup
 * fold recomputes no hour before it: the raw rows of those hours are gone or about to go, and the
 * rollups are all that is left of them.
 */
export async function retentionCutoffOf(db: Pick<PrismaClient, '$queryRawUnsafe'>, siteId: string, now = new Date()): Promise<Date | null> {
	const [site] = await db.$queryRawUnsafe<Array<{ config: unknown }>>(`SELECT config FROM sites WHERE id = $1::uuid`, siteId);
	const days = retentionDaysOf(site?.config);
	return days === null ? null : retentionCutoff(days, now);
}
