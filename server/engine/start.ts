import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

import type { Database } from '../../lib/db';
import { connectionStringFrom, lendDatabase } from '../../lib/db/lent';
import type { Logger } from '../logger';
import type { SmtpCredential } from '../mail/smtpSettings';
import type { EmbeddedEngine } from './engine';
import { prepareN8nEnvironment } from './environment';

export interface EngineStartOptions {
	db: Database;
	packageRoot: string;
	/** This receiver, as the engine's CRM Hand Off nodes reach it. */
	baseUrl: string;
	webhookSecret: string;
	emailTokenSecret?: string;
	smtp: SmtpCredential;
	logger: Logger;
}

export interface RunningEngine {
	engine: EmbeddedEngine;
	close(): Promise<void>;
}

/** n8n's Postgres credential for a connection string (its SSL modes as the credential names them). */
export function postgresCredential(url: string): Record<string, string | number> {
	const parsed = new URL(url);
	const sslMode = parsed.searchParams.get('sslmode');
	return {
		host: parsed.hostname,
		port: Number(parsed.port || 5432),
		database: decodeURIComponent(parsed.pathname.slice(1)),
		user: decodeURIComponent(parsed.username),
		password: decodeURIComponent(parsed.password),
		ssl: sslMode === 'require' || sslMode === 'verify-ca' || sslMode === 'verify-full' ? 'require' : 'disable',
	};
}

/**
 * Starts the embedded engine on the receiver's database. On Postgres the nodes connect as they
 * would from a real n8n; the embedded PGlite takes no second connection, so the receiver lends
 * the nodes its own (lib/db/lent.ts) under the connection string of the credential they get.
 */
export async function startEmbeddedEngine(options: EngineStartOptions): Promise<RunningEngine> {
	// One folder per user: n8n-core reads it once per process and only keeps an instance id there.
	prepareN8nEnvironment(path.join(tmpdir(), `tracking-crm-n8n-${userInfo().uid}`));
	// Loaded only now: n8n-core takes seconds to load, which a receiver that forwards to n8n never pays.
	// eslint-disable-next-line @typescript-eslint/no-require-imports
	const { EmbeddedEngine } = require('./engine') as typeof import('./engine');
	const { db } = options;
	let postgres: Record<string, string | number>;
	let giveBack = () => {};
	if (db.kind === 'postgres' && db.url) {
		postgres = postgresCredential(db.url);
	} else {
		postgres = { host: 'embedded.pglite', port: 5432, database: db.location, user: 'tracking-crm', password: '', ssl: 'disable' };
		giveBack = lendDatabase(connectionStringFrom(postgres), db.adapter);
	}
	try {
		const engine = await EmbeddedEngine.start({
			packageRoot: options.packageRoot,
			workflowsDir: path.join(options.packageRoot, 'workflows'),
			baseUrl: options.baseUrl,
			credentials: {
				trackingCrmApi: { receiverUrl: options.baseUrl, webhookSecret: options.webhookSecret, emailTokenSecret: options.emailTokenSecret ?? '' },
				postgres,
				smtp: options.smtp,
			},
			logger: options.logger,
		});
		return {
			engine,
			close: async () => {
				await engine.close();
				giveBack();
			},
		};
	} catch (error) {
		giveBack();
		throw error;
	}
}
