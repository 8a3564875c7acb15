import { updateDisplayOptions, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import { findLeadId } from '../../shared/leads';
import { siteKeyOf } from '../../shared/descriptions';
import { forEachItem, InputError } from '../../shared/items';
import type { OperationContext } from '../helpers/context';

const properties: INodeProperties[] = [
	{
		displayName: 'Event Type',
		name: 'eventType',
		type: 'string',
		required: true,
		default: '={{ $json.type }}',
		description: 'Unsubscribe, bounce, complaint or conversion unenroll the lead; open and click change nothing here',
	},
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		default: '={{ $json.leadId }}',
		description: 'The lead’s ID or email address; events of messages without a lead are passed through',
	},
	{
		displayName: 'Occurred At',
		name: 'occurredAt',
		type: 'string',
		default: '={{ $json.occurredAt }}',
		description: 'When the event happened (ISO 8601). It ends only enrollments begun before then, so a replayed event never ends a later enrollment; empty ends every active one.',
	},
];

export const description = updateDisplayOptions({ show: { operation: ['handleEmailEvent'] } }, properties);

const UNENROLLING = new Set(['unsubscribe', 'bounce', 'complaint', 'conversion']);
const PASSIVE = new Set(['open', 'click']);
/** The channel status an event sets; the receiver records unsubscribes itself, bounces and complaints may come from elsewhere. */
const CHANNEL_STATE: Record<string, 'unsubscribed' | 'bounced' | 'complained'> = { unsubscribe: 'unsubscribed', bounce: 'bounced', complaint: 'complained' };

/** The event's time, or null when the item gives none; a wrong value names the parameter. */
function occurredAtOf(value: unknown): Date | null {
	if (value === undefined || value === null || value === '') return null;
	const at = new Date(value as string);
	if (Number.isNaN(at.getTime())) throw new InputError('occurredAt', `"${String(value)}" is not a date and time (ISO 8601, e.g. 2026-06-10T10:00:00Z)`);
	return at;
}

/**
 * Ends the lead's active enrollments begun before the event when it unsubscribed, bounced,
 * complained or converted, and makes the email channel say so. Replaying an event changes
 * nothing more: it ends no enrollment begun after it, whenever the replay arrives.
 */
export async function execute(this: IExecuteFunctions, { prisma, glue, sites }: OperationContext): Promise<INodeExecutionData[]> {
	return await forEachItem.call(this, glue, async (i) => {
		const json = this.getInputData()[i].json;
		const type = String(this.getNodeParameter('eventType', i) ?? '').trim().toLowerCase();
		if (!UNENROLLING.has(type) && !PASSIVE.has(type)) {
			throw new InputError('eventType', `"${type}" is not an email event; use unsubscribe, bounce, complaint, conversion, open or click`);
		}
		const reference = String(this.getNodeParameter('lead', i, '') ?? '').trim();
		if (!UNENROLLING.has(type) || !reference) return [{ ...json, unenrolled: 0 }];

		const occurredAt = occurredAtOf(this.getNodeParameter('occurredAt', i, ''));
		const site = await sites.siteOf(siteKeyOf(this, i));
		const leadId = await findLeadId(prisma, site.id, reference);
		const state = CHANNEL_STATE[type];
		const unenrolled = await prisma.$transaction(async (tx) => {
			if (state) {
				// A stronger state (bounced, complained) is never weakened by a later unsubscribe.
				await tx.$executeRawUnsafe(
					`INSERT INTO channel_statuses (id, site_id, lead_id, channel, status, reason, changed_at)
					VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 'email', $3::channel_state, $4, now())
					ON CONFLICT (lead_id, channel) DO UPDATE SET status = EXCLUDED.status, reason = EXCLUDED.reason, changed_at = EXCLUDED.changed_at
					WHERE channel_statuses.status = 'subscribed' OR (channel_statuses.status = 'unsubscribed' AND EXCLUDED.status <> 'unsubscribed')`,
					site.id,
					leadId,
					state,
					`email ${type}`,
				);
				await tx.$executeRawUnsafe(
					`INSERT INTO suppressions (id, site_id, email_hash, channel, reason, created_at)
					SELECT gen_random_uuid(), site_id, email_hash, 'email', $2::suppression_reason, now() FROM leads WHERE id = $1::uuid
					ON CONFLICT (site_id, email_hash, channel) DO NOTHING`,
					leadId,
					state,
				);
			}
			const { count } = await tx.sequenceEnrollment.updateMany({
				where: { siteId: site.id, leadId, status: 'active', ...(occurredAt ? { enrolledAt: { lte: occurredAt } } : {}) },
				data: { status: 'unenrolled', unenrolledAt: new Date(), unenrollReason: type, nextRunAt: null },
			});
			return count;
		});
		return [{ ...json, leadId, unenrolled }];
	});
}
