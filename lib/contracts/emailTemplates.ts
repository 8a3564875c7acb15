import Handlebars from 'handlebars';

/**
 * What a sequence step's subject, HTML and text may hold: Handlebars with the lead's fields and the
 * built-in helpers only. The Email Orchestrator registers no partial, decorator or helper of its
 * own, so a template that uses one renders nothing but an error when its step is due, days after it
 * was accepted; the site config and the Sequence Definition parameter refuse it instead.
 */

const BUILT_IN_HELPERS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'log']);
/** Built-in helpers that take exactly one value. */
const ONE_VALUE = new Set(['if', 'unless', 'each', 'with']);

interface TemplateNode {
	type: string;
	path?: { type: string; original: unknown };
	name?: { original: unknown };
	params?: TemplateNode[];
	hash?: { pairs: Array<{ value: TemplateNode }> };
	program?: { body: TemplateNode[] } | null;
	inverse?: { body: TemplateNode[] } | null;
	body?: TemplateNode[];
}

function problemIn(node: TemplateNode): string | null {
	if (node.type === 'PartialStatement' || node.type === 'PartialBlockStatement') {
		return `uses the partial {{> ${String(node.name?.original)}}}: sequences have no partials; write its content into the template`;
	}
	if (node.type === 'DecoratorStatement' || node.type === 'DecoratorBlock') return 'uses a decorator ({{* …}}), which sequences do not support';
	if (node.type === 'MustacheStatement' || node.type === 'BlockStatement' || node.type === 'SubExpression') {
		const name = node.path?.type === 'PathExpression' ? String(node.path.original) : '';
		const values = (node.params?.length ?? 0) + (node.hash?.pairs.length ?? 0);
		if (ONE_VALUE.has(name) && node.params?.length !== 1) return `uses {{#${name}}} with ${node.params?.length ?? 0} values: it takes exactly one, as in {{#${name} company}}…{{/${name}}}`;
		if (values > 0 && !BUILT_IN_HELPERS.has(name)) {
			return `calls the helper "${name}", which does not exist: write a field such as {{firstName}}, or use one of ${[...BUILT_IN_HELPERS].join(', ')}`;
		}
	}
	const children = [...(node.params ?? []), ...(node.hash?.pairs.map((pair) => pair.value) ?? []), ...(node.program?.body ?? []), ...(node.inverse?.body ?? []), ...(node.body ?? [])];
	for (const child of children) {
		const problem = problemIn(child);
		if (problem) return problem;
	}
	return null;
}

/** Why `source` is no template a step can render, or null when it is one. */
export function templateProblem(source: string): string | null {
	let program: TemplateNode;
	try {
		program = Handlebars.parse(source) as unknown as TemplateNode;
	} catch (error) {
		const [where = '', near = ''] = (error as Error).message.split('\n');
		return `is not a valid template: ${where.replace(/:$/, '').toLowerCase()} near "${near.trim().slice(0, 60)}" (a {{ without its }}, or a block without its {{/…}})`;
	}
	return problemIn(program);
}
