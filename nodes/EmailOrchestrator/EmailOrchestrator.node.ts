import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';

import * as enroll from './actions/enroll.operation';
import * as enrollByTrigger from './actions/enrollByTrigger.operation';
import * as handleEmailEvent from './actions/handleEmailEvent.operation';
import { router } from './actions/router';
import * as sendDue from './actions/sendDue.operation';

export class EmailOrchestrator implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Email Orchestrator',
		name: 'emailOrchestrator',
		icon: 'file:emailOrchestrator.svg',
		group: ['output'],
		version: 1,
		subtitle: '={{$parameter["operation"]}}',
		description: 'Enroll leads in email sequences and send each step on time, once, tracked and unsubscribable',
		defaults: { name: 'CRM Email Orchestrator' },
		usableAsTool: true,
		inputs: ['main'],
		outputs: ['main'],
		credentials: [
			{
				// eslint-disable-next-line n8n-nodes-base/node-class-description-credentials-name-unsuffixed
				name: 'postgres',
				required: true,
			},
			{
				name: 'trackingCrmApi',
				required: true,
				displayOptions: { show: { operation: ['sendDue', 'enrollByTrigger'] } },
			},
			{
				name: 'smtp',
				required: true,
				displayOptions: { show: { operation: ['sendDue', 'enrollByTrigger'] } },
			},
		],
		properties: [
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				options: [
					{ name: 'Enroll', value: 'enroll', action: 'Enroll a lead in a sequence', description: 'Start a lead on a sequence; enrolling again changes nothing' },
					{
						name: 'Enroll by Trigger and Send',
						value: 'enrollByTrigger',
						action: 'Enroll a lead by sequence triggers and send what is due',
						description: 'Enroll the lead in every sequence whose trigger (stage, tag, event) it meets, then send its steps that are due now',
					},
					{ name: 'Send Due', value: 'sendDue', action: 'Send the due sequence emails', description: 'Send every step whose time has come, once each' },
					{
						name: 'Handle Email Event',
						value: 'handleEmailEvent',
						action: 'Handle an email event',
						description: 'Unenroll a lead that unsubscribed, bounced, complained or converted',
					},
				],
				default: 'sendDue',
			},
			{
				displayName: 'Site Key',
				name: 'siteKey',
				type: 'string',
				required: true,
				default: '={{ $json.site }}',
				description: 'Public key of the site (site.key in its config). For Send Due, * sends for every site with steps due.',
			},
			...enroll.description,
			...enrollByTrigger.description,
			...sendDue.description,
			...handleEmailEvent.description,
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		return await router.call(this);
	}
}
