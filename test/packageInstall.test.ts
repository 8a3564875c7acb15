/**
 * What a user's n8n puts on disk for this package: the packed tarball installed with the exact
 * steps of n8n 2.41's Community Nodes installer (CommunityPackagesService.downloadPackage): npm
 * pack, extract, devDependencies / peerDependencies / optionalDependencies removed from its
 * package.json, then `npm install --audit=false --fund=false --bin-links=false
 * --install-strategy=shallow --ignore-scripts=true --package-lock=false` in its folder.
 *
 * The install must hold what the nodes and credentials run and nothing of the receiver's
 * (Express, PGlite, pino...), and the nodes must work from it: each loads, and one writes to
 * Postgres through the bundled Prisma client. Needs `npm run build` first (npm test does it).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { INode, INodeType, IVersionedNodeType } from 'n8n-workflow';

import type { PrismaClient } from '../lib/db/generated/client';
import { createTestSite, postgresCredential, testPrisma } from './helpers/db';
import { HarnessNodeTypes, runWorkflow } from './harness/n8n';

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
	name: string;
	version: string;
	n8n: { nodes: string[]; credentials: string[] };
};
const N8N_FILES: string[] = [...pkg.n8n.nodes, ...pkg.n8n.credentials];
const NODE_BUNDLE = 'dist/bundle/nodes.js';

/** The flags n8n 2.41 passes to `npm install` in the package's folder. */
const N8N_INSTALL_FLAGS = ['--audit=false', '--fund=false', '--bin-links=false', '--install-strategy=shallow', '--ignore-scripts=true', '--package-lock=false'];
const MAX_INSTALLED_MB = 20;
/** Only the receiver runs these; n8n must not install them, nor find them bundled into the nodes. */
const RECEIVER_ONLY = ['express', 'helmet', '@electric-sql/pglite', 'pglite-prisma-adapter', '@prisma/schema-engine-wasm', 'express-rate-limit', 'pino'];

const classOf = (file: string) => path.basename(file).replace(/\.(node|credentials)\.js$/, '');

function run(command: string, args: string[], cwd: string): Promise<string> {
	// npm's own settings of `npm test` (npm_*) and Jest's NODE_OPTIONS are not the installer's.
	const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') && name !== 'NODE_OPTIONS'));
	return new Promise((resolve, reject) => {
		execFile(command, args, { cwd, env, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
			if (error) reject(new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${error.message}\n${stderr}`));
			else resolve(stdout);
		});
	});
}

/** Every package under a node_modules folder, nested ones included (`npm install` counts the same). */
function packagesUnder(nodeModules: string): string[] {
	if (!existsSync(nodeModules)) return [];
	const found: string[] = [];
	for (const entry of readdirSync(nodeModules)) {
		if (entry.startsWith('.')) continue;
		const names = entry.startsWith('@') ? readdirSync(path.join(nodeModules, entry)).map((name) => `${entry}/${name}`) : [entry];
		for (const name of names) {
			found.push(name);
			found.push(...packagesUnder(path.join(nodeModules, name, 'node_modules')));
		}
	}
	return found;
}

function filesUnder(dir: string): string[] {
	return readdirSync(dir, { recursive: true, encoding: 'utf8' })
		.map((file) => path.join(dir, file))
		.filter((file) => statSync(file).isFile());
}

async function megabytes(dir: string): Promise<number> {
	if (!existsSync(dir)) return 0;
	const [kib] = (await run('du', ['-sk', dir], ROOT)).split('\t');
	return Number(kib) / 1024;
}

describe('the package as n8n installs it', () => {
	let work: string;
	let installed: string;
	let installedMb: number;
	let installedPackages: string[];

	beforeAll(async () => {
		const unbuilt = N8N_FILES.filter((file) => !existsSync(path.join(ROOT, file)));
		const unbundled = pkg.n8n.nodes.filter((file) => !unbuilt.includes(file) && !readFileSync(path.join(ROOT, file), 'utf8').includes('bundle/nodes.js'));
		if (unbuilt.length > 0 || unbundled.length > 0) {
			throw new Error(`The package is not built (${[...unbuilt, ...unbundled].join(', ')} missing, or compiled by tsc instead of bundled): run \`npm run build\` first.`);
		}

		work = await mkdtemp(path.join(tmpdir(), 'package-install-'));
		const [packed] = JSON.parse(await run('npm', ['pack', '--json', '--pack-destination', work], ROOT)) as Array<{ filename: string }>;
		// Where n8n keeps community packages: <user folder>/.n8n/nodes/node_modules/<name>.
		const nodeModules = path.join(work, '.n8n', 'nodes', 'node_modules');
		installed = path.join(nodeModules, pkg.name);
		await mkdir(installed, { recursive: true });
		await run('tar', ['-xzf', path.join(work, packed.filename), '-C', installed, '--strip-components=1'], work);
		const manifestFile = path.join(installed, 'package.json');
		const { devDependencies: _dev, peerDependencies: _peer, optionalDependencies: _optional, ...manifest } = JSON.parse(readFileSync(manifestFile, 'utf8'));
		writeFileSync(manifestFile, JSON.stringify(manifest, null, 2), 'utf8');
		await run('npm', ['install', ...N8N_INSTALL_FLAGS], installed);

		installedMb = await megabytes(installed);
		installedPackages = packagesUnder(path.join(installed, 'node_modules'));
		console.log(
			`n8n installs ${pkg.name}@${pkg.version} in ${installedMb.toFixed(1)} MB ` +
				`(its node_modules: ${(await megabytes(path.join(installed, 'node_modules'))).toFixed(1)} MB, ${installedPackages.length} packages: ${installedPackages.join(', ') || 'none'})`,
		);

		// n8n gives the packages it loads its own n8n-workflow (their one peer dependency); the
		// same copy as the harness's, so errors the nodes throw are n8n's classes.
		await symlink(path.join(ROOT, 'node_modules', 'n8n-workflow'), path.join(nodeModules, 'n8n-workflow'), 'dir');
	}, 300_000);

	afterAll(async () => {
		if (installed && existsSync(path.join(installed, NODE_BUNDLE))) {
			// eslint-disable-next-line @typescript-eslint/no-require-imports
			await (require(path.join(installed, NODE_BUNDLE)) as { disconnectAll(): Promise<void> }).disconnectAll();
		}
		if (work) await rm(work, { recursive: true, force: true });
	});

	it(`takes at most ${MAX_INSTALLED_MB} MB and holds nothing of the receiver`, () => {
		expect(installedMb).toBeLessThanOrEqual(MAX_INSTALLED_MB);
		expect(installedPackages.filter((name) => RECEIVER_ONLY.includes(name))).toEqual([]);
		// Bundled code keeps the path of each module it took in a comment; a require left in would name the package.
		const code = filesUnder(installed).filter((file) => file.endsWith('.js') || file.endsWith('.mjs')).map((file) => readFileSync(file, 'utf8'));
		const bundled = RECEIVER_ONLY.filter((name) => code.some((text) => text.includes(`node_modules/${name}/`) || text.includes(`require("${name}")`)));
		expect(bundled).toEqual([]);
	});

	it.each(N8N_FILES.map((file) => [file]))('%s loads from the install as the same type as its source, with its icon', (file: string) => {
		const className = classOf(file);
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const fromInstall = new (require(path.join(installed, file))[className])();
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const fromSource = new (require(path.join(ROOT, file.replace(/^dist\//, '').replace(/\.js$/, '.ts')))[className])();
		const description = fromInstall.description ?? fromInstall;
		const expected = fromSource.description ?? fromSource;
		expect({ name: description.name, displayName: description.displayName, version: description.version }).toEqual({
			name: expected.name,
			displayName: expected.displayName,
			version: expected.version,
		});
		const icon: unknown = description.icon;
		if (typeof icon === 'string' && icon.startsWith('file:')) {
			expect(existsSync(path.join(path.dirname(path.join(installed, file)), icon.slice('file:'.length)))).toBe(true);
		}
	});

	describe('a node of the install against Postgres', () => {
		let prisma: PrismaClient;

		beforeAll(() => {
			prisma = testPrisma();
		});

		afterAll(async () => {
			await prisma.$disconnect();
		});

		it('writes through the bundled Prisma client and PostgreSQL query compiler', async () => {
			const site = await createTestSite(prisma, 'install');
			const lead = await prisma.lead.create({ data: { siteId: site.id, email: 'ana@install.example', emailHash: 'e'.repeat(64) } });
			const nodeTypes = await HarnessNodeTypes.load({ sourcePackages: [], installedPackages: [installed, path.dirname(require.resolve('n8n-nodes-base/package.json'))] });
			const logger: INode = {
				id: 'logger',
				name: 'Activity Logger',
				type: `${pkg.name}.activityLogger`,
				typeVersion: 1,
				position: [200, 0],
				parameters: { operation: 'log', siteKey: site.key, subject: 'lead', lead: lead.id, activityType: 'note', description: 'Installed by n8n', data: '{}', occurredAt: '2026-11-01T09:00:00.000Z', dedupeKey: '' },
				credentials: { postgres: { id: '1', name: 'CRM database' } },
			};
			const workflow = {
				nodes: [{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0] as [number, number], parameters: {} }, logger],
				connections: { Start: { main: [[{ node: 'Activity Logger', type: 'main' as const, index: 0 }]] } },
			};
			// The node class really is the install's, not the source's.
			const loaded = nodeTypes.getByName(logger.type) as INodeType | IVersionedNodeType;
			// eslint-disable-next-line @typescript-eslint/no-require-imports
			expect(loaded).toBeInstanceOf(require(path.join(installed, NODE_BUNDLE)).ActivityLogger);

			const result = await runWorkflow(workflow, { input: [{}], credentials: { postgres: postgresCredential() }, nodeTypes, throwOnError: true });
			expect(result.outputOf('Activity Logger')).toEqual([expect.objectContaining({ leadId: lead.id, type: 'note', duplicate: false })]);
			expect(await prisma.activity.findMany({ where: { siteId: site.id }, select: { description: true } })).toEqual([{ description: 'Installed by n8n' }]);
		});
	});
});
