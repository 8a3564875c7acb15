#!/usr/bin/env node
/**
 * docs/data-model.md from prisma/schema.prisma: a Mermaid erDiagram of every table with its
 * columns, keys and foreign keys, and each table's `///` notes. The page is generated, never
 * edited, so it cannot drift from the schema (test/docs/dataModel.test.ts compares them).
 *
 *   node dist/scripts/schema-diagram.js           writes docs/data-model.md
 *   node dist/scripts/schema-diagram.js --check   exit 1 when docs/data-model.md is out of date
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface SchemaField {
	name: string;
	column: string;
	/** The Prisma type without `?` or `[]`: a scalar, an enum or another model. */
	type: string;
	/** The `@db.` type it is stored as (`Uuid`, `Timestamptz`), if the schema names one. */
	dbType?: string;
	optional: boolean;
	list: boolean;
	id: boolean;
	unique: boolean;
	/** `@relation(fields: […])`: the columns of this model that point at `type`. */
	relationFields?: string[];
	doc: string;
}

export interface SchemaModel {
	name: string;
	table: string;
	doc: string;
	fields: SchemaField[];
	/** Composite keys: `@@id`, `@@unique`, as column names. */
	compositeId: string[];
	compositeUniques: string[][];
}

export interface SchemaEnum {
	name: string;
	dbName: string;
	values: string[];
}

export interface ParsedSchema {
	models: SchemaModel[];
	enums: SchemaEnum[];
}

/** A line without its `//` comment; `///` doc comments are read before this. Quotes are respected. */
function withoutComment(line: string): string {
	let quoted = false;
	for (let index = 0; index < line.length; index++) {
		if (line[index] === '"' && line[index - 1] !== '\\') quoted = !quoted;
		if (!quoted && line.startsWith('//', index)) return line.slice(0, index);
	}
	return line;
}

const mapped = (text: string): string | undefined => /@map\("([^"]+)"\)/.exec(text)?.[1];

/** The names inside `[a, b]` of an attribute such as `@@unique([siteId, key])` or `fields: [siteId]`. */
const nameList = (text: string): string[] =>
	text
		.split(',')
		.map((name) => name.trim().replace(/\(.*$/, ''))
		.filter(Boolean);

/** Reads the models and enums of a Prisma schema: what the diagram needs, nothing more. */
export function parseSchema(schema: string): ParsedSchema {
	const models: SchemaModel[] = [];
	const enums: SchemaEnum[] = [];
	let docs: string[] = [];
	let block: { kind: 'model'; model: SchemaModel; uniques: string[][]; id: string[] } | { kind: 'enum'; value: SchemaEnum } | undefined;

	for (const raw of schema.split('\n')) {
		const trimmed = raw.trim();
		const doc = /^\/\/\/\s?(.*)$/.exec(trimmed);
		if (doc) {
			docs.push(doc[1]);
			continue;
		}
		const line = withoutComment(raw).trim();
		if (!line) {
			if (!block) docs = [];
			continue;
		}
		const opening = /^(model|enum)\s+(\w+)\s*\{$/.exec(line);
		if (opening && !block) {
			block =
				opening[1] === 'model'
					? { kind: 'model', model: { name: opening[2], table: opening[2], doc: docs.join(' '), fields: [], compositeId: [], compositeUniques: [] }, uniques: [], id: [] }
					: { kind: 'enum', value: { name: opening[2], dbName: opening[2], values: [] } };
			docs = [];
			continue;
		}
		if (!block) {
			docs = [];
			continue;
		}
		if (line === '}') {
			if (block.kind === 'model') {
				const { model } = block;
				const column = (name: string) => model.fields.find((field) => field.name === name)?.column ?? name;
				model.compositeId = block.id.map(column);
				model.compositeUniques = block.uniques.map((names) => names.map(column));
				models.push(model);
			} else enums.push(block.value);
			block = undefined;
			docs = [];
			continue;
		}
		if (block.kind === 'enum') {
			if (line.startsWith('@@')) block.value.dbName = mapped(line) ?? block.value.dbName;
			else block.value.values.push(line.split(/\s/)[0]);
			docs = [];
			continue;
		}
		if (line.startsWith('@@')) {
			const map = /^@@map\("([^"]+)"\)/.exec(line);
			if (map) block.model.table = map[1];
			const id = /^@@id\(\[([^\]]*)\]/.exec(line);
			if (id) block.id = nameList(id[1]);
			const unique = /^@@unique\(\[([^\]]*)\]/.exec(line);
			if (unique) block.uniques.push(nameList(unique[1]));
			docs = [];
			continue;
		}
		const field = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(line);
		if (!field) throw new Error(`schema-diagram: cannot read the line "${line}" of model ${block.model.name}`);
		const [, name, type, list, optional, attributes] = field;
		const relation = /@relation\([^)]*fields:\s*\[([^\]]*)\]/.exec(attributes);
		block.model.fields.push({
			name,
			column: mapped(attributes) ?? name,
			type,
			dbType: /@db\.(\w+)/.exec(attributes)?.[1],
			optional: Boolean(optional),
			list: Boolean(list),
			id: /@id\b/.test(attributes),
			unique: /@unique\b/.test(attributes),
			relationFields: relation ? nameList(relation[1]) : undefined,
			doc: docs.join(' '),
		});
		docs = [];
	}
	if (block) throw new Error('schema-diagram: the schema ends inside a block');
	return { models, enums };
}

/** Postgres' names of the columns' types, as Prisma stores each scalar unless `@db.` says otherwise. */
const POSTGRES_TYPES: Record<string, string> = {
	String: 'text',
	Int: 'integer',
	BigInt: 'bigint',
	Float: 'float8',
	Decimal: 'numeric',
	Boolean: 'boolean',
	DateTime: 'timestamp',
	Json: 'jsonb',
	Bytes: 'bytea',
};

/** The column's type in the database: an enum's own name, the `@db.` type, or Prisma's default for the scalar. */
function columnType(field: SchemaField, enumNames: ReadonlyMap<string, string>): string {
	const type = enumNames.get(field.type) ?? (field.dbType === 'Decimal' ? 'numeric' : field.dbType?.toLowerCase()) ?? POSTGRES_TYPES[field.type] ?? field.type;
	return `${type}${field.list ? '[]' : ''}`;
}

/** Mermaid's erDiagram reads a comment as a quoted string: no double quotes inside. */
const quoted = (text: string) => `"${text.replace(/"/g, "'")}"`;

/** The erDiagram: entities are the tables, attributes their columns, relationships the foreign keys. */
export function erDiagram({ models, enums }: ParsedSchema): string {
	const tables = new Map(models.map((model) => [model.name, model]));
	const enumNames = new Map(enums.map((value) => [value.name, value.dbName]));
	const lines = ['erDiagram'];
	for (const model of models) {
		for (const field of model.fields) {
			const target = tables.get(field.type);
			if (!target || !field.relationFields) continue;
			const keys = field.relationFields.map((name) => model.fields.find((candidate) => candidate.name === name)!);
			const required = keys.every((key) => !key.optional);
			const oneToOne = keys.length === 1 && keys[0].unique;
			lines.push(`  ${target.table} ${required ? '||' : '|o'}--${oneToOne ? 'o|' : 'o{'} ${model.table} : ${quoted(keys.map((key) => key.column).join(', '))}`);
		}
	}
	for (const model of models) {
		const foreign = new Set(model.fields.flatMap((field) => field.relationFields ?? []));
		lines.push(`  ${model.table} {`);
		for (const field of model.fields) {
			if (tables.has(field.type)) continue;
			const keys = [
				...(field.id || model.compositeId.includes(field.column) ? ['PK'] : []),
				...(foreign.has(field.name) ? ['FK'] : []),
				...(field.unique ? ['UK'] : []),
			];
			lines.push(`    ${columnType(field, enumNames)} ${field.column}${keys.length ? ` ${keys.join(', ')}` : ''}${field.optional ? ' "nullable"' : ''}`);
		}
		lines.push('  }');
	}
	return lines.join('\n');
}

/** docs/data-model.md as the schema gives it. */
export function dataModelDocument(schema: string): string {
	const parsed = parseSchema(schema);
	const sections = parsed.models.map((model) => {
		const notes = model.fields.filter((field) => field.doc && !parsed.models.some((other) => other.name === field.type)).map((field) => `- \`${field.column}\`: ${field.doc}`);
		const uniques = model.compositeUniques.map((columns) => `(${columns.join(', ')})`);
		return [
			`### ${model.table}`,
			'',
			model.doc || '(No note in the schema.)',
			...(model.compositeId.length ? ['', `Primary key: (${model.compositeId.join(', ')}).`] : []),
			...(uniques.length ? ['', `Unique: ${uniques.join('; ')}.`] : []),
			...(notes.length ? ['', ...notes] : []),
		].join('\n');
	});
	const enumRows = parsed.enums.map((value) => `| \`${value.dbName}\` | ${value.values.map((name) => `\`${name}\``).join(', ')} |`);
	return [
		'<!-- Generated by scripts/schema-diagram.ts from prisma/schema.prisma; do not edit. Regenerate: npm run build && node dist/scripts/schema-diagram.js -->',
		'# Data model',
		'',
		'Every table of the CRM database, drawn from `prisma/schema.prisma`, the one schema the receiver',
		'and the nodes share. Names are the database\'s (snake_case), and so are the types (an enumerated',
		'type by its own name, listed at the end). A line between two tables is a foreign key, labelled',
		'with its column; `PK` marks a primary key, `FK` a foreign key, `UK` a unique column. Tables with',
		'no line to `sites` still carry a `site_id`: their notes below say why it has no foreign key.',
		'How the parts use these tables: [technical.md](technical.md).',
		'',
		'```mermaid',
		erDiagram(parsed),
		'```',
		'',
		'## Tables',
		'',
		sections.join('\n\n'),
		'',
		'## Enumerated types',
		'',
		'| type | values |',
		'|---|---|',
		...enumRows,
		'',
	].join('\n');
}

/** The repository root, whether this runs built (dist/scripts) or from source (scripts/, under the tests). */
const ROOT = [path.resolve(__dirname, '..'), path.resolve(__dirname, '..', '..')].find((dir) => existsSync(path.join(dir, 'prisma', 'schema.prisma'))) ?? path.resolve(__dirname, '..');
export const SCHEMA_FILE = path.join(ROOT, 'prisma', 'schema.prisma');
export const DATA_MODEL_FILE = path.join(ROOT, 'docs', 'data-model.md');

function main(argv: string[]): number {
	const wanted = dataModelDocument(readFileSync(SCHEMA_FILE, 'utf8'));
	if (argv.includes('--check')) {
		const current = existsSync(DATA_MODEL_FILE) ? readFileSync(DATA_MODEL_FILE, 'utf8') : '';
		if (current === wanted) return 0;
		console.error(`${path.relative(process.cwd(), DATA_MODEL_FILE)} is not what prisma/schema.prisma gives; run node dist/scripts/schema-diagram.js`);
		return 1;
	}
	writeFileSync(DATA_MODEL_FILE, wanted);
	console.log(`Wrote ${path.relative(process.cwd(), DATA_MODEL_FILE)} (${parseSchema(readFileSync(SCHEMA_FILE, 'utf8')).models.length} tables)`);
	return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
