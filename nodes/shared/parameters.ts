import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { EARLIEST_STORED_TIME, LATEST_CLIENT_TIME, storableText } from '../../lib/contracts/tracking';
import { InputError } from './inputError';
import { itemParameter } from './descriptions';

/**
 * Node parameters read as the type their declaration gives them. The editor holds a typed-in
 * value to its declaration's bounds, but not an expression's result nor workflow JSON imported or
 * written by hand: a count of 0 or "ten", an object where text belongs, a date past what Postgres
 * stores. Every parameter a node reads goes through here, so each such value is refused with the
 * field's label and the fix instead of looping, writing nothing, or failing in the database.
 */

/** The declaration of a parameter path such as `options.asOf`: the first declaration that has the whole path. */
export function declarationOf(properties: readonly INodeProperties[], path: string): INodeProperties | undefined {
	const [name, ...rest] = path.split('.');
	for (const property of properties) {
		if (property.name !== name) continue;
		if (rest.length === 0) return property;
		const options = ((property.options ?? []) as Array<Partial<INodeProperties>>).filter((option): option is INodeProperties => typeof option.name === 'string' && 'type' in option);
		const inner = declarationOf(options, rest.join('.'));
		if (inner) return inner;
	}
	return undefined;
}

/** A value as a message shows it. */
export function shownValue(value: unknown): string {
	if (value === undefined) return 'empty (the expression gave undefined)';
	if (value === null) return 'null';
	if (Array.isArray(value)) return 'a list';
	if (typeof value === 'object') return 'an object';
	if (typeof value === 'string') return value.trim() === '' ? 'empty' : `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
	return String(value);
}

/** The bounds a number declaration sets: typeOptions minValue, maxValue, and numberPrecision 0 for a whole number. */
export interface NumberBounds {
	minValue?: number;
	maxValue?: number;
	numberPrecision?: number;
}

function rangeOf({ minValue, maxValue, numberPrecision }: NumberBounds): string {
	const kind = numberPrecision === 0 ? 'a whole number' : 'a number';
	if (minValue !== undefined && maxValue !== undefined) return `${kind} from ${minValue} to ${maxValue}`;
	if (minValue !== undefined) return `${kind} of ${minValue} or more`;
	if (maxValue !== undefined) return `${kind} of ${maxValue} or less`;
	return kind;
}

/** `value` as a number within `bounds`; a numeric string (what many expressions give) counts. */
export function checkedNumber(field: string, value: unknown, bounds: NumberBounds = {}): number {
	const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
	const fits =
		Number.isFinite(number) &&
		(bounds.minValue === undefined || number >= bounds.minValue) &&
		(bounds.maxValue === undefined || number <= bounds.maxValue) &&
		(bounds.numberPrecision !== 0 || Number.isInteger(number));
	if (!fits) throw new InputError(field, `is ${shownValue(value)}: give ${rangeOf(bounds)}`);
	return number;
}

/** `value` of the number parameter `path`, held to its declaration's typeOptions. */
export function declaredNumber(properties: readonly INodeProperties[], path: string, value: unknown): number {
	return checkedNumber(path, value, (declarationOf(properties, path)?.typeOptions ?? {}) as NumberBounds);
}

/** A number parameter, held to its declaration's typeOptions; an unset one takes the declared default. */
export function numberParameter(context: IExecuteFunctions, properties: readonly INodeProperties[], path: string, itemIndex: number): number {
	return declaredNumber(properties, path, context.getNodeParameter(path, itemIndex, declarationOf(properties, path)?.default));
}

/** `value` as one of the values an options declaration lists. */
export function checkedOption<T extends string>(field: string, value: unknown, declaration: INodeProperties | undefined): T {
	const allowed = ((declaration?.options ?? []) as Array<{ value?: unknown }>).map((option) => option.value).filter((option): option is T => typeof option === 'string');
	if (typeof value !== 'string' || !allowed.includes(value as T)) throw new InputError(field, `is ${shownValue(value)}: give one of ${allowed.map((option) => `"${option}"`).join(', ')}`);
	return value as T;
}

/** An options parameter: one of the values its declaration lists, whatever an expression gave. */
export function optionParameter<T extends string>(context: IExecuteFunctions, properties: readonly INodeProperties[], path: string, itemIndex: number): T {
	const declaration = declarationOf(properties, path);
	return checkedOption<T>(path, context.getNodeParameter(path, itemIndex, declaration?.default), declaration);
}

// eslint-disable-next-line no-control-regex
const NUL = /\u0000/;

/**
 * `value` as text: a string, or a number written out; nothing (undefined, null) is ''. An object,
 * list or boolean is refused, as is a NUL character, which Postgres cannot store in any text.
 */
export function checkedText(field: string, value: unknown): string {
	if (value === undefined || value === null) return '';
	if (typeof value === 'number' && Number.isFinite(value)) return String(value);
	if (typeof value !== 'string') throw new InputError(field, `is ${shownValue(value)}: give text (map one field of the item, such as {{ $json.email }}, not a whole object)`);
	if (NUL.test(value)) throw new InputError(field, 'contains a NUL character (\\u0000), which cannot be stored: remove it');
	return value;
}

/** A text parameter for one item (checkedText), read from the item itself where the expression only reads a field. */
export function textParameter(context: IExecuteFunctions, path: string, itemIndex: number, fallback: unknown = ''): string {
	return checkedText(path, path.includes('.') ? context.getNodeParameter(path, itemIndex, fallback) : itemParameter(context, path, itemIndex, fallback));
}

/**
 * `value` (an ISO 8601 time, epoch milliseconds or a Date) as a time Postgres stores and a person
 * means: from 1900 to the end of 9999. Nothing ('' or unset) is undefined.
 */
export function checkedTime(field: string, value: unknown): Date | undefined {
	if (value === undefined || value === null || value === '') return undefined;
	const time = value instanceof Date ? value : typeof value === 'string' || typeof value === 'number' ? new Date(value) : undefined;
	if (!time || Number.isNaN(time.getTime())) throw new InputError(field, `is ${shownValue(value)}, not a date and time: give an ISO 8601 time such as 2026-11-23T10:00:00Z`);
	if (time.getTime() < EARLIEST_STORED_TIME || time.getTime() > LATEST_CLIENT_TIME) throw new InputError(field, `is ${time.toISOString()}: give a time from the year 1900 to 9999`);
	return time;
}

/** The options of a collection parameter; a value that is no object (an expression gone wrong) is refused. */
export function collectionParameter(context: IExecuteFunctions, path: string, itemIndex: number): IDataObject {
	const value = context.getNodeParameter(path, itemIndex, {});
	if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InputError(path, `is ${shownValue(value)}: give its options as an object`);
	return value as IDataObject;
}

/**
 * A JSON value as Postgres's jsonb stores it: a NUL character, which jsonb cannot hold, is refused
 * with the path of the key or string that has it; half a surrogate pair, which no UTF-8 encodes, is
 * replaced (storableText). Returns the value to store.
 */
export function checkedJson(field: string, value: unknown, path = ''): unknown {
	const where = path ? `${path} ` : '';
	if (typeof value === 'string') {
		if (NUL.test(value)) throw new InputError(field, `${where}contains a NUL character (\\u0000), which cannot be stored: remove it`);
		return storableText(value);
	}
	if (Array.isArray(value)) return value.map((entry, index) => checkedJson(field, entry, `${path}[${index}]`));
	if (value === null || typeof value !== 'object') return value;
	const stored: Record<string, unknown> = {};
	for (const [key, entry] of Object.entries(value)) {
		if (NUL.test(key)) throw new InputError(field, `${where}has a key with a NUL character (\\u0000), which cannot be stored: remove it`);
		stored[storableText(key)] = checkedJson(field, entry, path ? `${path}.${key}` : key);
	}
	return stored;
}
