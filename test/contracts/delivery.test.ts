import { readdirSync } from 'node:fs';
import path from 'node:path';

import { deliverySchema, receiverDeliverySchema } from '../../lib/contracts';
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
