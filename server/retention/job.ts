import type { Logger } from '../logger';
import { runRetention, type RetentionDatabase, type RetentionResult, type RetentionSite } from './retention';

/** The first run comes this soon after the start (or after one interval, if that is shorter). */
const FIRST_RUN_AFTER_MS = 60_000;

export interface RetentionJob {
	/** Stops the schedule; a run in progress stops after its current batch, its record saying so. */
	stop(): Promise<void>;
}

function report(logger: Logger, result: RetentionResult): void {
	const { site, cutoff, rows, batches, error } = result;
	if (error) logger.warn({ site, cutoff, deleted: rows, batches, error }, 'retention run stopped early; the next run goes on from there');
	else if (batches > 0) logger.info({ site, cutoff, deleted: rows, batches }, 'retention: raw rows older than the site’s privacy.dataRetention deleted');
}

/**
 * Runs the retention job for the receiver's sites every `intervalMs` (0: never; scripts/retention
 * does the same from a scheduler of your own), one run at a time. Several receivers on one database
 * may all run it: their batches for a site take turns and each deletes what is left.
 */
export function startRetentionJob({ prisma, sites, logger, intervalMs }: { prisma: RetentionDatabase; sites: readonly RetentionSite[]; logger: Logger; intervalMs: number }): RetentionJob {
	if (intervalMs === 0) return { stop: async () => undefined };
	const stopping = new AbortController();
	let running: Promise<void> | undefined;
	const tick = () => {
		running ??= runRetention(prisma, sites, { signal: stopping.signal })
			.then((results) => results.forEach((result) => report(logger, result)))
			.catch((error: unknown) => logger.warn({ err: error }, 'retention job failed; retrying at the next interval'))
			.finally(() => {
				running = undefined;
			});
	};
	const first = setTimeout(tick, Math.min(intervalMs, FIRST_RUN_AFTER_MS));
	const timer = setInterval(tick, intervalMs);
	first.unref();
	timer.unref();
	return {
		async stop() {
			clearTimeout(first);
			clearInterval(timer);
			stopping.abort(new Error('the receiver is shutting down'));
			await running;
		},
	};
}
