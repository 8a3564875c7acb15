// Bundles the tracker: t.js for the script tag (IIFE, starts itself) and tracker.mjs for bundlers (ESM).
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

const common = {
	bundle: true,
	minify: true,
	// Optional chaining and ?? stay as written (ES2020): browsers from 2020 on, and fewer bytes.
	target: 'es2020',
	legalComments: 'none',
	logLevel: 'warning',
};

await Promise.all([
	build({ ...common, entryPoints: [path.join(root, 'src/script.ts')], outfile: path.join(root, 'dist/t.js'), format: 'iife' }),
	build({ ...common, entryPoints: [path.join(root, 'src/index.ts')], outfile: path.join(root, 'dist/tracker.mjs'), format: 'esm' }),
]);
