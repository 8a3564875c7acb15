import pino from 'pino';

import { RepeatedFailure, SUMMARY_INTERVAL_MS } from '../../server/repeatedFailure';

/** A failure that repeats at 40 a second for 25 s, as ingest sees a stopped database, in the log. */
describe('a failure that repeats', () => {
	const lines: Array<Record<string, any>> = [];
	const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
	let now = 1_000_000;
	const failure = new RepeatedFailure(logger, { failed: 'the database failed', fix: 'start Postgres', recovered: 'the database works again' }, () => now);

	it('is logged once with its stack and the fix, then as one count per interval, then once more when it is over', () => {
		for (let i = 0; i < 1000; i++) {
			failure.failed(new Error(i === 999 ? 'connection refused (last)' : 'connection refused'));
			now += 25;
		}
		failure.succeeded();
		failure.succeeded();

		expect(lines.map((line) => [line.level, line.msg.split(':')[0]])).toEqual([
			[50, 'the database failed'],
			[50, 'the database failed 400 more times in the last 10 s (401 since 1970-01-01T00'],
			[50, 'the database failed 400 more times in the last 10 s (801 since 1970-01-01T00'],
			[30, 'the database works again after 25 s, in which it failed 1000 times'],
		]);
		expect(lines[0]).toMatchObject({ msg: 'the database failed: start Postgres', fix: 'start Postgres', err: { message: 'connection refused', stack: expect.stringContaining('repeatedFailure.test.ts') } });
		expect(lines[1]).toMatchObject({ failures: 400, lastError: 'connection refused', fix: 'start Postgres' });
		expect(lines[1].err).toBeUndefined();
		// The 199 failures after the last count are in the recovery's total.
		expect(lines[3]).toMatchObject({ failures: 1000, failedForSeconds: 25 });
	});

	it('starts over, with a stack again, at the next failure after it is over', () => {
		lines.length = 0;
		failure.failed(new Error('again'));
		now += SUMMARY_INTERVAL_MS - 1;
		failure.failed(new Error('again'));
		expect(lines).toHaveLength(1);
		expect(lines[0]).toMatchObject({ level: 50, err: { message: 'again' } });
	});
});
