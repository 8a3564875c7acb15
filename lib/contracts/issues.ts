import type { z } from 'zod/v4';

/** One validation problem, phrased for the person who has to fix it. */
export interface FieldIssue {
	/** Dotted path with array indexes, e.g. `crm.leadScoringRules[1].score`. */
	field: string;
	/** What the input held there (absent when the field was missing). */
	received?: unknown;
	/** What is wrong and what is expected instead, e.g. `expected a number`. */
	message: string;
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
	return path.reduce<string>((acc, key) => {
		if (typeof key === 'number') return `${acc}[${key}]`;
		return acc ? `${acc}.${String(key)}` : String(key);
	}, '');
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): { found: boolean; value?: unknown } {
	let current: unknown = input;
	for (const key of path) {
		if (current === null || typeof current !== 'object' || !(key in (current as object))) return { found: false };
		current = (current as Record<PropertyKey, unknown>)[key];
	}
	return { found: true, value: current };
}

/** Edits from a to b, a swap of two neighbours counting as one (form → from): the optimal string alignment distance. */
function editDistance(a: string, b: string): number {
	const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
	for (let i = 1; i <= a.length; i++) {
		for (let j = 1; j <= b.length; j++) {
			const cost = a[i - 1] === b[j - 1] ? 0 : 1;
			rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
		}
	}
	return rows[a.length][b.length];
}

/**
 * The known name a misspelt one most likely meant. Only a near miss counts (form → from, chanel →
 * channel, site[] → site): one edit on a short name, two on a longer one. A looser match on names
 * this short suggests a different word (page → site, foo → from) and sends the client after the
 * wrong fix.
 */
export function nearestName(unknown: string, known: readonly string[]): string | undefined {
	const asked = unknown.toLowerCase();
	const [best] = known.map((name) => ({ name, distance: editDistance(asked, name.toLowerCase()) })).sort((a, b) => a.distance - b.distance);
	if (!best) return undefined;
	const allowed = Math.max(asked.length, best.name.length) >= 6 ? 2 : 1;
	return best.distance <= allowed ? best.name : undefined;
}

/** The keys an object schema (under its wrappers) takes at `path`; none where it is no object. */
export function knownKeysAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
	let current: unknown = schema;
	const unwrap = (s: unknown): unknown => {
		let node = s as { def?: { type?: string; innerType?: unknown; in?: unknown; element?: unknown; schema?: unknown } };
		while (node?.def && ['default', 'optional', 'nullable', 'pipe', 'prefault', 'readonly'].includes(node.def.type ?? '')) {
			node = (node.def.innerType ?? node.def.in) as typeof node;
		}
		return node;
	};
	for (const key of path) {
		const node = unwrap(current) as { def?: { type?: string; element?: unknown; shape?: Record<string, unknown>; options?: unknown[] } };
		if (node?.def?.type === 'array' && typeof key === 'number') current = node.def.element;
		else if (node?.def?.type === 'object' && typeof key === 'string') current = node.def.shape?.[key];
		else return [];
	}
	const node = unwrap(current) as { def?: { type?: string; shape?: Record<string, unknown> } };
	return node?.def?.type === 'object' ? Object.keys(node.def.shape ?? {}) : [];
}

function describe(value: unknown): string {
	if (value === undefined) return 'nothing';
	if (value === null) return 'null';
	if (Array.isArray(value)) return `an array of ${value.length}`;
	if (typeof value === 'object') return 'an object';
	const shown = JSON.stringify(value);
	const clipped = shown.length > 60 ? `${shown.slice(0, 57)}...` : shown;
	return `${clipped} (${typeof value})`;
}

type Issue = z.ZodError['issues'][number];

/**
 * A union reports one list of issues per branch; the branch with the fewest problems is the
 * one the author meant, so its issues are reported (at their full path) instead of a bare
 * "invalid input".
 */
function closestBranch(issue: Issue): Issue[] {
	if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [issue];
	const best = [...issue.errors].sort((a, b) => a.length - b.length)[0];
	if (best.length === 0) return [issue];
	return best.flatMap((inner) => closestBranch({ ...inner, path: [...issue.path, ...inner.path] } as Issue));
}

/**
 * Turns zod issues into field issues that name the field, what was there and what was
 * expected, including a spelling suggestion for unknown keys.
 */
export function toFieldIssues(error: z.ZodError, input: unknown, schema?: z.ZodType): FieldIssue[] {
	const issues: FieldIssue[] = [];
	for (const issue of error.issues.flatMap((top) => closestBranch(top))) {
		if (issue.code === 'unrecognized_keys') {
			const known = schema ? knownKeysAt(schema, issue.path) : [];
			for (const key of issue.keys) {
				const nearest = nearestName(key, known);
				const hint = nearest ? `; did you mean "${nearest}"?` : '';
				const field = formatPath([...issue.path, key]);
				issues.push({
					field,
					received: valueAt(input, [...issue.path, key]).value,
					message: `is not a known field${hint}${known.length ? ` (known fields here: ${known.join(', ')})` : ''}`,
				});
			}
			continue;
		}
		const at = valueAt(input, issue.path);
		let message = issue.message.replace(/^Invalid input: /, '');
		// A field that takes no value at all (z.never) says why in its own message.
		if (issue.code === 'invalid_type' && issue.expected !== 'never') {
			message = at.found ? `expected ${withArticle(issue.expected)}` : `is required (${withArticle(issue.expected)})`;
		}
		issues.push({ field: formatPath(issue.path) || '(root)', ...(at.found ? { received: at.value } : {}), message });
	}
	return issues;
}

function withArticle(type: string): string {
	return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

export function formatIssues(issues: FieldIssue[]): string {
	return issues
		.map((issue) => `  - ${issue.field}: ${issue.message}${'received' in issue ? `; got ${describe(issue.received)}` : ''}`)
		.join('\n');
}
