import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Client } from 'pg';
import pino from 'pino';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig } from '../../lib/contracts';
import { createApiKey } from '../../server/auth';
import { discardDeadLetters } from '../../server/outbox/deadLetters';
import { startReceiver, type Receiver } from '../../server/receiver';
import { batch, pageview, post } from '../helpers/events';
import { adminUrl, createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

/**
 * GET /health on a database of its own, so its status depends on this file alone: anyone learns
 * ok or degraded, an admin key of a site learns that site's details and nothing of the others.
 */

const ROOT = path.resolve(__dirname, '..', '..');

/** A stand-in for a site's n8n, which /health only needs to reach; a port to listen on again after a stop. */
async function listen(port = 0): Promise<{ server: Server; url: string }> {
	const server = createServer((req, res) => {
		req.resume();
		req.on('end', () => res.writeHead(200).end('{}'));
	});
	await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
	return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function siteConfig(key: string, n8nUrl: string): SiteConfig {
	return parseSiteConfig({
		site: { key, name: key, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false },
		integrations: { n8nUrl, webhookSecretEnv: 'HEALTH_WEBHOOK_SECRET', webhookEndpoints: [{ workflow: 'visitor-processor', url: '/webhook/visitor' }] },
	});
}

async function health(url: string, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers; text: string }> {
	const response = await fetch(`${url}/health`, { headers });
	const text = await response.text();
	return { status: response.status, json: JSON.parse(text), headers: response.headers, text };
}

/** Runs the built scripts/health-check (dist/, as an operator runs it). */
function healthCheck(args: string[], env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, [path.join(ROOT, 'dist', 'scripts', 'health-check.js'), ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
		});
	});
}

describe('GET /health', () => {
	let database = { name: '', url: '' };
	let receiver: Receiver;
	const n8n: Record<'a' | 'b', { server: Server; url: string }> = {} as never;
	const keyA = `health-a-${randomUUID().slice(0, 8)}`;
	const keyB = `health-b-${randomUUID().slice(0, 8)}`;
	const keys = { adminA: '', readA: '', adminB: '' };
	/** The receiver's log, as JSON lines. */
	const logged: Array<Record<string, any>> = [];
	/** An undelivered row of a site, with the error its webhook gave. */
	const row = (siteId: string, status: 'pending' | 'dead', lastError: string, ageSeconds: number) =>
		receiver.db.prisma.$executeRawUnsafe(
			`INSERT INTO outbox (site_id, destination, partition_key, payload, status, attempts, next_attempt_at, last_error, created_at, delivery_id)
			VALUES ($1::uuid, 'visitor-processor', 'anon', '{}'::jsonb, $2::outbox_status, 1, now(), $3, now() - $4::int * interval '1 second', gen_random_uuid())`,
			siteId,
			status,
			lastError,
			ageSeconds,
		);

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_health');
		n8n.a = await listen();
		n8n.b = await listen();
		receiver = await startReceiver({
			sites: [siteConfig(keyA, n8n.a.url), siteConfig(keyB, n8n.b.url)],
			database: { url: database.url, migrate: true },
			settings: { PORT: 0, DISPATCHER: 'off' },
			env: { HEALTH_WEBHOOK_SECRET: 'health-webhook-secret-0123456789abcdef' },
			logger: pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line)) }),
		});
		const [a, b] = [receiver.sites.byPublicKey(keyA)!, receiver.sites.byPublicKey(keyB)!];
		keys.adminA = await createApiKey(receiver.db.prisma, a.id, 'admin', 'ops a');
		keys.readA = await createApiKey(receiver.db.prisma, a.id, 'read', 'dashboard a');
		keys.adminB = await createApiKey(receiver.db.prisma, b.id, 'admin', 'ops b');
		// Undelivered rows of both sites, each with the error its webhook gave.
		await row(a.id, 'pending', `n8n answered 500 at ${n8n.a.url}/webhook/visitor`, 30);
		await row(b.id, 'pending', `n8n answered 401 at ${n8n.b.url}/webhook/visitor?secret-of-b`, 20);
		await row(b.id, 'pending', `n8n answered 401 at ${n8n.b.url}/webhook/visitor?secret-of-b`, 10);
	}, 120_000);

	afterAll(async () => {
		await receiver?.close();
		for (const target of Object.values(n8n)) await new Promise((resolve) => target.server.close(resolve));
		if (database.name) await dropTestDatabase(database.name);
	});

	it('tells anyone only whether the receiver is up, and nothing a stranger could use', async () => {
		const { status, json, headers, text } = await health(receiver.url);
		expect(status).toBe(200);
		expect(json).toEqual({ status: 'ok', version: expect.any(String), engine: 'n8n' });
		expect(headers.get('cache-control')).toBe('no-store');
		for (const secret of [keyA, keyB, n8n.a.url, n8n.b.url, 'outbox', 'dispatcher', 'pending']) expect(text).not.toContain(secret);
	});

	it("gives an admin key its own site's details: database, outbox, deliveries, n8n", async () => {
		for (const headers of [{ authorization: `Bearer ${keys.adminA}` }, { 'x-api-key': keys.adminA }] as Array<Record<string, string>>) {
			const { status, json, text } = await health(receiver.url, headers);
			expect(status).toBe(200);
			expect(json).toEqual({
				status: 'ok',
				version: expect.any(String),
				engine: 'n8n',
				site: { key: keyA, forwarding: ['visitor-processor'], signed: true },
				database: { ok: true, kind: 'postgres', latencyMs: expect.any(Number) },
				outbox: { pending: 1, dead: 0, oldestPendingAgeSeconds: expect.any(Number), lastError: `n8n answered 500 at ${n8n.a.url}/webhook/visitor`, maxHealthyLagSeconds: 300 },
				dispatcher: { enabled: false, lastSuccessAt: null },
				n8n: [{ url: n8n.a.url, ok: true }],
			});
			expect(json.outbox.oldestPendingAgeSeconds).toBeGreaterThanOrEqual(29);
			// Nothing of site B: not its key, its webhooks, its rows or its delivery errors.
			for (const other of [keyB, n8n.b.url, 'secret-of-b', keys.adminB]) expect(text).not.toContain(other);
		}
		const b = await health(receiver.url, { authorization: `Bearer ${keys.adminB}` });
		expect(b.json).toMatchObject({ site: { key: keyB }, outbox: { pending: 2, dead: 0, lastError: expect.stringContaining('secret-of-b') }, n8n: [{ url: n8n.b.url, ok: true }] });
		expect(b.text).not.toContain(keyA);
	});

	it('refuses a key that is not an admin key of a site, naming the header, and never answers a 5xx to odd bytes', async () => {
		expect(await health(receiver.url, { authorization: `Bearer ${keys.readA}` })).toMatchObject({
			status: 403,
			json: { error: 'admin_key_required', issues: [{ field: 'Authorization', message: 'is a read key; use an admin key' }] },
		});
		for (const headers of [
			{ authorization: 'Bearer tcrm_admin_not-a-real-key-at-all' },
			{ 'x-api-key': `${keys.adminA}x` },
			{ authorization: `Bearer ${'ÿ'.repeat(64)}` },
			{ authorization: `Bearer tcrm_admin_${'é'.repeat(40)}` },
			{ 'x-api-key': 'x'.repeat(8000) },
		] as Array<Record<string, string>>) {
			const answer = await health(receiver.url, headers);
			expect([answer.status, answer.json.error, answer.json.issues[0].field]).toEqual([401, 'invalid_api_key', 'x-api-key' in headers ? 'X-API-Key' : 'Authorization']);
			expect(answer.text).not.toContain(keyA);
		}
	});

	it('says degraded while dead-lettered rows wait for a decision: to their site’s admin how many and the commands, to others nothing of them', async () => {
		const a = receiver.sites.byPublicKey(keyA)!;
		await row(a.id, 'dead', `n8n answered 500 at ${n8n.a.url}/webhook/visitor`, 40);
		await row(a.id, 'dead', `n8n answered 500 at ${n8n.a.url}/webhook/visitor`, 35);
		try {
			const anyone = await health(receiver.url);
			expect([anyone.status, anyone.json]).toEqual([503, { status: 'degraded', version: expect.any(String), engine: 'n8n' }]);
			const admin = await health(receiver.url, { authorization: `Bearer ${keys.adminA}` });
			expect([admin.status, admin.json.status, admin.json.outbox]).toEqual([
				503,
				'degraded',
				{
					pending: 1,
					dead: 2,
					oldestPendingAgeSeconds: expect.any(Number),
					lastError: expect.stringContaining('n8n answered 500'),
					maxHealthyLagSeconds: 300,
					action: `2 dead-lettered rows wait for a decision: once the cause in lastError is fixed, send them again with scripts/dead-letters requeue --site ${keyA}, or drop them with scripts/dead-letters discard --site ${keyA} (scripts/dead-letters list shows them)`,
				},
			]);
			const other = await health(receiver.url, { authorization: `Bearer ${keys.adminB}` });
			expect([other.status, other.json.outbox.dead, other.json.outbox.action]).toEqual([503, 0, undefined]);
			expect(other.text).not.toContain(keyA);
		} finally {
			await discardDeadLetters(receiver.db.sql, { siteId: a.id });
		}
		expect((await health(receiver.url)).status).toBe(200);
	});

	it("says degraded when a site's n8n is unreachable, to a stranger without saying which", async () => {
		await new Promise((resolve) => n8n.b.server.close(resolve));
		try {
			const anyone = await health(receiver.url);
			expect([anyone.status, anyone.json]).toEqual([503, { status: 'degraded', version: expect.any(String), engine: 'n8n' }]);
			expect(anyone.text).not.toContain(n8n.b.url);
			// Site A's admin learns the receiver is degraded, but sees only its own n8n, which is fine.
			const a = await health(receiver.url, { authorization: `Bearer ${keys.adminA}` });
			expect([a.status, a.json.status, a.json.n8n]).toEqual([503, 'degraded', [{ url: n8n.a.url, ok: true }]]);
			const b = await health(receiver.url, { authorization: `Bearer ${keys.adminB}` });
			expect(b.json.n8n).toEqual([{ url: n8n.b.url, ok: false, error: expect.any(String) }]);
		} finally {
			n8n.b = await listen(Number(new URL(n8n.b.url).port));
		}
	});

	it('scripts/health-check prints the status without a key and the site details with one (CRM_API_KEY or --api-key)', async () => {
		const skip = ['--skip', 'database,n8n,workflows', '--receiver', receiver.url];
		const plain = await healthCheck(skip);
		expect(plain).toEqual({ code: 0, output: expect.stringMatching(/^ok +receiver +\S+\/health → 200 ok \(give --api-key for the site details\)\n$/) });
		const detailed = await healthCheck(skip, { CRM_API_KEY: keys.adminA });
		expect(detailed.code).toBe(0);
		expect(detailed.output).toMatch(/→ 200 ok; database ok \(postgres\); outbox 1 pending, 0 dead, oldest \d+ s, last error: n8n answered 500 at .*; n8n http:\/\/127\.0\.0\.1:\d+ reachable/);
		expect(detailed.output).not.toContain(keyB);
		const refused = await healthCheck([...skip, '--api-key', 'tcrm_admin_wrong-key-0123456789']);
		expect(refused).toEqual({ code: 1, output: expect.stringMatching(/^FAIL +receiver +\S+\/health → 401 invalid_api_key: The API key is not valid/) });
		expect((await healthCheck(['--help'])).output).toMatch(/--api-key <key> +an admin key of a site \(env CRM_API_KEY/);
	});

	it('answers 503 with Retry-After, never a 500, when the database is away; /health with a key says so in its own shape', async () => {
		const admin = new Client({ connectionString: adminUrl() });
		await admin.connect();
		try {
			await admin.query(`ALTER DATABASE "${database.name}" WITH ALLOW_CONNECTIONS false`);
			await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database.name]);
			const anyone = await health(receiver.url);
			expect([anyone.status, anyone.json]).toEqual([503, { status: 'degraded', version: expect.any(String), engine: 'n8n' }]);
			for (const [route, key] of [
				['/api/stats', keys.readA],
				['/api/analytics/visitors', keys.readA],
				['/api/privacy/export?email=a@b.example', keys.adminA],
			]) {
				const response = await fetch(`${receiver.url}${route}`, { headers: { authorization: `Bearer ${key}` } });
				expect([route, response.status, response.headers.get('retry-after'), (await response.json()).error]).toEqual([route, 503, '5', 'storage_unavailable']);
			}
			const withKey = await health(receiver.url, { authorization: `Bearer ${keys.adminA}` });
			expect([withKey.status, withKey.json]).toEqual([
				503,
				{
					status: 'degraded',
					version: expect.any(String),
					engine: 'n8n',
					database: { ok: false, kind: 'postgres' },
					message: 'The database did not answer, so the API key could not be checked: the site’s details come back with the database',
				},
			]);
			expect(withKey.text).not.toContain(keyA);
		} finally {
			await admin.query(`ALTER DATABASE "${database.name}" WITH ALLOW_CONNECTIONS true`);
			await admin.end();
		}
	});

	it('logs a database outage once with its stack and the fix, not once per request, and logs its end', async () => {
		const site = receiver.sites.byPublicKey(keyA)!.config;
		const track = () => post(`${receiver.url}/api/track`, batch(keyA, [pageview(keyA, `anon-${randomUUID()}`)]), { origin: site.tracking.allowedOrigins[0] });
		const admin = new Client({ connectionString: adminUrl() });
		await admin.connect();
		// The outage of the test before ends with an answer of the database.
		expect((await health(receiver.url)).status).toBe(200);
		logged.length = 0;
		try {
			await admin.query(`ALTER DATABASE "${database.name}" WITH ALLOW_CONNECTIONS false`);
			await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [database.name]);
			const refused = await Promise.all(Array.from({ length: 40 }, track));
			expect(refused.map((answer) => [answer.status, answer.json.error])).toEqual(Array.from({ length: 40 }, () => [503, 'storage_unavailable']));
		} finally {
			await admin.query(`ALTER DATABASE "${database.name}" WITH ALLOW_CONNECTIONS true`);
			await admin.end();
		}
		expect((await track()).status).toBe(202);

		const failures = logged.filter((line) => line.level >= 50);
		expect(failures).toHaveLength(1);
		expect(failures[0]).toMatchObject({
			msg: expect.stringMatching(/^the database failed: check that Postgres at 127\.0\.0\.1:5432\/\S+ runs and accepts connections \(DATABASE_URL\)\. Meanwhile requests are answered 503 with Retry-After/),
			err: { stack: expect.any(String) },
		});
		const recovered = logged.filter((line) => line.msg.startsWith('the database works again'));
		expect(recovered).toEqual([expect.objectContaining({ level: 30, failures: 40 })]);
	});
});
