import { updateDisplayOptions, type IDataObject, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import type { PrismaClient } from '../../../lib/db/generated/client';
import type { PiiCipher } from '../../../lib/pii';
import { findLeadId, piiCredentialOf, siteCipherOf } from '../../shared/leads';
import type { ResolvedSite } from '../../shared/subjects';
import { siteKeyOf } from '../../shared/descriptions';
import { forEachItem } from '../../shared/items';
import { collectionParameter, optionParameter, textParameter } from '../../shared/parameters';
import { awaitsConfirmation } from '../confirmation';
import { nowOf, type OperationContext } from '../helpers/context';
import { stepDueAt } from '../steps';
import { parseSequenceDefinition, type StoredSequence } from '../sequences';

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
		displayName: 'Sequence Source',
		name: 'sequenceSource',
		type: 'options',
		options: [
			{ name: 'Site Config', value: 'site', description: 'The sequences of the site config (crm.emailSequences), written to the database on use' },
			{ name: 'Database', value: 'database', description: 'A sequence already in email_sequences' },
			{ name: 'Parameter', value: 'parameter', description: 'The sequence defined below, written to the database on use' },
		],
		default: 'site',
	},
	{
		displayName: 'Sequence Name',
		name: 'sequence',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'welcome',
		description: 'Name of the sequence to enroll the lead in',
		displayOptions: { show: { sequenceSource: ['site', 'database'] } },
	},
	{
		displayName: 'Sequence Definition',
		name: 'sequenceDefinition',
		type: 'json',
		required: true,
		default: '{\n  "name": "welcome",\n  "quietHours": { "start": "21:00", "end": "08:00" },\n  "steps": [\n    { "delayMinutes": 0, "subject": "Welcome, {{firstName}}!", "html": "<p>Hi {{firstName}}</p>" }\n  ]\n}',
		description:
			'The sequence as in crm.emailSequences of the site config: name, steps (delayMinutes, subject, html, optional text), optional quietHours, weekdays, trigger and exitOn ({ "conversions": [names of conversion rules that end it] }). Its name identifies it in the database.',
		displayOptions: { show: { sequenceSource: ['parameter'] } },
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

/** What an enrollment looks like in output items. */
export interface EnrollmentSummary extends IDataObject {
	id: string;
	sequence: string;
	leadId: string;
	created: boolean;
	status: string;
	nextStep: number;
	nextRunAt: string | null;
	enrolledAt: string;
}

/**
 * One enrollment per (sequence, lead), created with the first step's send time. Enrolling again
 * changes nothing, also for a lead that completed or left the sequence: re-entering is a
 * decision for a person, not a side effect of a retried item. A lead who must first confirm a
 * double opt-in is due at once instead, whatever the first step's delay: its confirmation email
 * goes out when the enrollment is first handled, and the confirmation times the first step.
 */
export async function enrollLead(prisma: PrismaClient, site: ResolvedSite, sequence: StoredSequence, lead: { id: string; timezone: string | null }, now: Date, cipher: PiiCipher | null): Promise<EnrollmentSummary> {
	const [first] = sequence.steps;
	const nextRunAt = (await awaitsConfirmation(prisma, site, lead.id, cipher)) ? now : stepDueAt(first.delayMinutes, now, sequence.window, lead.timezone);
	const { count } = await prisma.sequenceEnrollment.createMany({
		data: [{ siteId: site.id, sequenceId: sequence.id, leadId: lead.id, nextStep: first.position, nextRunAt, enrolledAt: now }],
		skipDuplicates: true,
	});
	const enrollment = await prisma.sequenceEnrollment.findUniqueOrThrow({
		where: { sequenceId_leadId: { sequenceId: sequence.id, leadId: lead.id } },
		select: { id: true, status: true, nextStep: true, nextRunAt: true, enrolledAt: true },
	});
	return {
		id: enrollment.id,
		sequence: sequence.name,
		leadId: lead.id,
		created: count === 1,
		status: enrollment.status,
		nextStep: enrollment.nextStep,
		nextRunAt: enrollment.nextRunAt?.toISOString() ?? null,
		enrolledAt: enrollment.enrolledAt.toISOString(),
	};
}

export async function execute(this: IExecuteFunctions, { prisma, glue, sites, sequences }: OperationContext): Promise<INodeExecutionData[]> {
	const piiKeys = await piiCredentialOf(this);
	return await forEachItem.call(this, glue, async (i) => {
		const site = await sites.siteOf(siteKeyOf(this, i));
		const cipher = siteCipherOf(piiKeys, site);
		const leadId = await findLeadId(prisma, site.id, textParameter(this, 'lead', i), cipher);
		const source = optionParameter<'site' | 'database' | 'parameter'>(this, properties, 'sequenceSource', i);
		const sequence =
			source === 'parameter'
				? await sequences.fromDefinition(site, parseSequenceDefinition(this.getNodeParameter('sequenceDefinition', i)))
				: await sequences.byNameIn(site, textParameter(this, 'sequence', i).trim(), source);
		const now = nowOf(collectionParameter(this, 'options', i).asOf);
		const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId }, select: { id: true, timezone: true } });
		return [{ ...this.getInputData()[i].json, enrollment: await enrollLead(prisma, site, sequence, lead, now, cipher) }];
	});
}
