// npm start: builds only when a source is newer than what the build made, then starts the
// receiver in this process's place, so a second start takes seconds, not a build.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const SOURCES = ['lib', 'server', 'nodes', 'credentials', 'tracker/src', 'tracker/scripts', 'prisma', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts/bundle-nodes.mjs'];
const OUTPUTS = ['dist/server/main.js', 'dist/bundle/nodes.js', 'tracker/dist/t.js'];
// Generated during the build itself, so never a reason to build again.
const GENERATED = path.join(root, 'lib', 'db', 'generated');

function newest(entry) {
	if (entry === GENERATED) return 0;
	const stats = statSync(entry, { throwIfNoEntry: false });
	if (!stats) return 0;
	if (!stats.isDirectory()) return stats.mtimeMs;
	return Math.max(0, ...readdirSync(entry).map((name) => newest(path.join(entry, name))));
}

function builtAt() {
	const times = OUTPUTS.map((output) => statSync(path.join(root, output), { throwIfNoEntry: false })?.mtimeMs ?? 0);
	return Math.min(...times);
}

const changedAt = Math.max(...SOURCES.map((source) => newest(path.join(root, source))));
if (builtAt() < changedAt) {
	console.log(builtAt() === 0 ? 'Building (first start)…' : 'Sources changed since the last build; building…');
	const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
	if (build.status !== 0) process.exit(build.status ?? 1);
}
await import(path.join(root, 'dist', 'server', 'main.js'));
