import { emailHash } from '../../lib/email';
import type { PrismaClient } from '../../lib/db/generated/client';

export type SuppressionCause = 'unsubscribed' | 'bounced' | 'complained' | 'do_not_contact' | 'erased' | 'manual';

/**
 * Why a lead must not get email, from its email channel status and the suppression rows of its
 * address, or null when it may. The channel status wins because it is per lead and carries the
 * most specific reason; the hash rows also cover addresses whose lead was erased and re-created.
 */
export function suppressionCause(channelStatus: string | null | undefined, suppressionReasons: readonly string[]): SuppressionCause | null {
	if (channelStatus && channelStatus !== 'subscribed') return channelStatus as SuppressionCause;
	const order: SuppressionCause[] = ['erased', 'complained', 'bounced', 'unsubscribed', 'manual'];
	return order.find((reason) => suppressionReasons.includes(reason)) ?? null;
}

/** The one check before every send. */
export async function findSuppression(prisma: PrismaClient, siteId: string, lead: { id: string; email: string; emailHash: string }): Promise<SuppressionCause | null> {
	// The stored hash and the hash of the current address differ only for rows written before a
	// normalisation change; checking both never lets such an address slip through.
	const hashes = [...new Set([lead.emailHash, emailHash(lead.email)])];
	const [channel, suppressions] = await Promise.all([
		prisma.channelStatus.findUnique({ where: { leadId_channel: { leadId: lead.id, channel: 'email' } }, select: { status: true } }),
		prisma.suppression.findMany({ where: { siteId, channel: 'email', emailHash: { in: hashes } }, select: { reason: true } }),
	]);
	return suppressionCause(channel?.status, suppressions.map((row) => row.reason));
}
