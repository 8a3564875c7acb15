import type { SqlQueryable } from '@prisma/driver-adapter-utils';
import express, { type Request, type Response, Router } from 'express';
import { rateLimit } from 'express-rate-limit';
import type { z } from 'zod/v4';

import { leadPayloadSchema, toFieldIssues, TRACK_LIMITS, trackBatchSchema } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db';
import { emailHash } from '../../lib/email';
import type { Logger } from '../logger';
import { anonymizeIp, dropReason, isAutomated, toEventRows } from '../ingest/normalize';
import { GroupCommitter, storeThroughAdapter, storeThroughPrisma } from '../ingest/groupCommit';
import { storeLead, type RequestFacts } from '../ingest/store';
import type { ReceiverSettings } from '../settings';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
import { sendJson, sendProblem } from './problems';

interface IngestContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
	settings: ReceiverSettings;
	logger: Logger;
	/** A connection pool of its own for event batches; without one they go through Prisma Client. */
	ingestSql?: SqlQueryable;
}

/**
 * Browsers send batches as text/plain (no CORS preflight) or through sendBeacon; servers send
 * application/json. All are read as text and parsed here, so a malformed body gets our own 400.
 */
const readBody = express.text({ type: () => true, limit: TRACK_LIMITS.maxBatchBytes, defaultCharset: 'utf-8' });

function parseJson(req: Request, res: Response): unknown {
	const text = typeof req.body === 'string' ? req.body : '';
	if (!text.trim()) {
		sendProblem(res, 400, 'empty_body', 'The request body is empty; send the JSON batch as the body');
		return undefined;
	}
	try {
		return JSON.parse(text);
	} catch (error) {
		sendProblem(res, 400, 'invalid_json', `The body is not valid JSON: ${(error as Error).message}`);
		return undefined;
	}
}

function validate<T>(schema: z.ZodType<T>, input: unknown, res: Response, what: string): T | undefined {
	const result = schema.safeParse(input);
	if (result.success) return result.data;
	const issues = toFieldIssues(result.error, input, schema)
		.slice(0, 20)
		.map(({ field, message }) => ({ field, message }));
	sendProblem(res, 400, 'invalid_payload', `The ${what} is invalid: ${issues.map((issue) => `${issue.field} ${issue.message}`).join('; ')}`, { issues });
	return undefined;
}

function siteFor(key: string, req: Request, res: Response, sites: SiteRegistry): RegisteredSite | undefined {
	const site = sites.byPublicKey(key);
	if (!site) {
		sendProblem(res, 400, 'unknown_site', 'No site has this key; use the data-site value of your script tag', { issues: [{ field: 'site', message: 'is not a known site key' }] });
		return undefined;
	}
	const origin = req.headers.origin;
	if (origin && !site.allowedOrigins.has(origin)) {
		sendProblem(res, 403, 'origin_not_allowed', `Origin ${origin.slice(0, 200)} may not send events for this site; add it to tracking.allowedOrigins`);
		return undefined;
	}
	if (origin) {
		res.setHeader('Access-Control-Allow-Origin', origin);
		res.setHeader('Vary', 'Origin');
	}
	return site;
}

function requestFacts(req: Request, settings: ReceiverSettings, userAgent: string | undefined, isBot: boolean): RequestFacts {
	const countryHeader = settings.COUNTRY_HEADER ? req.headers[settings.COUNTRY_HEADER] : undefined;
	const country = typeof countryHeader === 'string' && /^[A-Za-z]{2}$/.test(countryHeader) ? countryHeader.toUpperCase() : null;
	return { userAgent: userAgent?.slice(0, 512) ?? null, ipAnonymized: anonymizeIp(req.ip), country, isBot };
}

export function ingestRouter(context: IngestContext): Router {
	const router = Router();
	const { prisma, sites, settings, logger } = context;
	const committer = new GroupCommitter(context.ingestSql ? storeThroughAdapter(context.ingestSql) : storeThroughPrisma(prisma));

	const perIp = rateLimit({
		windowMs: 60_000,
		limit: settings.RATE_LIMIT_PER_IP,
		// draft-7 headers carry the same limit, remaining and reset as draft-8 without a SHA-256 of
		// the client's key on every request.
		standardHeaders: 'draft-7',
		legacyHeaders: false,
		// Its configuration checks run on every request; the configuration is fixed here, and whether
		// X-Forwarded-For counts is the TRUST_PROXY setting's decision.
		validate: false,
		handler: (_req, res) => sendProblem(res, 429, 'rate_limited', 'Too many requests from this address; retry after the time in the RateLimit header'),
	});
	const perSite = rateLimit({
		windowMs: 60_000,
		limit: settings.RATE_LIMIT_PER_SITE,
		standardHeaders: false,
		legacyHeaders: false,
		keyGenerator: (req) => `site:${(req as Request & { siteKey?: string }).siteKey ?? ''}`,
		validate: false,
		handler: (_req, res) => sendProblem(res, 429, 'rate_limited', 'This site sends more events than its limit; retry later'),
	});

	router.options(['/api/track', '/api/lead'], (req, res) => {
		const origin = req.headers.origin;
		if (origin && sites.isKnownOrigin(origin)) {
			res.setHeader('Access-Control-Allow-Origin', origin);
			res.setHeader('Access-Control-Allow-Methods', 'POST');
			res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
			res.setHeader('Access-Control-Max-Age', '86400');
			res.setHeader('Vary', 'Origin');
		}
		res.status(204).end();
	});

	const storageFailed = (res: Response, error: unknown) => {
		logger.error({ err: error }, 'storing failed');
		res.setHeader('Retry-After', '5');
		sendProblem(res, 503, 'storage_unavailable', 'The events could not be stored right now and were not accepted; retry later');
	};

	router.post(
		'/api/track',
		perIp,
		readBody,
		(req, res, next) => {
			const input = parseJson(req, res);
			if (input === undefined) return;
			const batch = validate(trackBatchSchema, input, res, 'event batch');
			if (!batch) return;
			const site = siteFor(batch.site, req, res, sites);
			if (!site) return;
			Object.assign(req, { siteKey: site.key, batch, site });
			next();
		},
		perSite,
		async (req, res) => {
			const { batch, site } = req as Request & { batch: z.infer<typeof trackBatchSchema>; site: RegisteredSite };
			const reason = dropReason(req.headers, batch, site.config.privacy);
			if (reason) {
				sendJson(res, 202, { stored: 0, duplicates: 0, ignored: batch.events.length, reason });
				return;
			}
			const userAgent = req.headers['user-agent'];
			const isBot = isAutomated(userAgent, batch.events);
			const rows = toEventRows(batch, Date.now());
			const destinations = !isBot && site.endpoints.has('visitor-processor') ? ['visitor-processor'] : [];
			try {
				const result = await committer.store(site.id, rows, requestFacts(req, settings, userAgent, isBot), destinations);
				sendJson(res, 202, isBot ? { stored: result.stored, duplicates: result.duplicates, bot: true } : { stored: result.stored, duplicates: result.duplicates });
			} catch (error) {
				storageFailed(res, error);
			}
		},
	);

	router.post('/api/lead', perIp, readBody, async (req, res) => {
		const input = parseJson(req, res);
		if (input === undefined) return;
		const lead = validate(leadPayloadSchema, input, res, 'lead');
		if (!lead) return;
		const site = siteFor(lead.site, req, res, sites);
		if (!site) return;
		const userAgent = req.headers['user-agent'];
		if (isAutomated(userAgent, [])) {
			sendJson(res, 202, { stored: false, reason: 'automated-client' });
			return;
		}
		const hash = emailHash(lead.email);
		try {
			const erased = await prisma.suppression.findFirst({ where: { siteId: site.id, emailHash: hash, reason: 'erased' }, select: { id: true } });
			if (erased) {
				sendJson(res, 202, { stored: false, reason: 'erased' });
				return;
			}
			const destinations = site.endpoints.has('lead-processor') ? ['lead-processor'] : [];
			const result = await storeLead(prisma, site.id, lead, hash, requestFacts(req, settings, userAgent, false), destinations);
			sendJson(res, 202, { stored: result.stored, duplicate: !result.stored });
		} catch (error) {
			storageFailed(res, error);
		}
	});

	return router;
}
