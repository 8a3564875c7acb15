import type { PrismaClient } from '../../lib/db';
import type { EventRow } from './normalize';
import type { RequestFacts, StoreResult } from './store';

interface Pending {
	siteId: string;
	rows: EventRow[];
	facts: RequestFacts;
	destinations: string[];
	resolve: (result: StoreResult) => void;
	reject: (error: unknown) => void;
}

/**
 * All batches of one flush in ONE statement: raw events, then one outbox row per (site,
 * destination, visitor) for the events that were new. Every row carries its own site and
 * request facts, so batches of different sites and clients share the statement safely.
 */
const STORE_MANY = `
WITH input AS (
	SELECT * FROM jsonb_to_recordset($1::jsonb) AS e(
		site_id uuid, event_id uuid, anonymous_id text, session_key text, type text, name text, url text, path text,
		title text, referrer text, relevance int, properties jsonb, context jsonb, occurred_at timestamptz,
		user_agent text, ip_anonymized text, country text, is_bot boolean, destinations jsonb)
), inserted AS (
	INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, name, url, path, title,
		referrer, relevance, properties, context, user_agent, ip_anonymized, country, is_bot, occurred_at, received_at)
	SELECT gen_random_uuid(), site_id, event_id, anonymous_id, session_key, type, name, url, path, title,
		referrer, relevance, properties, context, user_agent, ip_anonymized, country, is_bot, occurred_at, now()
	FROM input
	ON CONFLICT (site_id, event_id) DO NOTHING
	RETURNING site_id, event_id, anonymous_id, occurred_at
), outboxed AS (
	INSERT INTO outbox (site_id, destination, partition_key, payload, status, attempts, next_attempt_at, created_at)
	SELECT i.site_id, d.destination, i.anonymous_id,
		jsonb_build_object('kind', 'events', 'eventIds', jsonb_agg(i.event_id ORDER BY i.occurred_at, i.event_id)),
		'pending', 0, now(), now()
	FROM inserted i
	JOIN input e ON e.site_id = i.site_id AND e.event_id = i.event_id
	CROSS JOIN jsonb_array_elements_text(e.destinations) AS d(destination)
	GROUP BY i.site_id, d.destination, i.anonymous_id
	RETURNING 1
)
SELECT (SELECT coalesce(jsonb_agg(jsonb_build_array(site_id, event_id)), '[]'::jsonb) FROM inserted) AS stored,
	(SELECT count(*) FROM outboxed)::int AS outbox_rows`;

/**
 * Group commit for ingest: requests that arrive while a statement is running wait for the next
 * one and are written together, so under load the database does one insert per flush rather
 * than per request. Each request is still answered only after the statement holding its events
 * has committed, and a failed statement fails every request in it (nothing is half-written).
 */
export class GroupCommitter {
	private queue: Pending[] = [];
	private running = 0;

	/**
	 * A few statements may run at once: one alone leaves the receiver idle while Postgres works,
	 * and each waiting flush grows meanwhile, which keeps the statement count low under load.
	 */
	constructor(
		private readonly prisma: PrismaClient,
		private readonly maxConcurrentStatements = 4,
		private readonly maxEventsPerStatement = 2000,
	) {}

	store(siteId: string, rows: EventRow[], facts: RequestFacts, destinations: string[]): Promise<StoreResult> {
		return new Promise((resolve, reject) => {
			this.queue.push({ siteId, rows, facts, destinations, resolve, reject });
			this.pump();
		});
	}

	private pump(): void {
		while (this.queue.length > 0 && this.running < this.maxConcurrentStatements) {
			const batch: Pending[] = [];
			let events = 0;
			while (this.queue.length > 0 && (batch.length === 0 || events + this.queue[0].rows.length <= this.maxEventsPerStatement)) {
				const next = this.queue.shift()!;
				batch.push(next);
				events += next.rows.length;
			}
			this.running += 1;
			void this.write(batch).finally(() => {
				this.running -= 1;
				this.pump();
			});
		}
	}

	private async write(batch: Pending[]): Promise<void> {
		// The first request holding an event owns it; a retry racing its original in the same flush is a duplicate.
		const owner = new Map<string, Pending>();
		const input: Array<Record<string, unknown>> = [];
		for (const pending of batch) {
			for (const row of pending.rows) {
				const key = `${pending.siteId}|${row.event_id}`;
				if (owner.has(key)) continue;
				owner.set(key, pending);
				input.push({
					...row,
					site_id: pending.siteId,
					user_agent: pending.facts.userAgent,
					ip_anonymized: pending.facts.ipAnonymized,
					country: pending.facts.country,
					is_bot: pending.facts.isBot,
					destinations: pending.destinations,
				});
			}
		}
		try {
			const [result] = await this.prisma.$queryRawUnsafe<Array<{ stored: Array<[string, string]> }>>(STORE_MANY, JSON.stringify(input));
			const storedBy = new Map<Pending, number>();
			for (const [siteId, eventId] of result.stored) {
				const pending = owner.get(`${siteId}|${eventId}`);
				if (pending) storedBy.set(pending, (storedBy.get(pending) ?? 0) + 1);
			}
			for (const pending of batch) {
				const stored = storedBy.get(pending) ?? 0;
				pending.resolve({ stored, duplicates: pending.rows.length - stored });
			}
		} catch (error) {
			for (const pending of batch) pending.reject(error);
		}
	}
}
