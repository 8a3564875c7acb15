import Handlebars from 'handlebars';

import { nearestName } from './issues';

/**
 * What an email template may hold: Handlebars with the fields its kind is rendered with and the
 * built-in helpers only. The Email Orchestrator registers no partial, decorator or helper of its
 * own, and Handlebars renders a name it was not given as nothing, so a template that uses one fails
 * or sends an email with a gap when it is due, days after it was accepted; the site config and the
 * Sequence Definition parameter refuse it instead.
 */

/** The lead's fields, under the names every kind of template gets them. */
const LEAD_FIELDS = ['firstName', 'lastName', 'email', 'company', 'jobTitle', 'country', 'phone'] as const;

/**
 * The fields each kind of template is rendered with. The renderer builds its context from this
 * list ({@link templateContext}) and the check takes it as the names a template may use, so the
 * two cannot disagree.
 */
export const TEMPLATE_FIELDS = {
	/** A sequence step's subject, HTML and text. */
	step: [...LEAD_FIELDS, 'lifecycleStage', 'properties', 'sequence', 'unsubscribeUrl'],
	/** The double opt-in confirmation email (privacy.confirmationEmail). */
	confirmation: [...LEAD_FIELDS, 'siteName', 'confirmUrl'],
} as const;

export type TemplateKind = keyof typeof TEMPLATE_FIELDS;

/** A value for each field of a kind of template. */
export type TemplateFields<K extends TemplateKind> = { readonly [F in (typeof TEMPLATE_FIELDS)[K][number]]: unknown };

/**
 * The context a `kind` template renders with: its listed fields taken from `values`. Only those, so
 * whatever else a sender has at hand (a lead's id or address hash) never reaches a template while
 * the check refuses its name.
 */
export function templateContext<K extends TemplateKind>(kind: K, values: TemplateFields<K>): TemplateFields<K> {
	const fields: readonly string[] = TEMPLATE_FIELDS[kind];
	return Object.fromEntries(fields.map((field) => [field, (values as Record<string, unknown>)[field]])) as TemplateFields<K>;
}

/** The lead's custom properties: the one field whose own names (properties.plan) are the site's, unknown here. */
const PROPERTIES = 'properties';

const KIND_NAMES: Record<TemplateKind, string> = { step: 'a sequence step', confirmation: 'the confirmation email' };

const BUILT_IN_HELPERS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'log']);
/** Built-in helpers that take exactly one value. */
const ONE_VALUE = new Set(['if', 'unless', 'each', 'with']);
/** Built-in helpers whose body renders with another context (an item, a value): names in it are that context's, not the template's fields. */
const CONTEXT_HELPERS = new Set(['each', 'with']);

interface TemplateNode {
	type: string;
	original?: unknown;
	parts?: string[];
	data?: boolean;
	path?: TemplateNode;
	name?: { original: unknown };
	params?: TemplateNode[];
	hash?: { pairs: Array<{ value: TemplateNode }> };
	program?: { body: TemplateNode[] } | null;
	inverse?: { body: TemplateNode[] } | null;
	body?: TemplateNode[];
}

function fieldList(kind: TemplateKind): string {
	return TEMPLATE_FIELDS[kind].map((field) => (field === PROPERTIES ? `${PROPERTIES}.<name>` : field)).join(', ');
}

/** How to name a lead property `name` in a `kind` template, for a fix; none where the kind has no properties. */
function asProperty(kind: TemplateKind, name: string): string {
	return (TEMPLATE_FIELDS[kind] as readonly string[]).includes(PROPERTIES) ? `, or {{${PROPERTIES}.${name}}} for a property of the lead` : '';
}

/** Why the path `node` names no field of a `kind` template, or null; what is no field name (this, @index, a literal) is none of its business. */
function fieldProblem(node: TemplateNode, kind: TemplateKind): string | null {
	if (node.type !== 'PathExpression') return null;
	const parts = node.parts ?? [];
	// @root.x names a field of the template's own context; the other @-names (@index, @key) are the helpers'.
	const [head, ...rest] = node.data ? (parts[0] === 'root' ? parts.slice(1) : []) : parts;
	if (head === undefined) return null;
	const known: readonly string[] = TEMPLATE_FIELDS[kind];
	const used = String(node.original);
	if (!known.includes(head)) {
		const nearest = nearestName(head, known);
		const fix = nearest ? `; did you mean "${nearest}"? (its fields: ${fieldList(kind)})` : ` (its fields: ${fieldList(kind)}); use one of them${asProperty(kind, [head, ...rest].join('.'))}`;
		return `uses "${used}", which is no field of ${KIND_NAMES[kind]} and would render empty${fix}`;
	}
	if (rest.length > 0 && head !== PROPERTIES) {
		return `uses "${used}", but ${head} has no fields of its own, so it would render empty; write {{${head}}}${asProperty(kind, rest.join('.'))}`;
	}
	return null;
}

function problemIn(node: TemplateNode, kind: TemplateKind): string | null {
	if (node.type === 'PartialStatement' || node.type === 'PartialBlockStatement') {
		return `uses the partial {{> ${String(node.name?.original)}}}: sequences have no partials; write its content into the template`;
	}
	if (node.type === 'DecoratorStatement' || node.type === 'DecoratorBlock') return 'uses a decorator ({{* …}}), which sequences do not support';
	let newContext = false;
	if (node.type === 'MustacheStatement' || node.type === 'BlockStatement' || node.type === 'SubExpression') {
		const name = node.path?.type === 'PathExpression' ? String(node.path.original) : '';
		const values = (node.params?.length ?? 0) + (node.hash?.pairs.length ?? 0);
		if (ONE_VALUE.has(name) && node.params?.length !== 1) return `uses {{#${name}}} with ${node.params?.length ?? 0} values: it takes exactly one, as in {{#${name} company}}…{{/${name}}}`;
		if (values > 0 && !BUILT_IN_HELPERS.has(name)) {
			return `calls the helper "${name}", which does not exist: write a field such as {{firstName}}, or use one of ${[...BUILT_IN_HELPERS].join(', ')}`;
		}
		// Without values the path is no helper but a field: {{firstName}}, or a block over one ({{#company}}…{{/company}}), whose body renders with its value.
		const field = values === 0 && !BUILT_IN_HELPERS.has(name);
		if (field && node.path) {
			const problem = fieldProblem(node.path, kind);
			if (problem) return problem;
		}
		newContext = node.type === 'BlockStatement' && (field || CONTEXT_HELPERS.has(name));
	}
	if (node.type === 'PathExpression') return fieldProblem(node, kind);
	// An {{else}} renders with the template's own context, also after {{#each}} and {{#with}}.
	const children = [
		...(node.params ?? []),
		...(node.hash?.pairs.map((pair) => pair.value) ?? []),
		...(newContext ? [] : (node.program?.body ?? [])),
		...(node.inverse?.body ?? []),
		...(node.body ?? []),
	];
	for (const child of children) {
		const problem = problemIn(child, kind);
		if (problem) return problem;
	}
	return null;
}

/** Why `source` is no `kind` template the Email Orchestrator can render, or null when it is one. */
export function templateProblem(source: string, kind: TemplateKind): string | null {
	let program: TemplateNode;
	try {
		program = Handlebars.parse(source) as unknown as TemplateNode;
	} catch (error) {
		const [where = '', near = ''] = (error as Error).message.split('\n');
		return `is not a valid template: ${where.replace(/:$/, '').toLowerCase()} near "${near.trim().slice(0, 60)}" (a {{ without its }}, or a block without its {{/…}})`;
	}
	return problemIn(program, kind);
}
