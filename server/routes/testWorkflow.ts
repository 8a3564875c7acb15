import express, { Router } from 'express';
import { z } from 'zod/v4';

import { toFieldIssues, WORKFLOW_NAMES } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { requireApiKey } from '../auth';
import { foreignSiteField, postSigned } from '../../lib/signing';
import type { ReceiverSettings } from '../settings';
import type { SiteRegistry } from '../siteRegistry';
import { sendProblem } from './problems';

const requestSchema = z.strictObject({
	workflow: z.enum(WORKFLOW_NAMES),
	/** What to send; without it, a sample in the shape the workflow receives from the outbox. */
	payload: z.record(z.string(), z.unknown()).optional(),
});

function samplePayload(site: string, siteId: string, workflow: string): Record<string, unknown> {
	const now = new Date().toISOString();
	const base = { site, siteId, destination: workflow, deliveryId: `test-${Date.now()}`, sentAt: now, test: true };
	if (workflow === 'lead-processor') {
		return { ...base, events: [], leads: [{ kind: 'lead', eventId: '019a8b6e-0000-7000-8000-00000000beef', lead: { site, email: 'test.lead@example.com', firstName: 'Test', consent: true } }] };
	}
	return {
		...base,
		events: [
			{ id: '019a8b6e-0000-7000-8000-00000000cafe', anonymousId: 'test-visitor', sessionId: 'test-session', type: 'pageview', url: 'https://example.com/', path: '/', title: 'Test', occurredAt: now, receivedAt: now },
		],
		leads: [],
	};
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
		// The delivery carries the site it is signed for, also where the payload left it out.
		const body = JSON.stringify(payload ? { ...payload, site: site.key, siteId: site.id } : samplePayload(site.key, site.id, parsed.data.workflow));
		const started = Date.now();
		try {
			const response = await postSigned(url, site.webhookSecret, site.key, body, `test-${started}`, context.settings.DISPATCH_TIMEOUT_MS);
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
