import { randomBytes } from 'node:crypto';

import type { PrismaClient } from '../lib/db';

/**
 * A secret the receiver makes for itself the first time it needs one, kept in the database: a
 * restart, or another receiver on the same database, gets the same value, so what was signed
 * before (an email's unsubscribe link) still verifies.
 */
export async function receiverSecret(prisma: PrismaClient, name: string): Promise<string> {
	await prisma.$executeRaw`INSERT INTO receiver_secrets (name, value) VALUES (${name}, ${randomBytes(48).toString('base64url')}) ON CONFLICT (name) DO NOTHING`;
	const [row] = await prisma.$queryRaw<Array<{ value: string }>>`SELECT value FROM receiver_secrets WHERE name = ${name}`;
	return row.value;
}
