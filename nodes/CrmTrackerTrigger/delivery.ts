import type { Delivery } from '../../lib/contracts/delivery';
import type { DeliveryItemKind } from '../../lib/contracts/deliveryKinds';
import { isSealedSubmission, openSubmission, type PiiCipher } from '../../lib/pii';
import { eventsByVisitor } from '../shared/events';

export type { Delivery };

type Item = Record<string, unknown> & { site: string; deliveryId?: string };

export type Emit = 'perEvent' | 'perVisitor' | 'perBatch';

/**
 * Items for the workflow from a parsed delivery (lib/contracts/delivery.ts): one per event, lead
 * or email event, each of the contract's shape with its `kind` and its site (so every downstream
 * node knows which site a row belongs to); or one per visitor holding that visitor's events in
 * delivery order (kind `events`), leads and email events one each; or the delivery whole.
 */
export function deliveryItems(delivery: Pick<Delivery, 'site' | 'siteId' | 'deliveryId' | 'destination' | 'events' | 'leads' | 'items'> & Partial<Pick<Delivery, 'emailEvents'>>, emit: Emit): Item[] {
	const origin = { site: delivery.site, siteId: delivery.siteId, deliveryId: delivery.deliveryId, destination: delivery.destination };
	const handedOn = delivery.items ?? [];
	const emailEvents = delivery.emailEvents ?? [];
	if (emit === 'perBatch') {
		const count = delivery.events.length + delivery.leads.length + emailEvents.length + handedOn.length;
		return count > 0 ? [{ ...origin, events: delivery.events, leads: delivery.leads, emailEvents, items: handedOn }] : [];
	}
	return [
		// A handed-on item keeps its own fields and kind, but never another site than the delivery's.
		...handedOn.map((item) => ({ ...origin, ...item, site: delivery.site, deliveryId: delivery.deliveryId })),
		...(emit === 'perVisitor'
			? [...eventsByVisitor(delivery.events)].map(([anonymousId, events]) => ({ kind: 'events' satisfies DeliveryItemKind, anonymousId, events, ...origin }))
			: delivery.events.map((event) => ({ ...event, kind: 'event' satisfies DeliveryItemKind, ...origin }))),
		...delivery.leads.map((lead) => ({ ...lead, kind: 'lead' satisfies DeliveryItemKind, ...origin })),
		...emailEvents.map((emailEvent) => ({ ...emailEvent, kind: 'email-event' satisfies DeliveryItemKind, ...origin })),
	];
}

/**
 * The delivery's leads with their personal fields opened: on a site with privacy.encryptPii the
 * receiver's outbox holds them sealed (server/ingest/store.ts) and sends them so. `cipherOf` is
 * asked only when a lead is sealed, with the site id the seals are bound to; a delivery of a site
 * that stores in clear, a hand-off's or a test delivery needs no keys.
 */
export function openLeads(body: Record<string, unknown>, cipherOf: (siteId: string) => PiiCipher): Record<string, unknown> {
	if (!Array.isArray(body.leads)) return body;
	const isLead = (entry: unknown): entry is { lead: Record<string, unknown> } =>
		typeof entry === 'object' && entry !== null && typeof (entry as { lead?: unknown }).lead === 'object' && (entry as { lead?: unknown }).lead !== null;
	if (!body.leads.some((entry) => isLead(entry) && isSealedSubmission(entry.lead))) return body;
	if (typeof body.siteId !== 'string' || !body.siteId) throw new SealedDeliveryError('siteId', 'is missing, and the delivery\'s leads are sealed for their site; only the receiver sends sealed leads, with its siteId');
	const cipher = cipherOf(body.siteId);
	return { ...body, leads: body.leads.map((entry) => (isLead(entry) ? { ...entry, lead: openSubmission(cipher, entry.lead) } : entry)) };
}

/** A delivery whose sealed leads cannot be opened as it stands; `field` is the body field at fault. */
export class SealedDeliveryError extends Error {
	constructor(
		readonly field: string,
		message: string,
	) {
		super(`${field} ${message}`);
		this.name = 'SealedDeliveryError';
	}
}
