// Bundles what n8n loads from this package (the files of package.json's `n8n` section), so that
// n8n's Community Nodes installer installs the package alone: no runtime dependency to download,
// and none of the receiver's (Express, PGlite, pino...), which the nodes never run.
//
// Nodes: one bundle, dist/bundle/nodes.js, holds every node class with all the code they reach
// (lib/, the generated Prisma client with its PostgreSQL query compiler, pg, zod...), and each
// node file of the `n8n` section is one line that takes its class from it. One bundle rather than
// one per node: the Prisma runtime and its 4.5 MB query compiler would be copied into each, and
// module state must stay one per process as it is unbundled (nodes/shared/database.ts keeps one
// pool per connection; instanceof checks need one copy of each class).
// Credentials import only n8n-workflow's types: each is bundled on its own.
// n8n-workflow stays external: n8n provides it (the package's one peer dependency).
import { build } from 'esbuild';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const NODE_BUNDLE = 'dist/bundle/nodes.js';

/**
 * What only the receiver runs. The nodes open Postgres through n8n's Postgres credential; if an
 * import ever pulls one of these in (e.g. lib/db/index.ts instead of nodes/shared/database.ts),
 * the build fails here rather than shipping it to every n8n.
 */
const RECEIVER_ONLY = ['@electric-sql/pglite', 'pglite-prisma-adapter', '@prisma/schema-engine-wasm', 'express', 'helmet', 'pino', 'proxy-addr'];
/** Prisma ships a query compiler per database; the generated client loads PostgreSQL's only. */
const OTHER_QUERY_COMPILERS = /query_compiler_\w+_bg\.(?!postgresql\.)\w+\./;

const common = {
	bundle: true,
	platform: 'node',
	format: 'cjs',
	target: 'node20',
	external: ['n8n-workflow'],
	// Error and class names stay as written (n8n shows error names; nothing may depend on a renamed class).
	keepNames: true,
	logLevel: 'warning',
	metafile: true,
	absWorkingDir: root,
};

/** The class a file of the `n8n` section exports, as n8n looks it up: its file name. */
const classOf = (file) => path.basename(file).replace(/\.(node|credentials)\.js$/, '');
const sourceOf = (file) => file.replace(/^dist\//, '').replace(/\.js$/, '.ts');

function packagesIn(metafile) {
	const names = new Set();
	for (const input of Object.keys(metafile.inputs)) {
		const match = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
		if (match) names.add(match[1]);
	}
	return names;
}

const nodes = pkg.n8n.nodes;
// disconnectAll closes the nodes' pools, for a process that embeds the package (and for its tests).
const entry = [...nodes.map((file) => `export { ${classOf(file)} } from './${sourceOf(file)}';`), "export { disconnectAll } from './nodes/shared/database';"].join('\n');
const nodeBuild = await build({
	...common,
	stdin: { contents: entry, resolveDir: root, sourcefile: 'n8n-section-nodes.ts', loader: 'ts' },
	outfile: path.join(root, NODE_BUNDLE),
	// Written only once checked below.
	write: false,
});

const packages = packagesIn(nodeBuild.metafile);
const receiverOnly = RECEIVER_ONLY.filter((name) => packages.has(name));
const compilers = Object.keys(nodeBuild.metafile.inputs).filter((input) => OTHER_QUERY_COMPILERS.test(input));
if (receiverOnly.length > 0 || compilers.length > 0) {
	console.error(`${NODE_BUNDLE} must hold only what the nodes run, but it includes ${[...receiverOnly, ...compilers].join(', ')}.`);
	console.error('A node imports a module of the receiver or the embedded database; nodes reach Postgres through nodes/shared/database.ts.');
	process.exit(1);
}

await mkdir(path.dirname(path.join(root, NODE_BUNDLE)), { recursive: true });
await Promise.all(nodeBuild.outputFiles.map((file) => writeFile(file.path, file.contents)));
await Promise.all(
	nodes.map(async (file) => {
		const target = path.join(root, file);
		const bundle = path.relative(path.dirname(target), path.join(root, NODE_BUNDLE)).split(path.sep).join('/');
		const specifier = bundle.startsWith('.') ? bundle : `./${bundle}`;
		const name = classOf(file);
		await mkdir(path.dirname(target), { recursive: true });
		await writeFile(target, `'use strict';\n// Built by scripts/bundle-nodes.mjs: every node of the package lives in one bundle.\nmodule.exports = { ${name}: require('${specifier}').${name} };\n`);
	}),
);

await Promise.all(
	pkg.n8n.credentials.map((file) => build({ ...common, entryPoints: [path.join(root, sourceOf(file))], outfile: path.join(root, file) })),
);

const { size } = await stat(path.join(root, NODE_BUNDLE));
console.log(`${NODE_BUNDLE}: ${(size / 1e6).toFixed(1)} MB, ${nodes.length} nodes, ${packages.size} packages bundled`);
