import { existsSync } from 'node:fs';
import path from 'node:path';

import { loadSiteConfigs, SiteConfigError } from '../lib/config/siteConfig';
import { DatabaseOpenError } from '../lib/db';
import { PiiKeyError } from '../lib/pii';
import { createLogger } from './logger';
import { ListenError, startReceiver, type Receiver } from './receiver';
import { readSettings, SettingsError } from './settings';

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
	const logger = createLogger({ level: readSettings().LOG_LEVEL });
	const { location, isExample } = siteConfigLocation();
	if (isExample) logger.warn({ location }, 'no config/site.json or SITE_CONFIG: running with the example site config');
	const receiver = await startReceiver({
		sites: loadSiteConfigs(location),
		database: { dataDir: process.env.DATA_DIR ?? path.join(root, '.data', 'pglite') },
		logger,
	});

	console.log(firstRunSummary(receiver));

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

/** What a person starting the receiver needs to know: where to look, and what runs the CRM. */
function firstRunSummary(receiver: Receiver): string {
	const { url, db, engine, mailCatcher, sites, firstKeys } = receiver;
	const toN8n = [...new Set(sites.all().flatMap((site) => (site.n8nUrl ? [site.n8nUrl] : [])))];
	const runs = [...(engine ? ['the embedded n8n engine (n8n-core in this process) runs the six bundled workflows'] : []), ...toN8n.map((n8n) => `the n8n at ${n8n} runs the workflows`)];
	const lines = [
		'',
		`Tracking CRM receiver ${url}`,
		`  Engine:    ${runs.join('; ') || 'none (DISPATCHER=off): events are stored and wait in the outbox'}`,
		`  Database:  ${db.kind === 'embedded' ? `embedded PGlite in ${db.location}` : `Postgres ${db.location}`}`,
		`  Mail:      ${mailCatcher ? 'caught by the built-in catcher, nothing is delivered (set SMTP_URL to send)' : engine ? 'sent through SMTP_URL' : 'sent by n8n'}`,
		'',
		`  Demo site: ${url}/demo/`,
		`  Dashboard: ${url}/dashboard (sign in with a read or admin key of the site)`,
		...firstKeys.map(({ site, key }) => `  Read key:  ${key} (site ${site}; made now and shown only this once: keep it)`),
		...(mailCatcher ? [`  Mailbox:   ${url}/mailbox`] : []),
		`  Stats:     ${url}/api/stats?site=${sites.all()[0]?.key ?? '<site>'} (JSON; with a read key as Authorization: Bearer <key>)`,
		`  Health:    ${url}/health`,
		'',
	];
	return lines.join('\n');
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
