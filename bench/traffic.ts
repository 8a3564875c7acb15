/**
 * The traffic the end-to-end benchmarks send: 20-event batches of one visitor each (page views,
 * scrolls, and a form submission for every tenth visitor), posted to /api/track as a site
 * without a consent banner sends them.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../lib/db/generated/client';

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

/**
 * Posts every batch, CONCURRENT_POSTS at a time over kept-alive connections; any answer but 202
 * stops the benchmark. node:http rather than fetch: the simulated browsers share the two cores
 * with the receiver, n8n and Postgres, and fetch (undici) spends about 1 s of CPU on these 500
 * posts in a fresh process where node:http spends about 0.2 s — CPU a real site's visitors spend
 * on their own machines.
 */
export async function postAll(receiverUrl: string, bodies: string[]): Promise<void> {
	const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENT_POSTS });
	const post = (body: string) =>
		new Promise<void>((resolve, reject) => {
			const request = http.request(
				`${receiverUrl}/api/track`,
				{ method: 'POST', agent, headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'user-agent': UA } },
				(response) => {
					const chunks: Buffer[] = [];
					response.on('data', (chunk: Buffer) => chunks.push(chunk));
					response.on('end', () =>
						response.statusCode === 202 ? resolve() : reject(new Error(`/api/track answered ${response.statusCode}: ${Buffer.concat(chunks).toString()}`)),
					);
					response.on('error', reject);
				},
			);
			request.on('error', reject);
			request.end(body);
		});
	let next = 0;
	try {
		await Promise.all(
			Array.from({ length: CONCURRENT_POSTS }, async () => {
				while (next < bodies.length) await post(bodies[next++]);
			}),
		);
	} finally {
		agent.destroy();
	}
}

/**
 * How many of the site's events workflow 01 has processed: the sum of its sessions' event counts,
 * which the Visitor Processor writes in the transaction that links the events. Polled every
 * 200 ms while the chain runs, so it reads the 500 session rows rather than count the linked
 * events among all of them, which cost Postgres about 10 ms a poll.
 */
export const PROCESSED_EVENTS = 'SELECT coalesce(sum(event_count), 0)::int AS processed FROM visitor_sessions WHERE site_id = $1::uuid';

export async function processedEvents(prisma: Pick<PrismaClient, '$queryRawUnsafe'>, siteId: string): Promise<number> {
	const [row] = await prisma.$queryRawUnsafe<Array<{ processed: number }>>(PROCESSED_EVENTS, siteId);
	return row.processed;
}

/**
 * What the chain wrote for a site, without what differs between two runs of the same traffic
 * (ids, and times, which are given relative to the site's first session): its sessions,
 * conversions, attribution and activities, counted and hashed, so two builds can be compared.
 */
export async function crmDigest(prisma: PrismaClient, siteId: string): Promise<string> {
	const tables = {
		sessions: `SELECT v.anonymous_id, extract(epoch FROM s.started_at - t.t0) AS started, extract(epoch FROM s.last_activity_at - t.t0) AS last, s.pageviews, s.event_count, s.duration_seconds, s.engaged_time_ms,
			s.max_scroll_depth, s.is_bounce, s.entry_page, s.exit_page, s.engagement_score, s.engagement_level, s.channel, s.source, s.medium, s.campaign, s.landing_page, s.device_type, s.browser, s.os
			FROM visitor_sessions s JOIN visitors v ON v.id = s.visitor_id, t WHERE s.site_id = $1::uuid ORDER BY 1, 2`,
		conversions: `SELECT v.anonymous_id, c.goal, c.value::text, c.currency, extract(epoch FROM c.occurred_at - t.t0) AS at, e.type AS event_type, e.path AS event_path
			FROM conversions c JOIN visitors v ON v.id = c.visitor_id JOIN visitor_events e ON e.site_id = c.site_id AND e.event_id = c.event_id::uuid, t WHERE c.site_id = $1::uuid ORDER BY 1, 2, 5`,
		attribution: `SELECT v.anonymous_id, c.goal, a.model, a.touchpoint_index, a.channel, a.source, a.medium, a.campaign, extract(epoch FROM a.touched_at - t.t0) AS touched, a.credit, a.value::text
			FROM attribution_data a JOIN conversions c ON c.id = a.conversion_id JOIN visitors v ON v.id = c.visitor_id, t WHERE a.site_id = $1::uuid ORDER BY 1, 2, 3, 4`,
		activities: `SELECT coalesce(v.anonymous_id, a.lead_id::text) AS subject, a.type, a.description, a.data - 'eventId' - 'conversions' AS data, jsonb_array_length(coalesce(a.data -> 'conversions', '[]')) AS conversions
			FROM activities a LEFT JOIN visitors v ON v.id = a.visitor_id WHERE a.site_id = $1::uuid ORDER BY 1, 2, 3`,
	};
	const origin = `WITH t AS (SELECT min(started_at) AS t0 FROM visitor_sessions WHERE site_id = $1::uuid) `;
	const parts: string[] = [];
	const hash = createHash('sha256');
	for (const [name, sql] of Object.entries(tables)) {
		const rows = await prisma.$queryRawUnsafe<unknown[]>(origin + sql, siteId);
		hash.update(`${name}:${JSON.stringify(rows)}\n`);
		parts.push(`${rows.length} ${name}`);
	}
	return `${parts.join(', ')}; digest ${hash.digest('hex').slice(0, 16)}`;
}
