import { PrismaPg } from '@prisma/adapter-pg';
import type { ICredentialDataDecryptedObject } from 'n8n-workflow';

import { PrismaClient } from '../../lib/db/generated/client';

/**
 * The nodes connect with n8n's built-in Postgres credential, so a team reuses the
 * credential it already has for the CRM database. One client (and its pool) per distinct
 * connection lives as long as the n8n process: executions are short, pools are not.
 */
const clients = new Map<string, PrismaClient>();

export function connectionStringFrom(credentials: ICredentialDataDecryptedObject): string {
	const url = new URL('postgresql://localhost');
	url.hostname = String(credentials.host ?? 'localhost');
	url.port = String(credentials.port ?? 5432);
	url.pathname = `/${encodeURIComponent(String(credentials.database ?? 'postgres'))}`;
	url.username = encodeURIComponent(String(credentials.user ?? 'postgres'));
	if (credentials.password) url.password = encodeURIComponent(String(credentials.password));
	return url.toString();
}

export function prismaFor(credentials: ICredentialDataDecryptedObject): PrismaClient {
	const connectionString = connectionStringFrom(credentials);
	let client = clients.get(connectionString);
	if (!client) {
		const ssl = String(credentials.ssl ?? 'disable') === 'disable' ? undefined : { rejectUnauthorized: credentials.allowUnauthorizedCerts !== true };
		const max = Number(credentials.maxConnections) || 10;
		client = new PrismaClient({ adapter: new PrismaPg({ connectionString, ssl, max }) });
		clients.set(connectionString, client);
	}
	return client;
}

/** Closes every pooled connection; for tests and graceful shutdowns of embedding processes. */
export async function disconnectAll(): Promise<void> {
	const open = [...clients.values()];
	clients.clear();
	await Promise.all(open.map((client) => client.$disconnect()));
}
