import {
	NodeOperationError,
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeTypeDescription,
} from 'n8n-workflow';

import { signedHeaders } from '../../lib/signing';
import { chunk, groupBySite, handOffDelivery, handOffUrl, ItemSiteError } from './handOff';

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
		properties: [
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
				typeOptions: { minValue: 1, maxValue: 1000 },
				default: 100,
				description: 'The items are posted in deliveries of at most this many, in order',
			},
			{
				displayName: 'Timeout (Seconds)',
				name: 'timeoutSeconds',
				type: 'number',
				typeOptions: { minValue: 1 },
				default: 120,
				description: 'How long to wait for the next workflow to finish a delivery',
			},
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		if (items.length === 0) return [[]];
		const target = this.getNodeParameter('target', 0) as string;
		if (!target.trim()) throw new NodeOperationError(this.getNode(), 'Target is empty: give the webhook path of the next workflow’s CRM Tracker Trigger (e.g. crm-conversion-detector) or its full URL');
		const configuredBase = (this.getNodeParameter('webhookBaseUrl', 0, '') as string).trim();
		const webhookBase = configuredBase || `${this.getInstanceBaseUrl().replace(/\/+$/, '')}/webhook`;
		let url: string;
		try {
			url = handOffUrl(target, webhookBase);
			new URL(url);
		} catch {
			throw new NodeOperationError(this.getNode(), `Target "${target}" with Webhook Base URL "${webhookBase}" is not a valid URL: give a webhook path or a full http(s) URL`);
		}
		const batchSize = this.getNodeParameter('batchSize', 0, 100) as number;
		const timeout = (this.getNodeParameter('timeoutSeconds', 0, 120) as number) * 1000;
		const { webhookSecret } = await this.getCredentials<{ webhookSecret: string }>('trackingCrmApi');
		if (!webhookSecret) throw new NodeOperationError(this.getNode(), 'The Tracking CRM API credential has no Webhook Secret: the next workflow’s trigger refuses unsigned deliveries');

		let groups: ReturnType<typeof groupBySite>;
		try {
			groups = groupBySite(items.map((item) => item.json));
		} catch (error) {
			if (!(error instanceof ItemSiteError)) throw error;
			throw new NodeOperationError(this.getNode(), error.message, { itemIndex: error.index, description: 'The CRM nodes and the CRM Tracker Trigger put the site key into every item; keep the "site" field when items pass through other nodes.' });
		}
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
				throw new NodeOperationError(this.getNode(), `The next workflow at ${url} could not be reached`, {
					itemIndex: part.indexes[0],
					// The cause stays out of the message: n8n replaces a message naming a socket error code.
					description: `${(error as Error).message}. Is n8n reachable there and the target workflow published? The delivery is retried as a whole, and CRM nodes write nothing twice.`,
				});
			}
			if (response.statusCode < 200 || response.statusCode >= 300) {
				const answer = typeof response.body === 'string' ? response.body.slice(0, 500) : JSON.stringify(response.body ?? '').slice(0, 500);
				throw new NodeOperationError(this.getNode(), `The next workflow at ${url} answered ${response.statusCode}: ${answer}`, {
					itemIndex: part.indexes[0],
					description: response.statusCode === 404 ? 'No published workflow listens on that path: import and publish it (scripts/import-workflows).' : 'The next workflow failed; the whole delivery will be retried, and CRM nodes write nothing twice.',
				});
			}
		}
		return [items.map((item, index) => ({ json: { ...(item.json as IDataObject) }, pairedItem: { item: index } }))];
	}
}
