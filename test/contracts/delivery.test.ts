import { readdirSync } from 'node:fs';
import path from 'node:path';

import { deliveredEventSchema, deliverySchema, eventItemSchema, EARLIEST_EVENT_TIME, receiverDeliverySchema, trackBatchSchema, TRACK_LIMITS } from '../../lib/contracts';
import { toEventRows } from '../../server/ingest/normalize';
import { testDelivery } from '../../server/routes/testWorkflow';
import { PAYLOADS_DIR, readPayload } from '../../scripts/workflowTools';

const payloads = readdirSync(PAYLOADS_DIR).filter((file) => file.endsWith('.json'));
const envelope = (destination: string) => ({ site: 'site-x', siteId: '019aa000-0000-7000-8000-0000000000ff', destination, deliveryId: 'test-1', sentAt: '2026-11-20T09:05:00.000Z' });

describe('the test payloads and the delivery contract', () => {
	it('there is one per bundled workflow', () => {
		expect(payloads.length).toBeGreaterThanOrEqual(6);
	});

	it.each(payloads)('%s parses as the trigger reads it, sent by scripts/n8n-node-tester and by /api/test-microworkflow', (file) => {
		const parsed = deliverySchema.safeParse(readPayload(file, 'site-x'));
		expect(parsed.error?.issues ?? []).toEqual([]);
		const sent = deliverySchema.safeParse(testDelivery(readPayload(path.join(PAYLOADS_DIR, file)), envelope(file)));
		expect(sent.error?.issues ?? []).toEqual([]);
	});

	it.each(payloads.filter((file) => !('items' in readPayload(file))))('%s is a delivery as the receiver sends it, every field present', (file) => {
		const parsed = receiverDeliverySchema.safeParse({ emailEvents: [], events: [], leads: [], ...testDelivery(readPayload(file, 'site-x'), envelope(file)) });
		expect(parsed.error?.issues ?? []).toEqual([]);
	});

	it.each(['visitor-processor', 'lead-processor'])('the sample /api/test-microworkflow sends to %s is a receiver delivery', (workflow) => {
		const parsed = receiverDeliverySchema.safeParse(testDelivery(undefined, { ...envelope(workflow), site: 'site-x' }));
		expect(parsed.error?.issues ?? []).toEqual([]);
	});
});

describe('the delivered event contract', () => {
	const EVENT = { id: '019aa000-0000-7000-8000-000000000001', anonymousId: 'anon', type: 'pageview', occurredAt: '2026-11-20T09:00:00.000Z' };
	const long = (length: number, unit = 'a') => unit.repeat(length);

	it('takes every event the receiver stores from the longest batch the tracking contract allows, unchanged', () => {
		const props = Object.fromEntries(Array.from({ length: TRACK_LIMITS.maxPropertyKeys }, (_, n) => [`${long(97)}${String(n).padStart(3, '0')}`, long(TRACK_LIMITS.maxPropertyValueLength, 'é')]));
		const url = `https://shop.example/${long(TRACK_LIMITS.maxUrlLength - 21, '%')}`.replace(/%/g, 'a');
		const event = (type: string, n: number) => ({
			id: `019aa000-0000-7000-8000-00000000000${n}`,
			type,
			name: long(100, 'n'),
			ts: EARLIEST_EVENT_TIME,
			anonymousId: long(TRACK_LIMITS.maxIdLength, 'v'),
			sessionId: long(TRACK_LIMITS.maxIdLength, 's'),
			url,
			title: long(256, '😀'),
			referrer: `https://ref.example/${long(2000)}`,
			relevance: 10,
			props,
			context: { utm_source: long(200), clickIds: { gclid: long(500) }, screen: long(20), language: long(35), timezone: long(64), automation: true },
		});
		const batch = trackBatchSchema.parse({ site: 'site-x', events: [event('pageview', 1), event('session_end', 2)] });
		const rows = toEventRows(batch, Date.now(), { engagementThresholds: { medium: 30, high: 60 } });
		expect(Object.keys(rows[1].properties ?? {}).length).toBeGreaterThan(TRACK_LIMITS.maxPropertyKeys);
		for (const row of rows) {
			const delivered = {
				id: row.event_id,
				anonymousId: row.anonymous_id,
				sessionId: row.session_key,
				type: row.type,
				name: row.name,
				url: row.url,
				path: row.path,
				title: row.title,
				referrer: row.referrer,
				relevance: row.relevance,
				props: row.properties,
				context: row.context,
				userAgent: long(512, 'u'),
				country: 'DE',
				occurredAt: row.occurred_at,
				receivedAt: new Date().toISOString(),
			};
			const parsed = deliveredEventSchema.safeParse(delivered);
			expect(parsed.error?.issues ?? []).toEqual([]);
			expect(parsed.data).toEqual(delivered);
		}
	});

	it.each([
		['a NUL in a title', { title: 'bad\u0000title' }, { title: 'badtitle' }],
		['a title past the tracking contract’s length', { title: long(600) }, { title: long(512) }],
		['a path Postgres could not index', { path: `/${long(3000, '一')}` }, { path: `/${long(682, '一')}` }],
		['NUL and half characters in keys and values of properties, at any depth', { props: { 'k\u0000': ['\ud800', { deep: 'a\u0000b' }] } }, { props: { k: ['\ufffd', { deep: 'ab' }] } }],
		['a half character in the context', { context: { utm_source: 'x\udc00' } }, { context: { utm_source: 'x\ufffd' } }],
		['a half character in the anonymous id', { anonymousId: 'a\ud800' }, { anonymousId: 'a\ufffd' }],
	])('cleans %s', (_, fields, cleaned) => {
		expect(eventItemSchema.parse({ ...EVENT, ...fields })).toEqual({ ...EVENT, ...cleaned });
	});

	it.each([
		['a NUL in the anonymous id', { anonymousId: 'a\u0000b' }, 'anonymousId', 'must not contain control characters'],
		['an anonymous id past the tracking contract’s length', { anonymousId: long(65) }, 'anonymousId', 'must be at most 64 characters'],
		['a session id past it', { sessionId: long(8192) }, 'sessionId', 'must be at most 64 characters'],
		['a time past the year 9999', { occurredAt: '+275000-01-01T00:00:00Z' }, 'occurredAt', 'must be an ISO 8601 time from the year 1900 to 9999, such as 2026-11-20T09:00:00.000Z'],
		['a time before 1900', { occurredAt: '1899-12-31T23:59:59Z' }, 'occurredAt', 'must be an ISO 8601 time from the year 1900 to 9999, such as 2026-11-20T09:00:00.000Z'],
		['a relevance out of the tracking contract’s range', { relevance: 2 ** 31 }, 'relevance', 'Too big: expected number to be <=10'],
	])('refuses %s, naming the field', (_, fields, field, message) => {
		const parsed = eventItemSchema.safeParse({ ...EVENT, ...fields });
		expect(parsed.error?.issues.map((issue) => [issue.path.join('.'), issue.message])).toEqual([[field, message]]);
	});
});
