import { updateDisplayOptions, type IDataObject, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import { eventNames } from '../../shared/events';
import { piiCredentialOf } from '../../shared/leads';
import { forEachItem } from '../../shared/items';
import type { OperationContext } from '../helpers/context';
import { enrollByTrigger, senderOfNode, type NodeSender } from './enrollByTrigger.operation';
import { handleEmailEvent, type EmailEventInput } from './handleEmailEvent.operation';

const properties: INodeProperties[] = [
	{
		displayName:
			'Each item is handled by what it is: an email event (kind "email-event") as Handle Email Event handles it; a converting event (with the Conversion Detector’s "conversions") ends the sequences that exit on them, then enrolls its lead in the sequences that event triggers; any other item (a lead or stage change of the Lead Scorer) enrolls its lead by the sequences’ triggers and sends what is due, as Enroll by Trigger and Send does.',
		name: 'crmItemsNotice',
		type: 'notice',
		default: '',
	},
];

export const description = updateDisplayOptions({ show: { operation: ['handleCrmItems'] } }, properties);

export type CrmItemRoute = 'emailEvent' | 'conversion' | 'enroll';

/** What a CRM item asks of the orchestrator, by the fields the trigger and the CRM nodes give it. */
export function crmItemRoute(json: IDataObject): CrmItemRoute {
	if (json.kind === 'email-event') return 'emailEvent';
	if (Array.isArray(json.conversions)) return 'conversion';
	return 'enroll';
}

/** The email event a CRM item stands for, read from its own fields. */
function emailEventOf(json: IDataObject, route: 'emailEvent' | 'conversion'): EmailEventInput {
	const conversions = json.conversions as Array<{ leadId?: unknown }> | undefined;
	const fields = {
		eventType: route === 'conversion' ? 'conversion' : json.type,
		lead: route === 'conversion' ? conversions?.[0]?.leadId : json.leadId,
		occurredAt: json.occurredAt,
		conversions: json.conversions,
	};
	return (name) => fields[name];
}

/**
 * Workflow 06's delivery path in one node, reading each item's own fields: n8n 2 evaluates
 * expressions (the If nodes' conditions, the parameters' `{{ $json… }}`) in a sandbox, at a cost
 * larger than most items' work here.
 */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<INodeExecutionData[]> {
	const piiKeys = await piiCredentialOf(this);
	// The SMTP transport is opened only when an item enrolls: email events and conversions send nothing.
	let sender: NodeSender | undefined;
	try {
		return await forEachItem.call(this, context.glue, async (i) => {
			const json = this.getInputData()[i].json;
			const route = crmItemRoute(json);
			if (route === 'emailEvent') return await handleEmailEvent.call(this, context, piiKeys, i, emailEventOf(json, route));
			if (route === 'enroll') {
				sender ??= await senderOfNode(this);
				return await enrollByTrigger.call(this, context, sender, i, json.leadId || json.email, {}, []);
			}
			// A lead's converting event first ends the sequences that exit on it, then starts those it
			// triggers: once, when the Conversion Detector recorded it (a replay of it is a duplicate).
			const [exited] = await handleEmailEvent.call(this, context, piiKeys, i, emailEventOf(json, route));
			const recorded = (json.conversions as Array<{ leadId?: unknown; duplicate?: unknown }>).find((conversion) => conversion.duplicate !== true);
			const leadId = recorded?.leadId;
			if (typeof leadId !== 'string' || leadId === '') return [exited];
			sender ??= await senderOfNode(this);
			const [enrolled] = await enrollByTrigger.call(this, context, sender, i, leadId, {}, eventNames(json));
			return [{ ...exited, ...enrolled }];
		});
	} finally {
		sender?.transport.close();
	}
}
