import { afterFailure, retryDelayMs, type RetryPolicy } from '../../server/outbox/backoff';
import { readSettings } from '../../server/settings';
import { settingsRefusal } from '../helpers/refusals';

/**
 * The retry schedule of a delivery n8n does not take, as arithmetic: how long it goes on, how long
 * a delivery waits once n8n is back, and when it is given up. A delivery is tried, fails at once
 * (the worst case: no time spent waiting for an answer), waits its backoff, and is tried again.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const defaults = readSettings({});
const POLICY: RetryPolicy = { baseMs: defaults.DISPATCH_BACKOFF_BASE_MS, maxMs: defaults.DISPATCH_BACKOFF_MAX_MS, giveUpAfterMs: defaults.DISPATCH_GIVE_UP_AFTER_MS };

/** Jitter at its two ends: every wait its shortest (half the backoff), or its longest. */
const JITTERS = { shortest: () => 0, longest: () => 0.999_999 } as const;

interface Run {
	/** When each try was made, in ms after the first. */
	tries: number[];
	/** When the delivery was dead-lettered, or null when it was still being retried at `untilMs`. */
	deadAt: number | null;
	/** When it is tried next after `untilMs`, unless dead-lettered. */
	nextTry: number | null;
}

/** A delivery whose every try up to `untilMs` fails. */
function failing(untilMs: number, random: () => number, policy = POLICY): Run {
	const tries: number[] = [];
	let failingSince: number | null = null;
	let now = 0;
	for (let attempt = 1; now <= untilMs; attempt++) {
		tries.push(now);
		const outcome = afterFailure(attempt, failingSince, now, policy, random);
		if (outcome.dead) return { tries, deadAt: now, nextTry: null };
		failingSince ??= now;
		now += outcome.delayMs;
	}
	return { tries, deadAt: null, nextTry: now };
}

describe('the retry schedule at the defaults', () => {
	it('is 1 s doubling to a cap of 15 minutes, given up after 3 days', () => {
		expect(POLICY).toEqual({ baseMs: 1000, maxMs: 15 * MINUTE, giveUpAfterMs: 3 * DAY });
		expect([1, 2, 3, 10, 11].map((attempt) => retryDelayMs(attempt, POLICY.baseMs, POLICY.maxMs, () => 0.999_999))).toEqual([1000, 2000, 4000, 512_000, 900_000]);
	});

	it('never waits longer than the cap, nor less than half of it once there, whatever the jitter', () => {
		for (let attempt = 1; attempt <= 1000; attempt++) {
			for (const random of Object.values(JITTERS)) {
				const delay = retryDelayMs(attempt, POLICY.baseMs, POLICY.maxMs, random);
				expect(delay).toBeLessThanOrEqual(POLICY.maxMs);
				if (attempt >= 11) expect(delay).toBeGreaterThanOrEqual(POLICY.maxMs / 2);
			}
		}
	});

	it.each(Object.entries(JITTERS))('outlasts an outage of 30 minutes and of a weekend (jitter %s), and tries again within 15 minutes of n8n being back', (_jitter, random) => {
		for (const outage of [30 * MINUTE, 60 * HOUR]) {
			const run = failing(outage, random);
			expect(run.deadAt).toBeNull();
			expect(run.nextTry! - outage).toBeLessThanOrEqual(POLICY.maxMs);
		}
	});

	it.each(Object.entries(JITTERS))('gives up at the first failure 3 days after the first one, not before (jitter %s)', (_jitter, random) => {
		const run = failing(10 * DAY, random);
		expect(run.deadAt).not.toBeNull();
		expect(run.deadAt!).toBeGreaterThanOrEqual(3 * DAY);
		expect(run.deadAt!).toBeLessThanOrEqual(3 * DAY + POLICY.maxMs);
		// Most of those days at the cap: one try every 7.5 to 15 minutes.
		expect(run.tries.length).toBeGreaterThanOrEqual(Math.floor((3 * DAY) / POLICY.maxMs));
		expect(run.tries.length).toBeLessThanOrEqual(Math.ceil((3 * DAY) / (POLICY.maxMs / 2)) + 11);
	});

	it('never gives up at the first failure, however short the time to give up', () => {
		expect(afterFailure(1, null, 0, { ...POLICY, giveUpAfterMs: 1000 }, JITTERS.shortest)).toEqual({ dead: false, delayMs: 500 });
		expect(afterFailure(2, 0, 999, { ...POLICY, giveUpAfterMs: 1000 }, JITTERS.shortest)).toEqual({ dead: false, delayMs: 1000 });
		expect(afterFailure(3, 0, 1000, { ...POLICY, giveUpAfterMs: 1000 })).toEqual({ dead: true });
	});

	it('follows the settings: a shorter cap and give-up time', () => {
		const run = failing(DAY, JITTERS.longest, { baseMs: 1000, maxMs: MINUTE, giveUpAfterMs: HOUR });
		expect(run.deadAt!).toBeGreaterThanOrEqual(HOUR);
		expect(run.deadAt!).toBeLessThanOrEqual(HOUR + MINUTE);
	});
});

describe('the retry settings', () => {

	it('are read from the environment, each within its bounds', () => {
		expect(readSettings({ DISPATCH_BACKOFF_MAX_MS: '60000', DISPATCH_GIVE_UP_AFTER_MS: '3600000' })).toMatchObject({ DISPATCH_BACKOFF_MAX_MS: 60_000, DISPATCH_GIVE_UP_AFTER_MS: 3_600_000 });
		expect(settingsRefusal({ DISPATCH_GIVE_UP_AFTER_MS: '500' })).toMatch(/DISPATCH_GIVE_UP_AFTER_MS: .*1000/);
		expect(settingsRefusal({ DISPATCH_GIVE_UP_AFTER_MS: 'three days' })).toMatch(/DISPATCH_GIVE_UP_AFTER_MS/);
	});

	it('refuse a cap below the first wait, naming both', () => {
		expect(settingsRefusal({ DISPATCH_BACKOFF_BASE_MS: '5000', DISPATCH_BACKOFF_MAX_MS: '1000' })).toBe(
			'Invalid receiver environment:\n  - DISPATCH_BACKOFF_MAX_MS: must be at least DISPATCH_BACKOFF_BASE_MS (5000), the first wait; got "1000" (string)',
		);
	});

	it('refuse DISPATCH_MAX_ATTEMPTS, which no longer decides when a delivery is given up, naming what does', () => {
		expect(settingsRefusal({ DISPATCH_MAX_ATTEMPTS: '12' })).toMatch(/^Invalid receiver environment:\n {2}- DISPATCH_MAX_ATTEMPTS: is no longer read: .*DISPATCH_GIVE_UP_AFTER_MS.*; got "12"/);
	});
});
