#!/usr/bin/env node
/** What an operator decides about deliveries the receiver gave up on: send them again, or drop them. */
import { parseArgs } from 'node:util';

import { WORKFLOW_NAMES } from '../lib/contracts';
import { DatabaseOpenError, openDatabase } from '../lib/db';
import { deadLetterGroups, discardDeadLetters, requeueDeadLetters, type DeadLetterFilter, type DeadLetterGroup } from '../server/outbox/deadLetters';
import { OperatorError, runScript, UsageError } from './workflowTools';

const USAGE = `Usage: scripts/dead-letters list|requeue|discard [--site <site key>] [--destination <workflow>] [--since <time>] [--all] [--dry-run]

A delivery to n8n (or the embedded engine) that keeps failing for DISPATCH_GIVE_UP_AFTER_MS (3 days
by default) is dead-lettered: its outbox rows keep status dead with their last error, nothing
retries them, and the receiver's /health says degraded until someone decides about them:

  list      the dead-lettered deliveries per site and workflow: rows, deliveries, when their
            events were received, the last error
  requeue   queues them again as deliveries never tried: the receivers send them at once (under
            the delivery id they had, so n8n sees a retry), with the backoff and the time to
            giving up started anew. Fix the cause in the last error first
  discard   deletes them: the workflows never see them (their raw events stay in visitor_events).
            Needs a filter below, or --all

Options:
  --site <key>              only this site (its public key)
  --destination <workflow>  only this workflow: ${WORKFLOW_NAMES.join(', ')}
  --since <time>            only deliveries with an event received at or after this time
                            (ISO 8601, e.g. 2026-11-20T09:00:00Z)
  --all                     with discard: every dead-lettered delivery
  --dry-run                 with requeue or discard: say what would change, change nothing
  -h, --help                this text

A delivery is taken whole when any of its rows matches the filters. Exit code 0 when done (also
when nothing matched), 1 on a failure, 2 on bad usage.

Uses DATABASE_URL, or the embedded database in DATA_DIR (default .data/pglite). On Postgres this
command runs beside the receivers: their dispatchers never touch a dead row, and they claim a
re-queued one like any other, one receiver per delivery. The embedded database is open in one
process at a time: while the receiver runs on it, this command refuses; stop the receiver, run
this, and start it again.`;

const COMMANDS = ['list', 'requeue', 'discard'] as const;
type Command = (typeof COMMANDS)[number];

function sinceOf(value: string | undefined): Date | undefined {
	if (value === undefined) return undefined;
	const since = new Date(value);
	if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(since.getTime())) throw new UsageError(`--since must be a time in ISO 8601, e.g. 2026-11-20T09:00:00Z; got "${value}"`);
	return since;
}

function describe(groups: DeadLetterGroup[], keys: Map<string, string>): string {
	return groups
		.map((group) => {
			const received = `received ${group.oldestCreatedAt.toISOString()}${group.newestCreatedAt.getTime() === group.oldestCreatedAt.getTime() ? '' : ` … ${group.newestCreatedAt.toISOString()}`}`;
			const deliveries = `${group.rows} ${group.rows === 1 ? 'row' : 'rows'} in ${group.deliveries} ${group.deliveries === 1 ? 'delivery' : 'deliveries'}`;
			return `  ${keys.get(group.siteId) ?? group.siteId}  ${group.destination}: ${deliveries}, ${received}${group.lastError ? `; last error: ${group.lastError}` : ''}`;
		})
		.join('\n');
}

async function main(argv: string[]): Promise<number> {
	const { values, positionals } = parseArgs({
		args: argv,
		allowPositionals: true,
		options: {
			site: { type: 'string' },
			destination: { type: 'string' },
			since: { type: 'string' },
			all: { type: 'boolean' },
			'dry-run': { type: 'boolean' },
			help: { type: 'boolean', short: 'h' },
		},
	});
	if (values.help || positionals.length === 0) {
		console.log(USAGE);
		return 0;
	}
	const [command, ...extra] = positionals;
	if (!COMMANDS.includes(command as Command)) throw new UsageError(`Unknown command "${command}"; use list, requeue or discard.`);
	if (extra.length > 0) throw new UsageError(`Unexpected argument "${extra[0]}".`);
	if (values.destination !== undefined && !(WORKFLOW_NAMES as readonly string[]).includes(values.destination)) {
		throw new UsageError(`--destination must be one of ${WORKFLOW_NAMES.join(', ')}; got "${values.destination}"`);
	}
	const since = sinceOf(values.since);
	const filtered = values.site !== undefined || values.destination !== undefined || since !== undefined;
	if (command === 'discard' && !filtered && !values.all) throw new UsageError('discard deletes for good: name what with --site, --destination or --since, or give --all.');
	if (values.all && filtered) throw new UsageError('--all takes every dead-lettered delivery: give it without --site, --destination and --since.');

	const db = await openDatabase({ owner: 'scripts/dead-letters' }).catch((error: unknown) => {
		throw error instanceof DatabaseOpenError ? new OperatorError(error.message) : error;
	});
	try {
		const sites = await db.prisma.site.findMany({ select: { id: true, key: true } });
		const keys = new Map(sites.map((site) => [site.id, site.key]));
		const filter: DeadLetterFilter = { destination: values.destination, since };
		if (values.site !== undefined) {
			filter.siteId = sites.find((site) => site.key === values.site)?.id;
			if (!filter.siteId) throw new OperatorError(`No site "${values.site}" in the database; give the site key of its config (site.key), as the receiver registered it.`);
		}
		const groups = await deadLetterGroups(db.sql, filter);
		const rows = groups.reduce((sum, group) => sum + group.rows, 0);
		if (rows === 0) {
			console.log(`No dead-lettered deliveries${filtered ? ' match' : ''}.`);
			return 0;
		}
		const listing = describe(groups, keys);
		if (command === 'list') {
			console.log(`${rows} dead-lettered ${rows === 1 ? 'row' : 'rows'}:\n${listing}`);
			return 0;
		}
		if (values['dry-run']) {
			console.log(`Would ${command === 'requeue' ? 're-queue' : 'discard'} ${rows} ${rows === 1 ? 'row' : 'rows'}:\n${listing}`);
			return 0;
		}
		if (command === 'requeue') {
			const requeued = await requeueDeadLetters(db.sql, filter);
			console.log(`Re-queued ${requeued} ${requeued === 1 ? 'row' : 'rows'}:\n${listing}\nThe receivers send them at once; /health shows them as pending until they are delivered.`);
		} else {
			const discarded = await discardDeadLetters(db.sql, filter);
			console.log(`Discarded ${discarded} ${discarded === 1 ? 'row' : 'rows'}:\n${listing}`);
		}
		return 0;
	} finally {
		await db.close();
	}
}

runScript(main, USAGE);
