import { DateTime } from 'luxon';

import { frequencyCapTime, nextSendTime, scheduleSend, zoneOf } from '../../nodes/EmailOrchestrator/schedule';

const QUIET = { quietHours: { start: '21:00', end: '08:00' } };

/** An instant given as wall-clock time in a zone, so cases read the way people state them. */
const local = (iso: string, zone: string) => DateTime.fromISO(iso, { zone }).toJSDate();
const inZone = (date: Date, zone: string) => DateTime.fromJSDate(date, { zone }).toISO({ suppressMilliseconds: true });

describe('nextSendTime: quiet hours in the lead’s zone across DST changes', () => {
	it.each([
		// zone, due (local wall clock), expected send (local wall clock), UTC offset of the result
		['Europe/Madrid', '2026-03-29T03:00', '2026-03-29T08:00:00+02:00'], // spring forward: 02:00 → 03:00 that night
		['Europe/Madrid', '2026-03-28T03:00', '2026-03-28T08:00:00+01:00'], // the day before, still CET
		['Europe/Madrid', '2026-10-25T03:00', '2026-10-25T08:00:00+01:00'], // fall back: 03:00 → 02:00 that night
		['Europe/Madrid', '2026-10-24T03:00', '2026-10-24T08:00:00+02:00'],
		['America/New_York', '2026-03-08T03:00', '2026-03-08T08:00:00-04:00'], // US spring forward
		['America/New_York', '2026-11-01T03:00', '2026-11-01T08:00:00-05:00'], // US fall back
		['Europe/Madrid', '2026-03-28T22:30', '2026-03-29T08:00:00+02:00'], // evening before the change: next morning, new offset
		['America/New_York', '2026-10-31T23:59', '2026-11-01T08:00:00-05:00'],
	])('%s: due %s is sent at %s', (zone, due, expected) => {
		expect(inZone(nextSendTime(local(due, zone), QUIET, zone), zone)).toBe(expected);
	});

	it('is the window start in absolute terms too: 06:00 UTC after spring forward, 07:00 UTC before', () => {
		expect(nextSendTime(local('2026-03-29T03:00', 'Europe/Madrid'), QUIET, 'Europe/Madrid').toISOString()).toBe('2026-03-29T06:00:00.000Z');
		expect(nextSendTime(local('2026-10-25T03:00', 'Europe/Madrid'), QUIET, 'Europe/Madrid').toISOString()).toBe('2026-10-25T07:00:00.000Z');
	});

	it('leaves a time inside the send window alone, to the millisecond', () => {
		const due = local('2026-03-29T12:34:56.789', 'Europe/Madrid');
		expect(nextSendTime(due, QUIET, 'Europe/Madrid')).toEqual(due);
		expect(nextSendTime(local('2026-03-29T08:00', 'Europe/Madrid'), QUIET, 'Europe/Madrid')).toEqual(local('2026-03-29T08:00', 'Europe/Madrid'));
		expect(inZone(nextSendTime(local('2026-03-29T20:59:59', 'Europe/Madrid'), QUIET, 'Europe/Madrid'), 'Europe/Madrid')).toBe('2026-03-29T20:59:59+02:00');
		expect(inZone(nextSendTime(local('2026-03-29T21:00', 'Europe/Madrid'), QUIET, 'Europe/Madrid'), 'Europe/Madrid')).toBe('2026-03-30T08:00:00+02:00');
	});

	it('handles daytime quiet hours (start before end) and ignores an empty window', () => {
		const lunch = { quietHours: { start: '12:00', end: '14:00' } };
		expect(inZone(nextSendTime(local('2026-05-05T12:30', 'UTC'), lunch, 'UTC'), 'UTC')).toBe('2026-05-05T14:00:00Z');
		expect(inZone(nextSendTime(local('2026-05-05T11:59', 'UTC'), lunch, 'UTC'), 'UTC')).toBe('2026-05-05T11:59:00Z');
		expect(inZone(nextSendTime(local('2026-05-05T03:00', 'UTC'), { quietHours: { start: '08:00', end: '08:00' } }, 'UTC'), 'UTC')).toBe('2026-05-05T03:00:00Z');
	});

	it('judges the window in the lead’s zone, not the server’s', () => {
		// 03:00 in Madrid is 21:00 the evening before in New York: outside the window in Madrid only
		const due = local('2026-06-10T03:00', 'Europe/Madrid');
		expect(inZone(nextSendTime(due, QUIET, 'Europe/Madrid'), 'Europe/Madrid')).toBe('2026-06-10T08:00:00+02:00');
		expect(inZone(nextSendTime(due, QUIET, 'America/New_York'), 'America/New_York')).toBe('2026-06-10T08:00:00-04:00');
		expect(inZone(nextSendTime(local('2026-06-10T14:00', 'Europe/Madrid'), QUIET, 'America/New_York'), 'America/New_York')).toBe('2026-06-10T08:00:00-04:00');
	});

	it('falls back to UTC for a missing or unknown zone', () => {
		expect(zoneOf(undefined)).toBe('UTC');
		expect(zoneOf('Mars/Olympus_Mons')).toBe('UTC');
		expect(zoneOf('Europe/Madrid')).toBe('Europe/Madrid');
		expect(nextSendTime(new Date('2026-05-05T03:00:00Z'), QUIET, 'Not/AZone').toISOString()).toBe('2026-05-05T08:00:00.000Z');
	});
});

describe('nextSendTime: weekdays', () => {
	const WORKDAYS = { ...QUIET, weekdays: [1, 2, 3, 4, 5] };

	it('moves a Saturday send to Monday at the window start', () => {
		// 2026-03-28 is a Saturday; the weekend includes the Madrid DST change
		expect(inZone(nextSendTime(local('2026-03-28T10:00', 'Europe/Madrid'), WORKDAYS, 'Europe/Madrid'), 'Europe/Madrid')).toBe('2026-03-30T08:00:00+02:00');
	});

	it('moves Friday night past the weekend, keeps a weekday morning', () => {
		expect(inZone(nextSendTime(local('2026-10-23T22:00', 'America/New_York'), WORKDAYS, 'America/New_York'), 'America/New_York')).toBe('2026-10-26T08:00:00-04:00');
		expect(inZone(nextSendTime(local('2026-10-21T09:15', 'America/New_York'), WORKDAYS, 'America/New_York'), 'America/New_York')).toBe('2026-10-21T09:15:00-04:00');
	});

	it('judges the weekday in the lead’s zone: Monday 01:00 in Tokyo is Sunday in UTC', () => {
		const due = local('2026-05-11T01:00', 'Asia/Tokyo');
		expect(inZone(nextSendTime(due, { weekdays: [1] }, 'Asia/Tokyo'), 'Asia/Tokyo')).toBe('2026-05-11T01:00:00+09:00');
		expect(inZone(nextSendTime(due, { weekdays: [1] }, 'UTC'), 'UTC')).toBe('2026-05-11T00:00:00Z');
	});

	it('without quiet hours, an excluded day moves to midnight of the next allowed day', () => {
		expect(inZone(nextSendTime(local('2026-03-28T10:00', 'Europe/Madrid'), { weekdays: [7] }, 'Europe/Madrid'), 'Europe/Madrid')).toBe('2026-03-29T00:00:00+01:00');
	});
});

describe('frequency cap', () => {
	const now = new Date('2026-05-05T12:00:00Z');
	const hoursAgo = (hours: number) => new Date(now.getTime() - hours * 3_600_000);

	it('allows a send now while under the cap', () => {
		expect(frequencyCapTime([], 2, now)).toEqual(now);
		expect(frequencyCapTime([hoursAgo(1)], 2, now)).toEqual(now);
		expect(frequencyCapTime([hoursAgo(30), hoursAgo(25)], 1, now)).toEqual(now);
	});

	it('at the cap, waits until the oldest send that matters leaves the 24 h window', () => {
		expect(frequencyCapTime([hoursAgo(1), hoursAgo(5)], 2, now)).toEqual(new Date(hoursAgo(5).getTime() + 86_400_000));
		expect(frequencyCapTime([hoursAgo(1), hoursAgo(5), hoursAgo(10)], 2, now)).toEqual(new Date(hoursAgo(5).getTime() + 86_400_000));
		expect(frequencyCapTime([hoursAgo(3)], 1, now)).toEqual(new Date('2026-05-06T09:00:00Z'));
	});

	it('then moves into the send window: a cap ending at 02:00 local sends at 08:00', () => {
		const sent = local('2026-10-24T02:00', 'Europe/Madrid');
		const at = local('2026-10-24T09:00', 'Europe/Madrid');
		const when = scheduleSend(at, QUIET, 'Europe/Madrid', { recentSends: [sent], maxPerDay: 1, now: at });
		// 24 h after 02:00 CEST on the 24th is 01:00 CET on the 25th (the clocks went back); quiet until 08:00
		expect(inZone(when, 'Europe/Madrid')).toBe('2026-10-25T08:00:00+01:00');
	});
});
