// Bundles the tracker: t.js for the script tag (IIFE, starts itself) and tracker.mjs for bundlers
// (ESM). esbuild bundles; terser then minifies harder than esbuild does (several compress passes,
// top-level names), since every byte of t.js is downloaded by every visitor of every site.
import { build } from 'esbuild';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { minify } from 'terser';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

async function bundle(entry, outfile, format) {
	const { outputFiles } = await build({
		bundle: true,
		write: false,
		minifySyntax: true,
		// Optional chaining and ?? stay as written (ES2020): browsers from 2020 on, and fewer bytes.
		target: 'es2020',
		legalComments: 'none',
		logLevel: 'warning',
		entryPoints: [path.join(root, 'src', entry)],
		format,
	});
	const { code } = await minify(outputFiles[0].text, {
		ecma: 2020,
		module: format == 'esm',
		toplevel: true,
		compress: { passes: 5, hoist_funs: true, unsafe: true, unsafe_arrows: true, unsafe_comps: true, unsafe_math: true, unsafe_methods: true, pure_getters: true },
		mangle: { toplevel: true },
	});
	// The bundle runs the same without the directive (nothing in it depends on strict mode), and it is 13 bytes.
	await writeFile(path.join(root, 'dist', outfile), code.replace(/^"use strict";/, ''));
}

// A fresh clone has no dist/ (it is not committed).
await mkdir(path.join(root, 'dist'), { recursive: true });
await Promise.all([bundle('script.ts', 't.js', 'iife'), bundle('index.ts', 'tracker.mjs', 'esm')]);

// The receiver serves t.js as these files to browsers that accept them (server/routes/tracker.ts):
// compressed once here at the strongest settings, never per request.
const script = await readFile(path.join(root, 'dist', 't.js'));
await writeFile(path.join(root, 'dist', 't.js.gz'), gzipSync(script, { level: 9 }));
await writeFile(
	path.join(root, 'dist', 't.js.br'),
	brotliCompressSync(script, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT, [constants.BROTLI_PARAM_SIZE_HINT]: script.length } }),
);
