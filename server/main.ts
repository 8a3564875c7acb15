import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';

import { loadSiteConfigs, SiteConfigError } from '../lib/config/siteConfig';
import { openDatabase } from '../lib/db';
import { createApp } from './app';
import { createLogger } from './logger';
import { syncSites } from './sites';

const root = path.resolve(__dirname, '..', '..');

function siteConfigLocation(): { location: string; isExample: boolean } {
	if (process.env.SITE_CONFIG) return { location: path.resolve(process.env.SITE_CONFIG), isExample: false };
	for (const candidate of ['config/sites', 'config/site.json']) {
		const location = path.join(root, candidate);
		if (existsSync(location)) return { location, isExample: false };
	}
	return { location: path.join(root, 'config', 'site.example.json'), isExample: true };
}

async function main(): Promise<void> {
	const logger = createLogger();
	const { location, isExample } = siteConfigLocation();
	if (isExample) logger.warn({ location }, 'no config/site.json or SITE_CONFIG: running with the example site config');
	const sites = loadSiteConfigs(location);

	const db = await openDatabase({ dataDir: process.env.DATA_DIR ?? path.join(root, '.data', 'pglite') });
	logger.info({ kind: db.kind, location: db.location, applied: db.appliedMigrations }, 'database ready');
	await syncSites(db.prisma, sites);

	const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
	const app = createApp({ db, sites, logger, version });
	const port = Number(process.env.PORT ?? 3000);
	const host = process.env.HOST ?? '127.0.0.1';
	const server: Server = app.listen(port, host, () => {
		logger.info({ url: `http://${host}:${port}`, sites: sites.map((s) => s.site.key) }, 'receiver listening');
	});

	let stopping = false;
	const stop = (signal: string) => {
		if (stopping) return;
		stopping = true;
		logger.info({ signal }, 'shutting down: no new connections, finishing in-flight requests');
		server.close(() => {
			void db.close().then(() => process.exit(0));
		});
		server.closeIdleConnections();
	};
	process.on('SIGINT', () => stop('SIGINT'));
	process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
	if (error instanceof SiteConfigError) {
		console.error(error.message);
	} else {
		console.error('The receiver could not start:', error);
	}
	process.exit(1);
});
