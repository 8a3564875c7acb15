import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

function sources(dir: string): string[] {
	return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
		.filter((entry) => entry.isFile() && /\.(ts|mjs|js)$/.test(entry.name) && !entry.parentPath.includes('generated'))
		.map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name)));
}

describe('the outbox has one writer', () => {
	it('no code but server/outbox/enqueue.ts inserts into the outbox', () => {
		const writers = ['server', 'lib', 'nodes'].flatMap(sources).filter((file) => /INSERT\s+INTO\s+"?outbox"?\s*\(/i.test(readFileSync(path.join(ROOT, file), 'utf8')));
		expect(writers).toEqual([path.join('server', 'outbox', 'enqueue.ts')]);
	});
});
