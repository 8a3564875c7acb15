import type { Logger } from './logger';

/** How often a failure that goes on is summed up in the log. */
export const SUMMARY_INTERVAL_MS = 10_000;

export interface RepeatedFailureWords {
	/** What failed, as the log line starts: "storing failed". */
	failed: string;
	/** What to do, and what happens meanwhile. */
	fix: string;
	/** What works again, as the recovery line starts: "storing works again". */
	recovered: string;
}

/**
 * One failure that repeats, such as a database that stopped answering while requests go on
 * arriving, in at most one log line per SUMMARY_INTERVAL_MS instead of one per request: the first
 * failure with its stack and what to do, then a count of the failures since the previous line,
 * and one line when the work succeeds again. It keeps no timer, so the count is written when a
 * failure comes after the interval, or with the recovery.
 */
export class RepeatedFailure {
	private since: number | undefined;
	private total = 0;
	private unreported = 0;
	private lastLineAt = 0;
	private lastError = '';

	constructor(
		private readonly logger: Logger,
		private readonly words: RepeatedFailureWords,
		private readonly now: () => number = Date.now,
	) {}

	failed(error: unknown): void {
		const now = this.now();
		this.lastError = error instanceof Error ? error.message : String(error);
		this.total += 1;
		if (this.since === undefined) {
			this.since = now;
			this.lastLineAt = now;
			this.logger.error({ err: error, fix: this.words.fix }, `${this.words.failed}: ${this.words.fix}`);
			return;
		}
		this.unreported += 1;
		if (now - this.lastLineAt < SUMMARY_INTERVAL_MS) return;
		this.logger.error(
			{ failures: this.unreported, failingSince: new Date(this.since).toISOString(), lastError: this.lastError, fix: this.words.fix },
			`${this.words.failed} ${this.unreported} more times in the last ${Math.round((now - this.lastLineAt) / 1000)} s (${this.total} since ${new Date(this.since).toISOString()}), last with: ${this.lastError}`,
		);
		this.unreported = 0;
		this.lastLineAt = now;
	}

	/** Called on every success; costs nothing unless a failure is going on. */
	succeeded(): void {
		if (this.since === undefined) return;
		const seconds = Math.round((this.now() - this.since) / 1000);
		this.logger.info({ failures: this.total, failedForSeconds: seconds }, `${this.words.recovered} after ${seconds} s, in which it failed ${this.total} times`);
		this.since = undefined;
		this.total = 0;
		this.unreported = 0;
	}
}
