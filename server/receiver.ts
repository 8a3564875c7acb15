import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Pool } from 'pg';

import type { SiteConfig } from '../lib/contracts';
import { openDatabase, type Database, type DatabaseOptions } from '../lib/db';
import { piiKeyringFromEnv } from '../lib/pii';
import { startRollupJob } from './analytics/rollup';
import { createApp } from './app';
import { ensureFirstKeys, type FirstKey } from './dashboard/firstKeys';
import type { EmbeddedEngine } from './engine/engine';
import { startEmbeddedEngine, type RunningEngine } from './engine/start';
import { GROUP_COMMIT_STATEMENTS, warmUp } from './ingest/groupCommit';
import { createLogger, type Logger } from './logger';
import { startMailCatcher, type MailCatcher } from './mail/catcher';
import { catcherCredential, smtpCredentialFromUrl, type SmtpCredential } from './mail/smtpSettings';
import { OutboxDispatcher } from './outbox/dispatcher';
import { startRetentionJob } from './retention/job';
import { checkPiiHashKey, receiverSecret } from './secrets';
import { checkDatabaseUrl, readSettings, type ReceiverSettings } from './settings';
import { ownOrigins, SiteRegistry } from './siteRegistry';
import { syncSites } from './sites';

export interface ReceiverOptions {
	sites: SiteConfig[];
	database?: DatabaseOptions;
	settings?: Partial<ReceiverSettings>;
	env?: NodeJS.ProcessEnv;
	logger?: Logger;
}

export interface Receiver {
	url: string;
	server: Server;
	db: Database;
	sites: SiteRegistry;
	dispatcher: OutboxDispatcher;
	logger: Logger;
	/** What runs the workflows of sites without an n8n URL; undefined when every site names an n8n (or DISPATCHER is off). */
	engine?: EmbeddedEngine;
	/** The built-in mail catcher, when the engine runs and SMTP_URL is unset. */
	mailCatcher?: MailCatcher;
	/** Read keys made at this start for sites that had no unrevoked key (embedded database only); main.ts shows them once. */
	firstKeys: FirstKey[];
	/** Graceful stop: refuse new connections, finish requests in flight, finish the delivery in flight. */
	close(): Promise<void>;
}

/** The repository root, whether this file runs built (dist/server) or from source (server/, under the tests). */
const packageRoot = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..')].find((dir) => existsSync(path.join(dir, 'workflows'))) ?? path.resolve(__dirname, '..', '..');

/** The receiver cannot listen where its settings say; the message names the address and the fix. */
export class ListenError extends Error {
	override name = 'ListenError';
}

/** What a failed listen means for the user, in one line. */
export function describeListenError(host: string, port: number, error: NodeJS.ErrnoException): string {
	const where = `Port ${port} on ${host}`;
	switch (error.code) {
		case 'EADDRINUSE':
			return `${where} is in use by another program; stop it or set PORT to a free port.`;
		case 'EACCES':
			return `${where} needs privileges this user does not have; set PORT to 1024 or above (or run behind a proxy on port ${port}).`;
		case 'EADDRNOTAVAIL':
			return `HOST ${host} is not an address of this machine; set HOST to one of its addresses (127.0.0.1 for this machine only, 0.0.0.0 for every network).`;
		case 'ENOTFOUND':
		case 'EAI_AGAIN':
			return `HOST ${host} is not a known host name; set HOST to an address of this machine, e.g. 127.0.0.1 or 0.0.0.0.`;
		default:
			return `The receiver cannot listen on ${where.toLowerCase()} (${error.message}); check HOST and PORT.`;
	}
}

/**
 * What runs the workflows and sends the mail, one entry per runner: the embedded engine (for the
 * sites without an n8n URL) and each n8n. With DISPATCHER off this receiver hands nothing on: the
 * engine does not run, and an n8n gets no new deliveries (it still runs what it holds).
 */
function runners({ sites, mailCatcher }: Receiver, dispatcher: ReceiverSettings['DISPATCHER']): Array<{ runs: string; mail: string }> {
	const off = dispatcher === 'off';
	const found: Array<{ runs: string; mail: string }> = [];
	if (sites.all().some((site) => !site.n8nUrl)) {
		found.push(
			off
				? { runs: 'none (DISPATCHER=off): events are stored and wait in the outbox', mail: 'none: the embedded engine that sends it does not run (DISPATCHER=off)' }
				: { runs: 'the embedded n8n engine (n8n-core in this process) runs the six bundled workflows', mail: mailCatcher ? 'caught by the built-in catcher, nothing is delivered (set SMTP_URL to send)' : 'sent through SMTP_URL' },
		);
	}
	for (const n8n of new Set(sites.all().flatMap((site) => (site.n8nUrl ? [site.n8nUrl] : [])))) {
		found.push(
			off
				? { runs: `the n8n at ${n8n}, to which this receiver hands nothing (DISPATCHER=off): events are stored and wait in the outbox`, mail: `sent by the n8n at ${n8n}, which gets no new leads from this receiver (DISPATCHER=off)` }
				: { runs: `the n8n at ${n8n} runs the workflows`, mail: `sent by the n8n at ${n8n}` },
		);
	}
	return found;
}

/** What a person starting the receiver needs to know: where to look, and what runs the CRM and sends its mail. */
export function startBanner(receiver: Receiver, dispatcher: ReceiverSettings['DISPATCHER']): string {
	const { url, db, mailCatcher, sites, firstKeys } = receiver;
	const found = runners(receiver, dispatcher);
	const lines = [
		'',
		`Tracking CRM receiver ${url}`,
		`  Engine:    ${found.map(({ runs }) => runs).join('; ')}`,
		`  Database:  ${db.kind === 'embedded' ? `embedded PGlite in ${db.location}` : `Postgres ${db.location}`}`,
		`  Mail:      ${found.map(({ mail }) => mail).join('; ')}`,
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

function packageVersion(): string {
	try {
		return (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
	} catch {
		return 'unknown';
	}
}

/**
 * On Postgres, event batches get a small pool of their own (one connection per group-commit
 * statement that may run at once), so reads never queue behind them. Its connections stay open
 * when idle: a quiet minute must not make the next batches reconnect and prepare again. The
 * embedded database has one connection, which Prisma holds.
 */
function ingestPool(db: Database, logger: Logger): Pool | undefined {
	if (!db.url) return undefined;
	const pool = new Pool({ connectionString: db.url, max: GROUP_COMMIT_STATEMENTS, idleTimeoutMillis: 0 });
	// An idle connection the server closed is replaced on the next query; without a listener its error would end the process.
	pool.on('error', (error) => logger.warn({ err: error }, 'an idle ingest connection failed'));
	return pool;
}

export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
	const env = options.env ?? process.env;
	const settings = { ...readSettings(env), ...options.settings };
	// A site that seals personal data cannot take a lead without its keys: a missing or bad key stops the start, naming the variable.
	if (options.sites.some((site) => site.privacy.encryptPii)) piiKeyringFromEnv(env);
	const smtp = settings.SMTP_URL ? smtpCredentialFromUrl(settings.SMTP_URL) : undefined;
	checkDatabaseUrl(options.database?.url === undefined ? process.env.DATABASE_URL : (options.database.url ?? undefined));
	const logger = options.logger ?? createLogger({ level: settings.LOG_LEVEL });
	const db = await openDatabase({ owner: 'the receiver', ...options.database });
	try {
		return await serve(db, options, settings, env, logger, smtp);
	} catch (error) {
		// The embedded folder stays owned until the database is closed; a failed start must free it.
		await db.close();
		throw error;
	}
}

async function serve(db: Database, options: ReceiverOptions, settings: ReceiverSettings, env: NodeJS.ProcessEnv, logger: Logger, smtp: SmtpCredential | undefined): Promise<Receiver> {
	logger.info({ kind: db.kind, location: db.location, applied: db.appliedMigrations }, 'database ready');
	const sites = new SiteRegistry(options.sites, await syncSites(db.prisma, options.sites), env);
	await checkPiiHashKey(db.prisma, sites.all(), env);
	// The api-key script cannot open the embedded database while the receiver runs: a site without a key gets a read key for the dashboards.
	const firstKeys = db.kind === 'embedded' ? await ensureFirstKeys(db.prisma, sites) : [];
	for (const site of sites.all()) {
		if (site.n8nUrl && site.endpoints.size > 0 && !site.webhookSecret) {
			logger.warn({ site: site.key, variable: site.config.integrations.webhookSecretEnv }, 'webhooks configured but no secret set: events are stored and wait in the outbox until it is');
		}
	}

	// Sites without an n8n URL are run by the embedded engine, which signs its deliveries with a secret of its own.
	const embedded = sites.all().some((site) => !site.n8nUrl);
	if (embedded) {
		sites.useEngineSecret(await receiverSecret(db.prisma, 'embedded-webhook-secret'));
		settings.EMAIL_TOKEN_SECRET ??= await receiverSecret(db.prisma, 'email-token-secret');
	}
	const runsEngine = embedded && settings.DISPATCHER === 'on';
	const mailCatcher = runsEngine && !smtp ? await startMailCatcher({ prisma: db.prisma, logger }) : undefined;
	let running: RunningEngine | undefined;

	const dispatcher = new OutboxDispatcher(db.sql, sites, settings, logger, () => running?.engine);
	const pool = ingestPool(db, logger);
	if (pool) await warmUp(pool).catch((error: unknown) => logger.warn({ err: error }, 'could not open the ingest connections ahead; the first batches will'));
	const app = createApp({ db, sites, settings, logger, dispatcher, version: packageVersion(), ingestPool: pool, engine: () => running?.engine, mailCatcher });
	const server = createServer(app.handle);
	try {
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen(settings.PORT, settings.HOST, () => {
				server.off('error', reject);
				resolve();
			});
		});
	} catch (error) {
		app.close();
		await pool?.end();
		await mailCatcher?.close();
		throw new ListenError(describeListenError(settings.HOST, settings.PORT, error as NodeJS.ErrnoException), { cause: error });
	}
	const { port } = server.address() as AddressInfo;
	const demoSite = settings.DEMO_SITE ? sites.byPublicKey(settings.DEMO_SITE) : sites.all()[0];
	if (demoSite) sites.allowOrigins(demoSite.key, ownOrigins(settings.HOST, port, settings.PUBLIC_URL));
	const url = `http://${settings.HOST.includes(':') ? `[${settings.HOST}]` : settings.HOST}:${port}`;
	if (runsEngine) {
		try {
			running = await startEmbeddedEngine({
				db,
				packageRoot,
				baseUrl: `http://${loopbackFor(settings.HOST)}:${port}`,
				webhookSecret: sites.all().find((site) => !site.n8nUrl)!.webhookSecret!,
				emailTokenSecret: settings.EMAIL_TOKEN_SECRET,
				smtp: smtp ?? catcherCredential(mailCatcher!.host, mailCatcher!.port),
				logger,
			});
		} catch (error) {
			await drainConnections(server, 0);
			app.close();
			await pool?.end();
			await mailCatcher?.close();
			throw error;
		}
		logger.info({ workflows: running.engine.workflowNames }, 'embedded engine running the bundled workflows');
	}
	if (settings.DISPATCHER === 'on') dispatcher.start();
	const rollups = startRollupJob({ prisma: db.prisma, logger });
	const retention = startRetentionJob({ prisma: db.prisma, sites: sites.all(), logger, intervalMs: settings.RETENTION_INTERVAL_MS });
	logger.info({ url, sites: sites.all().map((site) => site.key) }, 'receiver listening');

	let closing: Promise<void> | undefined;
	const close = () =>
		(closing ??= (async () => {
			await drainConnections(server, settings.SHUTDOWN_GRACE_MS);
			await dispatcher.stop();
			await running?.close();
			await mailCatcher?.close();
			app.close();
			await pool?.end();
			await retention.stop();
			await rollups.stop();
			await db.close();
		})());
	return { url, server, db, sites, dispatcher, logger, engine: running?.engine, mailCatcher, firstKeys, close };
}

/** The address this process reaches itself at when listening on `host`. */
function loopbackFor(host: string): string {
	if (host === '0.0.0.0' || host === 'localhost') return '127.0.0.1';
	if (host === '::') return '[::1]';
	return host.includes(':') ? `[${host}]` : host;
}

/**
 * Stops listening and lets requests in flight finish. A keep-alive client under steady load
 * never leaves its connection idle, so from here on every response says `Connection: close` and
 * connections are cut as soon as they fall idle; after the grace period the rest are cut too.
 */
async function drainConnections(server: Server, graceMs: number): Promise<void> {
	server.prependListener('request', (_request, response) => response.setHeader('Connection', 'close'));
	const drained = new Promise<void>((resolve) => server.close(() => resolve()));
	const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
	const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
	try {
		await drained;
	} finally {
		clearInterval(idleSweep);
		clearTimeout(deadline);
	}
}
