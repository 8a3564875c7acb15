#!/usr/bin/env node
/** The retention job once, from the command line: what the receiver runs every RETENTION_INTERVAL_MS. */
import { parseArgs } from 'node:util';

import { DatabaseOpenError, openDatabase } from '../lib/db';
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE } from '../server/retention/policy';
import { runRetention, sitesInDatabase, type RetentionResult } from '../server/retention/retention';
import { OperatorError, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/retention [--site <site key>] [--dry-run] [--batch-size <rows>]

Deletes, for each site, the raw rows older than its config's privacy.dataRetention days (counted
back from now to the start of that hour):
  visitor_sessions  visits whose last activity is older, with their events
  visitor_events    events no visit holds (bots, events not processed yet) that are older
  outbox            delivered rows written before then
A browser with deliveries still waiting in the outbox keeps its events and visits until they are
delivered; pending and dead outbox rows are never deleted. Visitors, leads, scores, conversions,
activities, emails and the dashboards' figures stay. A site whose stored config names no
privacy.dataRetention keeps everything. Each site's run is recorded in retention_runs (cutoff and
rows deleted per table). Exit code 0 when every site's run finished, 1 otherwise, 2 on bad usage.

Options:
  --site <key>        only this site (its public key)
  --dry-run           count what would be deleted; delete and record nothing
  --batch-size <rows> rows per delete, each its own short transaction (1–${MAX_BATCH_SIZE}, default ${DEFAULT_BATCH_SIZE})
  -h, --help          this text

Uses DATABASE_URL, or the embedded database in DATA_DIR (default .data/pglite). The receiver runs
the same job itself every RETENTION_INTERVAL_MS (default one hour, 0 for never). On Postgres this
command may run beside it. The embedded database is open in one process at a time: while the
receiver runs on it, this command refuses; the receiver's own job does the work there.`;

const count = (rows: number, what: string) => `${rows} ${what}`;

function describe(result: RetentionResult): string {
	if (result.days === null || !result.cutoff) return `${result.site}: keeps everything (its config names no privacy.dataRetention)`;
	const { visitor_events: events, visitor_sessions: sessions, outbox } = result.rows;
	const rows = [count(events, 'events'), count(sessions, 'sessions'), count(outbox, 'delivered outbox rows'), count(result.pageSessions, 'dashboard page rows')].join(', ');
	const before = `older than ${result.cutoff.toISOString()} (${result.days} days)`;
	if (result.dryRun) return `${result.site}: would delete ${rows} ${before}`;
	const done = `${result.site}: deleted ${rows} ${before} in ${result.batches} batches`;
	return result.error ? `${done}, then stopped: ${result.error}` : done;
}

function batchSizeOf(value: string | undefined): number {
	if (value === undefined) return DEFAULT_BATCH_SIZE;
	const size = Number(value);
	if (!Number.isInteger(size) || size < 1 || size > MAX_BATCH_SIZE) throw new UsageError(`--batch-size must be a whole number of rows from 1 to ${MAX_BATCH_SIZE}; got "${value}"`);
	return size;
}

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({
		args: argv,
		options: { site: { type: 'string' }, 'dry-run': { type: 'boolean' }, 'batch-size': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
	});
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const batchSize = batchSizeOf(values['batch-size']);
	const db = await openDatabase({ owner: 'scripts/retention' }).catch((error: unknown) => {
		throw error instanceof DatabaseOpenError ? new OperatorError(error.message) : error;
	});
	// Ctrl-C ends the run after its current batch, and the site's record says it stopped.
	const stopping = new AbortController();
	const stop = () => stopping.abort(new Error('interrupted'));
	process.once('SIGINT', stop);
	process.once('SIGTERM', stop);
	try {
		const sites = await sitesInDatabase(db.prisma, values.site);
		if (values.site && sites.length === 0) {
			throw new OperatorError(`No site "${values.site}" in the database; start the receiver once with its config so the site is registered.`);
		}
		const results = await runRetention(db.prisma, sites, { dryRun: values['dry-run'], batchSize, signal: stopping.signal });
		for (const result of results) console.log(describe(result));
		return results.length === sites.length && results.every((result) => result.error === null) ? 0 : 1;
	} finally {
		await db.close();
	}
}

runScript(main, USAGE);
