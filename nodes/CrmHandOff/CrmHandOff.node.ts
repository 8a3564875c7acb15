import {
	NodeOperationError,
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeProperties,
	type INodeType,
	type INodeTypeDescription,
} from 'n8n-workflow';

import { signedHeaders } from '../../lib/signing';
import { failedItem, nodeErrorOf, type ItemGlue } from '../shared/items';
import { numberParameter, textParameter } from '../shared/parameters';
import { chunk, groupBySite, handOffDelivery, handOffUrl, NO_SITE_KEY } from './handOff';

const properties: INodeProperties[] = [
	{
		displayName: 'Target',
		name: 'target',
		type: 'string',
		required: true,
		default: 'crm-conversion-detector',
		placeholder: 'crm-conversion-detector or https://n8n.example.com/webhook/crm-conversion-detector',
		description: 'Webhook path of the next workflow’s CRM Tracker Trigger on this n8n, or its full URL',
	},
	{
		displayName: 'Webhook Base URL',
		name: 'webhookBaseUrl',
		type: 'string',
		default: '',
		placeholder: 'http://127.0.0.1:5678/webhook',
		description: 'Where this n8n’s production webhooks are reached, for a Target given as a path. Empty: this instance’s own URL followed by /webhook.',
	},
	{
		displayName: 'Items per Delivery',
		name: 'batchSize',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 1000, numberPrecision: 0 },
		default: 100,
		description: 'The items are posted in deliveries of at most this many, in order',
	},
	{
		displayName: 'Timeout (Seconds)',
		name: 'timeoutSeconds',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 3600 },
		default: 120,
		description: 'How long to wait for the next workflow to finish a delivery',
	},
];

interface HandOffSettings {
	url: string;
	webhookSecret: string;
	target: string;
	batchSize: number;
	timeout: number;
}

/** Where and how the node hands on, the same for every delivery; a wrong setting names its field. */
async function handOffSettings(context: IExecuteFunctions, glue: ItemGlue): Promise<HandOffSettings> {
	let target: string;
	let configuredBase: string;
	let batchSize: number;
	let timeout: number;
	try {
		target = textParameter(context, 'target', 0).trim();
		configuredBase = textParameter(context, 'webhookBaseUrl', 0).trim();
		batchSize = numberParameter(context, properties, 'batchSize', 0);
		timeout = numberParameter(context, properties, 'timeoutSeconds', 0) * 1000;
	} catch (error) {
		throw nodeErrorOf(context, glue, error, 0);
	}
	if (!target) throw new NodeOperationError(context.getNode(), 'Target is empty: give the webhook path of the next workflow’s CRM Tracker Trigger (e.g. crm-conversion-detector) or its full URL');
	const webhookBase = configuredBase || `${context.getInstanceBaseUrl().replace(/\/+$/, '')}/webhook`;
	let url: string;
	try {
		url = handOffUrl(target, webhookBase);
		new URL(url);
	} catch {
		throw new NodeOperationError(context.getNode(), `Target "${target}" with Webhook Base URL "${webhookBase}" is not a valid URL: give a webhook path or a full http(s) URL`);
	}
	const { webhookSecret } = await context.getCredentials<{ webhookSecret: string }>('trackingCrmApi');
	if (!webhookSecret) throw new NodeOperationError(context.getNode(), 'The Tracking CRM API credential has no Webhook Secret: the next workflow’s trigger refuses unsigned deliveries');
	return { url, webhookSecret, target, batchSize, timeout };
}

/**
 * What the next workflow said: the message of a JSON answer (the trigger's refusals and n8n's own
 * errors carry one, n8n's beside its stack trace), else the start of the text.
 */
function answerOf(body: unknown): string {
	const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
	try {
		const { message } = JSON.parse(text) as { message?: unknown };
		if (typeof message === 'string' && message) return message.slice(0, 500);
	} catch {
		// Not JSON: the text itself says it.
	}
	return text.slice(0, 500);
}

export class CrmHandOff implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Hand Off',
		name: 'crmHandOff',
		icon: 'file:crmHandOff.svg',
		group: ['output'],
		version: 1,
		subtitle: '={{"to " + $parameter["target"]}}',
		description: 'Hands items on to the next CRM workflow: a signed POST to its CRM Tracker Trigger, answered when that workflow has finished',
		defaults: { name: 'CRM Hand Off' },
		// Not offered to AI agents: it runs other workflows (which write to the CRM and send email).
		inputs: ['main'],
		outputs: ['main'],
		credentials: [{ name: 'trackingCrmApi', required: true }],
		properties,
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		if (items.length === 0) return [[]];
		const glue: ItemGlue = { properties };
		let settings: HandOffSettings;
		try {
			settings = await handOffSettings(this, glue);
		} catch (error) {
			// The same for every delivery: nothing is handed on, and under Continue On Fail every item says why.
			return [items.map((_, index) => failedItem(this, glue, error, index))];
		}
		const { url, webhookSecret, target, batchSize, timeout } = settings;

		const { groups, unsigned } = groupBySite(items.map((item) => item.json));
		// An item without a site stops the node, or with Continue On Fail goes to the error output while the others are handed on.
		const failed = new Map(unsigned.map((index) => [index, failedItem(this, glue, new NodeOperationError(this.getNode(), `Item ${index} ${NO_SITE_KEY}`, { itemIndex: index }), index)]));
		const parts = groups.flatMap(({ site, indexes }) => chunk(indexes, batchSize).map((part) => ({ site, indexes: part })));
		for (const part of parts) {
			const delivery = handOffDelivery(
				part.indexes.map((index) => items[index].json as Record<string, unknown>),
				part.site,
				target,
			);
			const body = JSON.stringify(delivery);
			let response: { statusCode: number; body: unknown };
			try {
				response = (await this.helpers.httpRequest({
					method: 'POST',
					url,
					body,
					headers: signedHeaders(webhookSecret, part.site, body, delivery.deliveryId),
					json: false,
					returnFullResponse: true,
					ignoreHttpStatusErrors: true,
					timeout,
				})) as { statusCode: number; body: unknown };
			} catch (error) {
				// The cause stays out of the message: n8n replaces a message naming a socket error code.
				const unreachable = new NodeOperationError(this.getNode(), `The next workflow at ${url} could not be reached`, {
					itemIndex: part.indexes[0],
					description: `${(error as Error).message}. Is n8n reachable there and the target workflow published? The delivery is retried as a whole, and CRM nodes write nothing twice.`,
				});
				for (const index of part.indexes) failed.set(index, failedItem(this, glue, unreachable, index));
				continue;
			}
			if (response.statusCode < 200 || response.statusCode >= 300) {
				const refused = new NodeOperationError(this.getNode(), `The next workflow at ${url} answered ${response.statusCode}: ${answerOf(response.body)}`, {
					itemIndex: part.indexes[0],
					description: response.statusCode === 404 ? 'No published workflow listens on that path: import and publish it (scripts/import-workflows).' : 'The next workflow failed; the whole delivery will be retried, and CRM nodes write nothing twice.',
				});
				// Without Continue On Fail this throws: the node fails and the whole delivery is retried.
				for (const index of part.indexes) failed.set(index, failedItem(this, glue, refused, index));
			}
		}
		return [items.map((item, index) => failed.get(index) ?? { json: { ...(item.json as IDataObject) }, pairedItem: { item: index } })];
	}
}
