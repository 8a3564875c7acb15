import { createHash, randomBytes } from 'node:crypto';
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { EmbeddedDatabaseBusyError, type DataDirHolder } from './errors';

/** Inside the data folder, beside PGlite's files, so it moves and is deleted with them. */
export const LOCK_FILE = 'owner.lock';

export interface DataDirLock {
	file: string;
	/** Removes the lock if it is still this one; safe to call twice. */
	release(): void;
}

/**
 * Makes this process the one owner of an embedded data folder, or throws EmbeddedDatabaseBusyError
 * naming the live owner. A lock left by a process that died is taken over.
 *
 * The lock appears atomically with its content (written aside, then hard-linked into place, which
 * fails when the name exists), so a reader never sees a half-written lock. A stale lock is removed
 * only by the process that creates its takeover guard, after checking it is still that same lock:
 * two processes taking over one stale lock cannot both remove it, nor remove the winner's new one.
 */
export function lockDataDir(dataDir: string, owner: string): DataDirLock {
	const file = path.join(dataDir, LOCK_FILE);
	const holder: DataDirHolder & { token: string } = { pid: process.pid, owner, since: new Date().toISOString(), incarnation: incarnation(process.pid), token: randomBytes(8).toString('hex') };
	const content = JSON.stringify(holder);
	// Each round either takes the lock, meets a live owner, or removes a dead one's lock, or finds another
	// process removing it: then it waits a moment, since on a busy machine that process may not run for a while,
	// and a fixed number of quick rounds gave up while the takeover was still under way.
	const deadline = Date.now() + TAKEOVER_WAIT_MS;
	for (let round = 0; round === 0 || Date.now() < deadline; round++) {
		if (createAtomically(file, content)) return held(file, content);
		const current = readLock(file);
		if (current === undefined) continue;
		const currentHolder = parseHolder(current);
		if (currentHolder && isAlive(currentHolder)) throw new EmbeddedDatabaseBusyError(dataDir, file, currentHolder);
		if (!removeStaleLock(file, current, content)) sleep(Math.min(50, 5 * 2 ** Math.min(round, 4)));
	}
	const last = parseHolder(readLock(file) ?? '');
	throw new EmbeddedDatabaseBusyError(dataDir, file, last ?? { pid: 0, owner: 'another process', since: new Date().toISOString() });
}

function held(file: string, content: string): DataDirLock {
	// A process that exits without closing the database (process.exit, an uncaught error) frees the folder too.
	const release = () => {
		process.off('exit', release);
		try {
			if (readLock(file) === content) unlinkSync(file);
		} catch {
			// The folder went away or turned read-only: there is no lock left to keep anyone out.
		}
	};
	process.on('exit', release);
	return { file, release };
}

/** How long a process waits for another one's takeover of a dead owner's lock before it gives up. */
const TAKEOVER_WAIT_MS = 5000;

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Removes the stale lock unless another process is doing so; false when one is (its guard exists). */
function removeStaleLock(file: string, stale: string, content: string): boolean {
	const guard = `${file}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
	if (!createAtomically(guard, content)) {
		// A process that died between taking the guard and removing the stale lock would block the folder for good.
		const guardHolder = parseHolder(readLock(guard) ?? '');
		if (guardHolder && !isAlive(guardHolder)) unlinkQuietly(guard);
		return false;
	}
	try {
		if (readLock(file) === stale) unlinkQuietly(file);
	} finally {
		unlinkQuietly(guard);
	}
	return true;
}

/** Creates `file` with `content` unless it exists; false when it does. */
function createAtomically(file: string, content: string): boolean {
	const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.draft`;
	writeFileSync(draft, content, { flag: 'wx', mode: 0o644 });
	try {
		linkSync(draft, file);
		return true;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
		throw error;
	} finally {
		unlinkQuietly(draft);
	}
}

function readLock(file: string): string | undefined {
	try {
		return readFileSync(file, 'utf8');
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
		throw error;
	}
}

function parseHolder(content: string): DataDirHolder | undefined {
	try {
		const parsed = JSON.parse(content) as Partial<DataDirHolder>;
		if (typeof parsed.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return undefined;
		const holder: DataDirHolder = { pid: parsed.pid, owner: String(parsed.owner ?? 'another process'), since: String(parsed.since ?? '') };
		return typeof parsed.incarnation === 'string' ? { ...holder, incarnation: parsed.incarnation } : holder;
	} catch {
		return undefined;
	}
}

/** The boot and the start time (in clock ticks since boot) of a process, or undefined where /proc does not tell. */
function incarnation(pid: number): string | undefined {
	try {
		const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
		const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
		// The command name (field 2) may hold spaces and parentheses; the fields after its last ')' are plain.
		const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
		return startTime ? `${boot}:${startTime}` : undefined;
	} catch {
		return undefined;
	}
}

function isAlive(holder: DataDirHolder): boolean {
	try {
		process.kill(holder.pid, 0);
	} catch (error) {
		// EPERM: the process exists but belongs to another user.
		return (error as NodeJS.ErrnoException).code === 'EPERM';
	}
	if (!holder.incarnation) return true;
	const now = incarnation(holder.pid);
	return now === undefined || now === holder.incarnation;
}

function unlinkQuietly(file: string): void {
	try {
		unlinkSync(file);
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
	}
}

/** Whether a folder entry belongs to the lock rather than to the database. */
export function isLockEntry(name: string): boolean {
	return name === LOCK_FILE || name.startsWith(`${LOCK_FILE}.`);
}
