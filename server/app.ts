import type { SqlQueryable } from '@prisma/driver-adapter-utils';
import express, { type ErrorRequestHandler, type Express } from 'express';
import helmet from 'helmet';

import type { Database } from '../lib/db';
import type { Logger } from './logger';
import { outboxLag, type OutboxDispatcher } from './outbox/dispatcher';
import { analyticsRouter } from './routes/analytics';
import { demoRouter } from './routes/demo';
import { emailRouter } from './routes/email';
import { ingestRouter } from './routes/ingest';
import { testWorkflowRouter } from './routes/testWorkflow';
import { trackerRouter } from './routes/tracker';
import { privacyRouter } from './routes/privacy';
import { requestLog } from './requestLog';
import { sendProblem } from './routes/problems';
import { trustProxyValue, type ReceiverSettings } from './settings';
import type { SiteRegistry } from './siteRegistry';

export interface AppContext {
	db: Database;
	sites: SiteRegistry;
	settings: ReceiverSettings;
	logger: Logger;
	dispatcher?: OutboxDispatcher;
	version: string;
	/** See IngestContext.ingestSql. */
	ingestSql?: SqlQueryable;
}

/** Outbox rows older than this mean n8n is not keeping up (or not reachable): the receiver is degraded. */
const MAX_HEALTHY_LAG_SECONDS = 300;

async function n8nReachable(urls: string[]): Promise<{ url: string; ok: boolean; error?: string }[]> {
	return Promise.all(
		urls.map(async (url) => {
			try {
				await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(2000) });
				return { url, ok: true };
			} catch (error) {
				return { url, ok: false, error: (error as Error).message };
			}
		}),
	);
}

export function createApp(context: AppContext): Express {
	const { db, sites, settings, logger } = context;
	const app = express();
	app.disable('x-powered-by');
	app.set('trust proxy', trustProxyValue(settings.TRUST_PROXY));
	app.use(requestLog(logger));
	app.use(helmet({ crossOriginResourcePolicy: { policy: 'cross-origin' } }));

	app.use(ingestRouter({ prisma: db.prisma, sites, settings, logger, ingestSql: context.ingestSql }));
	app.use(trackerRouter({ sites }));
	app.use(analyticsRouter({ prisma: db.prisma, sites }));
	app.use(emailRouter({ prisma: db.prisma, sites, logger, tokenSecret: settings.EMAIL_TOKEN_SECRET }));
	app.use(privacyRouter({ prisma: db.prisma, logger }));
	app.use(testWorkflowRouter({ prisma: db.prisma, sites, settings }));
	app.use(demoRouter({ sites, siteKey: settings.DEMO_SITE }));

	app.get('/health', async (_req, res) => {
		const started = Date.now();
		let database: { ok: boolean; kind: string; latencyMs?: number } = { ok: false, kind: db.kind };
		let outbox = null;
		try {
			await db.prisma.$queryRawUnsafe('SELECT 1');
			database = { ok: true, kind: db.kind, latencyMs: Date.now() - started };
			outbox = await outboxLag(db.prisma);
		} catch (error) {
			logger.error({ err: error }, 'health check: database unreachable');
		}
		const n8nUrls = [...new Set(sites.all().filter((site) => site.endpoints.size > 0).map((site) => site.config.integrations.n8nUrl))];
		const n8n = await n8nReachable(n8nUrls);
		const lagging = outbox !== null && (outbox.oldestPendingAgeSeconds ?? 0) > MAX_HEALTHY_LAG_SECONDS;
		const healthy = database.ok && !lagging && n8n.every((target) => target.ok);
		res.status(healthy ? 200 : 503).json({
			status: healthy ? 'ok' : 'degraded',
			version: context.version,
			database,
			outbox: outbox && { ...outbox, maxHealthyLagSeconds: MAX_HEALTHY_LAG_SECONDS },
			n8n,
			dispatcher: context.dispatcher?.metrics ?? null,
			sites: sites.all().map((site) => ({ key: site.key, forwarding: [...site.endpoints.keys()], signed: Boolean(site.webhookSecret) })),
		});
	});

	app.use((req, res) => {
		sendProblem(res, 404, 'not_found', `No route for ${req.method} ${req.path.slice(0, 200)}`);
	});

	const onError: ErrorRequestHandler = (error, _req, res, _next) => {
		const status = typeof error?.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
		if (status === 500) {
			logger.error({ err: error }, 'unhandled error');
			sendProblem(res, 500, 'internal', 'The request could not be processed; nothing was stored');
			return;
		}
		const messages: Record<string, string> = {
			'entity.too.large': 'The body is larger than 64 KB; send at most 50 events per batch',
			'charset.unsupported': 'The body must be UTF-8',
			'encoding.unsupported': 'The Content-Encoding is not supported; send the body uncompressed',
			'request.aborted': 'The request was aborted before its body arrived',
			'entity.verify.failed': 'The body could not be verified',
		};
		sendProblem(res, status, String(error.type ?? 'bad_request'), messages[error.type] ?? String(error.message ?? 'Bad request'));
	};
	app.use(onError);
	return app;
}
