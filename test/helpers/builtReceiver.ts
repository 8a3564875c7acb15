import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { SiteConfig } from '../../lib/contracts';

/** The built receiver and scripts, run as their own processes the way `npm start` and the README run them. */
export const DIST = path.join(__dirname, '..', '..', 'dist');
export const MAIN = path.join(DIST, 'server', 'main.js');

export interface Finished {
	code: number | null;
	stdout: string;
	stderr: string;
}

export interface Started {
	child: ChildProcess;
	/** Everything the process printed, once it has exited. */
	exited: Promise<Finished>;
}

export { freePort } from './ports';

export async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await Promise.resolve().then(condition).catch(() => false))) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** A site config file holding `site`, as SITE_CONFIG names one. */
export function writeSiteConfig(site: SiteConfig): string {
	const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'site-config-')), 'site.json');
	writeFileSync(file, JSON.stringify(site));
	return file;
}

/**
 * This process's environment without what would choose a database, an address or Jest's VM flags
 * for the child, plus `env`: each test says which database the child gets.
 */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
	const base: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '', LOG_LEVEL: 'warn' };
	for (const name of ['DATABASE_URL', 'DATA_DIR', 'PORT', 'HOST', 'SITE_CONFIG']) delete base[name];
	return { ...base, ...env };
}

/** Starts a built file (relative to dist/) with `args` and `env` as they are. */
export function startBuilt(file: string, args: string[], env: NodeJS.ProcessEnv): Started {
	const script = path.join(DIST, file);
	if (!existsSync(script)) throw new Error(`${script} is missing: run npm run build first (npm test does)`);
	const child = spawn(process.execPath, [script, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
	let stdout = '';
	let stderr = '';
	child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
	child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
	const exited = new Promise<Finished>((resolve, reject) => {
		child.once('error', reject);
		child.once('close', (code) => resolve({ code, stdout, stderr }));
	});
	return { child, exited };
}

export function runBuilt(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
	return startBuilt(file, args, env).exited;
}

/** The receiver on `port`, once its /health answers. */
export async function startBuiltReceiver(port: number, env: NodeJS.ProcessEnv): Promise<Started> {
	const started = startBuilt('server/main.js', [], childEnv({ PORT: String(port), ...env }));
	let exitedEarly: Finished | undefined;
	void started.exited.then((finished) => (exitedEarly = finished));
	const deadline = Date.now() + 90_000;
	while (!(await fetch(`http://127.0.0.1:${port}/health`).then(() => true, () => false))) {
		if (exitedEarly) throw new Error(`the receiver exited with ${exitedEarly.code}: ${exitedEarly.stderr}`);
		if (Date.now() > deadline) {
			started.child.kill('SIGKILL');
			throw new Error('timed out waiting for the receiver to start');
		}
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
	return started;
}

/** SIGTERM, then what the receiver printed and its exit code. */
export async function stopBuilt(started: Started): Promise<Finished> {
	started.child.kill('SIGTERM');
	return started.exited;
}
