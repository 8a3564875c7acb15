import express, { type ErrorRequestHandler, type Express } from 'express';

import type { SiteConfig } from '../lib/contracts';
import type { Database } from '../lib/db';
import type { Logger } from './logger';

export interface AppContext {
	db: Database;
	sites: SiteConfig[];
	logger: Logger;
	version: string;
}

export function createApp(context: AppContext): Express {
	const app = express();
	app.disable('x-powered-by');

	app.get('/health', async (_req, res) => {
		const started = Date.now();
		try {
			await context.db.prisma.$queryRaw`SELECT 1`;
			res.json({
				status: 'ok',
				version: context.version,
				database: { ok: true, kind: context.db.kind, latencyMs: Date.now() - started },
				sites: context.sites.map((site) => site.site.key),
			});
		} catch (error) {
			context.logger.error({ err: error }, 'health check: database unreachable');
			res.status(503).json({ status: 'degraded', version: context.version, database: { ok: false, kind: context.db.kind } });
		}
	});

	app.use((req, res) => {
		res.status(404).json({ error: 'not_found', message: `No route for ${req.method} ${req.path}` });
	});

	const onError: ErrorRequestHandler = (error, _req, res, _next) => {
		const status = typeof error?.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
		if (status === 500) context.logger.error({ err: error }, 'unhandled error');
		res.status(status).json(
			status === 500
				? { error: 'internal', message: 'The request could not be processed; it was not stored.' }
				: { error: error.type ?? 'bad_request', message: error.message },
		);
	};
	app.use(onError);
	return app;
}
