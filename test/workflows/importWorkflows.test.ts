import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'import-workflows');

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

function groupAlive(pgid: number): boolean {
	try {
		process.kill(-pgid, 0);
		return true;
	} catch {
		return false;
	}
}

describe('scripts/import-workflows stopped in the middle', () => {
	let script: ChildProcess | undefined;
	let cliPid: number | undefined;

	// Whatever the outcome, nothing of the run may outlive the test.
	afterAll(() => {
		script?.kill('SIGKILL');
		for (const target of cliPid ? [-cliPid, cliPid] : []) {
			try {
				process.kill(target, 'SIGKILL');
			} catch {
				// Already gone.
			}
		}
	});

	it('stops the n8n CLI run it started, whole, and exits with the signal', async () => {
		const work = mkdtempSync(path.join(os.tmpdir(), 'import-stop-'));
		const pidFile = path.join(work, 'cli.pid');
		// A stand-in for an n8n CLI that hangs: it records its process group and sleeps.
		const cli = `echo $$ > ${pidFile}; sleep 300 #`;
		script = spawn(SCRIPT, ['--n8n-cli', cli], { stdio: ['ignore', 'pipe', 'pipe'] });
		const exited = new Promise<number | null>((resolve) => script!.once('exit', (code) => resolve(code)));
		await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 30_000, 'the CLI to start');
		const pgid = Number(readFileSync(pidFile, 'utf8').trim());
		cliPid = pgid;
		expect(groupAlive(pgid)).toBe(true);

		script.kill('SIGTERM');
		expect(await exited).toBe(143);
		await waitFor(() => !groupAlive(pgid), 5_000, 'the CLI process group to end');
	}, 60_000);
});
