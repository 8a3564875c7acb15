/**
 * What `npm publish` would ship, read from `npm pack` itself: only what n8n loads and the tracker
 * sites embed — no tests, fixtures, local data, secrets, benchmarks or database files — and every
 * file n8n loads. Then the tarball's contents, searched for anything that looks like a secret.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { TEST_SECRET } from './helpers/receiver';

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { n8n: { nodes: string[]; credentials: string[] } };

interface Packed {
	filename: string;
	files: Array<{ path: string; size: number }>;
	size: number;
	unpackedSize: number;
}

function npmPack(args: string[]): Promise<Packed> {
	return new Promise((resolve, reject) => {
		// NODE_OPTIONS carries Jest's flags, which are not npm's.
		execFile('npm', ['pack', '--json', ...args], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
			if (error) reject(new Error(`npm pack failed: ${stderr}`));
			else resolve((JSON.parse(stdout) as Packed[])[0]);
		});
	});
}

/** Where each shipped file may come from, and why it ships. */
const ALLOWED = [
	/^package\.json$/,
	/^README\.md$/,
	/^LICENSE$/,
	// The nodes and credentials n8n loads (package.json's n8n section), bundled with their one shared chunk.
	/^dist\/bundle\/[\w.-]+\.js$/,
	/^dist\/nodes\/\w+\/\w+\.node\.(js|json)$/,
	/^dist\/credentials\/\w+\.credentials\.js$/,
	/^dist\/(nodes\/\w+|credentials)\/[\w.-]+\.(svg|png)$/,
	// The browser tracker a site embeds (README "For sites").
	/^tracker\/dist\/[\w.-]+\.(js|mjs|js\.gz|js\.br)$/,
];

/** What must never ship, with the reason: each pattern would catch a mistake someone can make in `files`. */
const FORBIDDEN: Array<[RegExp, string]> = [
	[/(^|\/)(test|tests|__tests__|spec)\//, 'tests'],
	[/\.(test|spec)\.[cm]?[jt]s$/, 'tests'],
	[/(^|\/)(fixtures?|test-payloads)\//, 'fixtures'],
	[/(^|\/)bench\/|^dist-bench\//, 'benchmarks'],
	[/(^|\/)\.data\/|(^|\/)pglite\//, 'local data'],
	[/(^|\/)\.env($|\.)/, 'environment files'],
	[/\.(pem|key|p12|pfx|crt)$|(^|\/)id_(rsa|ed25519)/, 'keys and certificates'],
	[/(^|\/)\.npmrc$|(^|\/)\.netrc$/, 'registry credentials'],
	[/(^|\/)prisma\/|\.(db|sqlite3?)$|(^|\/)dev\.db/, 'database files and Prisma dev data'],
	[/(^|\/)config\/(site\.json|sites\/)/, 'site configs (they name secrets)'],
	[/(^|\/)(backups?)\/|\.dump(\.enc)?$|\.sql$/, 'database dumps'],
	[/(^|\/)node_modules\//, 'dependencies'],
	[/\.tgz$/, 'packed tarballs'],
	[/(^|\/)(coverage|\.ci|\.github|scripts|server|lib)\//, 'development and receiver sources'],
	[/\.ts$/, 'TypeScript sources'],
];

/** Strings that are secrets wherever they appear. */
const SECRET_SHAPES: Array<[RegExp, string]> = [
	[/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'a private key'],
	[/\btcrm_(read|admin)_[A-Za-z0-9_-]{16,}/, 'an API key of the receiver'],
	[/\bnpm_[A-Za-z0-9]{36}\b/, 'an npm token'],
	[/\bAKIA[0-9A-Z]{16}\b/, 'an AWS access key'],
	[/\bgh[pousr]_[A-Za-z0-9]{36}\b/, 'a GitHub token'],
	[new RegExp(TEST_SECRET), 'the tests’ webhook secret'],
	[/postgres(ql)?:\/\/[^:@\s/'"`]+:[^@\s'"`]{6,}@(?!(host|db|localhost)[:/])/, 'a database URL with a password'],
];

function filesUnder(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
		const full = path.join(dir, entry.name);
		return entry.isDirectory() ? filesUnder(full) : [full];
	});
}

describe('what npm publish ships (npm pack)', () => {
	let packed: Packed;
	const work = mkdtempSync(path.join(tmpdir(), 'pack-contents-'));

	beforeAll(async () => {
		packed = await npmPack(['--dry-run']);
	}, 120_000);
	afterAll(() => rmSync(work, { recursive: true, force: true }));

	it('ships only what n8n loads and sites embed', () => {
		const paths = packed.files.map((file) => file.path);
		expect(paths.filter((file) => !ALLOWED.some((pattern) => pattern.test(file)))).toEqual([]);
		const forbidden = paths.flatMap((file) => FORBIDDEN.filter(([pattern]) => pattern.test(file)).map(([, why]) => `${file}: ${why}`));
		expect(forbidden).toEqual([]);
		console.log(`npm pack: ${paths.length} files, ${(packed.size / 1024 / 1024).toFixed(2)} MB packed, ${(packed.unpackedSize / 1024 / 1024).toFixed(2)} MB unpacked`);
	});

	it('ships every file package.json’s n8n section names, and the tracker', () => {
		const paths = new Set(packed.files.map((file) => file.path));
		expect([...pkg.n8n.nodes, ...pkg.n8n.credentials].filter((file) => !paths.has(file))).toEqual([]);
		expect(paths.has('tracker/dist/t.js')).toBe(true);
		expect([...paths].some((file) => file.startsWith('dist/bundle/'))).toBe(true);
	});

	it('the forbidden patterns catch what they are for', () => {
		const caught = (file: string) => FORBIDDEN.some(([pattern]) => pattern.test(file));
		for (const file of ['test/package.test.ts', 'dist/test/helpers/db.js', 'test-payloads/lead.json', 'bench/traffic.ts', '.data/pglite/base/1', '.env', 'config/.env.production', 'config/site.json', 'prisma/schema.prisma', 'backups/crm-2026-01-01T00-00-00-000Z.dump.enc', 'certs/server.key', 'n8n-nodes-tracking-crm-0.1.0.tgz', 'scripts/backup-database.ts']) {
			expect([file, caught(file)]).toEqual([file, true]);
		}
		for (const file of ['dist/nodes/LeadScorer/LeadScorer.node.js', 'tracker/dist/t.js', 'package.json']) expect([file, caught(file)]).toEqual([file, false]);
	});

	it('the secret shapes find secrets, and not the placeholders of examples', () => {
		const samples = [
			'-----BEGIN RSA PRIVATE KEY-----',
			'tcrm_admin_Q2x9vX0d4b1kLmNoPqRsTu',
			`npm_${'a1B2'.repeat(9)}`,
			'AKIAABCDEFGHIJKLMNOP',
			`ghp_${'x9Y8'.repeat(9)}`,
			TEST_SECRET,
			'postgresql://crm:s3cret-pass@db.internal:5432/crm',
		];
		expect(samples.map((sample) => SECRET_SHAPES.filter(([shape]) => shape.test(sample)).map(([, what]) => what))).toEqual(SECRET_SHAPES.map(([, what]) => [what]));
		for (const placeholder of ['postgresql://user:password@host:5432/database', 'postgresql://crm:…@db:5432/crm', 'tcrm_read_…']) {
			expect([placeholder, SECRET_SHAPES.filter(([shape]) => shape.test(placeholder))]).toEqual([placeholder, []]);
		}
	});

	it('holds no secret in any shipped file', async () => {
		const tarball = await npmPack(['--pack-destination', work]);
		await new Promise<void>((resolve, reject) => execFile('tar', ['-xzf', path.join(work, tarball.filename), '-C', work], (error) => (error ? reject(error) : resolve())));
		const files = filesUnder(path.join(work, 'package'));
		expect(files.length).toBe(packed.files.length);
		const found: string[] = [];
		for (const file of files) {
			if (statSync(file).size > 32 * 1024 * 1024) continue;
			const text = readFileSync(file, 'latin1');
			for (const [shape, what] of SECRET_SHAPES) if (shape.test(text)) found.push(`${path.relative(path.join(work, 'package'), file)}: ${what}`);
		}
		expect(found).toEqual([]);
	}, 120_000);
});

describe('.github/workflows/publish.yml', () => {
	const workflow = readFileSync(path.join(ROOT, '.github', 'workflows', 'publish.yml'), 'utf8');
	const job = (name: string) => new RegExp(`^  ${name}:\\n((?:    .*\\n|\\n)*)`, 'm').exec(workflow)?.[1] ?? '';

	it('publishes with provenance on a release tag, only after the whole suite passed', () => {
		expect(workflow).toMatch(/^on:\n {2}push:\n {4}tags: \['v\*\.\*\.\*'\]$/m);
		expect(job('test')).toContain('run: bash .ci/run');
		expect(job('publish')).toMatch(/^ {4}needs: test$/m);
		expect(job('publish')).toMatch(/^ {6}id-token: write$/m);
		expect(job('publish')).toMatch(/^ {6}- run: npm publish --provenance --access public$/m);
		expect(job('test')).not.toContain('id-token');
	});
});
