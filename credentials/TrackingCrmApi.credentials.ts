import type { ICredentialTestRequest, ICredentialType, INodeProperties } from 'n8n-workflow';

/**
 * The receiver side of the CRM: the secret its outbox signs webhooks with (checked by the CRM
 * Tracker Trigger), where the receiver is, for nodes that build links to it, and the keys of sites
 * with privacy.encryptPii (lib/pii.ts piiKeyringFromCredential reads them), so n8n keeps them
 * among its secrets rather than in its environment.
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
			description: 'Where the receiver is reached (used for tracking links); the credential test asks it at /tracking-crm',
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
		{
			displayName: 'PII Encryption Keys',
			name: 'piiEncryptionKeys',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			placeholder: '2026b:<key>,2026a:<key>',
			description:
				'Only for sites with privacy.encryptPii: the receiver’s PII_ENCRYPTION_KEYS, as it is (id:key entries, newest first, separated by commas; each key 32 bytes in base64). Leave it and PII Hash Key empty to use the PII_ENCRYPTION_KEYS and PII_HASH_KEY environment variables of the n8n process.',
		},
		{
			displayName: 'PII Hash Key',
			name: 'piiHashKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			description:
				'Only for sites with privacy.encryptPii: the receiver’s PII_HASH_KEY, as it is (32 bytes in base64), which finds leads by their address. Leave it and PII Encryption Keys empty to use the PII_ENCRYPTION_KEYS and PII_HASH_KEY environment variables of the n8n process.',
		},
	];

	/**
	 * Only the receiver answers GET /tracking-crm with `trackingCrmReceiver` (its version): any
	 * other answer (n8n's own URL, a web page, a 404, JSON of another service) fails the test.
	 * n8n fails a test when the rule's key has the rule's value; a missing key reads as undefined.
	 */
	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.receiverUrl}}',
			url: '/tracking-crm',
			method: 'GET',
			ignoreHttpStatusErrors: true,
		},
		rules: [
			{
				type: 'responseSuccessBody',
				properties: {
					key: 'trackingCrmReceiver',
					value: undefined,
					message: 'The Receiver URL does not answer like a Tracking CRM receiver: give the address the receiver (npm start) listens on, e.g. http://127.0.0.1:3000, not n8n’s own URL',
				},
			},
		],
	};
}
