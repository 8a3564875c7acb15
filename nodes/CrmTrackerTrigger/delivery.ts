/**
 * What the receiver's outbox posts to a workflow (see server/outbox/dispatcher.ts). Its `site`
 * is the site the delivery is signed for; the trigger refuses a body naming any other.
 */
export interface Delivery {
	site: string;
	siteId: string;
	destination: string;
	deliveryId: string;
	sentAt: string;
	events: Array<Record<string, unknown>>;
	leads: Array<Record<string, unknown>>;
	/** Opens, clicks and unsubscribes, for the Email Orchestrator's workflow. */
	emailEvents?: Array<Record<string, unknown>>;
	/** Items another workflow handed on with the CRM Hand Off node, each with its own fields. */
	items?: Array<Record<string, unknown>>;
}

type Item = Record<string, unknown> & { site: string; deliveryId: string };

/**
 * Items for the workflow: one per event or lead (each carrying its site, so every downstream
 * node knows which site a row belongs to), or the delivery whole.
 */
export function deliveryItems(delivery: Delivery, emit: 'perEvent' | 'perBatch'): Item[] {
	const origin = { site: delivery.site, siteId: delivery.siteId, deliveryId: delivery.deliveryId, destination: delivery.destination };
	const emailEvents = delivery.emailEvents ?? [];
	const handedOn = delivery.items ?? [];
	if (emit === 'perBatch') {
		const count = delivery.events.length + delivery.leads.length + emailEvents.length + handedOn.length;
		return count > 0 ? [{ ...origin, events: delivery.events, leads: delivery.leads, emailEvents, items: handedOn }] : [];
	}
	return [
		// A handed-on item keeps its own fields and kind, but never another site than the delivery's.
		...handedOn.map((item) => ({ ...origin, ...item, site: delivery.site, deliveryId: delivery.deliveryId })) as Item[],
		...delivery.events.map((event) => ({ ...event, kind: 'event', ...origin })),
		...delivery.leads.map((lead) => ({ ...lead, kind: 'lead', ...origin })),
		...emailEvents.map((emailEvent) => ({ ...emailEvent, kind: 'email-event', ...origin })),
	];
}
