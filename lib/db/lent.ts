import type { SqlDriverAdapterFactory } from '@prisma/driver-adapter-utils';

/**
 * Databases a process lends to the CRM nodes it runs in-process. The receiver's embedded engine
 * runs the nodes on the database it already holds, which for the embedded default is an
 * in-process PGlite that no second connection can reach; it lends its driver adapter under the
 * connection string of the Postgres credential it gives the nodes, and the nodes use that adapter
 * instead of opening a pool. A key on globalThis, because the nodes run from their own bundle,
 * with their own copy of this module.
 */
const LENT = Symbol.for('n8n-nodes-tracking-crm.lentDatabases');

type Registry = Map<string, SqlDriverAdapterFactory>;

function registry(): Registry {
	const holder = globalThis as { [LENT]?: Registry };
	return (holder[LENT] ??= new Map());
}

export function lendDatabase(connectionString: string, adapter: SqlDriverAdapterFactory): () => void {
	registry().set(connectionString, adapter);
	return () => {
		if (registry().get(connectionString) === adapter) registry().delete(connectionString);
	};
}

export function lentDatabase(connectionString: string): SqlDriverAdapterFactory | undefined {
	return registry().get(connectionString);
}

/** The fields of n8n's Postgres credential that say where the database is. */
export interface PostgresCredentialTarget {
	host?: unknown;
	port?: unknown;
	database?: unknown;
	user?: unknown;
	password?: unknown;
}

/** The connection string a Postgres credential names, as the nodes connect with it. */
export function connectionStringFrom(credentials: PostgresCredentialTarget): string {
	const url = new URL('postgresql://localhost');
	url.hostname = String(credentials.host ?? 'localhost');
	url.port = String(Number(credentials.port ?? 5432));
	url.pathname = `/${encodeURIComponent(String(credentials.database ?? 'postgres'))}`;
	url.username = encodeURIComponent(String(credentials.user ?? 'postgres'));
	if (credentials.password) url.password = encodeURIComponent(String(credentials.password));
	return url.toString();
}
