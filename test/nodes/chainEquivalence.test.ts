/**
 * The CRM chain's rows for a fixed input stay what they were: the deliveries of
 * test/nodes/chain/traffic.ts (a few thousand events of a couple of hundred visitors over three
 * weeks, two dozen leads, a replayed delivery and late offline events) run one after the other
 * through the bundled workflows in the embedded engine (01 → 02 → 04 and 06, 03 → 05 → 04 and
 * 06), and the sessions with their events, conversions, attribution, activities, leads, score
 * rows, stage moves, tags and businesses they leave must equal test/fixtures/chainEquivalence.json,
 * which holds the rows the chain stored before its nodes went set-based and batched.
 *
 * CHAIN_FIXTURE=write records the fixture anew from this run (only for a deliberate change of
 * what the chain stores; say why in the commit).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { PrismaClient } from '../../lib/db/generated/client';
import { signedHeaders } from '../../lib/signing';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';
import { dumpChain, dumpDifferences, formatDump, type ChainDump } from './chain/dump';
import { CHAIN_SITE, chainInput, chainSiteConfig, type IdentifyEvent } from './chain/traffic';

jest.setTimeout(900_000);

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'chainEquivalence.json');

/** The identify event POST /api/lead stores with a submission (server/ingest/store.ts), at the input's time instead of the clock's. */
async function storeIdentify(prisma: PrismaClient, siteId: string, identify: IdentifyEvent): Promise<void> {
	await prisma.$executeRawUnsafe(
		`INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, type, name, properties, user_agent, country, is_bot, occurred_at, received_at)
		VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, 'identify', $4, $5::jsonb, $6, $7, false, $8::timestamptz, $8::timestamptz)
		ON CONFLICT (site_id, event_id) DO NOTHING`,
		siteId,
		identify.eventId,
		identify.anonymousId,
		identify.formId,
		JSON.stringify({ formId: identify.formId, source: identify.source, consent: identify.consent }),
		identify.userAgent,
		identify.country,
		identify.occurredAt,
	);
}

describe('the CRM chain on a fixed input', () => {
	let database: { name: string; url: string };
	let prisma: PrismaClient;
	let receiver: Receiver;

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_chain');
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: database.url }) });
		receiver = await startReceiver({
			sites: [parseSiteConfig(chainSiteConfig)],
			database: { url: database.url },
			settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50, DISPATCH_TIMEOUT_MS: 120_000 },
			env: {},
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
	});

	afterAll(async () => {
		await receiver?.close();
		await prisma?.$disconnect();
		if (database) await dropTestDatabase(database.name);
	});

	it('stores the sessions, conversions, attribution, activities, leads and scores it stored before', async () => {
		const input = chainInput();
		const site = receiver.sites.byPublicKey(CHAIN_SITE)!;
		const engine = receiver.engine!;
		for (const step of input.steps) {
			if (step.workflow === 'crm-lead-processor') await storeIdentify(prisma, site.id, step.identify);
			const delivery = { ...step.delivery, siteId: site.id, sentAt: new Date().toISOString() };
			const body = JSON.stringify(delivery);
			const answer = await engine.deliver(step.workflow, body, signedHeaders(site.webhookSecret!, CHAIN_SITE, body, delivery.deliveryId));
			if (answer.status !== 200) throw new Error(`delivery ${delivery.deliveryId} to ${step.workflow} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
		}
		const dump = await dumpChain(prisma, site.id, input.eventIds);
		// The input reaches every part of the chain, so an empty section would compare nothing.
		for (const section of ['sessions', 'conversions', 'attribution', 'activities', 'leads', 'leadScores', 'stageChanges', 'leadTags', 'businesses'] as const) {
			expect([section, dump[section].length > 0]).toEqual([section, true]);
		}

		if (process.env.CHAIN_FIXTURE === 'write') {
			writeFileSync(FIXTURE, formatDump(dump));
			return;
		}
		const expected = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ChainDump;
		expect(dumpDifferences(dump, expected)).toEqual([]);
	});
});
