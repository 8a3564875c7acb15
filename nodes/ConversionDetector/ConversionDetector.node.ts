import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';
import { z } from 'zod/v4';

import { deliveredEventSchema } from '../../lib/contracts/delivery';
import { siteConfigSchema, type ConversionRule } from '../../lib/contracts/siteConfig';
import { formatIssues, toFieldIssues } from '../../lib/contracts/issues';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, itemParameter, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, inputError, nodeOption } from '../shared/items';
import { numberParameter, optionParameter, shownValue } from '../shared/parameters';
import { SiteResolver } from '../shared/subjects';
import { compilePathPattern } from '../shared/paths';
import { detectConversions, type DetectEntry, type RecordedConversion } from './store';

const eventIdSchema = deliveredEventSchema.shape.id;

/** An event's id as the delivery contract takes it (a UUID, lowercased), or undefined. */
function eventIdOf(value: unknown): string | undefined {
	const parsed = eventIdSchema.safeParse(value);
	return parsed.success ? parsed.data : undefined;
}

// The site config's rule schema: a value the conversions table cannot hold is refused there, naming its field.
const rulesSchema = siteConfigSchema.shape.crm.unwrap().shape.conversionRules.unwrap();

function parseRules(text: unknown): ConversionRule[] {
	let input = text;
	if (typeof text === 'string') {
		try {
			input = JSON.parse(text);
		} catch (error) {
			throw inputError('rules', `is not valid JSON: ${(error as Error).message}`);
		}
	}
	const parsed = rulesSchema.safeParse(input);
	if (!parsed.success) throw inputError('rules', `is not a list of conversion rules:\n${formatIssues(toFieldIssues(parsed.error as z.ZodError, input))}`);
	for (const rule of parsed.data) if (rule.urlPattern) compilePathPattern(rule.urlPattern);
	return parsed.data;
}

const properties: INodeProperties[] = [
	siteKeyProperty,
	{
		displayName: 'Input',
		name: 'input',
		type: 'options',
		options: [
			{ name: 'One Event per Item', value: 'event', description: 'Items as the CRM Visitor Processor outputs them per event' },
			{
				name: 'Events Array per Item',
				value: 'batch',
				description: 'Each item holds an "events" array (the Visitor Processor’s batches): each converting event goes out as an item of its own, items without one on Not Converted',
			},
		],
		default: 'event',
	},
	{
		displayName: 'Event ID',
		name: 'eventId',
		type: 'string',
		required: true,
		default: '={{ $json.id }}',
		description: 'The tracked event to check; the CRM Visitor Processor must have processed it. The rules read the event as stored (type, name, URL), not the item’s fields.',
		displayOptions: { show: { input: ['event'] } },
	},
	{
		displayName: 'Rules',
		name: 'ruleSource',
		type: 'options',
		options: [
			{ name: 'From the Site Config', value: 'site', description: 'The site’s crm.conversionRules' },
			{ name: 'Defined Here', value: 'node', description: 'A JSON list of rules in this node' },
		],
		default: 'site',
	},
	{
		displayName: 'Conversion Rules',
		name: 'rules',
		type: 'json',
		default: '[{ "name": "contact-request", "event": "form_submit", "urlPattern": "/contact*", "value": 50, "currency": "EUR" }]',
		description: 'Each rule: name, and any of event (type or custom name), urlPattern (path glob), minEngagementScore (0–100, what the session had reached at the event); value and currency',
		displayOptions: { show: { ruleSource: ['node'] } },
	},
	{
		displayName: 'Time-Decay Half-Life (Days)',
		name: 'halfLifeDays',
		type: 'number',
		typeOptions: { minValue: 0.01 },
		default: 7,
		description: 'In the time-decay model, a touch this many days older gets half the credit',
	},
	{
		displayName: 'Lookback Window (Days)',
		name: 'lookbackDays',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 90,
		description: 'Touches older than this before the conversion get no credit',
	},
		];

export class ConversionDetector implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Conversion Detector',
		name: 'conversionDetector',
		icon: 'file:conversionDetector.svg',
		group: ['transform'],
		version: 1,
		description: 'Detect goals reached by tracked events and credit the visitor’s touchpoints under six attribution models',
		defaults: { name: 'CRM Conversion Detector' },
		usableAsTool: true,
		inputs: ['main'],
		// eslint-disable-next-line n8n-nodes-base/node-class-description-outputs-wrong -- two outputs, like n8n's If node
		outputs: ['main', 'main'],
		outputNames: ['Converted', 'Not Converted'],
		credentials: [{ ...crmDatabaseCredential }],
		properties,
	};

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const { sql, credentials } = await crmDatabase(this);
		const glue = { properties, database: credentials };
		const sites = new SiteResolver(sql);
		const input = nodeOption<'event' | 'batch'>(this, properties, 'input');

		// Every item's events are checked together per site: one lookup for all of them, one write.
		const perSite = new Map<string, { site: { id: string; domain: string }; entries: DetectEntry[]; owners: Array<{ item: number; event: IDataObject }> }>();
		const failures = new Map<number, unknown>();
		for (let i = 0; i < items.length; i++) {
			try {
				const site = await sites.siteOf(siteKeyOf(this, i));
				const rules = optionParameter(this, properties, 'ruleSource', i) === 'node' ? parseRules(this.getNodeParameter('rules', i)) : site.config.crm.conversionRules;
				const options = {
					halfLifeDays: numberParameter(this, properties, 'halfLifeDays', i),
					lookbackDays: numberParameter(this, properties, 'lookbackDays', i),
					hashRouting: site.config.tracking.hashRouting,
				};
				const json = items[i].json;
				const events = input === 'batch' ? batchEvents(json) : [{ id: eventIdParameter(this, i) }];
				const group = perSite.get(site.id) ?? { site: { id: site.id, domain: site.domain }, entries: [], owners: [] };
				perSite.set(site.id, group);
				for (const event of events) {
					group.entries.push({ eventId: (event.id as string).toLowerCase(), rules, options });
					group.owners.push({ item: i, event });
				}
			} catch (error) {
				failures.set(i, error);
			}
		}

		const conversionsOf = new Map<number, Array<{ event: IDataObject; conversions: RecordedConversion[] }>>();
		for (const group of perSite.values()) {
			let results: Array<RecordedConversion[] | Error | undefined>;
			try {
				results = await detectConversions(sql, group.site, group.entries);
			} catch {
				// Item by item, so the error names the item that caused it and the others are still
				// recorded; a conversion is keyed by its event and rule, so none is recorded twice.
				results = new Array(group.entries.length);
				const positionsOf = new Map<number, number[]>();
				group.owners.forEach(({ item }, n) => positionsOf.set(item, [...(positionsOf.get(item) ?? []), n]));
				for (const [item, positions] of positionsOf) {
					try {
						const alone = await detectConversions(sql, group.site, positions.map((n) => group.entries[n]));
						positions.forEach((n, k) => (results[n] = alone[k]));
					} catch (error) {
						failures.set(item, error);
					}
				}
			}
			results.forEach((result, n) => {
				const { item, event } = group.owners[n];
				if (result === undefined) return;
				if (result instanceof Error) {
					if (!failures.has(item)) failures.set(item, input === 'batch' ? inputError('events', `[${(items[item].json.events as IDataObject[]).indexOf(event)}]: ${result.message}`) : result);
				} else if (result.length > 0) conversionsOf.set(item, [...(conversionsOf.get(item) ?? []), { event, conversions: result }]);
			});
		}

		const converted: INodeExecutionData[] = [];
		const notConverted: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			if (failures.has(i)) {
				notConverted.push(failedItem(this, glue, failures.get(i), i));
				continue;
			}
			const json = items[i].json;
			const reached = conversionsOf.get(i);
			if (!reached) {
				notConverted.push({ json, pairedItem: { item: i } });
				continue;
			}
			if (input === 'event') {
				converted.push({ json: { ...json, conversions: reached[0].conversions as unknown as IDataObject[] }, pairedItem: { item: i } });
				continue;
			}
			// A converting event of a batch goes on as the per-event items do: the item's fields, the event's, its conversions.
			const envelope = { ...json };
			delete envelope.events;
			for (const { event, conversions } of reached) {
				converted.push({ json: { ...envelope, ...event, kind: 'event', conversions: conversions as unknown as IDataObject[] }, pairedItem: { item: i } });
			}
		}
		return [converted, notConverted];
	}
}

/** The Event ID of an item, which the lookup and the conversion rows key on. */
function eventIdParameter(context: IExecuteFunctions, itemIndex: number): string {
	const value = itemParameter(context, 'eventId', itemIndex);
	const id = eventIdOf(value);
	if (id === undefined) throw inputError('eventId', `is ${shownValue(value)}: give the id of a tracked event (a UUID), such as {{ $json.id }}`);
	return id;
}

/** The events of a batch item, each an object with its id: a missing or malformed "events" names the field. */
function batchEvents(json: IDataObject): IDataObject[] {
	const events = json.events;
	if (!Array.isArray(events)) throw inputError('events', 'is not an array; set Input to "One Event per Item", or give the item an "events" array (the Visitor Processor’s batch output)');
	events.forEach((event, index) => {
		if (event === null || typeof event !== 'object' || Array.isArray(event)) throw inputError('events', `[${index}] is not an event object`);
		const id = (event as IDataObject).id;
		if (eventIdOf(id) === undefined) throw inputError('events', `[${index}].id is ${shownValue(id)}: each event needs the id it was tracked under (a UUID)`);
	});
	return events as IDataObject[];
}
