/**
 * docker-compose.yml and its .env read as Docker Compose reads them (compose-go's dotenv and
 * template packages), for the tests that check the stack and the one that starts it from plain
 * processes: no Docker engine runs here.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parse } from 'yaml';

export class ComposeError extends Error {}

// ---------------------------------------------------------------------------------------------
// ${VARIABLE} interpolation
// ---------------------------------------------------------------------------------------------

/** ":-" / "-" default when unset-or-empty / unset; ":?" / "?" fail; ":+" / "+" the alternative when set-and-non-empty / set. */
export type Operator = ':-' | '-' | ':?' | '?' | ':+' | '+';

/** One variable looked up by an interpolation. */
export interface Reference {
	name: string;
	operator?: Operator;
	/** What follows the operator, as written (the default, the error message or the alternative). */
	argument: string;
	where: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const BRACED = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/;

/** The "}" closing the "{" at `open`, counting the braces between as Compose does, or -1. */
function closingBrace(text: string, open: number): number {
	let depth = 0;
	for (let index = open; index < text.length; index++) {
		if (text[index] === '{') depth++;
		if (text[index] === '}' && --depth === 0) return index;
	}
	return -1;
}

/**
 * Compose's interpolation of one string: $$ is a literal $, a $ before anything but a name or
 * "{" stays as it is; $VAR and ${VAR} are the value, or "" when unset (Compose warns); operators
 * as in {@link Operator}, their argument interpolated in turn only when Compose would use it.
 * `onReference` hears of every variable looked up, a default's own only when the default is taken.
 */
export function interpolate(text: string, variables: Readonly<Record<string, string>>, where: string, onReference?: (reference: Reference) => void): string {
	let out = '';
	let index = 0;
	for (let dollar = text.indexOf('$'); dollar >= 0; dollar = text.indexOf('$', index)) {
		out += text.slice(index, dollar);
		if (text[dollar + 1] === '$') {
			out += '$';
			index = dollar + 2;
		} else if (text[dollar + 1] === '{') {
			const end = closingBrace(text, dollar + 1);
			const match = end < 0 ? null : BRACED.exec(text.slice(dollar + 2, end));
			if (!match) throw new ComposeError(`${where}: invalid interpolation in "${text}" (write $$ for a literal $)`);
			out += substitute({ name: match[1], operator: match[2] as Operator | undefined, argument: match[3] ?? '', where }, variables, onReference);
			index = end + 1;
		} else {
			const name = NAME.exec(text.slice(dollar + 1))?.[0];
			out += name === undefined ? '$' : substitute({ name, argument: '', where }, variables, onReference);
			index = dollar + 1 + (name?.length ?? 0);
		}
	}
	return out + text.slice(index);
}

function substitute(reference: Reference, variables: Readonly<Record<string, string>>, onReference?: (reference: Reference) => void): string {
	onReference?.(reference);
	const { name, operator, argument, where } = reference;
	const value = Object.hasOwn(variables, name) ? variables[name] : undefined;
	const set = value !== undefined && !(operator?.startsWith(':') === true && value === '');
	const operand = () => interpolate(argument, variables, where, onReference);
	switch (operator?.replace(':', '')) {
		case '-':
			return set ? value! : operand();
		case '+':
			return set ? operand() : '';
		case '?':
			if (!set) throw new ComposeError(`${where}: required variable ${name} is missing a value${argument ? `: ${operand()}` : ''}`);
			return value!;
		default:
			return value ?? '';
	}
}

/** A YAML document as `yaml` parses the compose file. */
export type ComposeValue = null | boolean | number | string | ComposeValue[] | { [key: string]: ComposeValue };

/** Every string of a document interpolated, as Compose does before it reads the model; keys stay. `where` grows into the path of each value. */
function interpolateDocument(value: ComposeValue, variables: Readonly<Record<string, string>>, where: string, onReference?: (reference: Reference) => void): ComposeValue {
	if (typeof value === 'string') return interpolate(value, variables, where, onReference);
	if (Array.isArray(value)) return value.map((item, index) => interpolateDocument(item, variables, `${where}[${index}]`, onReference));
	if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolateDocument(item, variables, `${where}.${key}`, onReference)]));
	return value;
}

// ---------------------------------------------------------------------------------------------
// .env files
// ---------------------------------------------------------------------------------------------

export interface EnvEntry {
	name: string;
	value: string;
	/** The line it starts on (1-based). */
	line: number;
	/** The entry as written: its lines, whole. */
	source: string;
}

export interface EnvFile {
	/** Each name's value; a name given twice has its last value, as in Compose. */
	variables: Record<string, string>;
	/** Every entry in file order, duplicates included. */
	entries: EnvEntry[];
}

const ENTRY = /^\s*(?:export\s+)?([\p{L}\p{N}_.\-[\]]+)[ \t]*(?:([=:])[ \t]*(.*))?$/u;
// \$ becomes $$, which interpolation then reads as a literal $.
const DOUBLE_QUOTED_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', $: '$$' };

/**
 * An env file as Compose reads it: blank lines and # comments; `NAME=value` or `NAME: value`,
 * optionally after `export`. An unquoted value ends at " #" and loses its trailing blanks; a
 * single-quoted one is literal; a double-quoted one knows \n \t \" \\ \$ … Quoted values may span
 * lines. Unquoted and double-quoted values are interpolated with the entries above them.
 */
export function parseEnvFile(text: string, file: string): EnvFile {
	const lines = text.split(/\r?\n/);
	const variables: Record<string, string> = {};
	const entries: EnvEntry[] = [];
	for (let index = 0; index < lines.length; index++) {
		if (/^\s*(#|$)/.test(lines[index])) continue;
		const first = index;
		const where = `${file}:${first + 1}`;
		const match = ENTRY.exec(lines[first]);
		if (!match) throw new ComposeError(`${where}: expected NAME=value, got "${lines[first]}"`);
		const [, name, separator, rest = ''] = match;
		// Compose would take the value from its shell, which these tests do not pass on.
		if (!separator) throw new ComposeError(`${where}: ${name} has no value (Compose would take it from the shell); write ${name}=value`);
		let value: string;
		const quote = rest[0];
		if (quote === '"' || quote === "'") {
			let scanned = scanQuoted(rest.slice(1), quote);
			let raw = scanned.chars;
			while (scanned.after === undefined) {
				if (++index >= lines.length) throw new ComposeError(`${where}: ${name}'s quoted value is not closed`);
				scanned = scanQuoted(lines[index], quote);
				raw += `\n${scanned.chars}`;
			}
			if (!/^\s*(#.*)?$/.test(scanned.after)) throw new ComposeError(`${where}: "${scanned.after.trim()}" after ${name}'s closing quote`);
			value = quote === "'" ? raw : interpolate(raw.replace(/\\([abfnrtv\\$])/g, (_escape, character: string) => DOUBLE_QUOTED_ESCAPES[character]), variables, where);
		} else {
			value = interpolate(rest.split(' #')[0].trimEnd(), variables, where);
		}
		variables[name] = value;
		entries.push({ name, value, line: first + 1, source: lines.slice(first, index + 1).join('\n') });
	}
	return { variables, entries };
}

/**
 * A quoted value's characters on one line, from after its opening quote: a backslash is dropped
 * before the quote and kept before anything else. `after` is what follows the closing quote,
 * undefined when the value goes on to the next line.
 */
function scanQuoted(text: string, quote: string): { chars: string; after?: string } {
	let chars = '';
	for (let index = 0; index < text.length; index++) {
		if (text[index] === '\\' && index + 1 < text.length) {
			const next = text[++index];
			chars += next === quote ? next : `\\${next}`;
		} else if (text[index] === quote) {
			return { chars, after: text.slice(index + 1) };
		} else {
			chars += text[index];
		}
	}
	return { chars };
}

/**
 * The variables an operator gives the compose file: .env.example's, with every empty one (the
 * secrets) set to a value of its own, as .env.example asks (`openssl rand -hex 32`).
 */
export function operatorVariables(example: Readonly<Record<string, string>>): { variables: Record<string, string>; generated: string[] } {
	const generated = Object.keys(example).filter((name) => example[name] === '');
	return { variables: { ...example, ...Object.fromEntries(generated.map((name) => [name, randomBytes(32).toString('hex')])) }, generated };
}

// ---------------------------------------------------------------------------------------------
// The compose file
// ---------------------------------------------------------------------------------------------

export interface ComposeService {
	name: string;
	/** `environment:`, interpolated. A name listed without a value is left out, as Compose does when the shell has none. */
	environment: Record<string, string>;
	/** `command:` as arguments ([] when the image's default runs). */
	command: string[];
	/** `deploy.replicas` (1 when not given). */
	replicas: number;
}

export interface ComposeModel {
	file: string;
	/** The variables interpolation used. */
	variables: Record<string, string>;
	/** The whole file as YAML gives it (merge keys resolved), interpolated. */
	document: { [key: string]: ComposeValue };
	services: Record<string, ComposeService>;
}

/** `command:` as Compose takes it: a list as it is, a string split as a shell splits words (quotes, no expansion). */
function commandOf(command: unknown, where: string): string[] {
	if (command === undefined || command === null) return [];
	if (Array.isArray(command)) return command.map(String);
	if (typeof command !== 'string') throw new ComposeError(`${where}: command must be a string or a list`);
	const args: string[] = [];
	const word = /"((?:\\.|[^"\\])*)"|'([^']*)'|(\S+)/g;
	for (let match = word.exec(command); match; match = word.exec(command)) args.push(match[1] ?? match[2] ?? match[3]);
	return args;
}

function environmentOf(raw: unknown, where: string): Record<string, string> {
	if (raw !== undefined && raw !== null && typeof raw !== 'object') throw new ComposeError(`${where}: environment must be a map or a list`);
	const entries: Array<[string, unknown]> = Array.isArray(raw)
		? raw.map((item) => {
				const text = String(item);
				const at = text.indexOf('=');
				return at < 0 ? [text, null] : [text.slice(0, at), text.slice(at + 1)];
			})
		: Object.entries(raw ?? {});
	const environment: Record<string, string> = {};
	for (const [key, value] of entries) {
		if (value === null || value === undefined) continue;
		if (typeof value === 'object') throw new ComposeError(`${where}.${key}: must be a string, number or boolean`);
		environment[key] = String(value);
	}
	return environment;
}

const isMap = (value: unknown): value is { [key: string]: ComposeValue } => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * `composeFile` read with `variables`: YAML with merge keys, every value interpolated, then the
 * services. `onReference` hears of every variable the interpolation looks up.
 */
export function readCompose(composeFile: string, variables: Record<string, string>, onReference?: (reference: Reference) => void): ComposeModel {
	const document = interpolateDocument(parse(readFileSync(composeFile, 'utf8'), { merge: true }) ?? null, variables, path.basename(composeFile), onReference);
	if (!isMap(document) || !isMap(document.services)) throw new ComposeError(`${composeFile} has no services`);
	const services: Record<string, ComposeService> = {};
	for (const [name, definition] of Object.entries(document.services)) {
		const where = `${path.basename(composeFile)} services.${name}`;
		if (!isMap(definition)) throw new ComposeError(`${where}: must be a map`);
		// The stack gives each service its variables in `environment:` (test/deploy/compose.test.ts holds it to that).
		if (definition.env_file !== undefined) throw new ComposeError(`${where}: env_file is not read here; give the service its variables under environment:`);
		const deploy = isMap(definition.deploy) ? definition.deploy : {};
		services[name] = {
			name,
			environment: environmentOf(definition.environment, `${where}.environment`),
			command: commandOf(definition.command, `${where}.command`),
			replicas: deploy.replicas === undefined ? 1 : Number(deploy.replicas),
		};
	}
	return { file: composeFile, variables, document, services };
}
