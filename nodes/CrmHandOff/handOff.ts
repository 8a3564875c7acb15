import { randomUUID } from 'node:crypto';

import { isSignableSite } from '../../lib/signing';

/** The body a CRM Hand Off posts: a delivery the CRM Tracker Trigger of the next workflow accepts. */
export interface HandOffDelivery {
	site: string;
	siteId: string;
	destination: string;
	deliveryId: string;
	sentAt: string;
	events: [];
	leads: [];
	items: Array<Record<string, unknown>>;
}

/**
 * The webhook URL of the next workflow: a full http(s) URL as given, or a webhook path under
 * this n8n's own webhook base (so a bundled workflow works on any host and port).
 */
export function handOffUrl(target: string, webhookBaseUrl: string): string {
	const trimmed = target.trim();
	if (/^https?:\/\//i.test(trimmed)) return new URL(trimmed).toString();
	const base = webhookBaseUrl.replace(/\/+$/, '');
	return `${base}/${trimmed.replace(/^\/+/, '').replace(/^webhook\//, '')}`;
}

/** Splits items into deliveries of at most `size` (a whole number of 1 or more), keeping their order. */
export function chunk<T>(items: T[], size: number): T[][] {
	if (!Number.isInteger(size) || size < 1) throw new RangeError(`A delivery holds a whole number of 1 or more items, not ${size}`);
	const chunks: T[][] = [];
	for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
	return chunks;
}

/** Why an item cannot be handed on: it names no site a delivery can be signed for. */
export const NO_SITE_KEY =
	'has no site key in "site": each delivery is signed for the site of its items, so every item must say which site it belongs to (keep the "site" field when items pass through other nodes)';

/**
 * The input's indexes grouped by the items' `site`, sites in order of first appearance and items in
 * input order: each group becomes deliveries signed for its own site, so the next trigger never
 * receives one site's items under another site's signature. `unsigned`: the items that name no site.
 */
export function groupBySite(items: ReadonlyArray<Record<string, unknown>>): { groups: Array<{ site: string; indexes: number[] }>; unsigned: number[] } {
	const groups = new Map<string, number[]>();
	const unsigned: number[] = [];
	items.forEach((item, index) => {
		if (!isSignableSite(item.site)) {
			unsigned.push(index);
			return;
		}
		const group = groups.get(item.site);
		if (group) group.push(index);
		else groups.set(item.site, [index]);
	});
	return { groups: [...groups].map(([site, indexes]) => ({ site, indexes })), unsigned };
}

export function handOffDelivery(items: Array<Record<string, unknown>>, site: string, destination: string, now = new Date()): HandOffDelivery {
	const siteId = items.find((item) => typeof item.siteId === 'string')?.siteId;
	return {
		site,
		siteId: typeof siteId === 'string' ? siteId : '',
		destination,
		deliveryId: randomUUID(),
		sentAt: now.toISOString(),
		events: [],
		leads: [],
		items,
	};
}
