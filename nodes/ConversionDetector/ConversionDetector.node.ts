import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';
import { z } from 'zod/v4';

import { siteConfigSchema, type ConversionRule } from '../../lib/contracts/siteConfig';
import { formatIssues, toFieldIssues } from '../../lib/contracts/issues';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, inputError } from '../shared/items';
import { SiteResolver } from '../shared/subjects';
import { compilePathPattern } from '../shared/paths';
import { detectConversions } from './store';

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
		displayName: 'Event ID',
		name: 'eventId',
		type: 'string',
		required: true,
		default: '={{ $json.id }}',
		description: 'The tracked event to check; the CRM Visitor Processor must have processed it',
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
		description: 'Each rule: name, and any of event (type or custom name), urlPattern (path glob), minEngagementScore (0–100); value and currency',
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
		const { prisma, credentials } = await crmDatabase(this);
		const glue = { properties, database: credentials };
		const sites = new SiteResolver(prisma);
		const converted: INodeExecutionData[] = [];
		const notConverted: INodeExecutionData[] = [];

		for (let i = 0; i < items.length; i++) {
			try {
				const site = await sites.siteOf(siteKeyOf(this, i));
				const rules = (this.getNodeParameter('ruleSource', i) as string) === 'node' ? parseRules(this.getNodeParameter('rules', i)) : site.config.crm.conversionRules;
				const eventId = String(this.getNodeParameter('eventId', i) ?? '').toLowerCase();
				const json = items[i].json;
				const conversions = await detectConversions(
					prisma,
					site.id,
					{ eventId, type: String(json.type ?? ''), name: json.name as string | undefined, url: json.url as string | undefined },
					rules,
					{ halfLifeDays: this.getNodeParameter('halfLifeDays', i) as number, lookbackDays: this.getNodeParameter('lookbackDays', i) as number, hashRouting: site.config.tracking.hashRouting },
				);
				const target = conversions.length > 0 ? converted : notConverted;
				target.push({ json: conversions.length > 0 ? { ...json, conversions: conversions as unknown as IDataObject[] } : json, pairedItem: { item: i } });
			} catch (error) {
				notConverted.push(failedItem(this, glue, error, i));
			}
		}
		return [converted, notConverted];
	}
}
