import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Every relative link and anchor of the documentation resolves as GitHub renders it: the file or
 * folder exists inside the repository, and a #fragment names a heading's slug or an explicit
 * <a id>/<a name> of the page it points to. No slug library is installed, so GitHub's rule (the
 * one github-slugger copies) is written out here, with its own tests against github-slugger's
 * documented examples and a fixture of broken links it must find.
 */

const ROOT = path.resolve(__dirname, '..', '..');

/** The documents a user reads on GitHub; listed, not globbed, so that losing one fails. */
const TOP_LEVEL_DOCS = ['README.md', 'CONTRIBUTING.md', 'SECURITY.md', 'CHANGELOG.md'];

function markdownFilesUnder(folder: string): string[] {
	return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
		const full = path.join(folder, entry.name);
		if (entry.isDirectory()) return markdownFilesUnder(full);
		return /\.md$/i.test(entry.name) ? [full] : [];
	});
}

// ---------------------------------------------------------------------------------------------
// GitHub's heading slugs
// ---------------------------------------------------------------------------------------------

/**
 * github-slugger's rule: lower case, every character but letters, marks, numbers, connector
 * punctuation ("_"), "-" and the space dropped, then each space a "-". Nothing is trimmed or
 * collapsed, so "A — B" is "a--b", as on GitHub.
 */
function githubSlug(text: string): string {
	return text
		.toLowerCase()
		.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
		.replace(/ /g, '-');
}

/** A page's slugs: a repeated one gets -1, -2…, skipping any already taken (github-slugger's loop). */
class Slugger {
	private readonly occurrences = new Map<string, number>();

	slug(text: string): string {
		const original = githubSlug(text);
		let slug = original;
		while (this.occurrences.has(slug)) {
			const count = (this.occurrences.get(original) ?? 0) + 1;
			this.occurrences.set(original, count);
			slug = `${original}-${count}`;
		}
		this.occurrences.set(slug, 0);
		return slug;
	}
}

// ---------------------------------------------------------------------------------------------
// What of a Markdown file is rendered (code is not)
// ---------------------------------------------------------------------------------------------

/** Same length and line breaks, so offsets and line numbers still point into the source. */
const blank = (text: string) => text.replace(/[^\n]/g, ' ');

const FENCE = /^\s*(`{3,}|~{3,})/;

/** The source with fenced code blocks and HTML comments blanked: nothing in them is a heading or a link. */
function withoutBlocksOfCode(markdown: string): string {
	let fence: string | undefined;
	const lines = markdown.split('\n').map((line) => {
		const marker = FENCE.exec(line)?.[1];
		if (fence === undefined) {
			if (marker === undefined || (marker[0] === '`' && line.slice(line.indexOf(marker) + marker.length).includes('`'))) return line;
			fence = marker;
			return blank(line);
		}
		// A fence closes with the same character, at least as long, and nothing after it.
		if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
		return blank(line);
	});
	return lines.join('\n').replace(/<!--[\s\S]*?-->/g, blank);
}

/**
 * A code span: a run of backticks closed by a run of the same length, within one paragraph (a
 * blank line ends it). A backslash before the opening run makes it literal.
 */
const CODE_SPAN = /(?<![`\\])(`+)(?!`)((?:(?!\n[ \t]*\n)[\s\S])*?[^`])\1(?!`)/g;

/** Rendered text (what holds links) of a source already without code blocks. */
const withoutCodeSpans = (text: string) => text.replace(CODE_SPAN, blank);

// ---------------------------------------------------------------------------------------------
// Anchors of a page
// ---------------------------------------------------------------------------------------------

const ESCAPED = /\\([!-/:-@[-`{-~])/g;

/** The text GitHub renders for a heading's inline Markdown, which its slug is made from. */
function headingText(source: string): string {
	const literals: string[] = [];
	const keep = (text: string) => `\u{F0000}${literals.push(text) - 1}\u{F0001}`;
	const text = source
		.replace(CODE_SPAN, (_span, _ticks: string, content: string) => keep(content.replace(/^ (.*) $/s, '$1')))
		.replace(ESCAPED, (_escape, char: string) => keep(char))
		.replace(/!\[[^\]]*\]\([^)]*\)/g, '') // an image's alt text is not part of the heading's text
		.replace(/\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])/g, '$1')
		.replace(/<[^>]*>/g, '')
		.replace(/&#(\d+);/g, (_entity, code: string) => String.fromCodePoint(Number(code)))
		.replace(/&#x([0-9a-f]+);/gi, (_entity, code: string) => String.fromCodePoint(parseInt(code, 16)))
		.replace(/&[a-z]+;/gi, '') // named entities are punctuation or spaces GitHub's slug drops
		// Emphasis and strikethrough: "_" marks one only at a word's edge (snake_case stays, as in GFM).
		.replace(/\*+|~~/g, '')
		.replace(/(^|[^\p{L}\p{N}])_+|_+(?=[^\p{L}\p{N}]|$)/gu, '$1');
	return text.replace(/\u{F0000}(\d+)\u{F0001}/gu, (_placeholder, index: string) => literals[Number(index)]).trim();
}

const ATX_HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const SETEXT_UNDERLINE = /^ {0,3}(?:=+|-+)[ \t]*$/;
/** Lines that start a block a setext underline cannot turn into a heading. */
const NOT_PARAGRAPH = /^\s*(?:[-*+]\s|\d+[.)]\s|>|\||#)/;

function headingsOf(markdown: string): string[] {
	const lines = withoutBlocksOfCode(markdown).split('\n');
	const headings: string[] = [];
	let paragraph: string[] = [];
	for (const line of lines) {
		const atx = ATX_HEADING.exec(line);
		if (atx) {
			headings.push(headingText(atx[2] ?? ''));
			paragraph = [];
		} else if (SETEXT_UNDERLINE.test(line) && paragraph.length > 0 && !NOT_PARAGRAPH.test(paragraph[0])) {
			headings.push(headingText(paragraph.join(' ')));
			paragraph = [];
		} else if (line.trim() === '') {
			paragraph = [];
		} else {
			paragraph.push(line);
		}
	}
	return headings;
}

const EXPLICIT_ANCHOR = /<a\s[^>]*?\b(?:id|name)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi;

/** Every fragment a page answers to: its headings' slugs and its explicit <a id>/<a name> anchors. */
function anchorsOf(markdown: string): Set<string> {
	const slugger = new Slugger();
	const anchors = new Set(headingsOf(markdown).map((heading) => slugger.slug(heading)));
	for (const match of withoutCodeSpans(withoutBlocksOfCode(markdown)).matchAll(EXPLICIT_ANCHOR)) {
		anchors.add(match[1] ?? match[2] ?? match[3]);
	}
	return anchors;
}

// ---------------------------------------------------------------------------------------------
// Links of a page and what they point at
// ---------------------------------------------------------------------------------------------

interface Link {
	line: number;
	target: string;
}

const LINK_PATTERNS = [
	// The destination of an inline link or image: "](dest)" or "](<dest> "title")".
	/\]\(\s*(<[^>\n]*>|(?:[^\s()<\\]|\\.|\((?:[^\s()\\]|\\.)*\))+)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g,
	// A reference definition "[name]: dest" (not a footnote "[^1]:").
	/^ {0,3}\[(?!\^)[^\]]+\]:[ \t]*(<[^>\n]*>|\S+)/gm,
	// HTML links and images.
	/<(?:a|img|source)\b[^>]*?\s(?:href|src|srcset)\s*=\s*(?:"([^"]*)"|'([^']*)')/gi,
];

function linksOf(markdown: string): Link[] {
	const rendered = withoutCodeSpans(withoutBlocksOfCode(markdown));
	const lineAt = (offset: number) => rendered.slice(0, offset).split('\n').length;
	return LINK_PATTERNS.flatMap((pattern) =>
		[...rendered.matchAll(pattern)].map((match) => ({
			line: lineAt(match.index ?? 0),
			target: (match[1] ?? match[2] ?? '').replace(/^<(.*)>$/, '$1').replace(ESCAPED, '$1'),
		})),
	).sort((a, b) => a.line - b.line);
}

/** A scheme ("https:", "mailto:"…) or "//host": not a file of the repository. */
const EXTERNAL = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i;

const anchorCache = new Map<string, Set<string>>();
function anchorsOfFile(file: string): Set<string> {
	let anchors = anchorCache.get(file);
	if (!anchors) {
		anchors = anchorsOf(readFileSync(file, 'utf8'));
		anchorCache.set(file, anchors);
	}
	return anchors;
}

/** Why a link of `from` does not resolve inside `root`, or undefined when it does. */
function problemWith(root: string, from: string, target: string): string | undefined {
	const hash = target.indexOf('#');
	const pathPart = (hash < 0 ? target : target.slice(0, hash)).replace(/\?.*$/, '');
	let fragment: string | undefined;
	let file: string;
	try {
		fragment = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
		const decoded = decodeURIComponent(pathPart);
		file = decoded === '' ? from : decoded.startsWith('/') ? path.join(root, decoded) : path.resolve(path.dirname(from), decoded);
	} catch {
		return 'is not a valid URL (bad percent-encoding)';
	}
	const relative = path.relative(root, file);
	if (relative.startsWith('..') || path.isAbsolute(relative)) return 'points outside the repository, which GitHub does not serve';
	const stats = statSync(file, { throwIfNoEntry: false });
	if (!stats) return `${relative} does not exist`;
	if (fragment === undefined || fragment === '') return undefined;
	if (stats.isDirectory()) return `${relative} is a folder, which has no anchors`;
	if (/\.(?:md|markdown)$/i.test(file)) {
		return anchorsOfFile(file).has(fragment) ? undefined : `${relative} has no heading or anchor "#${fragment}"`;
	}
	// GitHub's line anchors are the only fragments of other files.
	const lines = /^L(\d+)(?:-L(\d+))?$/.exec(fragment);
	const count = readFileSync(file, 'utf8').split('\n').length;
	if (!lines) return `"#${fragment}" is no anchor of ${relative} (only line anchors such as #L10 are)`;
	return Number(lines[2] ?? lines[1]) <= count ? undefined : `${relative} has only ${count} lines`;
}

/** "file:line target — problem" for every relative link of `files` that does not resolve. */
function brokenLinks(root: string, files: string[]): string[] {
	return files.flatMap((file) =>
		linksOf(readFileSync(file, 'utf8'))
			.filter((link) => link.target !== '' && !EXTERNAL.test(link.target))
			.flatMap((link) => {
				const problem = problemWith(root, file, link.target);
				return problem ? [`${path.relative(root, file)}:${link.line} ${link.target} — ${problem}`] : [];
			}),
	);
}

// ---------------------------------------------------------------------------------------------

describe('GitHub heading slugs', () => {
	it('follows github-slugger on its documented examples', () => {
		const slugger = new Slugger();
		expect(['foo', 'foo', 'bar', 'foo'].map((text) => slugger.slug(text))).toEqual(['foo', 'foo-1', 'bar', 'foo-2']);
		expect(githubSlug('Привет non-latin 你好')).toBe('привет-non-latin-你好');
		expect(githubSlug('😄 emoji')).toBe('-emoji');
		expect(githubSlug('foo bar baz')).toBe('foo-bar-baz');
	});

	it('skips a numbered slug that a heading already took', () => {
		const slugger = new Slugger();
		expect(['foo', 'foo-1', 'foo'].map((text) => slugger.slug(text))).toEqual(['foo', 'foo-1', 'foo-2']);
	});

	it('drops punctuation but "-" and "_", and keeps one "-" per space', () => {
		expect(githubSlug('Delivery guarantees: at-least-once delivery, exactly-once effect')).toBe('delivery-guarantees-at-least-once-delivery-exactly-once-effect');
		expect(githubSlug('A — B (v2.0)')).toBe('a--b-v20');
		expect(githubSlug('snake_case & more')).toBe('snake_case--more');
	});

	it('slugs the rendered text of a heading: code kept, emphasis, links and tags not', () => {
		expect(headingText('`X-CRM-Delivery` and **bold** _stressed_ snake_case [a link](x.md) <code>tag</code>')).toBe('X-CRM-Delivery and bold stressed snake_case a link tag');
		expect(headingText('`__init__` \\_literal\\_')).toBe('__init__ _literal_');
	});
});

describe('the link checker', () => {
	let root: string;
	beforeAll(() => {
		root = mkdtempSync(path.join(os.tmpdir(), 'doc-links-'));
		mkdirSync(path.join(root, 'docs'));
		writeFileSync(path.join(root, 'code.ts'), 'one\ntwo\nthree\n');
		writeFileSync(
			path.join(root, 'docs', 'guide.md'),
			[
				'# Guide',
				'## Set up',
				'## Set up',
				'Second level',
				'------------',
				'<a id="custom"></a>',
				'```md',
				'## Not a heading',
				'```',
			].join('\n'),
		);
		writeFileSync(
			path.join(root, 'README.md'),
			[
				'# Readme',
				'[ok](docs/guide.md) [ok](docs/guide.md#set-up) [ok](docs/guide.md#set-up-1) [ok](docs/guide.md#second-level)',
				'[ok](docs/guide.md#custom) [ok](#readme) [ok](docs/) [ok](code.ts#L2-L3) ![ok](code.ts "title") [ok](<docs/guide.md>)',
				'[ok](https://example.com/missing) [ok](mailto:a@example.com) `[code](missing.md)`',
				'```',
				'[fenced](missing.md)',
				'```',
				'<!-- [commented](missing.md) -->',
				'[gone](missing.md)',
				'[no anchor](docs/guide.md#set-up-2)',
				'[code heading](docs/guide.md#not-a-heading)',
				'[own](#nowhere)',
				'[outside](../elsewhere.md)',
				'[folder anchor](docs/#x)',
				'[past the end](code.ts#L9)',
				'<a href="docs/missing.md">html</a>',
				'[ref]: docs/absent.md',
			].join('\n'),
		);
	});
	afterAll(() => rmSync(root, { recursive: true, force: true }));

	it('finds exactly the links that do not resolve, and none in code or comments', () => {
		expect(brokenLinks(root, [path.join(root, 'README.md')]).map((line) => line.replace(/ — .*/, ''))).toEqual([
			'README.md:9 missing.md',
			'README.md:10 docs/guide.md#set-up-2',
			'README.md:11 docs/guide.md#not-a-heading',
			'README.md:12 #nowhere',
			'README.md:13 ../elsewhere.md',
			'README.md:14 docs/#x',
			'README.md:15 code.ts#L9',
			'README.md:16 docs/missing.md',
			'README.md:17 docs/absent.md',
		]);
	});
});

describe('documentation links', () => {
	const files = [...TOP_LEVEL_DOCS.map((name) => path.join(ROOT, name)), ...markdownFilesUnder(path.join(ROOT, 'docs'))];

	it.each(TOP_LEVEL_DOCS)('%s exists', (name) => {
		expect(statSync(path.join(ROOT, name), { throwIfNoEntry: false })?.isFile()).toBe(true);
	});

	it('every relative link and anchor of README.md, the top-level guides and docs/ resolves', () => {
		const present = files.filter((file) => statSync(file, { throwIfNoEntry: false })?.isFile());
		expect(brokenLinks(ROOT, present)).toEqual([]);
	});
});
