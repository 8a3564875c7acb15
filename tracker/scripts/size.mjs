// Size budget of the tracker: the script-tag build, gzipped at level 9. Prints the exact bytes of
// both builds and fails the build over budget: 2,500 bytes, below Umami's (2.2 KB, far fewer
// features) and Plausible's (2.7 KB) trackers.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const BUDGET = 2500;
const dist = path.join(path.dirname(path.dirname(fileURLToPath(import.meta.url))), 'dist');

let over = false;
const served = ['gz', 'br'].map((encoding) => `${encoding} ${readFileSync(path.join(dist, `t.js.${encoding}`)).length}`).join(', ');
for (const file of ['t.js', 'tracker.mjs']) {
	const source = readFileSync(path.join(dist, file));
	const gzip = gzipSync(source, { level: 9 }).length;
	const checked = file == 't.js';
	if (checked && gzip > BUDGET) over = true;
	console.log(`tracker/dist/${file}: ${source.length} bytes, ${gzip} bytes gzip -9${checked ? ` (budget ${BUDGET})` : ''}`);
}
console.log(`tracker/dist/t.js as served compressed: ${served} bytes`);
if (over) {
	console.error(`tracker/dist/t.js is over its budget of ${BUDGET} bytes gzip: make it smaller before it ships`);
	process.exit(1);
}
