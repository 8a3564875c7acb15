import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';

import type { PrismaClient } from '../../lib/db/generated/client';
import type { PiiCipher } from '../../lib/pii';
// One UUIDv7 per row, as Prisma's own `uuid(7)` default would give.
import { uuidv7s } from '../../lib/ids';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, forEachItem, nodeOption, type ItemGlue } from '../shared/items';
import { ErasedPerson, findLeadId, findLeads, logErasedItems, namesAddress, piiCredentialOf, siteCipherOf, type PiiKeyFields } from '../shared/leads';
import { numberParameter, optionParameter, textParameter } from '../shared/parameters';
import { findVisitorIds, SiteResolver } from '../shared/subjects';
import { buildActivity, checkedActivityType, outcomeActivity, type ActivityDraft, type ActivityRecord } from './activity';

type Subject = 'lead' | 'visitor';

const properties: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		options: [
			{ name: 'Log Activity', value: 'log', action: 'Log an activity', description: 'Add an entry to a visitor’s or lead’s timeline' },
			{
				name: 'Log CRM Outcome',
				value: 'logOutcome',
				action: 'Log what a CRM node reports',
				description:
					'Log each item of the Conversion Detector or the Lead Scorer on its lead’s timeline (its visitor’s while it has no lead): a conversion with its goals and values, a stage change, or a new score with the Enricher’s tags. Retried deliveries log nothing twice.',
			},
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
		// The most one read returns: a larger value is refused naming the field, not cut without a word.
		// eslint-disable-next-line n8n-nodes-base/node-param-type-options-max-value-present
		typeOptions: { minValue: 1, maxValue: 1000, numberPrecision: 0 },
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
		// Tracking CRM API: only its PII keys, to find a lead by its address on a site with privacy.encryptPii (else n8n's environment's).
		credentials: [{ ...crmDatabaseCredential }, { name: 'trackingCrmApi', required: false }],
		properties,
	};

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const { prisma, sql, credentials } = await crmDatabase(this);
		const sites = new SiteResolver(sql);
		const piiKeys = await piiCredentialOf(this);
		const operation = nodeOption<'log' | 'logOutcome' | 'getTimeline'>(this, properties, 'operation');
		const glue = { properties, database: credentials };
		if (operation !== 'getTimeline') return [await logActivities(this, prisma, sites, piiKeys, glue, operation === 'logOutcome' ? draftOfOutcome : draftOfParameters)];
		return [
			await forEachItem.call(this, glue, async (i) => {
				const site = await sites.siteOf(siteKeyOf(this, i));
				const reference = textParameter(this, 'lead', i);
				// Only an address needs the site's keys: a lead id is found without them.
				return await readTimeline(this, prisma, site.id, reference, namesAddress(reference) ? siteCipherOf(piiKeys, site) : null, i);
			}),
		];
	}
}

/** An item's activity, checked, and the subject it names, not yet looked up. */
interface Draft {
	item: number;
	siteId: string;
	subject: Subject;
	reference: string;
	activity: Omit<ActivityDraft, 'subject'>;
}

type DraftOf = (context: IExecuteFunctions, item: number) => Pick<Draft, 'subject' | 'reference' | 'activity'>;

const draftOfParameters: DraftOf = (context, i) => {
	const subject = optionParameter<Subject>(context, properties, 'subject', i);
	return {
		subject,
		reference: textParameter(context, subject, i),
		activity: {
			type: textParameter(context, 'activityType', i),
			description: textParameter(context, 'description', i),
			data: context.getNodeParameter('data', i, '{}') as unknown,
			occurredAt: context.getNodeParameter('occurredAt', i, '') as string,
			dedupeKey: textParameter(context, 'dedupeKey', i),
		},
	};
};

/** Read from the item itself: n8n's expression engine costs more per item than the whole write. */
const draftOfOutcome: DraftOf = (context, i) => {
	const { subject, reference, dedupeKey, ...activity } = outcomeActivity(context.getInputData()[i].json);
	return { subject, reference, activity: { ...activity, dedupeKey } };
};

/**
 * Logs every item's activity with a fixed number of statements per site: the leads and visitors
 * named in one query each, the activities in one insert (an activity whose dedupe key is taken is
 * not written again), the ids of those already there in one more. Every item is checked before
 * anything is written, so a bad item stops the node with no write. An item whose lead was erased
 * is left out: nothing is logged of the person, and it is no failure.
 */
async function logActivities(context: IExecuteFunctions, prisma: PrismaClient, sites: SiteResolver, piiKeys: PiiKeyFields, glue: ItemGlue, draftOf: DraftOf): Promise<INodeExecutionData[]> {
	const items = context.getInputData();
	const output = new Map<number, INodeExecutionData>();
	const fail = (item: number, error: unknown) => output.set(item, failedItem(context, glue, error, item));
	let erased = 0;
	const drafts: Draft[] = [];
	/** The cipher of each site an item names a lead of by address. */
	const ciphers = new Map<string, PiiCipher | null>();
	for (let i = 0; i < items.length; i++) {
		try {
			const site = await sites.siteOf(siteKeyOf(context, i));
			const siteId = site.id;
			const { subject, reference, activity } = draftOf(context, i);
			buildActivity({ ...activity, subject });
			// Only an address needs the site's keys: a lead id or a visitor is found without them.
			if (subject === 'lead' && namesAddress(reference) && !ciphers.has(siteId)) ciphers.set(siteId, siteCipherOf(piiKeys, site));
			drafts.push({ item: i, siteId, subject, reference, activity });
		} catch (error) {
			fail(i, error);
		}
	}

	const bySite = new Map<string, Draft[]>();
	for (const draft of drafts) bySite.set(draft.siteId, [...(bySite.get(draft.siteId) ?? []), draft]);
	for (const [siteId, siteDrafts] of bySite) {
		const leads = await findLeads(prisma, siteId, siteDrafts.filter((draft) => draft.subject === 'lead').map((draft) => draft.reference), ciphers.get(siteId));
		const visitors = await findVisitorIds(prisma, siteId, siteDrafts.filter((draft) => draft.subject === 'visitor').map((draft) => draft.reference));
		const rows: ActivityRow[] = [];
		for (const draft of siteDrafts) {
			const found = (draft.subject === 'lead' ? leads : visitors).get(draft.reference);
			if (found instanceof ErasedPerson) {
				erased += 1;
				continue;
			}
			if (typeof found !== 'string') {
				fail(draft.item, found);
				continue;
			}
			// A derived dedupe key hashes the subject's id: the same activity logged by email or by id is one activity.
			rows.push({ item: draft.item, subject: draft.subject, subjectId: found, record: buildActivity({ ...draft.activity, subject: `${draft.subject}:${found}` }) });
		}
		if (rows.length === 0) continue;
		try {
			for (const [item, logged] of await insertActivities(prisma, siteId, rows)) output.set(item, loggedItem(items, item, logged));
		} catch {
			// Row by row, so the error names the item that caused it and the others are still written.
			for (const row of rows) {
				try {
					for (const [item, logged] of await insertActivities(prisma, siteId, [row])) output.set(item, loggedItem(items, item, logged));
				} catch (error) {
					fail(row.item, error);
				}
			}
		}
	}
	logErasedItems(context, erased);
	return items.flatMap((_, i) => output.get(i) ?? []);
}

/**
 * The input item with what was logged: its fields go on (the site key first of all), so the next
 * CRM node or a Hand Off reads the item as it came; the activity's own fields take their names.
 */
function loggedItem(items: readonly INodeExecutionData[], item: number, logged: IDataObject): INodeExecutionData {
	return { json: { ...items[item].json, ...logged }, pairedItem: { item } };
}

interface ActivityRow {
	item: number;
	subject: Subject;
	subjectId: string;
	record: ActivityRecord;
}

const INSERT_ACTIVITIES = `
INSERT INTO activities (id, site_id, lead_id, visitor_id, type, description, data, dedupe_key, occurred_at)
SELECT a.id, $1::uuid, a.lead_id, a.visitor_id, a.type, a.description, a.data, a.dedupe_key, a.occurred_at
FROM jsonb_to_recordset($2::jsonb) AS a(id uuid, lead_id uuid, visitor_id uuid, type text, description text, data jsonb, dedupe_key text, occurred_at timestamptz)
ON CONFLICT (site_id, dedupe_key) DO NOTHING
RETURNING id`;

/**
 * Writes the activities; one whose dedupe key an earlier one has (an n8n retry, or an earlier item
 * of this batch) is not written and answers with that one's id, as a duplicate.
 */
async function insertActivities(prisma: PrismaClient, siteId: string, rows: readonly ActivityRow[]): Promise<Map<number, IDataObject>> {
	const ids = uuidv7s(rows.length);
	const written = await prisma.$queryRawUnsafe<Array<{ id: string }>>(
		INSERT_ACTIVITIES,
		siteId,
		JSON.stringify(
			rows.map(({ subject, subjectId, record }, n) => ({
				id: ids[n],
				lead_id: subject === 'lead' ? subjectId : null,
				visitor_id: subject === 'visitor' ? subjectId : null,
				type: record.type,
				description: record.description,
				data: record.data,
				dedupe_key: record.dedupeKey,
				occurred_at: record.occurredAt.toISOString(),
			})),
		),
	);
	const inserted = new Set(written.map((row) => row.id));
	const taken = rows.filter((_, n) => !inserted.has(ids[n])).map((row) => row.record.dedupeKey as string);
	const existing = new Map(
		taken.length === 0
			? []
			: (await prisma.activity.findMany({ where: { siteId, dedupeKey: { in: taken } }, select: { id: true, dedupeKey: true } })).map((row) => [row.dedupeKey as string, row.id]),
	);
	return new Map(
		rows.map(({ item, subject, subjectId, record }, n) => {
			const duplicate = !inserted.has(ids[n]);
			const link = subject === 'lead' ? { leadId: subjectId } : { visitorId: subjectId };
			return [item, { activityId: duplicate ? (existing.get(record.dedupeKey as string) as string) : ids[n], duplicate, ...link, type: record.type }];
		}),
	);
}

async function readTimeline(context: IExecuteFunctions, prisma: PrismaClient, siteId: string, reference: string, cipher: PiiCipher | null, i: number): Promise<IDataObject[]> {
	const leadId = await findLeadId(prisma, siteId, reference, cipher);
	const limit = numberParameter(context, properties, 'limit', i);
	const types = textParameter(context, 'types', i)
		.split(',')
		.filter((type) => type.trim() !== '')
		.map((type) => checkedActivityType('types', type));
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
