import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startReceiver, type Receiver } from '../../server/receiver';
import { createLogger } from '../../server/logger';
import { batch, pageview, post } from '../helpers/events';
import { testSiteConfig } from '../helpers/sites';

/** Without DATABASE_URL the receiver runs on the embedded Postgres, and batches go through Prisma Client there. */
describe('receiver ingest on the embedded database', () => {
	const site = testSiteConfig();
	const dataDir = mkdtempSync(path.join(os.tmpdir(), 'embedded-ingest-'));
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startReceiver({
			sites: [site],
			database: { url: null, dataDir },
			settings: { PORT: 0, DISPATCHER: 'off' },
			logger: createLogger({ level: 'silent' }),
		});
	}, 120_000);
	afterAll(async () => {
		await receiver.close();
		rmSync(dataDir, { recursive: true, force: true });
	});

	it('stores a batch with its outbox row once, however often it is sent', async () => {
		const key = site.site.key;
		const body = batch(key, [pageview(key, 'anon-e', '/'), pageview(key, 'anon-e', '/next')]);
		expect(await post(`${receiver.url}/api/track`, body)).toEqual({ status: 202, json: { stored: 2, duplicates: 0 } });
		expect(await post(`${receiver.url}/api/track`, body)).toEqual({ status: 202, json: { stored: 0, duplicates: 2 } });
		const events = await receiver.db.prisma.visitorEvent.findMany({ orderBy: { occurredAt: 'asc' } });
		expect(events.map((event) => [event.path, event.id.charAt(14)])).toEqual([
			['/', '7'],
			['/next', '7'],
		]);
		const outbox = await receiver.db.prisma.outboxMessage.findMany();
		expect(outbox.map((row) => [row.partitionKey, (row.payload as { eventIds: string[] }).eventIds])).toEqual([['anon-e', body.events.map((event) => event.id)]]);
	});
});
