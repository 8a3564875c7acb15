/** Failed sign-ins a network may make per minute before it must wait for the next minute. */
export const SIGN_IN_FAILURES_PER_MINUTE = 10;

/** The most networks remembered: past that the least recently failed is forgotten first. */
const MAX_NETWORKS = 10_000;

/**
 * Failed dashboard sign-ins per network (the anonymized address, as the ingest limits count),
 * in fixed one-minute windows. Only failures count, so people who sign in often are never held
 * up; once a network is over, every attempt is refused until the window ends, a right key
 * included, so the answer says nothing about the keys tried. Per receiver, like the ingest
 * limits: a key is 192 random bits, and this only slows a guesser further.
 */
export class SignInLimit {
	private failures = new Map<string, number>();
	private window = 0;

	constructor(private readonly limit = SIGN_IN_FAILURES_PER_MINUTE) {}

	private roll(now: number): void {
		const window = Math.floor(now / 60_000);
		if (window !== this.window) {
			this.window = window;
			this.failures.clear();
		}
	}

	/** Whether the network must wait; then the seconds until it may try again. */
	blocked(network: string, now = Date.now()): number | undefined {
		this.roll(now);
		return (this.failures.get(network) ?? 0) >= this.limit ? Math.ceil(((this.window + 1) * 60_000 - now) / 1000) : undefined;
	}

	fail(network: string, now = Date.now()): void {
		this.roll(now);
		const count = (this.failures.get(network) ?? 0) + 1;
		this.failures.delete(network);
		if (this.failures.size >= MAX_NETWORKS) this.failures.delete(this.failures.keys().next().value!);
		this.failures.set(network, count);
	}
}
