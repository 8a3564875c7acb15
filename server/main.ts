import { existsSync } from 'node:fs';
import path from 'node:path';

import { loadSiteConfigs, SiteConfigError } from '../lib/config/siteConfig';
import { DatabaseOpenError } from '../lib/db';
import { createLogger } from './logger';
import { ListenError, startReceiver } from './receiver';
import { SettingsError } from './settings';

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
	const receiver = await startReceiver({
		sites: loadSiteConfigs(location),
		database: { dataDir: process.env.DATA_DIR ?? path.join(root, '.data', 'pglite') },
		logger,
	});

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
	if (error instanceof SiteConfigError || error instanceof SettingsError || error instanceof DatabaseOpenError || error instanceof ListenError) {
		console.error(error.message);
	} else {
		console.error('The receiver could not start:', error);
	}
	process.exit(1);
});
