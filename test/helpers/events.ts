import { v7 as uuidv7 } from 'uuid';

import type { TrackBatch, TrackEvent } from '../../lib/contracts';

let clock = Date.UTC(2026, 10, 20, 10, 0, 0);

export function pageview(site: string, anonymousId: string, path = '/', extra: Partial<TrackEvent> = {}): TrackEvent {
	clock += 1000;
	return {
		id: uuidv7(),
		type: 'pageview',
		ts: clock,
		anonymousId,
		sessionId: `${anonymousId}-s1`,
		url: `https://${site}.example${path}`,
		title: `Page ${path}`,
		...extra,
	};
}

export function batch(site: string, events: TrackEvent[], extra: Partial<TrackBatch> = {}): TrackBatch {
	return { site, events, ...extra };
}

export const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
	const response = await fetch(url, {
		method: 'POST',
		headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, ...headers },
		body: typeof body === 'string' ? body : JSON.stringify(body),
	});
	const text = await response.text();
	let json: unknown = null;
	try {
		json = JSON.parse(text);
	} catch {
		json = text;
	}
	return { status: response.status, json };
}
