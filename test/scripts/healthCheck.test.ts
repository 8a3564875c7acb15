/**
 * scripts/health-check, built and run as an operator runs it, against real receivers: on the
 * default setup, where the embedded engine runs the workflows, n8n's checks do not apply and are
 * skipped, saying why; beside a site that forwards to n8n they apply again. A check that did not
 * run says "skipped", never ok; a mistyped URL is called one.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

const ROOT = path.resolve(__dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Nothing listens here: an n8n check that runs fails. */
const NO_N8N = 'http://127.0.0.1:9';

function healthCheck(args: string[]): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'health-check.js'), ...args], { env: { PATH: process.env.PATH }, timeout: 60_000 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
		});
	});
}

const site = (key: string, n8nUrl?: string) =>
	parseSiteConfig({
		site: { key, name: key, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false },
		...(n8nUrl ? { integrations: { n8nUrl, webhookSecretEnv: 'HEALTH_CHECK_SECRET', webhookEndpoints: [{ workflow: 'visitor-processor', url: '/webhook/visitor' }] } } : {}),
	});

describe('scripts/health-check', () => {
	let database = { name: '', url: '' };
	const receivers: Record<'embedded' | 'mixed', Receiver> = {} as never;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_health_check');
		const start = (sites: ReturnType<typeof site>[], migrate: boolean) =>
			startReceiver({
				sites,
				database: { url: database.url, migrate },
				settings: { PORT: 0, DISPATCHER: 'off' },
				env: { HEALTH_CHECK_SECRET: 'health-check-secret-0123456789abcdef' },
				logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
			});
		receivers.embedded = await start([site('hc-embedded')], true);
		receivers.mixed = await start([site('hc-embedded'), site('hc-forwarding', NO_N8N)], false);
	}, 120_000);

	afterAll(async () => {
		for (const receiver of Object.values(receivers)) await receiver?.close();
		if (database.name) await dropTestDatabase(database.name);
	});

	it('skips n8n and its webhooks where the embedded engine runs the workflows, and passes', async () => {
		const result = await healthCheck(['--receiver', receivers.embedded.url, '--n8n', NO_N8N]);
		const lines = result.output.trim().split('\n');
		expect([result.code, lines.length]).toEqual([0, 9]);
		expect(lines[0]).toMatch(/^skipped {2}database +no DATABASE_URL/);
		expect(lines[1]).toMatch(/^ok {7}receiver +\S+\/health → 200 ok/);
		for (const line of lines.slice(2)) expect(line).toMatch(/^skipped {2}(n8n|0\d \S+) +the receiver forwards to no n8n \(its \/health: engine "embedded n8n engine \(not running: DISPATCHER=off\)"\)$/);
		expect(result.output).not.toContain('FAIL');

		const json = await healthCheck(['--receiver', receivers.embedded.url, '--n8n', NO_N8N, '--skip', 'workflows', '--json']);
		expect(JSON.parse(json.output)).toEqual([
			{ name: 'database', status: 'skipped', detail: expect.any(String) },
			{ name: 'receiver', status: 'ok', detail: expect.any(String) },
			{ name: 'n8n', status: 'skipped', detail: expect.any(String) },
		]);
	});

	it('checks n8n where a site forwards to it', async () => {
		const result = await healthCheck(['--receiver', receivers.mixed.url, '--n8n', NO_N8N, '--skip', 'database,workflows']);
		expect(result.code).toBe(1);
		expect(result.output).toMatch(/^FAIL {5}n8n +http:\/\/127\.0\.0\.1:9 not reachable/m);
	});

	it('fails a receiver that runs another version than the one expected', async () => {
		const skip = ['--skip', 'database,n8n,workflows', '--receiver', receivers.embedded.url];
		expect((await healthCheck([...skip, '--expect-version', VERSION])).code).toBe(0);
		const other = await healthCheck([...skip, '--expect-version', '9.9.9']);
		expect(other).toEqual({ code: 1, output: expect.stringMatching(new RegExp(`^FAIL +receiver +\\S+/health → 200 ok; it runs version ${VERSION.replace(/\./g, '\\.')}, not 9\\.9\\.9 \\(--expect-version\\)\\n$`)) });
	});

	it('says a URL is not valid before asking anything', async () => {
		for (const [args, message] of [
			[['--receiver', 'notaurl'], '--receiver (RECEIVER_URL) "notaurl" is not a valid URL; expected e.g. http://127.0.0.1:3000'],
			[['--n8n', 'ftp://n8n.example'], '--n8n (N8N_URL) "ftp://n8n.example" is not a valid URL'],
		] as const) {
			const result = await healthCheck([...args]);
			expect([result.code, result.output]).toEqual([2, expect.stringContaining(message)]);
			expect(result.output).not.toContain('not reachable');
		}
	});
});
