import {
	NodeOperationError,
	type IDataObject,
	type IHookFunctions,
	type INodeExecutionData,
	type INodeProperties,
	type INodeType,
	type INodeTypeDescription,
	type IWebhookDescription,
	type IWebhookFunctions,
	type IWebhookResponseData,
} from 'n8n-workflow';

import { deliverySchema } from '../../lib/contracts/delivery';
import { toFieldIssues } from '../../lib/contracts/issues';
import { PiiCipher, piiKeyringFromCredential, piiKeyringFromEnv, PiiDecryptError, PiiKeyError } from '../../lib/pii';
import { foreignSiteField, SITE_HEADER, verifySignature } from '../../lib/signing';
import { checkedOption, checkedText, declaredNumber } from '../shared/parameters';
import { deliveryItems, openLeads, SealedDeliveryError, type Emit } from './delivery';

const EMIT: INodeProperties = {
	displayName: 'Emit',
	name: 'emit',
	type: 'options',
	options: [
		{ name: 'One Item per Event or Lead', value: 'perEvent', description: 'Each event and lead becomes its own item' },
		{
			name: 'One Item per Visitor',
			value: 'perVisitor',
			description: 'Each visitor’s events become one item (an "events" array, in delivery order); each lead its own item. Fewer items make long deliveries cheaper for n8n.',
		},
		{ name: 'One Item per Delivery', value: 'perBatch', description: 'The whole delivery as one item, events and leads in arrays' },
	],
	default: 'perEvent',
};

const RESPOND: INodeProperties = {
	displayName: 'Respond',
	name: 'responseMode',
	type: 'options',
	options: [
		{ name: 'Immediately', value: 'onReceived', description: 'Acknowledge the delivery as soon as it is verified; the receiver moves on' },
		{ name: 'When Last Node Finishes', value: 'lastNode', description: 'Answer with the items of the last node; a failing workflow makes the receiver retry' },
	],
	default: 'lastNode',
};

const SITES: INodeProperties = {
	displayName: 'Sites',
	name: 'sites',
	type: 'string',
	default: '',
	placeholder: 'nat-pets, shop-eu',
	description: 'Site keys this workflow accepts deliveries of, comma-separated. Empty: every site the webhook secret signs for.',
};

const REPLAY_WINDOW: INodeProperties = {
	displayName: 'Replay Window (Seconds)',
	name: 'toleranceSeconds',
	type: 'number',
	typeOptions: { minValue: 30, maxValue: 86400 },
	default: 300,
	description: 'Deliveries signed longer ago than this are refused, so a captured request cannot be replayed',
};

export class CrmTrackerTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Tracker Trigger',
		name: 'crmTrackerTrigger',
		icon: 'file:crmTrackerTrigger.svg',
		group: ['trigger'],
		// Version 2 behaves as 1 does; n8n reads the body of a version-1 trigger's request only after evaluating an expression for it.
		version: [1, 2],
		defaultVersion: 2,
		subtitle: '={{$parameter["path"]}}',
		description: 'Starts the workflow when the tracking receiver delivers events or leads; rejects anything not signed by the receiver',
		defaults: { name: 'CRM Tracker Trigger' },
		inputs: [],
		outputs: ['main'],
		credentials: [{ name: 'trackingCrmApi', required: true }],
		webhooks: [
			nativelyResolvable({
				name: 'default',
				httpMethod: 'POST',
				responseMode: '={{$parameter["responseMode"]}}',
				// Shown only when the trigger answers when the last node finishes (its default then applies):
				// answering at once, it is absent, and n8n answers its own "Workflow was started".
				responseData: '={{$parameter["responseData"]}}',
				path: '={{$parameter["path"]}}',
				isFullPath: true,
			}),
		],
		properties: [
			{
				displayName: 'Path',
				name: 'path',
				type: 'string',
				default: 'crm-visitor-processor',
				required: true,
				description: 'Webhook path; the site config’s integrations.webhookEndpoints must point here (e.g. /webhook/crm-visitor-processor)',
			},
			EMIT,
			RESPOND,
			{
				displayName: 'Response Data',
				name: 'responseData',
				type: 'options',
				options: [
					{ name: 'All Entries', value: 'allEntries', description: 'The items of the last node, as JSON' },
					{
						name: 'No Response Body',
						value: 'noData',
						description: 'Only the status: the receiver and the CRM Hand Off read nothing more, and n8n spares serializing every item of a large delivery',
					},
				],
				default: 'allEntries',
				displayOptions: { show: { responseMode: ['lastNode'] } },
			},
			REPLAY_WINDOW,
			SITES,
		],
	};

	/**
	 * n8n runs these when it activates the workflow, and when the editor listens for a test event. A
	 * setting that would refuse every delivery fails the editor's test listening at once, naming the
	 * field (and the embedded engine's start, which activates the same way). n8n 2 publishes a
	 * workflow in the background, where an error reaches only n8n's log and leaves the webhook
	 * unregistered (every delivery 404, nothing telling why): there it is logged, and the webhook is
	 * registered to answer each delivery 500 trigger_misconfigured naming the field, which the
	 * receiver shows as the delivery's last error.
	 */
	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				checkedOnActivation(this);
				return true;
			},
			async create(this: IHookFunctions): Promise<boolean> {
				checkedOnActivation(this);
				return true;
			},
			async delete(): Promise<boolean> {
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const req = this.getRequestObject();
		const res = this.getResponseObject();
		const credential = await this.getCredentials<{ webhookSecret: string; piiEncryptionKeys?: string; piiHashKey?: string }>('trackingCrmApi');
		const { webhookSecret } = credential;
		const raw = (req as unknown as { rawBody?: Buffer }).rawBody ?? JSON.stringify(req.body);
		let settings: TriggerSettings;
		try {
			settings = triggerSettings(this);
		} catch (error) {
			// The sender keeps the delivery and retries (5xx) until the workflow is fixed.
			const message = misconfiguration(this, error);
			this.logger.error(message, { node: this.getNode().name, workflowId: this.getWorkflow().id });
			res.status(500).json({ error: 'trigger_misconfigured', field: (error as TriggerSettingError).field, message });
			return { noWebhookResponse: true };
		}
		const { toleranceSeconds, emit, sites: allowed } = settings;
		const check = verifySignature(webhookSecret, raw, req.headers, { toleranceSeconds });
		if (!check.valid) {
			res.status(401).json({ error: 'invalid_signature', message: `Refused: ${check.reason}. Only the receiver, signing with the credential's webhook secret, may call this webhook.` });
			return { noWebhookResponse: true };
		}
		const site = check.site;
		if (allowed.length > 0 && !allowed.includes(site)) {
			res.status(403).json({ error: 'site_not_allowed', message: `Refused: this workflow accepts deliveries of ${allowed.join(', ')} only, not of site "${site}" (the trigger's Sites parameter)` });
			return { noWebhookResponse: true };
		}
		const body: unknown = req.body;
		if (typeof body !== 'object' || body === null || Array.isArray(body)) {
			res.status(400).json({ error: 'invalid_delivery', message: 'The body must be a delivery: a JSON object with "events" and "leads" arrays (from the receiver), or an "items" array (from a CRM Hand Off)' });
			return { noWebhookResponse: true };
		}
		const foreign = foreignSiteField(body as Record<string, unknown>, site);
		if (foreign) {
			res.status(400).json({
				error: 'site_mismatch',
				field: foreign,
				message: `Refused: ${foreign} names another site than the one the delivery is signed for ("${site}", header ${SITE_HEADER}); a delivery carries the data of its signed site only`,
			});
			return { noWebhookResponse: true };
		}
		let opened: Record<string, unknown>;
		try {
			// The credential's PII keys, else the n8n process' environment (the receiver's own, for its embedded engine).
			opened = openLeads(body as Record<string, unknown>, (siteId) => new PiiCipher(piiKeyringFromCredential(credential) ?? piiKeyringFromEnv(), siteId));
		} catch (error) {
			if (error instanceof SealedDeliveryError) {
				res.status(400).json({ error: 'invalid_delivery', field: error.field, message: `Refused: ${error.message}` });
				return { noWebhookResponse: true };
			}
			if (!(error instanceof PiiKeyError || error instanceof PiiDecryptError)) throw error;
			// The delivery is sound and the keys are not: the receiver keeps it and retries until they are.
			res.status(503).json({ error: 'pii_keys', message: `The delivery's leads are sealed (privacy.encryptPii) and cannot be opened here: ${error.message}` });
			return { noWebhookResponse: true };
		}
		// A delivery that leaves its site out is of the site it is signed for.
		const parsed = deliverySchema.safeParse({ ...opened, site });
		if (!parsed.success) {
			const issues = toFieldIssues(parsed.error, body, deliverySchema).map(({ field, message }) => ({ field, message }));
			res.status(400).json({
				error: 'invalid_delivery',
				field: issues[0]?.field,
				issues,
				message: `Refused: the body is no delivery of the receiver or of a CRM Hand Off: ${issues.map((issue) => `${issue.field} ${issue.message}`).join('; ')}`,
			});
			return { noWebhookResponse: true };
		}
		const items: INodeExecutionData[] = deliveryItems(parsed.data, emit).map((json) => ({ json: json as IDataObject }));
		if (items.length === 0) {
			res.status(200).json({ ok: true, items: 0 });
			return { noWebhookResponse: true };
		}
		return { workflowData: [items] };
	}
}

interface TriggerSettings {
	toleranceSeconds: number;
	emit: Emit;
	/** The site keys accepted; empty for every site the secret signs for. */
	sites: string[];
}

/** A wrong setting of the trigger, named by the label the editor shows. */
class TriggerSettingError extends NodeOperationError {
	field = '';
}

/** Why the workflow's trigger refuses every delivery, as the sender is told and n8n's log says it. */
const misconfiguration = (context: IHookFunctions | IWebhookFunctions, error: unknown): string =>
	`The workflow's ${context.getNode().name} is misconfigured, so no delivery is accepted until it is fixed in n8n: ${(error as Error).message}`;

/** The settings checked as the workflow is activated: see webhookMethods. */
function checkedOnActivation(context: IHookFunctions): void {
	try {
		triggerSettings(context);
	} catch (error) {
		if (context.getActivationMode() === 'manual') throw error;
		context.logger.error(misconfiguration(context, error), { node: context.getNode().name, workflowId: context.getWorkflow().id });
	}
}

/** The trigger's settings, each checked against its declaration; a wrong one is named with the fix. */
function triggerSettings(context: IHookFunctions | IWebhookFunctions): TriggerSettings {
	const setting = <T>(declaration: INodeProperties, checked: (value: unknown) => T): T => {
		try {
			return checked(context.getNodeParameter(declaration.name, declaration.default));
		} catch (error) {
			const problem = new TriggerSettingError(context.getNode(), `${declaration.displayName}: ${(error as Error).message}`);
			problem.field = declaration.displayName;
			throw problem;
		}
	};
	// n8n reads Respond itself: a value it does not know would fail each delivery with n8n's own 500.
	setting(RESPOND, (value) => checkedOption(RESPOND.name, value, RESPOND));
	return {
		// Not a number (NaN) would compare false against every age and let any old delivery through: refuse them all until it is set.
		toleranceSeconds: setting(REPLAY_WINDOW, (value) => declaredNumber([REPLAY_WINDOW], REPLAY_WINDOW.name, value)),
		emit: setting(EMIT, (value) => checkedOption<Emit>(EMIT.name, value, EMIT)),
		sites: setting(SITES, (value) => siteList(checkedText(SITES.name, value))),
	};
}

const PARAMETER_TEMPLATE = /^=\{\{\$parameter\["(\w+)"\](?: \|\| "(\w+)")?\}\}$/;

/**
 * The description with, under n8n's shared symbol, each `={{$parameter["…"]}}` field (or
 * `={{$parameter["…"] || "fallback"}}`) as the same read of the parameters: n8n 2 then answers a
 * delivery without starting its sandboxed expression engine. Older n8n ignores the symbol.
 */
function nativelyResolvable(description: IWebhookDescription): IWebhookDescription {
	const resolvers: Record<string, { template: string; resolve: (parameters: Record<string, unknown>) => unknown }> = {};
	for (const [field, value] of Object.entries(description)) {
		const [, name, fallback] = (typeof value === 'string' ? PARAMETER_TEMPLATE.exec(value) : null) ?? [];
		if (name) resolvers[field] = { template: value as string, resolve: (parameters) => (fallback === undefined ? parameters[name] : parameters[name] || fallback) };
	}
	return Object.assign(description, { [Symbol.for('n8n.webhookDescriptionResolvers')]: resolvers });
}

function siteList(text: string): string[] {
	return text
		.split(',')
		.map((entry) => entry.trim())
		.filter(Boolean);
}
