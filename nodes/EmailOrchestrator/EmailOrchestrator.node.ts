import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';

import { crmDatabaseCredential, siteKeyOrAllProperty, siteMethods } from '../shared/descriptions';
import * as enroll from './actions/enroll.operation';
import * as enrollByTrigger from './actions/enrollByTrigger.operation';
import * as handleCrmItems from './actions/handleCrmItems.operation';
import * as handleEmailEvent from './actions/handleEmailEvent.operation';
import { router } from './actions/router';
import * as sendDue from './actions/sendDue.operation';

const versionDescription: INodeTypeDescription = {
	displayName: 'CRM Email Orchestrator',
	name: 'emailOrchestrator',
	icon: 'file:emailOrchestrator.svg',
	group: ['output'],
	version: 1,
	subtitle:
		'={{ $parameter["operation"] === "enroll" ? "Enroll" : $parameter["operation"] === "enrollByTrigger" ? "Enroll by Trigger and Send" : $parameter["operation"] === "sendDue" ? "Send Due" : $parameter["operation"] === "handleCrmItems" ? "Handle CRM Items" : "Handle Email Event" }}',
	description: 'Enroll leads in email sequences and send each step on time, once, tracked and unsubscribable',
	defaults: { name: 'CRM Email Orchestrator' },
	// Not offered to AI agents: two operations send email to leads, and n8n offers a node as a
	// tool with all its operations. Workflows call it on schedules and triggers instead.
	inputs: ['main'],
	outputs: ['main'],
	credentials: [
		{ ...crmDatabaseCredential },
		{
			// Send Due and Enroll by Trigger and Send sign their links with it and check it is there
			// (helpers/context.ts apiCredentialOf); every operation reads its PII keys, for sites with
			// privacy.encryptPii. n8n reads no credential an operation does not show, nor makes one
			// required for some operations only, so it is optional and shown for all.
			name: 'trackingCrmApi',
			required: false,
		},
		{
			// eslint-disable-next-line n8n-nodes-base/node-class-description-credentials-name-unsuffixed -- n8n's own SMTP credential
			name: 'smtp',
			required: true,
			displayOptions: { show: { operation: ['sendDue', 'enrollByTrigger', 'handleCrmItems'] } },
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
				{
					name: 'Handle CRM Items',
					value: 'handleCrmItems',
					action: 'Handle the items of the CRM workflows',
					description: 'What workflow 06 does with a delivery: handle email events, end the sequences a conversion exits, enroll leads by trigger and send what is due, each by the item’s own fields',
				},
				{
					name: 'Handle Email Event',
					value: 'handleEmailEvent',
					action: 'Handle an email event',
					description: 'Unenroll a lead that unsubscribed, bounced or complained, or reached a conversion its sequences end on; start the sequences a confirmed double opt-in waited for',
				},
				{
					name: 'Send Due',
					value: 'sendDue',
					action: 'Send the due sequence emails',
					description: 'Send every step whose time has come, once each, after enrolling the leads whose recorded stage change a lost hand-off never reported',
				},
			],
			default: 'sendDue',
		},
		siteKeyOrAllProperty,
		{
			displayName:
				'Sequences, their triggers (stage, tag, event), the conversions they end on (exitOn), quiet hours and the daily email cap come from the site config (crm.emailSequences, crm.maxEmailsPerDay; the CRM Lead Scorer’s Get Site Settings operation lists them), and so do the marketing consent a lead needs and the double opt-in (privacy.requireMarketingConsent, privacy.doubleOptIn, privacy.confirmationEmail).',
			name: 'siteConfigNotice',
			type: 'notice',
			default: '',
		},
		...enroll.description,
		...enrollByTrigger.description,
		...sendDue.description,
		...handleEmailEvent.description,
		...handleCrmItems.description,
	],
};

export class EmailOrchestrator implements INodeType {
	description: INodeTypeDescription = versionDescription;

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		return await router.call(this, versionDescription.properties);
	}
}
