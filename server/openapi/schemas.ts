import { z } from 'zod/v4';

/** A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1's schema objects) as plain data. */
export type JsonSchema = { [key: string]: unknown };

/**
 * A zod schema as JSON Schema. Requests are described by their input (what a client sends: a
 * field with a default may be left out, a date is the string the route parses), answers by their
 * output. Refinements (a UUIDv7's version, a real time zone) have no JSON Schema form: the
 * descriptions say them in words, and the receiver's 400 names the field either way.
 */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
	const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'throw', reused: 'inline' }) as JsonSchema;
	return json;
}

/** Field notes by path: `events[].type` is the `type` of each item of `events`; `` is the whole schema. */
export type FieldNotes = Record<string, string>;

function child(schema: JsonSchema, segment: string, path: string): JsonSchema {
	const [name, ...items] = segment.split('[]');
	let node = name ? (schema.properties as Record<string, JsonSchema> | undefined)?.[name] : schema;
	for (const _item of items) node = node?.items as JsonSchema | undefined;
	if (!node) throw new Error(`The note for "${path}" names no field of the schema (no "${segment}")`);
	return node;
}

/**
 * Adds a person's explanation to the fields of a generated schema. The contracts explain their
 * fields in code comments, which zod cannot carry; a note naming a field the schema lacks throws,
 * so a renamed field cannot leave a stale note behind.
 */
export function withNotes(schema: JsonSchema, notes: FieldNotes): JsonSchema {
	for (const [path, note] of Object.entries(notes)) {
		const node = path ? path.split('.').reduce((at, segment) => child(at, segment, path), schema) : schema;
		node.description = note;
	}
	return schema;
}
