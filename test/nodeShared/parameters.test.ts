/**
 * The typed readers every node reads its parameters with: what an expression or hand-written
 * workflow JSON can put where the editor would only let a valid value through.
 */
import type { INodeProperties } from 'n8n-workflow';

import { InputError } from '../../nodes/shared/inputError';
import { checkedJson, checkedNumber, checkedOption, checkedText, checkedTime, declarationOf, shownValue } from '../../nodes/shared/parameters';

const problemOf = (run: () => unknown): { field: string; message: string } | undefined => {
	try {
		run();
		return undefined;
	} catch (error) {
		if (!(error instanceof InputError)) throw error;
		return { field: error.field, message: error.message };
	}
};

describe('checkedNumber', () => {
	const count = { minValue: 1, maxValue: 1000, numberPrecision: 0 };

	it('takes numbers and the numeric strings expressions give, within the declared bounds', () => {
		expect(checkedNumber('batchSize', 1, count)).toBe(1);
		expect(checkedNumber('batchSize', '250', count)).toBe(250);
		expect(checkedNumber('batchSize', ' 1000 ', count)).toBe(1000);
		expect(checkedNumber('halfLife', 0.5, { minValue: 0.1 })).toBe(0.5);
	});

	it.each([
		[0, 'is 0: give a whole number from 1 to 1000'],
		[-1, 'is -1: give a whole number from 1 to 1000'],
		[1001, 'is 1001: give a whole number from 1 to 1000'],
		[2.5, 'is 2.5: give a whole number from 1 to 1000'],
		['ten', 'is "ten": give a whole number from 1 to 1000'],
		['', 'is empty: give a whole number from 1 to 1000'],
		[undefined, 'is empty (the expression gave undefined): give a whole number from 1 to 1000'],
		[null, 'is null: give a whole number from 1 to 1000'],
		[Number.NaN, 'is NaN: give a whole number from 1 to 1000'],
		[Number.POSITIVE_INFINITY, 'is Infinity: give a whole number from 1 to 1000'],
		[{ n: 1 }, 'is an object: give a whole number from 1 to 1000'],
		[[1], 'is a list: give a whole number from 1 to 1000'],
		[true, 'is true: give a whole number from 1 to 1000'],
	])('refuses %p for a count, naming the field and the range', (value, message) => {
		expect(problemOf(() => checkedNumber('batchSize', value, count))).toEqual({ field: 'batchSize', message });
	});

	it('words one-sided and unbounded ranges', () => {
		expect(problemOf(() => checkedNumber('limit', 0, { minValue: 1, numberPrecision: 0 }))?.message).toBe('is 0: give a whole number of 1 or more');
		expect(problemOf(() => checkedNumber('ratio', 2, { maxValue: 1 }))?.message).toBe('is 2: give a number of 1 or less');
		expect(problemOf(() => checkedNumber('ratio', 'x'))?.message).toBe('is "x": give a number');
	});
});

describe('checkedText', () => {
	it('takes strings and numbers; nothing is empty text', () => {
		expect(checkedText('lead', 'jane@example.com')).toBe('jane@example.com');
		expect(checkedText('lead', 42)).toBe('42');
		expect(checkedText('lead', undefined)).toBe('');
		expect(checkedText('lead', null)).toBe('');
	});

	it('refuses an object, a list, a boolean and a NUL character, naming the field', () => {
		expect(problemOf(() => checkedText('description', { a: 1 }))).toEqual({
			field: 'description',
			message: 'is an object: give text (map one field of the item, such as {{ $json.email }}, not a whole object)',
		});
		expect(problemOf(() => checkedText('description', ['a']))?.message).toMatch(/^is a list: give text/);
		expect(problemOf(() => checkedText('description', true))?.message).toMatch(/^is true: give text/);
		expect(problemOf(() => checkedText('description', 'bad\u0000text'))?.message).toBe('contains a NUL character (\\u0000), which cannot be stored: remove it');
	});
});

describe('checkedTime', () => {
	it('takes ISO times, epoch milliseconds and Dates; nothing is undefined', () => {
		expect(checkedTime('asOf', '2026-11-23T10:00:00Z')?.toISOString()).toBe('2026-11-23T10:00:00.000Z');
		expect(checkedTime('asOf', Date.UTC(2026, 0, 1))?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
		expect(checkedTime('asOf', new Date(Date.UTC(2030, 5, 1)))?.toISOString()).toBe('2030-06-01T00:00:00.000Z');
		expect(checkedTime('asOf', '')).toBeUndefined();
		expect(checkedTime('asOf', undefined)).toBeUndefined();
	});

	it('refuses what is no time, and times Postgres or a person would not mean', () => {
		expect(problemOf(() => checkedTime('occurredAt', 'soon'))).toEqual({ field: 'occurredAt', message: 'is "soon", not a date and time: give an ISO 8601 time such as 2026-11-23T10:00:00Z' });
		expect(problemOf(() => checkedTime('occurredAt', { at: 1 }))?.message).toBe('is an object, not a date and time: give an ISO 8601 time such as 2026-11-23T10:00:00Z');
		expect(problemOf(() => checkedTime('occurredAt', '+275000-01-01T00:00:00Z'))?.message).toBe('is +275000-01-01T00:00:00.000Z: give a time from the year 1900 to 9999');
		expect(problemOf(() => checkedTime('occurredAt', '1066-10-14T09:00:00Z'))?.message).toBe('is 1066-10-14T09:00:00.000Z: give a time from the year 1900 to 9999');
	});
});

describe('checkedJson', () => {
	it('keeps what jsonb stores and mends half a surrogate pair', () => {
		expect(checkedJson('data', { page: '/pricing', n: 1, list: ['a', null, true], nested: { ok: 'yes' } })).toEqual({ page: '/pricing', n: 1, list: ['a', null, true], nested: { ok: 'yes' } });
		expect(checkedJson('data', { note: 'cut \ud800 here' })).toEqual({ note: 'cut \ufffd here' });
	});

	it('refuses a NUL character in a value or a key, naming where', () => {
		expect(problemOf(() => checkedJson('data', { nested: { list: ['ok', 'bad\u0000'] } }))).toEqual({
			field: 'data',
			message: 'nested.list[1] contains a NUL character (\\u0000), which cannot be stored: remove it',
		});
		expect(problemOf(() => checkedJson('data', { 'k\u0000': 1 }))?.message).toBe('has a key with a NUL character (\\u0000), which cannot be stored: remove it');
	});
});

describe('checkedOption', () => {
	const subject: INodeProperties = { displayName: 'Subject', name: 'subject', type: 'options', default: 'lead', options: [{ name: 'Lead', value: 'lead' }, { name: 'Visitor', value: 'visitor' }] };

	it('takes a listed value and refuses any other, listing them', () => {
		expect(checkedOption('subject', 'visitor', subject)).toBe('visitor');
		expect(problemOf(() => checkedOption('subject', 'customer', subject))).toEqual({ field: 'subject', message: 'is "customer": give one of "lead", "visitor"' });
		expect(problemOf(() => checkedOption('subject', undefined, subject))?.message).toBe('is empty (the expression gave undefined): give one of "lead", "visitor"');
	});
});

describe('declarationOf', () => {
	const properties: INodeProperties[] = [
		{ displayName: 'Batch Size', name: 'batchSize', type: 'number', default: 50, typeOptions: { minValue: 1 } },
		{
			displayName: 'Options',
			name: 'options',
			type: 'collection',
			default: {},
			options: [{ displayName: 'As Of', name: 'asOf', type: 'dateTime', default: '' }],
		},
	];

	it('finds a parameter and an option inside a collection by path', () => {
		expect(declarationOf(properties, 'batchSize')?.typeOptions).toEqual({ minValue: 1 });
		expect(declarationOf(properties, 'options.asOf')?.displayName).toBe('As Of');
		expect(declarationOf(properties, 'options.missing')).toBeUndefined();
	});

	it('shows long text cut', () => {
		expect(shownValue('x'.repeat(50))).toBe(`"${'x'.repeat(40)}…"`);
	});
});
