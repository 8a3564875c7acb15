import type { ICredentialTestRequest, ICredentialType, INodeProperties } from 'n8n-workflow';

/**
 * The receiver side of the CRM: the secret its outbox signs webhooks with (checked by the CRM
 * Tracker Trigger), and where the receiver is, for nodes that build links to it.
 */
export class TrackingCrmApi implements ICredentialType {
	name = 'trackingCrmApi';

	displayName = 'Tracking CRM API';

	documentationUrl = 'https://github.com/tracking-crm/n8n-nodes-tracking-crm/blob/main/docs/nodes.md#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'Receiver URL',
			name: 'receiverUrl',
			type: 'string',
			default: 'http://127.0.0.1:3000',
			placeholder: 'https://crm.example.com',
			description: 'Where the receiver is reached (used for tracking links and the connection test)',
		},
		{
			displayName: 'Webhook Secret',
			name: 'webhookSecret',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description: 'The value of the environment variable named by integrations.webhookSecretEnv in the site config (CRM_WEBHOOK_SECRET by default)',
		},
		{
			displayName: 'Email Token Secret',
			name: 'emailTokenSecret',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description: 'The receiver’s EMAIL_TOKEN_SECRET, so emails carry open, click and unsubscribe links the receiver accepts',
		},
	];

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.receiverUrl}}',
			url: '/health',
			method: 'GET',
			ignoreHttpStatusErrors: true,
		},
	};
}
