import { updateDisplayOptions, type IDataObject, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import type { PrismaClient } from '../../../lib/db/generated/client';
import { findLeadId, namesAddress, piiCredentialOf, siteCipherOf, type PiiKeyFields } from '../../shared/leads';
import { siteKeyOf } from '../../shared/descriptions';
import { forEachItem, InputError } from '../../shared/items';
import type { ResolvedSite } from '../../shared/subjects';
import { startConfirmed } from '../confirmation';
import { conversionNames, endingConversion, exitConversionsOf } from '../exits';
import type { OperationContext } from '../helpers/context';

const properties: INodeProperties[] = [
	{
		displayName: 'Event Type',
		name: 'eventType',
		type: 'string',
		required: true,
		default: '={{ $json.type }}',
		description:
			'Unsubscribe, bounce and complaint unenroll the lead from every sequence; a conversion only from the sequences whose exitOn names it; confirm (a double opt-in confirmed) starts the sequences that waited for it; open and click change nothing here',
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
		description:
			'When the event happened (ISO 8601). It ends only enrollments begun before then, so a replayed event never ends a later enrollment; empty ends every active one. Required for a conversion. A confirmation times the first step of the sequences it starts from then (empty: now).',
	},
	{
		displayName: 'Conversions',
		name: 'conversions',
		type: 'string',
		default: '={{ $json.conversions }}',
		description:
			'For a conversion: the conversion rules reached, by name (crm.conversionRules) — a name, a list of names, or the CRM Conversion Detector’s conversions. It ends only the sequences whose exitOn.conversions names one of them, and only if they happened after the lead was enrolled.',
	},
];

export const description = updateDisplayOptions({ show: { operation: ['handleEmailEvent'] } }, properties);

const UNENROLLING = new Set(['unsubscribe', 'bounce', 'complaint', 'conversion']);
const PASSIVE = new Set(['open', 'click']);
/** A double opt-in confirmed by its link (the receiver records the consent). */
const CONFIRM = 'confirm';
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
 * Ends the lead's active enrollments that the conversion ends (exits.ts), each still only if it is
 * active, so a send or completion that came first is not overwritten.
 */
async function endOnConversion(prisma: PrismaClient, site: ResolvedSite, leadId: string, reached: { names: string[]; occurredAt: Date }): Promise<number> {
	const active = await prisma.sequenceEnrollment.findMany({
		where: { siteId: site.id, leadId, status: 'active' },
		select: { id: true, enrolledAt: true, sequence: { select: { name: true, settings: true } } },
	});
	let ended = 0;
	for (const enrollment of active) {
		const conversion = endingConversion(exitConversionsOf(enrollment.sequence, site.config.crm.emailSequences), enrollment.enrolledAt, reached);
		if (conversion === null) continue;
		const { count } = await prisma.sequenceEnrollment.updateMany({
			where: { id: enrollment.id, status: 'active' },
			data: { status: 'unenrolled', unenrolledAt: new Date(), unenrollReason: `conversion: ${conversion}`, nextRunAt: null },
		});
		ended += count;
	}
	return ended;
}

/**
 * Ends the lead's active enrollments begun before the event when it unsubscribed, bounced or
 * complained, and makes the email channel say so; a conversion ends only the sequences that exit
 * on it. Replaying an event changes nothing more: it ends no enrollment begun after it, whenever
 * the replay arrives.
 */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<INodeExecutionData[]> {
	const piiKeys = await piiCredentialOf(this);
	return await forEachItem.call(this, context.glue, async (i) => await handleEmailEvent.call(this, context, piiKeys, i, (name) => this.getNodeParameter(name, i, '')));
}

/** What an email event is, by parameter name: the node's parameters, or the fields of a CRM item. */
export type EmailEventInput = (name: 'eventType' | 'lead' | 'occurredAt' | 'conversions') => unknown;

/** Handles the email event of item `i`. */
export async function handleEmailEvent(this: IExecuteFunctions, { prisma, sites }: OperationContext, piiKeys: PiiKeyFields, i: number, input: EmailEventInput): Promise<IDataObject[]> {
	const json = this.getInputData()[i].json;
	const type = String(input('eventType') ?? '').trim().toLowerCase();
	if (!UNENROLLING.has(type) && !PASSIVE.has(type) && type !== CONFIRM) {
		throw new InputError('eventType', `"${type}" is not an email event; use unsubscribe, bounce, complaint, conversion, confirm, open or click`);
	}
	const reference = String(input('lead') ?? '').trim();
	if (PASSIVE.has(type) || !reference) return [{ ...json, unenrolled: 0 }];

	const occurredAt = occurredAtOf(input('occurredAt'));
	// Only an address needs the site's keys (to hash it as the lead is stored under); a lead id is found without them.
	const leadIdOf = async (site: ResolvedSite) => await findLeadId(prisma, site.id, reference, namesAddress(reference) ? siteCipherOf(piiKeys, site) : null);
	if (type === CONFIRM) {
		const site = await sites.siteOf(siteKeyOf(this, i));
		const leadId = await leadIdOf(site);
		return [{ ...json, leadId, unenrolled: 0, started: await startConfirmed(prisma, site, leadId, occurredAt ?? new Date()) }];
	}
	if (type === 'conversion') {
		const names = conversionNames(input('conversions'));
		if (!occurredAt) throw new InputError('occurredAt', 'is empty; a conversion needs the time it happened (ISO 8601), since it ends only enrollments begun before it');
		const site = await sites.siteOf(siteKeyOf(this, i));
		const leadId = await leadIdOf(site);
		return [{ ...json, leadId, unenrolled: await endOnConversion(prisma, site, leadId, { names, occurredAt }) }];
	}
	const site = await sites.siteOf(siteKeyOf(this, i));
	const leadId = await leadIdOf(site);
	const state = CHANNEL_STATE[type];
	const unenrolled = await prisma.$transaction(async (tx) => {
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
		const { count } = await tx.sequenceEnrollment.updateMany({
			where: { siteId: site.id, leadId, status: 'active', ...(occurredAt ? { enrolledAt: { lte: occurredAt } } : {}) },
			data: { status: 'unenrolled', unenrolledAt: new Date(), unenrollReason: type, nextRunAt: null },
		});
		return count;
	});
	return [{ ...json, leadId, unenrolled }];
}
