import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';

import { eventItemSchema } from '../../lib/contracts/delivery';
import { toFieldIssues } from '../../lib/contracts/issues';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, inputError, type ItemGlue } from '../shared/items';
import { SiteResolver } from '../shared/subjects';
import { processEvents, type IncomingEvent } from './store';
import { InputError } from '../shared/inputError';

interface Overrides {
	sessionTimeout?: number;
	maxSessionDuration?: number;
	mediumThreshold?: number;
	highThreshold?: number;
}

/**
 * An item's event, parsed with the delivery contract's event schema, naming the field that does
 * not fit. Items from another source may give the time as "ts" in epoch milliseconds, as the
 * tracker does.
 */
function asEvent(json: IDataObject, where: string): IncomingEvent {
	const time = json.occurredAt === undefined && typeof json.ts === 'number' ? new Date(json.ts) : undefined;
	const input = time && !Number.isNaN(time.getTime()) ? { ...json, occurredAt: time.toISOString() } : json;
	const parsed = eventItemSchema.safeParse(input);
	if (parsed.success) return parsed.data;
	const [{ field, message }] = toFieldIssues(parsed.error, input, eventItemSchema);
	const problem = new InputError(field, `${where}: "${field}" ${message}`);
	throw problem;
}

const properties: INodeProperties[] = [
	siteKeyProperty,
	{
		displayName: 'Session timeout, maximum session duration and engagement thresholds come from the site config (tracking section) unless overridden below',
		name: 'siteConfigNotice',
		type: 'notice',
		default: '',
	},
	{
		displayName: 'Input',
		name: 'input',
		type: 'options',
		options: [
			{ name: 'One Event per Item', value: 'event', description: 'Items as the CRM Tracker Trigger emits them per event' },
			{ name: 'Events Array per Item', value: 'batch', description: 'Each item holds an "events" array (trigger emitting one item per visitor or per delivery)' },
		],
		default: 'event',
	},
	{
		displayName: 'Overrides',
		name: 'overrides',
		type: 'collection',
		placeholder: 'Add override',
		default: {},
		description: 'Settings that replace the site config’s for this node',
		options: [
			{ displayName: 'High Engagement From', name: 'highThreshold', type: 'number', default: 60, description: 'Engagement score (0–100) from which a session is high' },
			{ displayName: 'Max Session Duration (Seconds)', name: 'maxSessionDuration', type: 'number', default: 43200 },
			{ displayName: 'Medium Engagement From', name: 'mediumThreshold', type: 'number', default: 30, description: 'Engagement score (0–100) from which a session is medium' },
			{ displayName: 'Session Timeout (Seconds)', name: 'sessionTimeout', type: 'number', default: 1800, description: 'Inactivity after which the next event starts a new session' },
		],
	},
		];

export class VisitorProcessor implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Visitor Processor',
		name: 'visitorProcessor',
		icon: 'file:visitorProcessor.svg',
		group: ['transform'],
		version: 1,
		description: 'Turn tracking events into visitors and sessions: sessionizing, engagement, channel attribution, device',
		defaults: { name: 'CRM Visitor Processor' },
		// Not offered to AI agents: its input is the tracker's events, which an agent does not have.
		inputs: ['main'],
		outputs: ['main'],
		credentials: [{ ...crmDatabaseCredential }],
		properties,
	};

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const { sql, credentials } = await crmDatabase(this);
		const glue: ItemGlue = { properties, database: credentials };
		const sites = new SiteResolver(sql);
		const input = this.getNodeParameter('input', 0) as 'event' | 'batch';

		// Items are grouped per site so each site's events are sessionized together in one pass;
		// per-item validation errors stay with their item.
		const perSite = new Map<string, { events: IncomingEvent[]; owners: number[] }>();
		const failures = new Map<number, unknown>();
		const eventsOfItem = new Map<number, IncomingEvent[]>();
		const siteKeys: string[] = new Array(items.length);
		for (let i = 0; i < items.length; i++) {
			try {
				const siteKey = siteKeyOf(this, i);
				siteKeys[i] = siteKey;
				const raw = input === 'batch' ? items[i].json.events : [items[i].json];
				if (!Array.isArray(raw)) {
					throw inputError('events', 'is not an array; set Input to "One Event per Item", or emit one item per visitor or per delivery in the CRM Tracker Trigger');
				}
				const events = raw.map((json, index) => asEvent(json as IDataObject, input === 'batch' ? `events[${index}]` : 'the item'));
				const group = perSite.get(siteKey) ?? { events: [], owners: [] };
				group.events.push(...events);
				group.owners.push(i);
				perSite.set(siteKey, group);
				eventsOfItem.set(i, events);
			} catch (error) {
				failures.set(i, error);
			}
		}

		const outcomes = new Map<string, IDataObject>();
		for (const [siteKey, group] of perSite) {
			try {
				const site = await sites.siteOf(siteKey);
				const overrides = this.getNodeParameter('overrides', group.owners[0], {}) as Overrides;
				const tracking = site.config.tracking;
				const summaries = await processEvents(sql, site, group.events, {
					sessionTimeout: overrides.sessionTimeout ?? tracking.sessionTimeout,
					maxSessionDuration: overrides.maxSessionDuration ?? tracking.maxSessionDuration,
					engagementThresholds: {
						medium: overrides.mediumThreshold ?? tracking.engagementThresholds.medium,
						high: overrides.highThreshold ?? tracking.engagementThresholds.high,
					},
				});
				for (const [eventId, summary] of summaries) outcomes.set(`${siteKey}|${eventId}`, { ...summary });
			} catch (error) {
				for (const owner of group.owners) failures.set(owner, error);
			}
		}

		const output: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			if (failures.has(i)) {
				output.push(failedItem(this, glue, failures.get(i), i));
				continue;
			}
			const siteKey = siteKeys[i];
			const sessionsOf = (event: IncomingEvent) => outcomes.get(`${siteKey}|${event.id}`) ?? null;
			const events = eventsOfItem.get(i) ?? [];
			const json: IDataObject =
				input === 'batch'
					? { ...items[i].json, events: events.map((event) => ({ ...event, session: sessionsOf(event) })) }
					: { ...items[i].json, session: sessionsOf(events[0]) };
			output.push({ json, pairedItem: { item: i } });
		}
		return [output];
	}
}
