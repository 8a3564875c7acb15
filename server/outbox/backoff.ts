/**
 * Delay before retry number `attempt` (1-based): exponential, capped, with "equal jitter" so a
 * crowd of rows that failed together does not retry in lockstep against a recovering n8n.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
	const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
	return Math.round(exponential / 2 + (exponential / 2) * random());
}
