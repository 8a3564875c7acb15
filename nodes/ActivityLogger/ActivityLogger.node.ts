import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';

import type { Prisma } from '../../lib/db/generated/client';
import { crmDatabase, type prismaFor } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { forEachItem } from '../shared/items';
import { findLeadId } from '../shared/leads';
import { findVisitorId, SiteResolver } from '../shared/subjects';
import { buildActivity } from './activity';

type Subject = 'lead' | 'visitor';

const properties: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		options: [
			{ name: 'Log Activity', value: 'log', action: 'Log an activity', description: 'Add an entry to a visitor’s or lead’s timeline' },
			{ name: 'Get Timeline', value: 'getTimeline', action: 'Get the timeline of a lead', description: 'Read a lead’s activities, including those of its visitors before it was identified' },
		],
		default: 'log',
	},
	siteKeyProperty,
	{
		displayName: 'Subject',
		name: 'subject',
		type: 'options',
		options: [
			{ name: 'Lead', value: 'lead' },
			{ name: 'Visitor', value: 'visitor' },
		],
		default: 'lead',
		displayOptions: { show: { operation: ['log'] } },
		description: 'Whose timeline the activity belongs to',
	},
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'jane@example.com',
		description: 'The lead’s ID or email address',
		displayOptions: { show: { operation: ['log'], subject: ['lead'] } },
	},
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'jane@example.com',
		description: 'The lead’s ID or email address',
		displayOptions: { show: { operation: ['getTimeline'] } },
	},
	{
		displayName: 'Visitor',
		name: 'visitor',
		type: 'string',
		required: true,
		default: '={{ $json.anonymousId }}',
		description: 'The visitor’s ID or the tracker’s anonymous ID',
		displayOptions: { show: { operation: ['log'], subject: ['visitor'] } },
	},
	{
		displayName: 'Activity Type',
		name: 'activityType',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'page_viewed',
		description: 'Short machine name: lowercase letters, digits and _ . : -.',
		displayOptions: { show: { operation: ['log'] } },
	},
	{
		displayName: 'Description',
		name: 'description',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'Visited the pricing page',
		displayOptions: { show: { operation: ['log'] } },
	},
	{
		displayName: 'Data',
		name: 'data',
		type: 'json',
		default: '{}',
		description: 'Details of the activity as a JSON object',
		displayOptions: { show: { operation: ['log'] } },
	},
	{
		displayName: 'Occurred At',
		name: 'occurredAt',
		type: 'dateTime',
		default: '',
		description: 'When it happened; leave empty for now',
		displayOptions: { show: { operation: ['log'] } },
	},
	{
		displayName: 'Dedupe Key',
		name: 'dedupeKey',
		type: 'string',
		default: '',
		hint: 'Activities with the same key are written once, so n8n retries add nothing. With an Occurred At time and no key, a key is derived from the activity itself.',
		displayOptions: { show: { operation: ['log'] } },
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 50,
		description: 'Max number of results to return',
		displayOptions: { show: { operation: ['getTimeline'] } },
	},
	{
		displayName: 'Activity Types',
		name: 'types',
		type: 'string',
		default: '',
		placeholder: 'page_viewed, email_opened',
		description: 'Comma-separated types to include; empty for all',
		displayOptions: { show: { operation: ['getTimeline'] } },
	},
		];

export class ActivityLogger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Activity Logger',
		name: 'activityLogger',
		icon: 'file:activityLogger.svg',
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"] === "log" ? "Log activity" : "Get timeline"}}',
		description: 'Write timeline activities for a visitor or lead, or read a lead’s timeline',
		defaults: { name: 'CRM Activity Logger' },
		usableAsTool: true,
		inputs: ['main'],
		outputs: ['main'],
		credentials: [{ ...crmDatabaseCredential }],
		properties,
	};

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const { prisma, credentials } = await crmDatabase(this);
		const sites = new SiteResolver(prisma);
		const operation = this.getNodeParameter('operation', 0) as 'log' | 'getTimeline';
		const glue = { properties, database: credentials };
		return [
			await forEachItem.call(this, glue, async (i) => {
				const siteId = await sites.idOf(siteKeyOf(this, i));
				return operation === 'log' ? [await logActivity(this, prisma, siteId, i)] : await readTimeline(this, prisma, siteId, i);
			}),
		];
	}
}

async function logActivity(
	context: IExecuteFunctions,
	prisma: ReturnType<typeof prismaFor>,
	siteId: string,
	i: number,
): Promise<IDataObject> {
	const subject = context.getNodeParameter('subject', i) as Subject;
	const reference = context.getNodeParameter(subject, i) as string;
	const subjectId = subject === 'lead' ? await findLeadId(prisma, siteId, reference) : await findVisitorId(prisma, siteId, reference);
	const record = buildActivity({
		subject: `${subject}:${subjectId}`,
		type: context.getNodeParameter('activityType', i) as string,
		description: context.getNodeParameter('description', i) as string,
		data: context.getNodeParameter('data', i, '{}') as unknown,
		occurredAt: context.getNodeParameter('occurredAt', i, '') as string,
		dedupeKey: context.getNodeParameter('dedupeKey', i, '') as string,
	});
	const link = subject === 'lead' ? { leadId: subjectId } : { visitorId: subjectId };
	const row = { siteId, ...link, type: record.type, description: record.description, data: (record.data ?? undefined) as Prisma.InputJsonObject | undefined, occurredAt: record.occurredAt, dedupeKey: record.dedupeKey };

	if (record.dedupeKey) {
		const [inserted] = await prisma.activity.createManyAndReturn({ data: [row], skipDuplicates: true, select: { id: true } });
		if (!inserted) {
			const existing = await prisma.activity.findUniqueOrThrow({ where: { siteId_dedupeKey: { siteId, dedupeKey: record.dedupeKey } }, select: { id: true } });
			return { activityId: existing.id, duplicate: true, ...link, type: record.type };
		}
		return { activityId: inserted.id, duplicate: false, ...link, type: record.type };
	}
	const created = await prisma.activity.create({ data: row, select: { id: true } });
	return { activityId: created.id, duplicate: false, ...link, type: record.type };
}

async function readTimeline(
	context: IExecuteFunctions,
	prisma: ReturnType<typeof prismaFor>,
	siteId: string,
	i: number,
): Promise<IDataObject[]> {
	const leadId = await findLeadId(prisma, siteId, context.getNodeParameter('lead', i) as string);
	const limit = Math.min(context.getNodeParameter('limit', i, 50) as number, 1000);
	const types = (context.getNodeParameter('types', i, '') as string)
		.split(',')
		.map((type) => type.trim())
		.filter(Boolean);
	const visitors = await prisma.visitor.findMany({ where: { siteId, leadId }, select: { id: true } });
	const rows = await prisma.activity.findMany({
		where: {
			siteId,
			OR: [{ leadId }, { visitorId: { in: visitors.map((visitor) => visitor.id) } }],
			...(types.length ? { type: { in: types } } : {}),
		},
		orderBy: [{ occurredAt: 'desc' }, { id: 'desc' }],
		take: limit,
	});
	return rows.map((row) => ({
		activityId: row.id,
		leadId,
		visitorId: row.visitorId,
		type: row.type,
		description: row.description,
		data: (row.data ?? null) as IDataObject | null,
		occurredAt: row.occurredAt.toISOString(),
	}));
}
