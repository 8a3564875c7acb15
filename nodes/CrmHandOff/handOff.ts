import { randomUUID } from 'node:crypto';

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

/** Splits items into deliveries of at most `size`, keeping their order. */
export function chunk<T>(items: T[], size: number): T[][] {
	const chunks: T[][] = [];
	for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
	return chunks;
}

export function handOffDelivery(items: Array<Record<string, unknown>>, destination: string, now = new Date()): HandOffDelivery {
	const first = items[0] ?? {};
	return {
		site: typeof first.site === 'string' ? first.site : '',
		siteId: typeof first.siteId === 'string' ? first.siteId : '',
		destination,
		deliveryId: randomUUID(),
		sentAt: now.toISOString(),
		events: [],
		leads: [],
		items,
	};
}
