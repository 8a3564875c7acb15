import { PROBLEM_REF, type OpenApiDocument, type OperationObject, type ParameterObject, type ResponseObject } from './document';
import type { JsonSchema } from './schemas';

/**
 * The API reference as one HTML page, rendered on the server from the OpenAPI document: no script,
 * no inline style (its stylesheet is a file of the same origin), nothing from another origin, so
 * it reads the same offline and under the receiver's strict Content-Security-Policy.
 */

export const REFERENCE_CSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** The document's descriptions use Markdown's `code` spans only. */
const prose = (text: string) => escape(text).replace(/`([^`]+)`/g, '<code>$1</code>');

const METHOD_ORDER = ['get', 'head', 'post', 'options'];

interface Field {
	name: string;
	type: string;
	required: boolean;
	description: unknown;
	limits: string[];
}

/** A field's meaning, then its limits on a line of their own. */
const meaningHtml = (description: unknown, limits: string[]) =>
	`${typeof description === 'string' ? prose(description) : ''}${limits.length ? `<span class="limits">${limits.map(prose).join('; ')}</span>` : ''}`;

const slug = (text: string) => text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

/** "1 to 64 characters", "at most 50 items": a pair of bounds in words. */
function bounds(min: unknown, max: unknown, unit: string): string[] {
	if (typeof min === 'number' && typeof max === 'number') return [`${min} to ${max} ${unit}`];
	if (typeof max === 'number') return [`at most ${max} ${unit}`];
	if (typeof min === 'number') return [`at least ${min} ${unit}`];
	return [];
}

/** Bounds beyond what a JS number holds exactly say nothing to a person. */
const meaningful = (value: unknown) => (typeof value === 'number' && Math.abs(value) < Number.MAX_SAFE_INTEGER ? value : undefined);

/** Constraints a person checks a value against: bounds, lengths, patterns, formats, defaults. */
function constraints(schema: JsonSchema): string[] {
	const notes: string[] = [];
	if (Array.isArray(schema.enum)) notes.push(`one of ${schema.enum.map((value) => `\`${String(value)}\``).join(', ')}`);
	if (schema.const !== undefined) notes.push(`always \`${String(schema.const)}\``);
	notes.push(...bounds(meaningful(schema.minimum), meaningful(schema.maximum), '(inclusive)'));
	if (typeof schema.exclusiveMinimum === 'number') notes.push(`more than ${schema.exclusiveMinimum}`);
	notes.push(...bounds(schema.minLength, schema.maxLength, 'characters'));
	notes.push(...bounds(schema.minItems, schema.maxItems, 'items'));
	if (typeof schema.format === 'string') notes.push(`format ${schema.format}`);
	else if (typeof schema.pattern === 'string') notes.push(`matches \`${schema.pattern}\``);
	if (schema.default !== undefined) notes.push(`default \`${JSON.stringify(schema.default)}\``);
	if (schema.additionalProperties === false) notes.push('no other fields');
	return notes;
}

/** A schema's type in words: "string", "array of object", "integer or null", "Problem". */
function typeOf(schema: JsonSchema): string {
	if (schema.$ref === PROBLEM_REF) return 'Problem';
	if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).map(typeOf).join(' or ');
	if (Array.isArray(schema.prefixItems)) return `[${(schema.prefixItems as JsonSchema[]).map(typeOf).join(', ')}]`;
	if (schema.type === 'array' && schema.items) return `array of ${typeOf(schema.items as JsonSchema)}`;
	if (schema.type === 'object' && schema.additionalProperties && typeof schema.additionalProperties === 'object' && !schema.properties) {
		const values = schema.additionalProperties as JsonSchema;
		return Object.keys(values).length ? `map of ${typeOf(values)}` : 'object';
	}
	if (typeof schema.type === 'string') return schema.type;
	return 'any';
}

/** The object a schema describes, looking through arrays and "or null". */
function objectWithin(schema: JsonSchema): JsonSchema | undefined {
	if (schema.properties) return schema;
	if (schema.type === 'array' && schema.items) return objectWithin(schema.items as JsonSchema);
	const variants = (schema.anyOf as JsonSchema[] | undefined)?.filter((variant) => variant.type !== 'null');
	return variants?.length === 1 ? objectWithin(variants[0]) : undefined;
}

/** Every field of an object schema, nested fields under their dotted path (`events[].type`). */
function fieldsOf(schema: JsonSchema, prefix = ''): Field[] {
	const required = new Set((schema.required ?? []) as string[]);
	return Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>).flatMap(([name, property]) => {
		const path = `${prefix}${name}`;
		const inner = objectWithin(property);
		const field: Field = { name: path, type: typeOf(property), required: required.has(name), description: property.description, limits: constraints(property) };
		const below = property.type === 'array' || (property.anyOf as JsonSchema[] | undefined)?.some((variant) => variant.type === 'array') ? `${path}[].` : `${path}.`;
		return [field, ...(inner ? fieldsOf(inner, below) : [])];
	});
}

function fieldTable(fields: Field[], caption: string): string {
	const rows = fields.map(
		(field) =>
			`<tr><th scope="row"><code>${escape(field.name)}</code></th><td data-label="Type">${escape(field.type)}</td><td data-label="Required">${field.required ? 'required' : 'optional'}</td><td>${meaningHtml(field.description, field.limits)}</td></tr>`,
	);
	return `<div class="scroll"><table><caption>${escape(caption)}</caption><thead><tr><th scope="col">Field</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Meaning and limits</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** A body's schema for people: its fields as a table, each variant of a union as its own. */
/** The codes an error answer may carry, with what each means. */
function problemCodes(schema: JsonSchema): string {
	type Code = { const: string; description: string };
	const error = (schema.properties as { error?: Code | { oneOf: Code[] } } | undefined)?.error;
	const codes = !error ? [] : 'oneOf' in error ? error.oneOf : [error];
	return `<ul class="codes">${codes.map((code) => `<li><code>${escape(code.const)}</code>: ${prose(code.description)}</li>`).join('')}</ul>`;
}

/** A body's schema for people: its fields as a table, each variant of a union as its own. */
function schemaHtml(schema: JsonSchema, what: string): string {
	if (schema.$ref === PROBLEM_REF) return `<p>A <a href="#problem">Problem</a>; its <code>error</code> is one of:</p>${problemCodes(schema)}`;
	const variants = Array.isArray(schema.anyOf) ? (schema.anyOf as JsonSchema[]) : undefined;
	if (variants && variants.some((variant) => variant.properties || variant.$ref || variant.anyOf)) {
		return `<p>One of:</p><ol class="variants">${variants.map((variant, index) => `<li>${schemaHtml(variant, `${what}, form ${index + 1}`)}</li>`).join('')}</ol>`;
	}
	const description = typeof schema.description === 'string' ? `<p>${prose(schema.description)}</p>` : '';
	if (schema.properties) return description + fieldTable(fieldsOf(schema), what);
	const notes = constraints(schema);
	return `${description}<p>${escape(typeOf(schema))}${notes.length ? `: ${notes.map(prose).join('; ')}` : ''}</p>`;
}

function parametersHtml(parameters: ParameterObject[]): string {
	const rows = parameters.map(
		(parameter) =>
			`<tr><th scope="row"><code>${escape(parameter.name)}</code></th><td data-label="In">${parameter.in}</td><td data-label="Type">${escape(typeOf(parameter.schema))}</td><td data-label="Required">${parameter.required ? 'required' : 'optional'}</td><td>${meaningHtml(parameter.description, constraints(parameter.schema))}</td></tr>`,
	);
	return `<h4>Parameters</h4><div class="scroll"><table><thead><tr><th scope="col">Name</th><th scope="col">In</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Meaning and limits</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** Media types with the same schema (a body read as JSON whatever its type) are listed together, once. */
function contentHtml(content: Record<string, { schema?: JsonSchema }>, what: string): string {
	const groups = new Map<string, { types: string[]; schema?: JsonSchema }>();
	for (const [type, { schema }] of Object.entries(content)) {
		const key = JSON.stringify(schema ?? null);
		const group = groups.get(key);
		if (group) group.types.push(type);
		else groups.set(key, { types: [type], schema });
	}
	return [...groups.values()]
		.map(({ types, schema }) => {
			const body = schema && (schema.properties || schema.anyOf || schema.$ref) ? schemaHtml(schema, `${what} (${types.join(', ')})`) : '';
			return `<p class="media">${types.map((type) => `<code>${escape(type)}</code>`).join(', ')}${body ? '' : schema ? ` — ${escape(typeOf(schema))}` : ''}</p>${body}`;
		})
		.join('');
}

function responseHtml(status: string, response: ResponseObject, operationId: string): string {
	const kind = status.startsWith('2') || status.startsWith('3') ? 'ok' : 'error';
	const bodies = Object.values(response.content ?? {});
	const heading = `<span class="status">${status}</span>`;
	if (bodies.length === 1 && bodies[0].schema?.$ref === PROBLEM_REF) {
		return `<li class="answer ${kind}" id="${operationId}-${status}"><p>${heading} An error: a <a href="#problem">Problem</a> (<code>application/problem+json</code>) whose <code>error</code> is one of:</p>${problemCodes(bodies[0].schema)}</li>`;
	}
	const headers = Object.entries(response.headers ?? {}).map(([name, header]) => `<li><code>${escape(name)}</code>: ${prose(header.description)}</li>`);
	const content = response.content ? contentHtml(response.content, `Answer ${status}`) : '';
	const hasSchema = bodies.some(({ schema }) => schema && (schema.properties || schema.anyOf));
	const details = `${headers.length ? `<p>Headers:</p><ul>${headers.join('')}</ul>` : ''}${content}`;
	const body = hasSchema ? `<details><summary>Answer body</summary>${details}</details>` : details;
	return `<li class="answer ${kind}" id="${operationId}-${status}"><p>${heading} ${prose(response.description)}</p>${body}</li>`;
}

function operationHtml(method: string, path: string, operation: OperationObject): string {
	const security = operation.security.map((requirement) =>
		Object.keys(requirement).length === 0
			? 'none'
			: Object.entries(requirement)
					.map(([scheme, roles]) => `<a href="#auth-${slug(scheme)}">${escape(scheme)}</a>${roles.length ? ` (${roles.map(escape).join(', ')})` : ''}`)
					.join(' + '),
	);
	const body = operation.requestBody;
	return `<section class="operation" id="${escape(operation.operationId)}" aria-labelledby="${escape(operation.operationId)}-title">
<h3 id="${escape(operation.operationId)}-title"><span class="method ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code> <span class="summary">${escape(operation.summary)}</span></h3>
<p>${prose(operation.description)}</p>
<p class="auth"><strong>Who may call it:</strong> ${prose(operation['x-access'])}${security.length ? ` <span class="schemes">Security: ${security.join(' or ')}</span>` : ''}</p>
${operation.parameters ? parametersHtml(operation.parameters) : ''}
${body ? `<h4>Request body${body.required ? '' : ' (optional)'}</h4><p>${prose(body.description)}</p><details><summary>Fields</summary>${contentHtml(body.content, `Request body of ${method.toUpperCase()} ${path}`)}</details>` : ''}
<h4>Answers</h4><ul class="answers">${Object.entries(operation.responses)
		.map(([status, response]) => responseHtml(status, response, operation.operationId))
		.join('')}</ul>
</section>`;
}

type Listed = { method: string; path: string; operation: OperationObject };

function byTag(document: OpenApiDocument): Map<string, Listed[]> {
	const groups = new Map(document.tags.map((tag) => [tag.name, [] as Listed[]]));
	for (const [path, item] of Object.entries(document.paths)) {
		for (const method of METHOD_ORDER) {
			const operation = item[method];
			if (operation) groups.get(operation.tags[0])?.push({ method, path, operation });
		}
	}
	return groups;
}

export function referencePage(document: OpenApiDocument, stylesheet: string): string {
	const groups = byTag(document);
	const contents = document.tags
		.map((tag) => {
			const items = (groups.get(tag.name) ?? []).map(({ method, path, operation }) => `<li><a href="#${escape(operation.operationId)}">${method.toUpperCase()} ${escape(path)}</a> — ${escape(operation.summary)}</li>`);
			return `<li><a href="#tag-${slug(tag.name)}">${escape(tag.name)}</a><ul>${items.join('')}</ul></li>`;
		})
		.join('');
	const schemes = Object.entries(document.components.securitySchemes)
		.map(([name, scheme]) => `<dt id="auth-${slug(name)}"><code>${escape(name)}</code></dt><dd>${prose(String(scheme.description ?? ''))}</dd>`)
		.join('');
	const sections = document.tags
		.map((tag) => {
			const operations = (groups.get(tag.name) ?? []).map(({ method, path, operation }) => operationHtml(method, path, operation)).join('\n');
			return `<section class="tag" id="tag-${slug(tag.name)}" aria-labelledby="tag-${slug(tag.name)}-title"><h2 id="tag-${slug(tag.name)}-title">${escape(tag.name)}</h2><p>${prose(tag.description)}</p>\n${operations}</section>`;
		})
		.join('\n');
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(document.info.title)} — API reference</title><link rel="icon" href="data:,"><link rel="stylesheet" href="${escape(stylesheet)}"></head>
<body><header><h1>${escape(document.info.title)} <span class="version">API ${escape(document.info.version)}</span></h1>
<p>${prose(document.info.description)}</p>
<p>The same reference as an OpenAPI ${escape(document.openapi)} document, for tools and code generators: <a href="/api/openapi.json">/api/openapi.json</a>.</p></header>
<nav aria-label="Operations"><h2>Contents</h2><ul><li><a href="#authentication">Authentication</a></li><li><a href="#problem">Errors</a></li>${contents}</ul></nav>
<main>
<section id="authentication" aria-labelledby="authentication-title"><h2 id="authentication-title">Authentication</h2><dl>${schemes}</dl></section>
<section id="problem" aria-labelledby="problem-title"><h2 id="problem-title">Errors</h2>${schemaHtml(document.components.schemas.Problem, 'Problem')}<p>Each operation lists the <code>error</code> codes it may answer with, by status.</p></section>
${sections}
</main></body></html>`;
}

/** The page's stylesheet: readable type, tables that scroll sideways on a phone rather than overflow. */
export const REFERENCE_CSS = `:root{color-scheme:light;--ink:#1d2330;--muted:#5b6473;--line:#d9dde5;--accent:#2457c5;--soft:#f4f6fa}
*{box-sizing:border-box}
body{margin:0;font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fff}
header,nav,main{max-width:72rem;margin:0 auto;padding:0 1rem}
header{padding-top:1.5rem}
h1{font-size:1.75rem;margin:.5rem 0}
h1 .version{font-size:1rem;font-weight:normal;color:var(--muted)}
h2{font-size:1.4rem;margin:2.5rem 0 .5rem;padding-top:.5rem;border-top:2px solid var(--line)}
h3{font-size:1.1rem;margin:2rem 0 .5rem;overflow-wrap:anywhere}
h4{font-size:1rem;margin:1rem 0 .25rem}
a{color:var(--accent)}
a:focus-visible,summary:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;background:var(--soft);padding:0 .2em;border-radius:3px;overflow-wrap:anywhere}
nav ul{padding-left:1.2rem}
nav li{margin:.15rem 0}
.operation{border:1px solid var(--line);border-radius:8px;padding:.25rem 1rem 1rem;margin:1.25rem 0}
.operation h3{margin-top:.75rem}
.method{display:inline-block;min-width:4.5rem;text-align:center;font-size:.8rem;font-weight:700;letter-spacing:.04em;border-radius:4px;padding:.1rem .4rem;color:#fff;background:#4b5563;vertical-align:middle}
.method.get{background:#1f6f43}.method.post{background:#2457c5}.method.head{background:#6b4fa8}.method.options{background:#4b5563}
.summary{font-weight:normal;color:var(--muted)}
.auth{background:var(--soft);padding:.5rem .75rem;border-radius:6px}
.schemes{display:block;color:var(--muted);font-size:.9rem}
.scroll{overflow-x:auto;margin:.5rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem}
caption{text-align:left;color:var(--muted);font-size:.85rem;padding:.25rem 0}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
thead th{background:var(--soft)}
tbody th{font-weight:normal;white-space:nowrap}
.answers{list-style:none;padding:0;margin:0}
.answer{border-left:4px solid var(--line);padding:.1rem .75rem;margin:.5rem 0}
.answer.ok{border-color:#1f6f43}.answer.error{border-color:#b42318}
.status{font-weight:700;font-family:ui-monospace,Menlo,Consolas,monospace}
.media{margin:.25rem 0}
details{margin:.25rem 0}
.limits{display:block;color:var(--muted);font-size:.85rem}
.codes{margin:.25rem 0 .5rem;padding-left:1.2rem}
summary{cursor:pointer;color:var(--accent)}
dt{margin-top:.75rem}
dd{margin-left:1rem}
/* A phone has no room for five columns: each row becomes a small card, its cells labelled. */
@media (max-width:40rem){body{font-size:15px}.operation{padding:.25rem .6rem .75rem}
table,tbody,tr,th,td{display:block;width:auto}
thead{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%)}
tr{border:1px solid var(--line);border-radius:6px;margin:.5rem 0;padding:.3rem .5rem}
th,td{border:none;padding:.1rem 0}
tbody th{white-space:normal;font-weight:600}
td[data-label]{display:inline-block;margin-right:1rem;color:var(--muted);font-size:.85rem}
td[data-label]::before{content:attr(data-label) ": "}}
`;
