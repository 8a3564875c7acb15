import { updateDisplayOptions, type IDataObject, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import { findLeadId } from '../../shared/subjects';
import { forEachItem, nowOf, type OperationContext } from '../helpers/context';
import { nextSendTime } from '../schedule';

const properties: INodeProperties[] = [
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '={{ $json.leadId }}',
		description: 'The lead’s ID or email address',
	},
	{
		displayName: 'Sequence Name',
		name: 'sequence',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'welcome',
		description: 'Name of the sequence to enroll the lead in',
	},
	{
		displayName: 'Sequence Source',
		name: 'sequenceSource',
		type: 'options',
		options: [
			{ name: 'Site Config', value: 'site', description: 'Crm.emailSequences of the site config, written to the database on use' },
			{ name: 'Database', value: 'database', description: 'A sequence already in email_sequences' },
		],
		default: 'site',
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
				description: 'The time the enrollment counts from; empty for now. For backfills.',
			},
		],
	},
];

export const description = updateDisplayOptions({ show: { operation: ['enroll'] } }, properties);

/**
 * One enrollment per (sequence, lead), created with the first step's send time. Enrolling again
 * changes nothing, also for a lead that completed or left the sequence: re-entering is a
 * decision for a person, not a side effect of a retried item.
 */
export async function execute(this: IExecuteFunctions, { prisma, sites, sequences }: OperationContext): Promise<INodeExecutionData[]> {
	return await forEachItem.call(this, async (i) => {
		const site = await sites.siteOf(this.getNodeParameter('siteKey', i) as string);
		const leadId = await findLeadId(prisma, site.id, String(this.getNodeParameter('lead', i) ?? ''));
		const sequence = await sequences.byNameIn(site, String(this.getNodeParameter('sequence', i)).trim(), this.getNodeParameter('sequenceSource', i) as 'site' | 'database');
		const now = nowOf((this.getNodeParameter('options', i, {}) as IDataObject).asOf);
		const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId }, select: { timezone: true } });
		const [first] = sequence.steps;
		const nextRunAt = nextSendTime(new Date(now.getTime() + first.delayMinutes * 60_000), sequence.window, lead.timezone);

		const { count } = await prisma.sequenceEnrollment.createMany({
			data: [{ siteId: site.id, sequenceId: sequence.id, leadId, nextStep: first.position, nextRunAt, enrolledAt: now }],
			skipDuplicates: true,
		});
		const enrollment = await prisma.sequenceEnrollment.findUniqueOrThrow({
			where: { sequenceId_leadId: { sequenceId: sequence.id, leadId } },
			select: { id: true, status: true, nextStep: true, nextRunAt: true, enrolledAt: true },
		});
		return [
			{
				...this.getInputData()[i].json,
				enrollment: {
					id: enrollment.id,
					sequence: sequence.name,
					leadId,
					created: count === 1,
					status: enrollment.status,
					nextStep: enrollment.nextStep,
					nextRunAt: enrollment.nextRunAt?.toISOString() ?? null,
					enrolledAt: enrollment.enrolledAt.toISOString(),
				},
			},
		];
	});
}
