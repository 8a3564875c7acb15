import { SIGNATURE_HEADER, SITE_HEADER, TIMESTAMP_HEADER } from '../../lib/signing';
import { problemSchema } from './answers';
import { ERROR_CODES, operations, TAGS, type Access, type Answer, type OperationSpec } from './operations';
import { jsonSchemaOf, withNotes, type JsonSchema } from './schemas';

/** The OpenAPI 3.1 document as plain data: what /api/openapi.json answers and /docs/api renders. */
export type OpenApiDocument = {
	openapi: '3.1.0';
	info: { title: string; version: string; description: string; license: { name: string; identifier: string } };
	servers: Array<{ url: string; description: string }>;
	tags: Array<{ name: string; description: string }>;
	paths: Record<string, Record<string, OperationObject>>;
	components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
};

export type OperationObject = {
	operationId: string;
	tags: string[];
	summary: string;
	description: string;
	/** Who may call it, in words (the `security` requirements say it for tools). */
	'x-access': string;
	security: Array<Record<string, string[]>>;
	parameters?: ParameterObject[];
	requestBody?: { description: string; required: boolean; content: Record<string, { schema: JsonSchema }> };
	responses: Record<string, ResponseObject>;
};

export type ParameterObject = { name: string; in: 'query' | 'path' | 'header'; required: boolean; description: string; schema: JsonSchema };
export type ResponseObject = { description: string; headers?: Record<string, { description: string; schema: JsonSchema }>; content?: Record<string, { schema?: JsonSchema }> };

export const PROBLEM_REF = '#/components/schemas/Problem';

const SECURITY_SCHEMES = {
	apiKey: {
		type: 'http',
		scheme: 'bearer',
		description:
			'An API key of one site, sent as `Authorization: Bearer <key>`. Read keys (`tcrm_read_…`) read the site’s figures; admin keys (`tcrm_admin_…`) may also export and erase people and send test deliveries. Create one with `node dist/scripts/api-key.js create --site <key> --scope read|admin --name <label>`: it is shown once and stored only as a hash. Every answer covers the key’s site only. The role an operation needs is listed with it (`read` or `admin`).',
	},
	apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'The same API key, sent as `X-API-Key: <key>` instead of the Authorization header.' },
	deliverySignature: {
		type: 'apiKey',
		in: 'header',
		name: SIGNATURE_HEADER,
		description: `\`sha256=\` and the hex HMAC-SHA256, keyed with the site’s webhook secret (the variable its \`integrations.webhookSecretEnv\` names), of \`<${TIMESTAMP_HEADER}>.<${SITE_HEADER}>.<raw body>\`. The site is signed with the body, so a delivery carries the data of its signed site only; the timestamp bounds replays.`,
	},
};

const key = (role: 'read' | 'admin'): Array<Record<string, string[]>> => [{ apiKey: [role] }, { apiKeyHeader: [role] }];

const ACCESS: Record<Access, { security: Array<Record<string, string[]>>; words: string }> = {
	public: { security: [], words: 'Anyone: no authentication.' },
	'public-admin': { security: [{}, ...key('admin')], words: 'Anyone; an admin key of the site may be sent (Authorization: Bearer or X-API-Key), and a bad key is refused.' },
	read: { security: key('read'), words: 'A read or admin key of the site (Authorization: Bearer or X-API-Key).' },
	admin: { security: key('admin'), words: 'An admin key of the site (Authorization: Bearer or X-API-Key).' },
	signed: { security: [{ deliverySignature: [] }], words: `A delivery signed with the site’s webhook secret (headers ${SIGNATURE_HEADER}, ${TIMESTAMP_HEADER}, ${SITE_HEADER}).` },
	local: { security: [], words: 'Requests from the receiver’s own machine only (a loopback address, no proxy); no authentication.' },
};

/** An object schema's properties as parameters, each with its note; a property without one is an error. */
function parametersOf(schema: JsonSchema, where: 'query' | 'path', notes: Record<string, string>, id: string): ParameterObject[] {
	const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
	const required = new Set((schema.required ?? []) as string[]);
	for (const name of Object.keys(notes)) if (!(name in properties)) throw new Error(`${id}: the note for ${where} parameter "${name}" names no parameter`);
	return Object.entries(properties).map(([name, property]) => {
		if (!notes[name]) throw new Error(`${id}: ${where} parameter "${name}" has no description`);
		return { name, in: where, required: where === 'path' || required.has(name), description: notes[name], schema: property };
	});
}

function pathParameters(spec: OperationSpec): ParameterObject[] {
	if (!spec.pathParams) return [];
	const { schema, notes } = spec.pathParams;
	if (schema) return parametersOf(jsonSchemaOf(schema, 'input'), 'path', notes, spec.id);
	// Routes that take the segment as it comes (a token they verify, a webhook path they look up).
	return Object.entries(notes).map(([name, description]) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } }));
}

function parameters(spec: OperationSpec): ParameterObject[] {
	return [
		...pathParameters(spec),
		...(spec.query ? parametersOf(jsonSchemaOf(spec.query.schema, 'input'), 'query', spec.query.notes, spec.id) : []),
		...(spec.headers ?? []).map(({ name, description, required = false, schema = { type: 'string' } }): ParameterObject => ({ name, in: 'header', required, description, schema })),
	];
}

function answerObject({ description, json, media, headers }: Answer): ResponseObject {
	const content: Record<string, { schema?: JsonSchema }> = {};
	if (json) content['application/json'] = { schema: jsonSchemaOf(json, 'output') };
	for (const [type, schema] of Object.entries(media ?? {})) content[type] = schema ? { schema } : {};
	return {
		description,
		...(headers && { headers: Object.fromEntries(Object.entries(headers).map(([name, text]) => [name, { description: text, schema: { type: 'string' } }])) }),
		...(Object.keys(content).length > 0 && { content }),
	};
}

const codeSchema = (code: string) => ({ const: code, description: ERROR_CODES[code] });

/** An error answer: the Problem shape, its `error` one of the codes this operation answers with this status. */
function problemObject(codes: string[]): ResponseObject {
	for (const code of codes) if (!ERROR_CODES[code]) throw new Error(`Error code ${code} has no explanation in ERROR_CODES`);
	return {
		description: `An error: ${codes.map((code) => `\`${code}\`: ${ERROR_CODES[code]}`).join(' ')}`,
		content: { 'application/problem+json': { schema: { $ref: PROBLEM_REF, properties: { error: codes.length === 1 ? codeSchema(codes[0]) : { oneOf: codes.map(codeSchema) } } } } },
	};
}

/** An answer and an error answer of one status (a page or a Problem, a report or a Problem) as one response. */
function merged(answer: ResponseObject, problem: ResponseObject): ResponseObject {
	const content = { ...answer.content };
	for (const [type, body] of Object.entries(problem.content ?? {})) {
		const existing = content[type]?.schema;
		content[type] = existing ? { schema: { anyOf: [existing, body.schema] } } : body;
	}
	return { ...answer, description: `${answer.description} Or ${problem.description[0].toLowerCase()}${problem.description.slice(1)}`, content };
}

function responses(spec: OperationSpec): Record<string, ResponseObject> {
	const all: Record<string, ResponseObject> = {};
	for (const [status, answer] of Object.entries(spec.answers)) all[status] = answerObject(answer);
	for (const [status, codes] of Object.entries(spec.errors ?? {})) {
		const problem = problemObject(codes);
		all[status] = all[status] ? merged(all[status], problem) : problem;
	}
	return Object.fromEntries(Object.entries(all).sort(([a], [b]) => Number(a) - Number(b)));
}

function operationObject(spec: OperationSpec): OperationObject {
	const access = ACCESS[spec.access];
	const list = parameters(spec);
	const body = spec.body;
	return {
		operationId: spec.id,
		tags: [TAGS[spec.tag].name],
		summary: spec.summary,
		description: spec.description,
		'x-access': access.words,
		security: access.security,
		...(list.length > 0 && { parameters: list }),
		...(body && {
			requestBody: {
				description: body.description,
				required: body.required ?? false,
				content: Object.fromEntries(body.media.map((type) => [type, { schema: withNotes(jsonSchemaOf(body.schema, 'input'), body.notes ?? {}) }])),
			},
		}),
		responses: responses(spec),
	};
}

export interface DocumentOptions {
	/** The receiver's version (package.json). */
	version: string;
	/** The distinct `tracking.scriptPath` of the configured sites: where the tracker script is served. */
	scriptPaths: readonly string[];
}

export function openApiDocument({ version, scriptPaths }: DocumentOptions): OpenApiDocument {
	const paths: OpenApiDocument['paths'] = {};
	for (const spec of operations(scriptPaths)) {
		paths[spec.path] ??= {};
		paths[spec.path][spec.method] = operationObject(spec);
	}
	return {
		openapi: '3.1.0',
		info: {
			title: 'Tracking CRM receiver',
			version,
			description:
				'The HTTP API of the Tracking CRM receiver: what the tracker on a site’s pages sends, how leads arrive, the analytics a site’s keys read, privacy requests, deliveries to the n8n workflows and the links in the CRM’s emails. Every schema here is generated from the zod schemas the receiver validates with. Errors share one shape (`Problem`), an RFC 9457 problem document sent as `application/problem+json`: a stable `error` code, a `detail` for people and, for bad input, `issues` naming each field. The dashboards (/dashboard), the mailbox pages (/mailbox), the demo site (/demo) and the landing page (/) are web pages for people and are not described here.',
			license: { name: 'MIT', identifier: 'MIT' },
		},
		servers: [{ url: '/', description: 'The receiver that serves this document' }],
		tags: Object.values(TAGS).map((tag) => ({ ...tag })),
		paths,
		components: { schemas: { Problem: jsonSchemaOf(problemSchema, 'output') }, securitySchemes: SECURITY_SCHEMES },
	};
}
