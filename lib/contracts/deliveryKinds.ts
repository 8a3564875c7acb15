/**
 * The names of the receiver → n8n delivery (lib/contracts/delivery.ts) as plain constants, for
 * code that must not bundle zod: what an email event can be, the kind each item the CRM
 * Tracker Trigger emits carries, and the arrays a delivery's entries are in.
 */

/** What the email routes record and forward to the Email Orchestrator; `confirm` is a double opt-in confirmed by its link. */
export const EMAIL_EVENT_TYPES = ['open', 'click', 'unsubscribe', 'confirm'] as const;

/** The `kind` of a trigger item: a tracking event, one visitor's events (an `events` array), a lead, or an email event. */
export const DELIVERY_ITEM_KINDS = ['event', 'events', 'lead', 'email-event'] as const;

/** The arrays of a delivery that hold its entries; a delivery has at least one of them. */
export const DELIVERY_ENTRY_ARRAYS = ['events', 'leads', 'emailEvents', 'items'] as const;

export type EmailEventType = (typeof EMAIL_EVENT_TYPES)[number];
export type DeliveryItemKind = (typeof DELIVERY_ITEM_KINDS)[number];
