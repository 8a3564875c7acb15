import { PrismaPg } from '@prisma/adapter-pg';
import type { ICredentialDataDecryptedObject, IExecuteFunctions } from 'n8n-workflow';

import { PrismaClient } from '../../lib/db/generated/client';
import { connectionStringFrom, lentDatabase } from '../../lib/db/lent';
import { sharedAdapter, type RawDatabase } from '../../lib/db/rawSql';

/**
 * The nodes connect with n8n's built-in Postgres credential, so a team reuses the
 * credential it already has for the CRM database. One client (and its pool) per distinct
 * connection lives as long as the n8n process: executions are short, pools are not.
 */
const clients = new Map<string, { client: PrismaClient; sql: RawDatabase; close(): Promise<void>; lent?: unknown }>();

/** Where a Postgres credential points, as the builder typed it into the credential. */
export interface DatabaseTarget {
	host: string;
	port: number;
	database: string;
	user: string;
}

export function targetOf(credentials: ICredentialDataDecryptedObject): DatabaseTarget {
	return {
		host: String(credentials.host ?? 'localhost'),
		port: Number(credentials.port ?? 5432),
		database: String(credentials.database ?? 'postgres'),
		user: String(credentials.user ?? 'postgres'),
	};
}

function clientFor(credentials: ICredentialDataDecryptedObject): { client: PrismaClient; sql: RawDatabase } {
	const connectionString = connectionStringFrom(credentials);
	const lent = lentDatabase(connectionString);
	const known = clients.get(connectionString);
	// A lent database is replaced when its process reopens it; a client of the old one must go.
	if (known && known.lent === lent) return known;
	const ssl = String(credentials.ssl ?? 'disable') === 'disable' ? undefined : { rejectUnauthorized: credentials.allowUnauthorizedCerts !== true };
	const max = Number(credentials.maxConnections) || 10;
	const { factory, database, close } = lent ? sharedAdapter(lent) : sharedAdapter(new PrismaPg({ connectionString, ssl, max }), max);
	const opened = { client: new PrismaClient({ adapter: factory }), sql: database, close, lent };
	clients.set(connectionString, opened);
	return opened;
}

/** Closes every pooled connection; for tests and graceful shutdowns of embedding processes. */
export async function disconnectAll(): Promise<void> {
	const open = [...clients.values()];
	clients.clear();
	await Promise.all(
		open.map(async ({ client, close }) => {
			await client.$disconnect();
			// The raw statements may have opened the pool Prisma never used.
			await close();
		}),
	);
}

/** What a builder can act on when the credential's database is not a usable CRM database. */
export interface DatabaseProblem {
	message: string;
	description: string;
}

type Kind = 'noTables' | 'unreachable' | 'loginRefused' | 'noDatabase' | 'closedOnConnect';

/**
 * What pg says, without a code, when the server at the credential's address answers the connection
 * and then hangs up: something else listens there (an HTTP server, say), or Postgres stopped.
 */
const CLOSED_ON_CONNECT = 'Connection terminated unexpectedly';

/**
 * Prisma's error codes (P…), the kinds its Postgres driver adapter reports, and Postgres'
 * SQLSTATEs or Node's socket codes when an error comes straight from `pg`.
 */
const KINDS: Record<string, Kind> = {
	P2021: 'noTables',
	P2022: 'noTables',
	TableDoesNotExist: 'noTables',
	ColumnNotFound: 'noTables',
	'42P01': 'noTables',
	'42703': 'noTables',
	P1001: 'unreachable',
	P1002: 'unreachable',
	P1017: 'unreachable',
	DatabaseNotReachable: 'unreachable',
	ConnectionClosed: 'unreachable',
	SocketTimeout: 'unreachable',
	ECONNREFUSED: 'unreachable',
	ENOTFOUND: 'unreachable',
	EAI_AGAIN: 'unreachable',
	ETIMEDOUT: 'unreachable',
	EHOSTUNREACH: 'unreachable',
	P1000: 'loginRefused',
	P1010: 'loginRefused',
	AuthenticationFailed: 'loginRefused',
	DatabaseAccessDenied: 'loginRefused',
	'28P01': 'loginRefused',
	'28000': 'loginRefused',
	P1003: 'noDatabase',
	DatabaseDoesNotExist: 'noDatabase',
	'3D000': 'noDatabase',
	[CLOSED_ON_CONNECT]: 'closedOnConnect',
};

interface ErrorShape {
	message?: unknown;
	code?: unknown;
	kind?: unknown;
	originalCode?: unknown;
	meta?: { driverAdapterError?: { cause?: ErrorShape } };
	cause?: unknown;
	errors?: unknown;
}

/** Every code an error and the errors it wraps carry, outermost first. */
function codesOf(error: unknown, depth = 0): string[] {
	if (!error || typeof error !== 'object' || depth > 4) return [];
	const shape = error as ErrorShape;
	const own = [shape.code, shape.kind, shape.originalCode, shape.message === CLOSED_ON_CONNECT ? CLOSED_ON_CONNECT : undefined].filter((code): code is string => typeof code === 'string');
	const inner = [shape.meta?.driverAdapterError?.cause, shape.cause, ...(Array.isArray(shape.errors) ? shape.errors : [])];
	return [...own, ...inner.flatMap((cause) => codesOf(cause, depth + 1))];
}

/**
 * Translates an error of the CRM database into what is wrong and what to do, naming the
 * credential's database, server and user; undefined for errors that are not about the database
 * as a whole (a missing row, a constraint), which the nodes report themselves.
 */
export function databaseProblem(error: unknown, credentials: ICredentialDataDecryptedObject): DatabaseProblem | undefined {
	const kind = codesOf(error)
		.map((code) => KINDS[code])
		.find(Boolean);
	if (!kind) return undefined;
	const { host, port, database, user } = targetOf(credentials);
	const server = `${host}:${port}`;
	switch (kind) {
		case 'noTables':
			return {
				message: `The database "${database}" on ${server} has no CRM tables: run the migrations (npm run db:migrate with DATABASE_URL pointing at it)`,
				description:
					'The Postgres credential of this node must point at the database the receiver stores into. If it does, that database was never migrated or is older than this package; if not, change Database in the credential.',
			};
		case 'unreachable':
			return {
				message: `Cannot reach the database server at ${server}`,
				description: `Check Host and Port of the Postgres credential (Postgres listens on 5432 unless configured otherwise), that the server runs, and that this n8n can reach it: inside Docker, "localhost" is the n8n container itself, so use the database service's name.`,
			};
		case 'loginRefused':
			return {
				message: `The database server at ${server} refused the login of user "${user}" to database "${database}"`,
				description: 'Check User and Password of the Postgres credential, and that this user may connect to that database (pg_hba.conf, GRANT CONNECT).',
			};
		case 'closedOnConnect':
			return {
				message: `The server at ${server} closed the connection: it is not a Postgres server, or it stopped`,
				description: 'Check Host and Port of the Postgres credential: they must name the CRM database (Postgres listens on 5432 unless configured otherwise), not the receiver or another service. If they do, check that Postgres runs.',
			};
		case 'noDatabase':
			return {
				message: `There is no database "${database}" on ${server}`,
				description: 'Set Database in the Postgres credential to the database the receiver uses, or create it and run the migrations (npm run db:migrate with DATABASE_URL pointing at it).',
			};
	}
}

/** The CRM database of the node's Postgres credential, and the credential for error messages. */
export async function crmDatabase(context: Pick<IExecuteFunctions, 'getCredentials'>): Promise<{ prisma: PrismaClient; sql: RawDatabase; credentials: ICredentialDataDecryptedObject }> {
	const credentials = await context.getCredentials('postgres');
	const { client, sql } = clientFor(credentials);
	return { prisma: client, sql, credentials };
}
