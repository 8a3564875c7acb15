import express, { Router } from 'express';
import { z } from 'zod/v4';

import { deliverySchema, toFieldIssues, WORKFLOW_NAMES, type ReceiverDelivery } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { requireApiKey } from '../auth';
import { foreignSiteField, postSigned } from '../../lib/signing';
import type { ReceiverSettings } from '../settings';
import type { SiteRegistry } from '../siteRegistry';
import { sendProblem } from './problems';

export const requestSchema = z.strictObject({
	workflow: z.enum(WORKFLOW_NAMES),
	/** What to send; without it, a sample in the shape the workflow receives from the outbox. */
	payload: z.record(z.string(), z.unknown()).optional(),
});

type Envelope = Pick<ReceiverDelivery, 'site' | 'siteId' | 'destination' | 'deliveryId' | 'sentAt'>;

/** A sample in the shape the workflow receives from the outbox (lib/contracts/delivery.ts). */
function sampleDelivery(envelope: Envelope): ReceiverDelivery {
	const at = envelope.sentAt;
	if (envelope.destination === 'lead-processor') {
		const lead = { kind: 'lead' as const, eventId: '019a8b6e-0000-7000-8000-00000000beef', emailHash: 'test', country: null, receivedAt: at, lead: { site: envelope.site, email: 'test.lead@example.com', firstName: 'Test', consent: true } };
		return { ...envelope, events: [], leads: [lead], emailEvents: [] };
	}
	const event = {
		id: '019a8b6e-0000-7000-8000-00000000cafe',
		anonymousId: 'test-visitor',
		sessionId: 'test-session',
		type: 'pageview' as const,
		name: null,
		url: 'https://example.com/',
		path: '/',
		title: 'Test',
		referrer: null,
		relevance: null,
		props: null,
		context: null,
		userAgent: null,
		country: null,
		occurredAt: at,
		receivedAt: at,
	};
	return { ...envelope, events: [event], leads: [], emailEvents: [] };
}

/**
 * What the route sends: the payload with the envelope of a delivery where it left parts of it out
 * (the workflow as destination, the request's delivery id, the time), and always the key's site;
 * without a payload, a sample.
 */
export function testDelivery(payload: Record<string, unknown> | undefined, envelope: Envelope): Record<string, unknown> {
	return payload ? { ...envelope, ...payload, site: envelope.site, siteId: envelope.siteId } : sampleDelivery(envelope);
}

/**
 * `POST /api/test-microworkflow`: sends one signed payload to one workflow of the key's site and
 * returns what n8n answered, so a team can check a workflow without a browser. The payload can
 * only be for the key's own site: one naming another is refused, nothing is sent.
 */
export function testWorkflowRouter(context: { prisma: PrismaClient; sites: SiteRegistry; settings: ReceiverSettings }): Router {
	const router = Router();
	router.post('/api/test-microworkflow', requireApiKey(context.prisma, 'admin'), express.json({ limit: '256kb' }), async (req, res) => {
		const parsed = requestSchema.safeParse(req.body);
		if (!parsed.success) {
			const issues = toFieldIssues(parsed.error, req.body, requestSchema).map(({ field, message }) => ({ field, message }));
			sendProblem(res, 400, 'invalid_payload', `The request is invalid: ${issues.map((issue) => `${issue.field} ${issue.message}`).join('; ')}`, { issues });
			return;
		}
		const site = context.sites.byDatabaseId(req.auth!.siteId);
		const url = site?.endpoints.get(parsed.data.workflow);
		if (!site || !url) {
			sendProblem(res, 400, 'workflow_not_configured', `This site has no webhook for ${parsed.data.workflow}; add it to integrations.webhookEndpoints`);
			return;
		}
		if (!site.webhookSecret) {
			sendProblem(res, 409, 'secret_missing', `Set ${site.config.integrations.webhookSecretEnv} so requests to n8n can be signed`);
			return;
		}
		const { payload } = parsed.data;
		const foreign = payload && foreignSiteField(payload, site.key, site.id);
		if (foreign) {
			const field = `payload.${foreign}`;
			const message = `must be "${foreign.endsWith('siteId') ? site.id : site.key}" or left out: this key sends for site ${site.key} only`;
			sendProblem(res, 400, 'site_mismatch', `The request is invalid: ${field} ${message}`, { issues: [{ field, message }] });
			return;
		}
		const started = Date.now();
		const deliveryId = `test-${started}`;
		const delivery = testDelivery(payload, { site: site.key, siteId: site.id, destination: parsed.data.workflow, deliveryId, sentAt: new Date(started).toISOString() });
		// What the trigger would refuse is refused here, naming the payload's field.
		const checked = deliverySchema.safeParse(delivery);
		if (!checked.success) {
			const issues = toFieldIssues(checked.error, delivery, deliverySchema).map(({ field, message }) => ({ field: `payload.${field}`, message }));
			sendProblem(res, 400, 'invalid_payload', `The payload is no delivery the trigger accepts: ${issues.map((issue) => `${issue.field} ${issue.message}`).join('; ')}`, { issues });
			return;
		}
		const body = JSON.stringify(delivery);
		try {
			const response = await postSigned(url, site.webhookSecret, site.key, body, deliveryId, context.settings.DISPATCH_TIMEOUT_MS);
			const text = await response.text();
			let answer: unknown = text;
			try {
				answer = JSON.parse(text);
			} catch {
				answer = text.slice(0, 10_000);
			}
			res.status(200).json({ workflow: parsed.data.workflow, url, status: response.status, ok: response.ok, durationMs: Date.now() - started, response: answer });
		} catch (error) {
			sendProblem(res, 502, 'n8n_unreachable', `n8n did not answer at ${url}: ${(error as Error).message}`, { workflow: parsed.data.workflow, durationMs: Date.now() - started });
		}
	});
	return router;
}
