import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { DatabaseOpenError, EmbeddedDatabaseBusyError, openDatabase } from '../lib/db';
import { Prisma } from '../lib/db/generated/client';
import { LOCK_FILE, lockDataDir } from '../lib/db/ownership';
import { DIST } from './helpers/builtReceiver';
import { testDbUrl, testPrisma } from './helpers/db';
import { roundTripEveryModel } from './helpers/roundTrip';

const everyModel = Object.values(Prisma.ModelName).sort();

describe('database', () => {
	it('round-trips a row through every model on the migrated Postgres test database', async () => {
		const prisma = testPrisma();
		try {
			expect((await roundTripEveryModel(prisma)).sort()).toEqual(everyModel);
		} finally {
			await prisma.$disconnect();
		}
	});

	it('opens Postgres through DATABASE_URL-style options with nothing left to migrate', async () => {
		const db = await openDatabase({ url: testDbUrl() });
		try {
			expect(db.kind).toBe('postgres');
			expect(db.appliedMigrations).toEqual([]);
			expect(await db.prisma.site.count()).toBeGreaterThanOrEqual(0);
		} finally {
			await db.close();
		}
	});

	it('migrates the embedded database, round-trips every model and keeps the data across a reopen', async () => {
		const dataDir = mkdtempSync(path.join(os.tmpdir(), 'tcrm-pglite-'));
		try {
			const first = await openDatabase({ url: null, dataDir });
			expect(first.kind).toBe('embedded');
			expect(first.appliedMigrations.length).toBeGreaterThan(0);
			expect((await roundTripEveryModel(first.prisma)).sort()).toEqual(everyModel);
			const sites = await first.prisma.site.count();
			await expect(openDatabase({ url: null, dataDir })).rejects.toThrow(EmbeddedDatabaseBusyError);
			await expect(openDatabase({ url: null, dataDir })).rejects.toThrow(`The embedded database in ${dataDir} is open in this process`);
			await first.close();
			expect(existsSync(path.join(dataDir, LOCK_FILE))).toBe(false);

			const second = await openDatabase({ url: null, dataDir });
			try {
				expect(second.appliedMigrations).toEqual([]);
				expect(await second.prisma.site.count()).toBe(sites);
			} finally {
				await second.close();
			}
		} finally {
			rmSync(dataDir, { recursive: true, force: true });
		}
	});

	it('gives up on Postgres that accepts the connection but never answers, with one line', async () => {
		const sockets: Socket[] = [];
		const silent = createServer((socket) => sockets.push(socket));
		await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
		const { port } = silent.address() as { port: number };
		try {
			const opening = openDatabase({ url: `postgresql://postgres@127.0.0.1:${port}/crm`, connectTimeoutMs: 300 });
			await expect(opening).rejects.toThrow(DatabaseOpenError);
			await expect(opening).rejects.toThrow(`Cannot reach the database at 127.0.0.1:${port}/crm (no answer); start Postgres or fix DATABASE_URL.`);
		} finally {
			for (const socket of sockets) socket.destroy();
			await new Promise((resolve) => silent.close(resolve));
		}
	});
});

describe('the embedded data folder has one owner', () => {
	let dataDir: string;
	beforeEach(() => {
		dataDir = mkdtempSync(path.join(os.tmpdir(), 'tcrm-owner-'));
	});
	afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

	function deadPid(): number {
		const { pid } = spawnSync(process.execPath, ['-e', '']);
		return pid!;
	}

	it('takes over the lock of a process that died, and frees it on release', () => {
		writeFileSync(path.join(dataDir, LOCK_FILE), JSON.stringify({ pid: deadPid(), owner: 'the receiver', since: new Date().toISOString(), token: 'gone' }));
		const lock = lockDataDir(dataDir, 'the test');
		expect(JSON.parse(readFileSync(lock.file, 'utf8'))).toMatchObject({ pid: process.pid, owner: 'the test' });
		lock.release();
		expect(existsSync(lock.file)).toBe(false);
	});

	it('takes over a lock that an earlier process with the same pid left (a restarted container)', () => {
		const lockFile = path.join(dataDir, LOCK_FILE);
		writeFileSync(lockFile, JSON.stringify({ pid: process.pid, owner: 'the receiver', since: '2026-01-01T00:00:00.000Z', incarnation: 'an-earlier-boot:1', token: 'gone' }));
		const lock = lockDataDir(dataDir, 'the test');
		const holder = JSON.parse(readFileSync(lock.file, 'utf8'));
		expect(holder).toMatchObject({ pid: process.pid, owner: 'the test' });
		expect(holder.incarnation).toMatch(/^[0-9a-f-]+:\d+$/);
		lock.release();
	});

	it('refuses while the owner lives, naming it', () => {
		const lock = lockDataDir(dataDir, 'the receiver');
		try {
			let refusal: unknown;
			try {
				lockDataDir(dataDir, 'api-key create');
			} catch (error) {
				refusal = error;
			}
			expect(refusal).toBeInstanceOf(EmbeddedDatabaseBusyError);
			expect(refusal).toMatchObject({ dataDir, lockFile: lock.file, holder: { pid: process.pid, owner: 'the receiver' } });
		} finally {
			lock.release();
		}
	});

	/** Processes that try at the same moment, on a free folder or on one a dead process left locked: exactly one wins. */
	async function race(contenders: number): Promise<string[]> {
		const ownership = path.join(DIST, 'lib', 'db', 'ownership.js');
		const script = `
			const { lockDataDir } = require(${JSON.stringify(ownership)});
			console.log('ready');
			process.stdin.once('data', () => {
				try {
					lockDataDir(${JSON.stringify(dataDir)}, 'racer');
					console.log('won');
					setTimeout(() => process.exit(0), 1500);
				} catch (error) {
					console.log('busy ' + error.holder.pid);
					process.exit(0);
				}
			});`;
		const children = Array.from({ length: contenders }, () => spawn(process.execPath, ['-e', script], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['pipe', 'pipe', 'inherit'] }));
		const outputs = children.map((child) => {
			let out = '';
			child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
			return {
				// A child that fails before it is ready ends the wait too, and its output shows why.
				ready: new Promise<void>((resolve) => {
					child.stdout.on('data', () => out.includes('ready') && resolve());
					child.once('close', () => resolve());
				}),
				done: new Promise<string>((resolve) => child.once('close', () => resolve(`${child.pid} ${out.replace('ready\n', '').trim()}`))),
			};
		});
		await Promise.all(outputs.map((output) => output.ready));
		for (const child of children) child.stdin.end('go\n');
		return Promise.all(outputs.map((output) => output.done));
	}

	function oneWinner(results: string[]): void {
		const winners = results.filter((result) => result.endsWith(' won'));
		expect(winners).toHaveLength(1);
		const winnerPid = winners[0].split(' ')[0];
		const others = results.filter((result) => result !== winners[0]).map((result) => result.split(' ').slice(1).join(' '));
		expect(others).toEqual(others.map(() => `busy ${winnerPid}`));
	}

	it('lets exactly one of many processes starting at once own a free folder', async () => {
		oneWinner(await race(6));
	}, 60_000);

	it('lets exactly one of many processes taking over a dead owner’s lock at once own the folder', async () => {
		writeFileSync(path.join(dataDir, LOCK_FILE), JSON.stringify({ pid: deadPid(), owner: 'the receiver', since: new Date().toISOString(), token: 'gone' }));
		oneWinner(await race(6));
	}, 60_000);
});
