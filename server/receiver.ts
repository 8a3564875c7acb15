import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Pool } from 'pg';

import type { SiteConfig } from '../lib/contracts';
import { openDatabase, type Database, type DatabaseOptions } from '../lib/db';
import { createApp } from './app';
import { GROUP_COMMIT_STATEMENTS, warmUp } from './ingest/groupCommit';
import { createLogger, type Logger } from './logger';
import { OutboxDispatcher } from './outbox/dispatcher';
import { readSettings, type ReceiverSettings } from './settings';
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
	/** Graceful stop: refuse new connections, finish requests in flight, finish the delivery in flight. */
	close(): Promise<void>;
}

const packageRoot = path.resolve(__dirname, '..', '..');

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

function packageVersion(): string {
	for (const candidate of [path.join(packageRoot, 'package.json'), path.join(__dirname, '..', 'package.json')]) {
		try {
			return (JSON.parse(readFileSync(candidate, 'utf8')) as { version: string }).version;
		} catch {
			continue;
		}
	}
	return 'unknown';
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
	const logger = options.logger ?? createLogger();
	const db = await openDatabase({ owner: 'the receiver', ...options.database });
	try {
		return await serve(db, options, settings, env, logger);
	} catch (error) {
		// The embedded folder stays owned until the database is closed; a failed start must free it.
		await db.close();
		throw error;
	}
}

async function serve(db: Database, options: ReceiverOptions, settings: ReceiverSettings, env: NodeJS.ProcessEnv, logger: Logger): Promise<Receiver> {
	logger.info({ kind: db.kind, location: db.location, applied: db.appliedMigrations }, 'database ready');
	const sites = new SiteRegistry(options.sites, await syncSites(db.prisma, options.sites), env);
	for (const site of sites.all()) {
		if (site.endpoints.size > 0 && !site.webhookSecret) {
			logger.warn({ site: site.key, variable: site.config.integrations.webhookSecretEnv }, 'webhooks configured but no secret set: events are stored and wait in the outbox until it is');
		}
	}

	const dispatcher = new OutboxDispatcher(db.prisma, sites, settings, logger);
	const pool = ingestPool(db, logger);
	if (pool) await warmUp(pool).catch((error: unknown) => logger.warn({ err: error }, 'could not open the ingest connections ahead; the first batches will'));
	const app = createApp({ db, sites, settings, logger, dispatcher, version: packageVersion(), ingestPool: pool });
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
		throw new ListenError(describeListenError(settings.HOST, settings.PORT, error as NodeJS.ErrnoException), { cause: error });
	}
	if (settings.DISPATCHER === 'on') dispatcher.start();
	const { port } = server.address() as AddressInfo;
	const demoSite = settings.DEMO_SITE ? sites.byPublicKey(settings.DEMO_SITE) : sites.all()[0];
	if (demoSite) sites.allowOrigins(demoSite.key, ownOrigins(settings.HOST, port, settings.PUBLIC_URL));
	const url = `http://${settings.HOST.includes(':') ? `[${settings.HOST}]` : settings.HOST}:${port}`;
	logger.info({ url, sites: sites.all().map((site) => site.key) }, 'receiver listening');

	let closing: Promise<void> | undefined;
	const close = () =>
		(closing ??= (async () => {
			await drainConnections(server, settings.SHUTDOWN_GRACE_MS);
			await dispatcher.stop();
			app.close();
			await pool?.end();
			await db.close();
		})());
	return { url, server, db, sites, dispatcher, logger, close };
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
