import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { testDbUrl, testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { FakeN8n } from '../helpers/fakeN8n';
import { TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const MAIN = path.join(__dirname, '..', '..', 'dist', 'server', 'main.js');

async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as { port: number };
	await new Promise((resolve) => server.close(resolve));
	return port;
}

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await Promise.resolve().then(condition).catch(() => false))) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

/** The built receiver as its own process, the way `npm start` runs it, so it can be SIGKILLed. */
function startProcess(configFile: string, port: number): ChildProcess {
	return spawn(process.execPath, [MAIN], {
		env: {
			...process.env,
			NODE_OPTIONS: '',
			DATABASE_URL: testDbUrl(),
			SITE_CONFIG: configFile,
			PORT: String(port),
			TEST_WEBHOOK_SECRET: TEST_SECRET,
			DISPATCH_INTERVAL_MS: '50',
			DISPATCH_TIMEOUT_MS: '1000',
			DISPATCH_BACKOFF_BASE_MS: '50',
			DISPATCH_BACKOFF_MAX_MS: '500',
			LOG_LEVEL: 'warn',
		},
		stdio: ['ignore', 'ignore', 'inherit'],
	});
}

describe('receiver killed with SIGKILL under load', () => {
	const prisma = testPrisma();
	const n8n = new FakeN8n(TEST_SECRET);
	let child: ChildProcess | undefined;

	afterAll(async () => {
		child?.kill('SIGKILL');
		await n8n.stop();
		await prisma.$disconnect();
	});

	it('keeps and delivers every event that got a 202', async () => {
		if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first (npm test does)`);
		await n8n.start();
		const site = testSiteConfig({ n8nUrl: n8n.url });
		const key = site.site.key;
		const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'crash-')), 'site.json');
		writeFileSync(configFile, JSON.stringify(site));
		const port = await freePort();
		const base = `http://127.0.0.1:${port}`;

		child = startProcess(configFile, port);
		await waitFor(async () => (await fetch(`${base}/health`)).status > 0, 60_000, 'the receiver to start');

		const acknowledged: string[] = [];
		let failed = 0;
		let stop = false;
		const worker = async (w: number) => {
			for (let i = 0; !stop; i++) {
				const events = [pageview(key, `anon-w${w}-${i % 7}`, `/w${w}/${i}`), pageview(key, `anon-w${w}-${i % 7}`, `/w${w}/${i}/b`)];
				try {
					const response = await post(`${base}/api/track`, batch(key, events));
					if (response.status === 202) acknowledged.push(...events.map((event) => event.id));
				} catch {
					failed += 1;
					await new Promise((resolve) => setTimeout(resolve, 20));
				}
			}
		};
		const workers = Array.from({ length: 8 }, (_, w) => worker(w));
		await waitFor(() => acknowledged.length >= 400, 60_000, 'load to build up');
		child.kill('SIGKILL');
		await new Promise((resolve) => child!.once('exit', resolve));
		const atKill = acknowledged.length;
		await new Promise((resolve) => setTimeout(resolve, 300));
		stop = true;
		await Promise.all(workers);
		expect(acknowledged.length).toBe(atKill);
		expect(failed).toBeGreaterThan(0);

		const siteId = (await prisma.site.findUniqueOrThrow({ where: { key } })).id;
		const stored = new Set((await prisma.visitorEvent.findMany({ where: { siteId }, select: { eventId: true } })).map((row) => row.eventId));
		expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);

		child = startProcess(configFile, port);
		await waitFor(() => {
			const delivered = new Set(n8n.eventIds());
			return acknowledged.every((id) => delivered.has(id));
		}, 90_000, 'every acknowledged event to reach n8n after the restart');
		const pending = await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } });
		await waitFor(async () => (await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } })) === 0, 30_000, `the outbox to drain (${pending} left)`);
		child.kill('SIGTERM');
		await new Promise((resolve) => child!.once('exit', resolve));
		child = undefined;
	}, 240_000);

	it('on SIGTERM finishes the requests in flight, stores every acknowledged event and exits cleanly', async () => {
		const site = testSiteConfig({ endpoints: false });
		const key = site.site.key;
		const configFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'graceful-')), 'site.json');
		writeFileSync(configFile, JSON.stringify(site));
		const port = await freePort();
		const base = `http://127.0.0.1:${port}`;
		const server = startProcess(configFile, port);
		child = server;
		await waitFor(async () => (await fetch(`${base}/health`)).status > 0, 60_000, 'the receiver to start');

		const acknowledged: string[] = [];
		let stop = false;
		const worker = async (w: number) => {
			for (let i = 0; !stop; i++) {
				const events = [pageview(key, `anon-g${w}`, `/g${w}/${i}`)];
				try {
					const response = await post(`${base}/api/track`, batch(key, events));
					if (response.status === 202) acknowledged.push(events[0].id);
				} catch {
					return;
				}
			}
		};
		const workers = Array.from({ length: 6 }, (_, w) => worker(w));
		await waitFor(() => acknowledged.length >= 100, 60_000, 'load to build up');
		const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
		server.kill('SIGTERM');
		const code = await exited;
		child = undefined;
		stop = true;
		await Promise.all(workers);

		expect(code).toBe(0);
		const siteId = (await prisma.site.findUniqueOrThrow({ where: { key } })).id;
		const stored = new Set((await prisma.visitorEvent.findMany({ where: { siteId }, select: { eventId: true } })).map((row) => row.eventId));
		expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
		await expect(fetch(`${base}/health`)).rejects.toThrow();
	}, 120_000);
});
