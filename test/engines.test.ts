import { readFileSync } from 'node:fs';
import path from 'node:path';

import { minVersion, satisfies } from 'semver';

const root = path.join(__dirname, '..');
const read = (file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf8'));

/**
 * The README promises a Node.js version; `npm ci` installs what package-lock.json holds. Every
 * package in it must run on the oldest Node.js the README names, or `npm ci` warns and parts
 * fail on a machine that follows the README (see absent/README.md for what is kept out).
 */
describe('the Node.js version the README promises', () => {
	const engines: string = read('package.json').engines.node;
	const oldest = minVersion(engines)!.version;

	it('is the one package.json requires', () => {
		const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
		const promised = /Node\.js (\d+\.\d+)(?:\.\d+)? or newer/.exec(readme);
		expect(promised?.[1]).toBe(oldest.split('.').slice(0, 2).join('.'));
	});

	it('is enough for every package npm ci installs', () => {
		const packages: Record<string, { version?: string; engines?: { node?: string } | string[] }> = read('package-lock.json').packages;
		const unmet = Object.entries(packages)
			.filter(([, entry]) => entry.engines && !Array.isArray(entry.engines) && entry.engines.node)
			.filter(([, entry]) => !satisfies(oldest, (entry.engines as { node: string }).node, { includePrerelease: true }))
			.map(([location, entry]) => `${location}@${entry.version} needs Node.js ${(entry.engines as { node: string }).node}`);
		expect(unmet).toEqual([]);
	});
});
