/**
 * `npm run bench`: every benchmark in turn, each in its own process so one's heap and JIT
 * state do not colour the next. They print figures; none of them is a test.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import path from 'node:path';

const only = process.argv.slice(2);
const benches = readdirSync(__dirname)
	.filter((file) => file.endsWith('.bench.js'))
	.filter((file) => only.length === 0 || only.some((name) => file.startsWith(name)))
	.sort();

let failed = 0;
for (const file of benches) {
	// The machine may be shared: the load beside each figure says how much else ran.
	const load = () => loadavg().map((value) => value.toFixed(2)).join(', ');
	console.log(`\n=== ${file.replace(/\.bench\.js$/, '')} === load average ${load()} (1, 5, 15 min) on ${availableParallelism()} cores`);
	const result = spawnSync(process.execPath, [path.join(__dirname, file)], { stdio: 'inherit' });
	console.log(`(load average after: ${load()})`);
	if (result.status !== 0) failed += 1;
}
process.exit(failed > 0 ? 1 : 0);
