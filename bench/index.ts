/**
 * `npm run bench`: every benchmark in turn, each in its own process so one's heap and JIT
 * state do not colour the next. They print figures; none of them is a test.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const only = process.argv.slice(2);
const benches = readdirSync(__dirname)
	.filter((file) => file.endsWith('.bench.js'))
	.filter((file) => only.length === 0 || only.some((name) => file.startsWith(name)))
	.sort();

let failed = 0;
for (const file of benches) {
	console.log(`\n=== ${file.replace(/\.bench\.js$/, '')} ===`);
	const result = spawnSync(process.execPath, [path.join(__dirname, file)], { stdio: 'inherit' });
	if (result.status !== 0) failed += 1;
}
process.exit(failed > 0 ? 1 : 0);
