import { DateTime, IANAZone } from 'luxon';

/** When a sequence may send, as the site config and `email_sequences.settings` hold it. */
export interface SendWindow {
	/** Local times HH:MM; sending is paused from `start` until `end` (overnight when start > end). */
	quietHours?: { start: string; end: string };
	/** ISO weekdays a step may be sent on, 1 = Monday … 7 = Sunday; all days when absent. */
	weekdays?: number[];
}

const DAY_MS = 86_400_000;

/**
 * The lead's zone when it is a real IANA zone, else UTC: a lead without (or with a garbled) time
 * zone still gets mail at a predictable hour instead of failing the send.
 */
export function zoneOf(timezone: string | null | undefined): string {
	return timezone && IANAZone.isValidZone(timezone) ? timezone : 'UTC';
}

function minutesOf(hhmm: string): number {
	const [hours, minutes] = hhmm.split(':').map(Number);
	return hours * 60 + minutes;
}

/**
 * The same local date at `minutes` past midnight. Luxon moves a time that falls into a
 * spring-forward gap to just after it, so the result is always a real instant.
 */
function atLocalMinutes(day: DateTime, minutes: number): DateTime {
	return day.set({ hour: Math.floor(minutes / 60), minute: minutes % 60, second: 0, millisecond: 0 });
}

/** Where `local` leaves the quiet hours, or `local` itself when it is outside them. */
function afterQuietHours(local: DateTime, quiet: SendWindow['quietHours']): DateTime {
	if (!quiet) return local;
	const start = minutesOf(quiet.start);
	const end = minutesOf(quiet.end);
	if (start === end) return local;
	const now = local.hour * 60 + local.minute + local.second / 60 + local.millisecond / 60_000;
	if (start < end) return now >= start && now < end ? atLocalMinutes(local, end) : local;
	if (now >= start) return atLocalMinutes(local.plus({ days: 1 }), end);
	if (now < end) return atLocalMinutes(local, end);
	return local;
}

/**
 * The first instant at or after `due` that is outside the quiet hours and on an allowed weekday,
 * both judged on the lead's wall clock. Working in local calendar days (not 24-hour steps) is
 * what keeps "08:00" meaning 08:00 on both sides of a DST change.
 */
export function nextSendTime(due: Date, window: SendWindow, timezone: string | null | undefined): Date {
	const allowed = window.weekdays && window.weekdays.length > 0 ? new Set(window.weekdays) : undefined;
	let local: DateTime = DateTime.fromJSDate(due, { zone: zoneOf(timezone) });
	// A week of days always reaches an allowed weekday; each pass either returns or moves to the next day.
	for (let pass = 0; pass < 16; pass++) {
		local = afterQuietHours(local, window.quietHours);
		if (!allowed || allowed.has(local.weekday)) return local.toJSDate();
		local = local.plus({ days: 1 }).startOf('day');
	}
	throw new RangeError(`No allowed weekday in ${JSON.stringify(window.weekdays)}`);
}

/**
 * The earliest time a lead may receive another email under a cap of `maxPerDay` in any rolling
 * 24 hours, given the times of its recent sends (any sequence). Sends only ever leave the window
 * as time passes, so pushing this time later (quiet hours, weekdays) never breaks the cap.
 */
export function frequencyCapTime(recentSends: readonly Date[], maxPerDay: number, now: Date): Date {
	const since = now.getTime() - DAY_MS;
	const inWindow = recentSends.map((sent) => sent.getTime()).filter((sent) => sent > since && sent <= now.getTime()).sort((a, b) => a - b);
	if (inWindow.length < maxPerDay) return now;
	return new Date(inWindow[inWindow.length - maxPerDay] + DAY_MS);
}

/** When a step due at `due` goes out: not before the frequency cap allows, then inside the send window. */
export function scheduleSend(
	due: Date,
	window: SendWindow,
	timezone: string | null | undefined,
	cap?: { recentSends: readonly Date[]; maxPerDay: number; now: Date },
): Date {
	const capTime = cap ? frequencyCapTime(cap.recentSends, cap.maxPerDay, cap.now) : due;
	return nextSendTime(new Date(Math.max(due.getTime(), capTime.getTime())), window, timezone);
}
