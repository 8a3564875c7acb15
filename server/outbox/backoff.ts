/**
 * Delay before retry number `attempt` (1-based): exponential, capped, with "equal jitter" so a
 * crowd of rows that failed together does not retry in lockstep against a recovering n8n.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
	const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
	return Math.round(exponential / 2 + (exponential / 2) * random());
}

/** DISPATCH_BACKOFF_BASE_MS, DISPATCH_BACKOFF_MAX_MS and DISPATCH_GIVE_UP_AFTER_MS. */
export interface RetryPolicy {
	baseMs: number;
	maxMs: number;
	giveUpAfterMs: number;
}

export type AfterFailure = { dead: true } | { dead: false; delayMs: number };

/**
 * What becomes of a delivery whose `attempt`-th try failed at `nowMs`: it is given up
 * (dead-lettered) once it has been failing for `giveUpAfterMs`, counted from its first failure
 * (`failingSinceMs`, null for this first one), and is otherwise tried again after a backoff.
 * Giving up by time rather than by a count of tries keeps a delivery alive through an outage of
 * n8n of any length up to that time, whatever the backoff settings; the cap keeps the wait after
 * n8n is back short.
 */
export function afterFailure(attempt: number, failingSinceMs: number | null, nowMs: number, policy: RetryPolicy, random: () => number = Math.random): AfterFailure {
	if (failingSinceMs !== null && nowMs - failingSinceMs >= policy.giveUpAfterMs) return { dead: true };
	return { dead: false, delayMs: retryDelayMs(attempt, policy.baseMs, policy.maxMs, random) };
}
