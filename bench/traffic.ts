/**
 * The traffic the end-to-end benchmarks send: 20-event batches of one visitor each (page views,
 * scrolls, and a form submission for every tenth visitor), posted to /api/track as a site
 * without a consent banner sends them.
 */
import { v7 as uuidv7 } from 'uuid';

export const PER_VISITOR = 20;
export const CONCURRENT_POSTS = 8;
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

export function trackBatches(site: string, eventCount: number): string[] {
	const paths = ['/', '/pricing', '/blog/a', '/blog/b', '/docs', '/contact'];
	const start = Date.now() - 3_600_000;
	const bodies: string[] = [];
	for (let visitor = 0; visitor * PER_VISITOR < eventCount; visitor++) {
		const count = Math.min(PER_VISITOR, eventCount - visitor * PER_VISITOR);
		const events = Array.from({ length: count }, (_, i) => ({
			id: uuidv7(),
			type: i === count - 1 && visitor % 10 === 0 ? 'form_submit' : i % 4 === 3 ? 'scroll' : 'pageview',
			ts: start + visitor * 1000 + i * 20_000,
			anonymousId: `bench-visitor-${visitor}`,
			sessionId: `bench-session-${visitor}`,
			url: `https://bench.example${paths[(visitor + i) % paths.length]}`,
			title: 'Bench',
			...(i % 4 === 3 ? { props: { depth: 75 } } : {}),
		}));
		bodies.push(JSON.stringify({ site, events }));
	}
	return bodies;
}

/** Posts every batch, CONCURRENT_POSTS at a time; any answer but 202 stops the benchmark. */
export async function postAll(receiverUrl: string, bodies: string[]): Promise<void> {
	let next = 0;
	await Promise.all(
		Array.from({ length: CONCURRENT_POSTS }, async () => {
			while (next < bodies.length) {
				const body = bodies[next++];
				const response = await fetch(`${receiverUrl}/api/track`, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': UA }, body });
				if (response.status !== 202) throw new Error(`/api/track answered ${response.status}: ${await response.text()}`);
			}
		}),
	);
}
