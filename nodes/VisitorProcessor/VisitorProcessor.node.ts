import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';

import { eventItemSchema } from '../../lib/contracts/delivery';
import { latestEventTime } from '../../lib/contracts/tracking';
import { toFieldIssues } from '../../lib/contracts/issues';
import type { SiteConfig } from '../../lib/contracts/siteConfig';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, inputError, labelOf, nodeOption, type ItemGlue } from '../shared/items';
import { collectionParameter, declaredNumber, shownValue } from '../shared/parameters';
import { SiteResolver, type ResolvedSite } from '../shared/subjects';
import { processEvents, type EventOutcome, type IncomingEvent, type VisitorProcessorOptions } from './store';
import { InputError } from '../shared/inputError';
import { ErasedPerson, logErasedItems } from '../shared/leads';

/**
 * An item's event, parsed with the delivery contract's event schema, naming the field that does
 * not fit. Items from another source may give the time as "ts" in epoch milliseconds, as the
 * tracker does.
 */
function asEvent(json: unknown, where: string): IncomingEvent {
	if (json === null || typeof json !== 'object' || Array.isArray(json)) {
		throw inputError(where, `is ${shownValue(json)}, not an event: each entry of "events" is an object with id, anonymousId, type and occurredAt`);
	}
	const item = json as IDataObject;
	const time = item.occurredAt === undefined && typeof item.ts === 'number' ? new Date(item.ts) : undefined;
	const input = time && !Number.isNaN(time.getTime()) ? { ...item, occurredAt: time.toISOString() } : item;
	const parsed = eventItemSchema.safeParse(input);
	if (!parsed.success) {
		const [{ field, message }] = toFieldIssues(parsed.error, input, eventItemSchema);
		throw inputError(field, `${where}: "${field}" ${message}`);
	}
	const { occurredAt, receivedAt } = parsed.data;
	if (Date.parse(occurredAt) > latestEventTime(receivedAt === undefined ? undefined : Date.parse(receivedAt), Date.now())) {
		const bound = receivedAt === undefined ? 'now' : `its receivedAt (${receivedAt})`;
		throw inputError('occurredAt', `${where}: "occurredAt" ${occurredAt} is more than a minute later than ${bound}: give the time the event happened, as ISO 8601 in UTC`);
	}
	return parsed.data;
}

/** An event's problem found on storing it, worded as asEvent words the item's. */
const eventProblem = (error: InputError, where: string) => inputError(error.field, `${where}: "${error.field}" ${error.message}`);

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
			// The bounds are the site config's (lib/contracts/siteConfig.ts, tracking).
			{
				displayName: 'High Engagement From',
				name: 'highThreshold',
				type: 'number',
				typeOptions: { minValue: 0, maxValue: 100 },
				default: 60,
				description: 'Engagement score (0–100) from which a session is high; above Medium Engagement From',
			},
			{
				displayName: 'Max Session Duration (Seconds)',
				name: 'maxSessionDuration',
				type: 'number',
				typeOptions: { minValue: 1, maxValue: 172800, numberPrecision: 0 },
				default: 43200,
			},
			{
				displayName: 'Medium Engagement From',
				name: 'mediumThreshold',
				type: 'number',
				typeOptions: { minValue: 0, maxValue: 100 },
				default: 30,
				description: 'Engagement score (0–100) from which a session is medium; below High Engagement From',
			},
			{
				displayName: 'Session Timeout (Seconds)',
				name: 'sessionTimeout',
				type: 'number',
				typeOptions: { minValue: 1, maxValue: 86400, numberPrecision: 0 },
				default: 1800,
				description: 'Inactivity after which the next event starts a new session',
			},
		],
	},
];

/** An override as set, held to its declaration's bounds; undefined where the site config's applies. */
function overrideOf(overrides: IDataObject, name: string): number | undefined {
	const path = `overrides.${name}`;
	return overrides[name] === undefined ? undefined : declaredNumber(properties, path, overrides[name]);
}

/** The site config's tracking settings with an item's overrides; thresholds that would make no session medium are refused. */
function optionsOf(overrides: IDataObject, tracking: SiteConfig['tracking']): VisitorProcessorOptions {
	const medium = overrideOf(overrides, 'mediumThreshold');
	const high = overrideOf(overrides, 'highThreshold');
	const thresholds = { medium: medium ?? tracking.engagementThresholds.medium, high: high ?? tracking.engagementThresholds.high };
	if (thresholds.medium >= thresholds.high) {
		const why = 'since a session is medium from the lower score and high from the higher one';
		if (medium === undefined) {
			throw inputError('overrides.highThreshold', `is ${high}: give a score higher than the site config’s medium threshold (${thresholds.medium}), ${why}`);
		}
		const highShown = high === undefined ? `the site config’s high threshold (${thresholds.high})` : `${labelOf(properties, 'overrides.highThreshold')} (${high})`;
		throw inputError('overrides.mediumThreshold', `is ${medium}: give a score lower than ${highShown}, ${why}`);
	}
	return {
		sessionTimeout: overrideOf(overrides, 'sessionTimeout') ?? tracking.sessionTimeout,
		maxSessionDuration: overrideOf(overrides, 'maxSessionDuration') ?? tracking.maxSessionDuration,
		engagementThresholds: thresholds,
	};
}

interface SiteBatch {
	site: ResolvedSite;
	options: VisitorProcessorOptions;
	events: IncomingEvent[];
	/** The items of the batch, in input order. */
	owners: number[];
}

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
		const input = nodeOption<'event' | 'batch'>(this, properties, 'input');
		// Overrides without an expression are the same for every item: read once, checked once per site.
		const set = this.getNode().parameters.overrides;
		const constant = !set || Object.values(set).every((value) => typeof value !== 'string' || !value.startsWith('='));
		const constantOptions = new Map<string, VisitorProcessorOptions>();
		const optionsFor = (site: ResolvedSite, i: number): VisitorProcessorOptions => {
			if (!constant) return optionsOf(collectionParameter(this, 'overrides', i), site.config.tracking);
			let options = constantOptions.get(site.id);
			if (!options) constantOptions.set(site.id, (options = optionsOf(collectionParameter(this, 'overrides', i), site.config.tracking)));
			return options;
		};

		// Items are grouped per site and settings so each site's events are sessionized together in
		// one pass; per-item validation errors stay with their item.
		const batches = new Map<string, SiteBatch>();
		const failures = new Map<number, unknown>();
		const eventsOfItem = new Map<number, IncomingEvent[]>();
		for (let i = 0; i < items.length; i++) {
			try {
				const site = await sites.siteOf(siteKeyOf(this, i));
				const options = optionsFor(site, i);
				const raw = input === 'batch' ? items[i].json.events : [items[i].json];
				if (!Array.isArray(raw)) {
					throw inputError('events', 'is not an array; set Input to "One Event per Item", or emit one item per visitor or per delivery in the CRM Tracker Trigger');
				}
				const events = raw.map((json, index) => asEvent(json, input === 'batch' ? `events[${index}]` : 'the item'));
				const key = `${site.id}|${options.sessionTimeout}|${options.maxSessionDuration}|${options.engagementThresholds.medium}|${options.engagementThresholds.high}`;
				let batch = batches.get(key);
				if (!batch) batches.set(key, (batch = { site, options, events: [], owners: [] }));
				batch.events.push(...events);
				batch.owners.push(i);
				eventsOfItem.set(i, events);
			} catch (error) {
				failures.set(i, error);
			}
		}

		const outcomes = new Map<IncomingEvent, EventOutcome>();
		for (const { site, options, events, owners } of batches.values()) {
			try {
				for (const [event, outcome] of await processEvents(sql, site, events, options)) outcomes.set(event, outcome);
			} catch {
				// Item by item in input order, so the error names the item that caused it and the others
				// still commit; what the batch committed before failing is rebuilt unchanged (an event id
				// is its idempotency key).
				for (const owner of owners) {
					try {
						for (const [event, outcome] of await processEvents(sql, site, eventsOfItem.get(owner) as IncomingEvent[], options)) outcomes.set(event, outcome);
					} catch (error) {
						failures.set(owner, error);
					}
				}
			}
		}

		const output: INodeExecutionData[] = [];
		let erased = 0;
		for (let i = 0; i < items.length; i++) {
			const given = eventsOfItem.get(i) ?? [];
			const refused = given.findIndex((event) => outcomes.get(event) instanceof InputError);
			if (refused >= 0) failures.set(i, eventProblem(outcomes.get(given[refused]) as InputError, input === 'batch' ? `events[${refused}]` : 'the item'));
			if (failures.has(i)) {
				output.push(failedItem(this, glue, failures.get(i), i));
				continue;
			}
			// Events of a browser erased while they were on their way are not stored again, nor passed on.
			const events = given.filter((event) => !(outcomes.get(event) instanceof ErasedPerson));
			if (events.length === 0 && given.length > 0) {
				erased += 1;
				continue;
			}
			const sessionOf = (event: IncomingEvent) => (outcomes.get(event) as IDataObject | undefined) ?? null;
			const json: IDataObject =
				input === 'batch'
					? { ...items[i].json, events: events.map((event) => ({ ...event, session: sessionOf(event) })) }
					: { ...items[i].json, session: sessionOf(events[0]) };
			output.push({ json, pairedItem: { item: i } });
		}
		logErasedItems(this, erased);
		return [output];
	}
}
