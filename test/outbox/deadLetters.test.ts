import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { childEnv, runBuilt, waitFor } from '../helpers/builtReceiver';
import { batch, pageview, post } from '../helpers/events';
import { FakeN8n } from '../helpers/fakeN8n';
import { TEST_SECRET } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

/**
 * scripts/dead-letters against a running receiver: deliveries n8n refused until the receiver gave
 * up are sent again by `requeue` once n8n works, each exactly once, or dropped by `discard`. On a
 * database of its own, since /health judges every site's dead letters.
 */
describe('scripts/dead-letters', () => {
	const n8n = new FakeN8n(TEST_SECRET);
	let database = { name: '', url: '' };
	let receiver: Receiver;
	let siteA: ReturnType<typeof testSiteConfig>;
	let siteB: ReturnType<typeof testSiteConfig>;
	const run = (args: string[]) => runBuilt('scripts/dead-letters.js', args, childEnv({ DATABASE_URL: database.url }));
	const outbox = async (siteKey: string) =>
		receiver.db.prisma.$queryRawUnsafe<Array<{ status: string; delivery_id: string; attempts: number; failing_since: Date | null }>>(
			`SELECT o.status::text, o.delivery_id::text, o.attempts, o.failing_since FROM outbox o JOIN sites s ON s.id = o.site_id WHERE s.key = $1 ORDER BY o.id`,
			siteKey,
		);
	const healthStatus = async () => (await fetch(`${receiver.url}/health`)).status;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_dead_letters');
		await n8n.start();
		n8n.mode = 'error500';
		siteA = testSiteConfig({ n8nUrl: n8n.url });
		siteB = testSiteConfig({ n8nUrl: n8n.url });
		receiver = await startReceiver({
			sites: [siteA, siteB],
			database: { url: database.url, migrate: true },
			// Given up after a second of failing, retried every 50 to 200 ms until then.
			settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50, DISPATCH_BACKOFF_BASE_MS: 50, DISPATCH_BACKOFF_MAX_MS: 200, DISPATCH_GIVE_UP_AFTER_MS: 1000 },
			env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
	}, 120_000);

	afterAll(async () => {
		await receiver?.close();
		await n8n.stop();
		if (database.name) await dropTestDatabase(database.name);
	});

	const sent: Record<string, string[]> = {};

	it('leaves deliveries n8n refused for DISPATCH_GIVE_UP_AFTER_MS dead, untried, and the receiver degraded', async () => {
		for (const site of [siteA, siteB]) {
			const key = site.site.key;
			for (const visitor of ['one', 'two', 'three']) {
				const events = [pageview(key, `anon-${visitor}`, '/a'), pageview(key, `anon-${visitor}`, '/b')];
				expect((await post(`${receiver.url}/api/track`, batch(key, events))).status).toBe(202);
				(sent[key] ??= []).push(...events.map((event) => event.id));
			}
		}
		await waitFor(async () => [...(await outbox(siteA.site.key)), ...(await outbox(siteB.site.key))].every((row) => row.status === 'dead'), 20_000, 'every row dead-lettered');
		const rows = await outbox(siteA.site.key);
		expect(rows.every((row) => row.attempts > 1 && row.failing_since !== null)).toBe(true);
		expect(await healthStatus()).toBe(503);

		n8n.mode = 'ok';
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect(n8n.deliveries).toEqual([]);
	});

	it('lists them per site and workflow, with the last error', async () => {
		const listed = await run(['list']);
		expect(listed.code).toBe(0);
		expect(listed.stdout).toMatch(/^\d+ dead-lettered rows:\n/);
		for (const site of [siteA, siteB]) {
			expect(listed.stdout).toMatch(new RegExp(`^  ${site.site.key}  visitor-processor: \\d+ rows? in \\d+ deliver(y|ies), received \\S+.*; last error: n8n answered HTTP 500 for visitor-processor$`, 'm'));
		}
	});

	it('requeue sends one site’s again, once n8n takes them, each event exactly once under its first delivery id; the other site’s stay dead', async () => {
		const keyA = siteA.site.key;
		const before = await outbox(keyA);
		const dryRun = await run(['requeue', '--site', keyA, '--dry-run']);
		expect([dryRun.code, dryRun.stdout]).toEqual([0, expect.stringMatching(new RegExp(`^Would re-queue ${before.length} rows:\\n  ${keyA}  visitor-processor`))]);
		expect((await outbox(keyA)).every((row) => row.status === 'dead')).toBe(true);

		const requeued = await run(['requeue', '--site', keyA]);
		expect([requeued.code, requeued.stderr]).toEqual([0, '']);
		expect(requeued.stdout).toMatch(new RegExp(`^Re-queued ${before.length} rows:\\n  ${keyA}  visitor-processor`));
		await waitFor(async () => (await outbox(keyA)).every((row) => row.status === 'delivered'), 20_000, 'the re-queued rows delivered');
		// Time for a second delivery, were one to go.
		await new Promise((resolve) => setTimeout(resolve, 1000));

		const delivered = n8n.deliveries.filter((delivery) => delivery.signedSite === keyA);
		expect(delivered.flatMap((delivery) => delivery.body.events.map((event) => event.id)).sort()).toEqual([...sent[keyA]].sort());
		expect(new Set(delivered.map((delivery) => delivery.deliveryId))).toEqual(new Set(before.map((row) => row.delivery_id)));
		expect(n8n.deliveries.filter((delivery) => delivery.signedSite !== keyA)).toEqual([]);
		expect((await outbox(siteB.site.key)).every((row) => row.status === 'dead')).toBe(true);
		expect(await healthStatus()).toBe(503);
	});

	it('takes filters it matches nothing with as nothing to do, and refuses usage mistakes', async () => {
		expect(await run(['requeue', '--since', '2999-01-01T00:00:00Z'])).toMatchObject({ code: 0, stdout: 'No dead-lettered deliveries match.\n' });
		expect(await run(['requeue', '--destination', 'lead-processor'])).toMatchObject({ code: 0, stdout: 'No dead-lettered deliveries match.\n' });
		expect(await run(['requeue', '--site', 'no-such-site'])).toMatchObject({ code: 1, stderr: expect.stringContaining('No site "no-such-site" in the database') });
		expect(await run(['requeue', '--destination', 'visitors'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^--destination must be one of visitor-processor, /) });
		expect(await run(['requeue', '--since', 'yesterday'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^--since must be a time in ISO 8601/) });
		expect(await run(['discard'])).toMatchObject({ code: 2, stderr: expect.stringMatching(/^discard deletes for good: name what with --site, --destination or --since, or give --all\./) });
		expect((await outbox(siteB.site.key)).every((row) => row.status === 'dead')).toBe(true);
	});

	it('discard drops the rest for good, and the receiver is healthy again', async () => {
		const keyB = siteB.site.key;
		const rows = (await outbox(keyB)).length;
		expect(await run(['discard', '--site', keyB, '--dry-run'])).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^Would discard ${rows} rows:`)) });
		expect(await outbox(keyB)).toHaveLength(rows);
		expect(await run(['discard', '--site', keyB, '--since', '2000-01-01T00:00:00Z'])).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^Discarded ${rows} rows:`)) });
		expect(await outbox(keyB)).toEqual([]);
		expect(n8n.deliveries.filter((delivery) => delivery.signedSite === keyB)).toEqual([]);
		expect(await healthStatus()).toBe(200);
		expect(await run(['list'])).toMatchObject({ code: 0, stdout: 'No dead-lettered deliveries.\n' });
	});
});
