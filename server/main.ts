import { existsSync } from 'node:fs';
import path from 'node:path';

import { loadSiteConfigs, SiteConfigError } from '../lib/config/siteConfig';
import { DatabaseOpenError } from '../lib/db';
import { PiiKeyError } from '../lib/pii';
import { createLogger } from './logger';
import { ListenError, startBanner, startReceiver } from './receiver';
import { checkDemoSite, readSettings, SettingsError } from './settings';

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
	// Read before anything else, so that a bad LOG_LEVEL is refused like every setting instead of failing inside pino.
	const settings = readSettings();
	const logger = createLogger({ level: settings.LOG_LEVEL });
	const { location, isExample } = siteConfigLocation();
	if (isExample) logger.warn({ location }, 'no config/site.json or SITE_CONFIG: running with the example site config');
	const sites = loadSiteConfigs(location);
	// Before the database is opened, like every setting.
	checkDemoSite(settings.DEMO_SITE, sites.map((site) => site.site.key));
	const receiver = await startReceiver({
		sites,
		database: { dataDir: process.env.DATA_DIR ?? path.join(root, '.data', 'pglite') },
		logger,
	});

	console.log(startBanner(receiver, settings.DISPATCHER));

	const stop = (signal: string) => {
		logger.info({ signal }, 'shutting down: no new connections, finishing requests and deliveries in flight');
		void receiver.close().then(
			() => process.exit(0),
			(error: unknown) => {
				logger.error({ err: error }, 'shutdown failed');
				process.exit(1);
			},
		);
	};
	process.once('SIGINT', () => stop('SIGINT'));
	process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
	// Failures the user can fix are their message alone, which names the fix; anything else is a bug worth its stack.
	if (error instanceof SiteConfigError || error instanceof SettingsError || error instanceof DatabaseOpenError || error instanceof ListenError || error instanceof PiiKeyError) {
		console.error(error.message);
	} else {
		console.error('The receiver could not start:', error);
	}
	process.exit(1);
});
