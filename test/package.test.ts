import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

/**
 * What n8n reads when it installs the package: the `n8n` section must point at built files
 * that export the classes n8n instantiates, with their icons beside them.
 */
describe('community package shape', () => {
	it('declares itself as an n8n community node package', () => {
		expect(pkg.name).toMatch(/^n8n-nodes-/);
		expect(pkg.keywords).toContain('n8n-community-node-package');
		expect(pkg.n8n.n8nNodesApiVersion).toBe(1);
		expect(Object.keys(pkg.peerDependencies)).toEqual(['n8n-workflow']);
		expect(pkg.n8n.nodes.length).toBeGreaterThan(0);
	});

	it('has no runtime dependencies for n8n to install: the nodes are bundled, the receiver declares its own', () => {
		expect(pkg.dependencies ?? {}).toEqual({});
		expect(pkg.files).toContain('dist/bundle');
		expect(pkg.workspaces).toEqual(['server']);
		const receiver = JSON.parse(readFileSync(path.join(root, 'server', 'package.json'), 'utf8'));
		expect(receiver.private).toBe(true);
		expect(Object.keys(receiver.dependencies)).toEqual(expect.arrayContaining(['express', '@electric-sql/pglite']));
	});

	it.each([...pkg.n8n.nodes, ...pkg.n8n.credentials].map((file: string) => [file]))('%s is built, exports its class and has its icon', (file: string) => {
		const built = path.join(root, file);
		expect(existsSync(built)).toBe(true);
		const className = path.basename(file).replace(/\.(node|credentials)\.js$/, '');
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const exported = require(built)[className];
		expect(typeof exported).toBe('function');
		const instance = new exported();
		const description = instance.description ?? instance;
		const icon: unknown = description.icon;
		if (typeof icon === 'string' && icon.startsWith('file:')) {
			expect(existsSync(path.join(path.dirname(built), icon.slice('file:'.length)))).toBe(true);
		}
	});
});
