import { updateDisplayOptions, type ICredentialDataDecryptedObject, type IDataObject, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import { findLeadId, siteCipherOf } from '../../shared/leads';
import { siteKeyOf } from '../../shared/descriptions';
import { forEachItem } from '../../shared/items';
import { apiCredentialOf, clockOf, type OperationContext } from '../helpers/context';
import { smtpTransport } from '../transport';
import { enteredStages, triggeredBy } from '../triggers';
import { enrollLead, type EnrollmentSummary } from './enroll.operation';
import { senderOf, sendDueSteps } from './sendDue.operation';

const properties: INodeProperties[] = [
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '={{ $json.leadId }}',
		description: 'The lead’s ID or email address; the Lead Scorer’s items carry it as leadId',
	},
	{
		displayName: 'Options',
		name: 'options',
		type: 'collection',
		placeholder: 'Add option',
		default: {},
		options: [
			{
				displayName: 'As Of',
				name: 'asOf',
				type: 'dateTime',
				default: '',
				description: 'The time treated as now for enrolling and sending; empty for now. For backfills.',
			},
			{
				displayName: 'Event',
				name: 'event',
				type: 'string',
				default: '',
				placeholder: '={{ $json.name }}',
				description: 'Event type or custom event name the item stands for; enrolls in the sequences whose trigger is that event',
			},
			{
				displayName: 'From Email',
				name: 'fromEmail',
				type: 'string',
				placeholder: 'name@email.com',
				default: '',
				description: 'Sender address; integrations.emailProvider.fromEmail of the site config when empty',
			},
			{
				displayName: 'From Name',
				name: 'fromName',
				type: 'string',
				default: '',
				description: 'Sender name; integrations.emailProvider.fromName of the site config when empty',
			},
		],
	},
];

export const description = updateDisplayOptions({ show: { operation: ['enrollByTrigger'] } }, properties);

/**
 * Enrolls the lead of each item in every sequence whose trigger it meets, then sends the steps of
 * those enrollments that are due now. Both are keyed (one enrollment per sequence and lead, one
 * message per lead, sequence and step), so a replayed item enrolls and sends nothing twice.
 */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<INodeExecutionData[]> {
	const sender = await senderOfNode(this);
	try {
		return await forEachItem.call(this, context.glue, async (i) => {
			const options = this.getNodeParameter('options', i, {}) as IDataObject;
			const event = String(options.event ?? '').trim();
			return await enrollByTrigger.call(this, context, sender, i, this.getNodeParameter('lead', i), options, event === '' ? [] : [event]);
		});
	} finally {
		sender.transport.close();
	}
}

/** What sends the emails of the node: its Tracking CRM API credential (signed links) and SMTP transport. */
export interface NodeSender {
	api: ICredentialDataDecryptedObject;
	transport: ReturnType<typeof smtpTransport>;
}

export async function senderOfNode(context: IExecuteFunctions): Promise<NodeSender> {
	const api = await apiCredentialOf(context);
	const transport = smtpTransport(await context.getCredentials('smtp'));
	return { api, transport };
}

/**
 * Enrolls the lead `reference` (its id or address) of item `i` by the sequences' triggers, and sends
 * what is due; `events`: the names of the event the item stands for (eventNames), none for a lead
 * or stage change.
 */
export async function enrollByTrigger(
	this: IExecuteFunctions,
	{ prisma, sites, sequences }: OperationContext,
	{ api, transport }: NodeSender,
	i: number,
	reference: unknown,
	options: IDataObject,
	events: readonly string[],
): Promise<IDataObject[]> {
	const json = this.getInputData()[i].json;
	const site = await sites.siteOf(siteKeyOf(this, i));
	const clock = clockOf(options.asOf);
	const now = clock();
	const cipher = siteCipherOf(api, site);
	const leadId = await findLeadId(prisma, site.id, String(reference ?? ''), cipher);
	const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId }, select: { id: true, timezone: true, lifecycleStage: true, tags: { select: { tag: true } } } });

	const matched = triggeredBy(await sequences.withTriggers(site), {
		stages: enteredStages(site.config.crm.lifecycleStages, json.stageChange, lead.lifecycleStage),
		tags: lead.tags.map((row) => row.tag),
		events,
	});
	const enrollments: EnrollmentSummary[] = [];
	for (const sequence of matched) enrollments.push(await enrollLead(prisma, site, sequence, lead, now, cipher));
	const active = enrollments.filter((enrollment) => enrollment.status === 'active').map((enrollment) => enrollment.id);
	// The sender is checked only when there is something to send: a lead no trigger matches
	// passes on, whatever the site's email settings. An enrollment written before a missing
	// sender stops the item is found again by the retry, which then sends its step.
	const sends = active.length === 0 ? [] : await sendDueSteps(prisma, site, senderOf(site, options, api, transport), clock, active.length, active);
	return [{ ...json, leadId, enrollments, sends }];
}
