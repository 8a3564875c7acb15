import type { Request, Response } from 'express';
import { z } from 'zod/v4';

import { LEAD_CONTROL_CHARS, toFieldIssues } from '../../lib/contracts';
import { knownKeysAt } from '../../lib/contracts/issues';
import { sendProblem } from './problems';

/**
 * The read and admin routes' inputs: each route has one schema for its query or body, and every
 * value that schema lets through is one Postgres and JS Date can hold, so a bad value is a 400
 * naming the field, never an error of the database.
 */

export interface InputIssue {
	field: string;
	message: string;
}

/** Half of a UTF-16 surrogate pair: JSON can carry one, UTF-8 cannot encode it. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Text that reaches a query: Postgres refuses a NUL byte outright, and no field of these routes
 * has a use for other control characters or a broken character.
 */
export function cleanText<T extends z.ZodString>(schema: T): T {
	return schema
		.refine((value) => !LEAD_CONTROL_CHARS.test(value), { error: 'must not contain control characters (such as NUL, tab or line breaks)' })
		.refine((value) => !LONE_SURROGATE.test(value), { error: 'must be valid Unicode text (it holds half of a surrogate pair)' }) as T;
}

export const text = (max: number) => cleanText(z.string().max(max, { error: `must be at most ${max} characters` }));

/** How a value the client sent is quoted back in a message: short, and with any odd character escaped. */
export const quoted = (value: unknown) => JSON.stringify(String(value).slice(0, 60));

/**
 * A whole number in a query parameter, in digits only, checked once with one message: 1.5, NaN,
 * 1e3, 0x10, an empty value and one out of range are all told the same thing.
 */
export const wholeNumber = (min: number, max: number) =>
	z
		.string()
		.refine((value) => /^\d{1,15}$/.test(value) && Number(value) >= min && Number(value) <= max, { error: (issue) => `must be a whole number from ${min} to ${max} (got ${quoted(issue.input)})` })
		.transform(Number);

export const INSTANT_FORMAT = 'an ISO 8601 date or date-time with a zone, such as 2026-11-01 or 2026-11-01T09:30:00Z';
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?(Z|([+-])(\d{2}):(\d{2})))?$/;

/** Dates a report may name: wide enough for any site's history, narrow enough for every timestamp column and Date. */
export const EARLIEST_YEAR = 2000;
export const LATEST_YEAR = 2099;

export interface Instant {
	at: Date;
	/** Given as a date without a time: as an end, it includes that whole day. */
	dateOnly: boolean;
}

/**
 * Strict on purpose: Date.parse reads 2026-02-30 as March 2 and a time without a zone in the
 * server's zone, so the same URL would mean different ranges on different machines.
 */
function parseInstant(text: string): Instant | undefined {
	const match = INSTANT.exec(text);
	if (!match) return undefined;
	const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0));
	const millisecond = Number((match[7] ?? '0').padEnd(3, '0'));
	const wallClock = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millisecond));
	// Date.UTC rolls invalid parts over (day 30 of February is March 2, year 0 is 1900); a roll-over shows as a changed part.
	const valid = wallClock.getUTCFullYear() === year && wallClock.getUTCMonth() === month - 1 && wallClock.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
	const [sign, zoneHours, zoneMinutes] = [match[9], Number(match[10] ?? 0), Number(match[11] ?? 0)];
	if (!valid || zoneHours > 23 || zoneMinutes > 59) return undefined;
	const offsetMs = (sign === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes) * 60_000;
	return { at: new Date(wallClock.getTime() - offsetMs), dateOnly: match[4] === undefined };
}

export const instant = z.string().transform((value, context): Instant => {
	const year = Number(/^\d{4}/.exec(value)?.[0]);
	if (year < EARLIEST_YEAR || year > LATEST_YEAR) {
		context.issues.push({ code: 'custom', input: value, message: `must be a date from ${EARLIEST_YEAR}-01-01 to ${LATEST_YEAR}-12-31 (got ${quoted(value)})` });
		return z.NEVER;
	}
	const parsed = parseInstant(value);
	if (!parsed) {
		context.issues.push({ code: 'custom', input: value, message: `must be ${INSTANT_FORMAT} (got ${quoted(value)})` });
		return z.NEVER;
	}
	return parsed;
});

function sendInvalid(res: Response, error: string, what: string, issues: InputIssue[]): void {
	// An unknown parameter's name is the client's text: quoted back, but not at any length.
	const listed = issues.map((issue) => `${issue.field.slice(0, 100)} ${issue.message}`).join('; ');
	sendProblem(res, 400, error, what ? `The ${what} is invalid: ${listed}` : listed, { issues });
}

/** The input as the schema reads it, or undefined once a 400 naming every bad field went out. */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, res: Response, error: string, what = ''): T | undefined {
	const result = schema.safeParse(input);
	if (result.success) return result.data;
	sendInvalid(res, error, what, toFieldIssues(result.error, input, schema).map(({ field, message }) => ({ field, message })));
	return undefined;
}

/**
 * A query parameter given twice arrives as an array (`?to=a&to=b`); no parameter of these
 * routes is a list, so that is refused as such before the schema reads the values.
 */
export function parseQuery<T>(schema: z.ZodType<T>, req: Request, res: Response, error: string, what = ''): T | undefined {
	// A parameter the schema does not take is refused as unknown, by the schema, however often it came.
	const known = new Set(knownKeysAt(schema, []));
	const repeated = Object.entries(req.query)
		.filter(([field, value]) => typeof value !== 'string' && (known.size === 0 || known.has(field)))
		.map(([field]) => ({ field, message: 'must be given once, as a single value' }));
	if (repeated.length) {
		sendInvalid(res, error, what, repeated);
		return undefined;
	}
	return parseInput(schema, req.query, res, error, what);
}
