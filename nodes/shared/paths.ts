/**
 * URL paths as the site config's `urlPattern`s see them: one normalization of a page's path and
 * one glob matcher, shared by conversion rules and scoring rules so a pattern means the same
 * page to both.
 */

import { boundedMemo } from '../../lib/memo';

export interface PathOptions {
	/** The site routes in the fragment (`/#/pricing`), so the fragment is the path. */
	hashRouting?: boolean;
}

/** A compiled path glob: `*` matches within one path segment, `**` across segments. */
export interface PathPattern {
	/** The pattern as written. */
	readonly source: string;
	/** Whether a URL or path matches; the query string and fragment are ignored. */
	test(urlOrPath: string, options?: PathOptions): boolean;
	/** Whether a path already normalized by {@link urlPath} matches; saves parsing it again per pattern. */
	testPath(path: string): boolean;
}

/** Paths whose verdict a compiled pattern keeps; a site has far fewer distinct paths. */
const VERDICT_CACHE_SIZE = 10_000;

type Token = { kind: 'char'; char: string; skippableWithNext: boolean } | { kind: 'star'; crossesSegments: boolean };

// Relative paths are resolved against a base so that one parser handles both; the host is never read.
const PATH_BASE = 'http://path.invalid';
const HASH_ROUTE = /^#!?(?=\/)/;

/**
 * The path a pattern is matched against: decoded, lower-cased (`/Pricing` and `/pricing` are
 * one page to visitors), without query string, fragment or trailing slash, with `.` and `..`
 * segments of a URL path resolved. Null when the URL cannot be parsed.
 */
export function urlPath(urlOrPath: string, options: PathOptions = {}): string | null {
	let url: URL;
	try {
		url = new URL(urlOrPath, PATH_BASE);
	} catch {
		return null;
	}
	const route = options.hashRouting ? HASH_ROUTE.exec(url.hash) : null;
	const path = route ? url.hash.slice(route[0].length).split('?')[0] : url.pathname;
	return normalizePath(path);
}

function normalizePath(path: string): string {
	let decoded: string;
	try {
		// decodeURI keeps %2F, %3F and %23 encoded, so a decoded path gains no extra segments.
		decoded = decodeURI(path);
	} catch {
		decoded = path;
	}
	let end = decoded.length;
	while (end > 1 && decoded[end - 1] === '/') end--;
	return decoded.slice(0, end).toLowerCase();
}

/**
 * Compiles a path glob such as `/blog/*` or `/docs/**`. A `**` that is a whole segment also
 * matches no segment at all: `/docs/**` matches `/docs`, and a leading `/**` segment before
 * `/pricing` matches `/pricing` itself. Elsewhere `**` matches any characters. The pattern is
 * normalized like a path: any `?query` or `#fragment` in it is dropped, since URLs are matched
 * on their path only.
 */
export function compilePathPattern(pattern: string): PathPattern {
	if (!pattern.startsWith('/')) {
		throw new Error(`path pattern "${pattern}" must start with "/" (a path such as /pricing/*)`);
	}
	const tokens = tokenize(normalizePath(pattern.split(/[?#]/)[0]));
	const states = { live: new Uint8Array(tokens.length + 1), next: new Uint8Array(tokens.length + 1) };
	// A lead is rescored from its whole history on every visit and a site has few distinct paths,
	// so the same paths are matched again and again.
	const testPath = boundedMemo(VERDICT_CACHE_SIZE, (path) => runTokens(tokens, states, path));
	return {
		source: pattern,
		testPath,
		test(urlOrPath, options) {
			const path = urlPath(urlOrPath, options);
			return path !== null && testPath(path);
		},
	};
}

// By code point, as paths are read, so a star never splits a character such as an emoji.
function tokenize(pattern: string): Token[] {
	const chars = Array.from(pattern);
	const tokens: Token[] = [];
	let i = 0;
	while (i < chars.length) {
		if (chars[i] !== '*') {
			tokens.push({ kind: 'char', char: chars[i], skippableWithNext: false });
			i++;
			continue;
		}
		let end = i;
		while (chars[end] === '*') end++;
		const crossesSegments = end - i >= 2;
		const wholeSegment = chars[i - 1] === '/' && (end === chars.length || chars[end] === '/');
		const slash = tokens[tokens.length - 1];
		// `/**` is "(/anything)?": its slash may be skipped together with the star.
		if (crossesSegments && wholeSegment && slash.kind === 'char') slash.skippableWithNext = true;
		tokens.push({ kind: 'star', crossesSegments });
		i = end;
	}
	return tokens;
}

/**
 * Simulates the pattern as a nondeterministic automaton, one set of live states per character,
 * so matching costs at most path length × pattern length: a regular expression built from
 * several stars could backtrack exponentially on a long visitor-supplied path.
 */
function runTokens(tokens: readonly Token[], states: { live: Uint8Array; next: Uint8Array }, path: string): boolean {
	let { live, next } = states;
	live.fill(0);
	live[0] = 1;
	closure(tokens, live);
	for (const char of path) {
		next.fill(0);
		let any = false;
		for (let state = 0; state < tokens.length; state++) {
			if (!live[state]) continue;
			const token = tokens[state];
			const consumes = token.kind === 'star' ? token.crossesSegments || char !== '/' : token.char === char;
			if (!consumes) continue;
			// A star stays where it is to take more characters; a character moves on.
			next[token.kind === 'star' ? state : state + 1] = 1;
			any = true;
		}
		if (!any) return false;
		closure(tokens, next);
		[live, next] = [next, live];
	}
	return live[tokens.length] === 1;
}

// Empty moves only go forward, so one ascending pass reaches every state they can.
function closure(tokens: readonly Token[], states: Uint8Array): void {
	for (let state = 0; state < tokens.length; state++) {
		if (!states[state]) continue;
		const token = tokens[state];
		if (token.kind === 'star') states[state + 1] = 1;
		else if (token.skippableWithNext) states[state + 2] = 1;
	}
}
