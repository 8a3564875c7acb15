import { Router } from 'express';
import { z } from 'zod/v4';

import { deliverySchema, toFieldIssues, WORKFLOW_NAMES, type ReceiverDelivery } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { requireApiKey } from '../auth';
import { foreignSiteField, postSigned, signedHeaders } from '../../lib/signing';
import { embeddedWebhookPath, withTimeout, type EmbeddedDestination } from '../outbox/dispatcher';
import type { ReceiverSettings } from '../settings';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
import { parseJsonBody, readBodyFor, type BodyRoute } from './body';
import { sendProblem } from './problems';

const REQUEST_BODY: BodyRoute = { limitBytes: 256 * 1024, send: 'one JSON object such as {"workflow":"visitor-processor"}, with a payload of at most 256 KB' };

/** What the workflow answered: its status and its JSON, or its text cut to 10,000 characters. */
interface WorkflowAnswer {
	status: number;
	body: unknown;
}

/**
 * Posts the signed delivery where the site's workflows run, as the dispatcher does: the embedded
 * engine in this process when given (the workflow the receiver's own /webhook/<path> enters),
 * else the site's n8n. Throws when nothing answered.
 */
async function sendToWorkflow(site: RegisteredSite, secret: string, url: string, body: string, deliveryId: string, timeoutMs: number, engine: EmbeddedDestination | undefined): Promise<WorkflowAnswer> {
	if (engine) return await withTimeout(engine.deliver(embeddedWebhookPath(url), body, signedHeaders(secret, site.key, body, deliveryId)), timeoutMs);
	const response = await postSigned(url, secret, site.key, body, deliveryId, timeoutMs);
	const text = await response.text();
	try {
		return { status: response.status, body: JSON.parse(text) };
	} catch {
		return { status: response.status, body: text.slice(0, 10_000) };
	}
}

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
 * returns what n8n (or the embedded engine) answered, so a team can check a workflow without a
 * browser. The payload can only be for the key's own site: one naming another is refused, nothing is sent.
 */
export function testWorkflowRouter(context: { prisma: PrismaClient; sites: SiteRegistry; settings: ReceiverSettings; engine?: () => EmbeddedDestination | undefined }): Router {
	const router = Router();
	router.post('/api/test-microworkflow', requireApiKey(context.prisma, 'admin'), readBodyFor('text', REQUEST_BODY), async (req, res) => {
		if (!req.is('application/json')) {
			sendProblem(res, 415, 'unsupported_media_type', `Send the request as JSON, with the header Content-Type: application/json (it came as ${JSON.stringify(String(req.headers['content-type'] ?? 'none').slice(0, 60))})`, {
				issues: [{ field: 'Content-Type', message: 'must be application/json' }],
			});
			return;
		}
		const input = parseJsonBody(typeof req.body === 'string' ? req.body : '', res, REQUEST_BODY.send);
		if (input === undefined) return;
		if (typeof input !== 'object' || input === null || Array.isArray(input)) {
			const message = 'must be a JSON object such as {"workflow":"visitor-processor"}';
			sendProblem(res, 400, 'invalid_payload', `The request is invalid: the body ${message}`, { issues: [{ field: '(root)', message }] });
			return;
		}
		const parsed = requestSchema.safeParse(input);
		if (!parsed.success) {
			const issues = toFieldIssues(parsed.error, input, requestSchema).map(({ field, message }) => ({ field, message }));
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
		const embedded = !site.n8nUrl;
		const engine = embedded ? context.engine?.() : undefined;
		if (embedded && !engine) {
			sendProblem(res, 503, 'engine_not_running', 'This site’s workflows run in the embedded engine, which is not running (DISPATCHER=off), so nothing was sent; start the receiver with DISPATCHER=on, or set integrations.n8nUrl to test on an n8n', {
				workflow: parsed.data.workflow,
			});
			return;
		}
		try {
			const answer = await sendToWorkflow(site, site.webhookSecret, url, body, deliveryId, context.settings.DISPATCH_TIMEOUT_MS, engine);
			const ok = answer.status >= 200 && answer.status < 300;
			res.status(200).json({ workflow: parsed.data.workflow, url, status: answer.status, ok, durationMs: Date.now() - started, response: answer.body });
		} catch (error) {
			const failed = embedded
				? (['engine_failed', `The embedded engine did not answer for ${url}: ${(error as Error).message}`] as const)
				: (['n8n_unreachable', `n8n did not answer at ${url}: ${(error as Error).message}`] as const);
			sendProblem(res, 502, failed[0], failed[1], { workflow: parsed.data.workflow, durationMs: Date.now() - started });
		}
	});
	return router;
}
