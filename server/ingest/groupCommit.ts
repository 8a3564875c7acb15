import type { Pool } from 'pg';

import type { RawSql } from '../../lib/db/rawSql';
import { enqueueStatement, jsonbPayload, type EventsPayload } from '../outbox/enqueue';
import { databaseFailure } from '../routes/problems';
import { uuidv7s } from '../../lib/ids';
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
 * destination, visitor) for the events that were new. The input travels as typed column
 * arrays: one element per request for what a request's events share (site, client facts), one
 * per event for the rest, and (request, destination) pairs, so nothing is repeated per event
 * and Postgres parses arrays rather than a JSON document. Batches of different sites and
 * clients share the statement safely.
 */
const STORE_MANY = `
WITH requests AS (
	SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::boolean[]) WITH ORDINALITY
		AS r(site_id, user_agent, ip_anonymized, country, is_bot, request)
), input AS (
	SELECT r.site_id, r.user_agent, r.ip_anonymized, r.country, r.is_bot, e.*
	FROM unnest($6::int[], $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
		$15::text[], $16::int[], $17::jsonb[], $18::jsonb[], $19::timestamptz[], $22::uuid[])
		AS e(request, event_id, anonymous_id, session_key, type, name, url, path, title, referrer, relevance, properties, context, occurred_at, id)
	JOIN requests r USING (request)
), inserted AS (
	INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, name, url, path, title,
		referrer, relevance, properties, context, user_agent, ip_anonymized, country, is_bot, occurred_at, received_at)
	SELECT id, site_id, event_id, anonymous_id, session_key, type, name, url, path, title,
		referrer, relevance, properties, context, user_agent, ip_anonymized, country, is_bot, occurred_at, now()
	FROM input
	ON CONFLICT (site_id, event_id) DO NOTHING
	RETURNING site_id, event_id, anonymous_id, occurred_at
), stored AS (
	SELECT e.request, i.site_id, i.event_id, i.anonymous_id, i.occurred_at
	FROM inserted i JOIN input e USING (site_id, event_id)
), outboxed AS (
	${enqueueStatement(
		{
			siteId: 's.site_id',
			destination: 'd.destination',
			partitionKey: 's.anonymous_id',
			payload: jsonbPayload<EventsPayload>({ kind: "'events'", eventIds: 'jsonb_agg(s.event_id ORDER BY s.occurred_at, s.event_id)' }),
		},
		'FROM stored s JOIN unnest($20::int[], $21::text[]) AS d(request, destination) USING (request) GROUP BY s.site_id, d.destination, s.anonymous_id',
	)}
)
SELECT coalesce((SELECT array_agg(request) FROM stored), '{}') AS stored, (SELECT count(*) FROM outboxed)::int AS outbox_rows`;

/**
 * How many group-commit statements may run at once: one alone leaves the receiver idle while
 * Postgres works, and each waiting flush grows meanwhile, which keeps the statement count low
 * under load.
 */
export const GROUP_COMMIT_STATEMENTS = 2;

/** Runs STORE_MANY with its parameters and returns its `stored` column. */
export type StoreStatement = (args: unknown[]) => Promise<number[]>;

/** STORE_MANY as the named prepared statement both the flushes and the warm-up run. */
const storeQuery = (values: unknown[]) => ({ name: 'tcrm_store_many', text: STORE_MANY, values, rowMode: 'array' as const });

/**
 * On its own pg pool, as a named prepared statement: each connection parses and plans the
 * statement once, and later flushes send only its parameters. Through Prisma Client the same
 * statement costs about 2.4 ms of receiver CPU before any row is sent, and through its driver
 * adapter the whole SQL text travels and is parsed again with every flush.
 */
export function storeThroughPool(pool: Pool): StoreStatement {
	return async (values) => {
		const result = await pool.query<[number[]]>(storeQuery(values));
		return result.rows[0][0];
	};
}

/**
 * Opens each of the pool's connections and prepares the statement on it by running it with no
 * rows, so that the first batches after a start wait neither for a connection nor for Postgres
 * to plan. Without it they do both at once, tens of milliseconds each, just when traffic
 * arrives. The pool must keep idle connections (idleTimeoutMillis 0), or they go again.
 */
export async function warmUp(pool: Pool, connections = GROUP_COMMIT_STATEMENTS): Promise<void> {
	const clients = await Promise.all(Array.from({ length: connections }, () => pool.connect()));
	try {
		await Promise.all(clients.map((client) => client.query(storeQuery(new FlushColumns().parameters()))));
	} finally {
		for (const client of clients) client.release();
	}
}

/**
 * Straight to the database's driver adapter: for the embedded database, whose one connection
 * Prisma's adapter holds. Prisma Client's raw query would cost about 2.4 ms per flush on the one
 * thread that also runs PGlite.
 */
export function storeThroughRaw(sql: RawSql): StoreStatement {
	return async (args) => {
		const [result] = await sql.$queryRawUnsafe<Array<{ stored: number[] }>>(STORE_MANY, ...args);
		return result.stored;
	};
}

/** One flush as the column arrays of STORE_MANY; requests are numbered from 1 in flush order. */
class FlushColumns {
	readonly siteIds: string[] = [];
	readonly userAgents: Array<string | null> = [];
	readonly ips: Array<string | null> = [];
	readonly countries: Array<string | null> = [];
	readonly bots: boolean[] = [];
	readonly request: number[] = [];
	readonly eventIds: string[] = [];
	readonly anonymousIds: string[] = [];
	readonly sessionKeys: string[] = [];
	readonly types: string[] = [];
	readonly names: Array<string | null> = [];
	readonly urls: string[] = [];
	readonly paths: string[] = [];
	readonly titles: Array<string | null> = [];
	readonly referrers: Array<string | null> = [];
	readonly relevances: Array<number | null> = [];
	readonly properties: Array<string | null> = [];
	readonly contexts: Array<string | null> = [];
	readonly occurredAts: string[] = [];
	readonly destinationRequest: number[] = [];
	readonly destinations: string[] = [];

	addRequest(pending: Pending): number {
		this.siteIds.push(pending.siteId);
		this.userAgents.push(pending.facts.userAgent);
		this.ips.push(pending.facts.ipAnonymized);
		this.countries.push(pending.facts.country);
		this.bots.push(pending.facts.isBot);
		const number = this.siteIds.length;
		for (const destination of pending.destinations) {
			this.destinationRequest.push(number);
			this.destinations.push(destination);
		}
		return number;
	}

	addEvent(request: number, row: EventRow): void {
		this.request.push(request);
		this.eventIds.push(row.event_id);
		this.anonymousIds.push(row.anonymous_id);
		this.sessionKeys.push(row.session_key);
		this.types.push(row.type);
		this.names.push(row.name);
		this.urls.push(row.url);
		this.paths.push(row.path);
		this.titles.push(row.title);
		this.referrers.push(row.referrer);
		this.relevances.push(row.relevance);
		this.properties.push(row.properties === null ? null : JSON.stringify(row.properties));
		this.contexts.push(row.context === null ? null : JSON.stringify(row.context));
		this.occurredAts.push(row.occurred_at);
	}

	parameters(): unknown[] {
		return [
			this.siteIds,
			this.userAgents,
			this.ips,
			this.countries,
			this.bots,
			this.request,
			this.eventIds,
			this.anonymousIds,
			this.sessionKeys,
			this.types,
			this.names,
			this.urls,
			this.paths,
			this.titles,
			this.referrers,
			this.relevances,
			this.properties,
			this.contexts,
			this.occurredAts,
			this.destinationRequest,
			this.destinations,
			uuidv7s(this.eventIds.length),
		];
	}
}

/**
 * Postgres refused a value of the request's own data (a data exception, SQLSTATE class 22):
 * sending it again fails the same way, so its sender gets a 400 rather than a 503.
 */
export class UnstorableValueError extends Error {
	constructor(
		readonly reason: string,
		options: ErrorOptions,
	) {
		super(`Postgres refused a value: ${reason}`, options);
		this.name = 'UnstorableValueError';
	}
}

/**
 * The error as an UnstorableValueError when the data was at fault, with what Postgres said: node-pg's
 * message and detail, or the message inside Prisma's driver-adapter error. Undefined otherwise.
 */
export function unstorableValue(error: unknown): UnstorableValueError | undefined {
	if (error instanceof UnstorableValueError) return error;
	if (databaseFailure(error) !== 'input') return undefined;
	const { message, detail, meta } = error as { message?: string; detail?: string; meta?: { driverAdapterError?: { cause?: { originalMessage?: string } } } };
	const said = meta?.driverAdapterError?.cause?.originalMessage ?? message ?? String(error);
	return new UnstorableValueError((detail ? `${said} (${detail})` : said).slice(0, 300), { cause: error });
}

/**
 * Group commit for ingest: requests read in one turn of the event loop, and those that arrive
 * while a statement is running, wait for the next one and are written together, so under load
 * the database does one insert per flush rather than per request. Each request is still answered
 * only after the statement holding its events has committed, and nothing is half-written. A statement that fails on a value (a data exception)
 * fails for one request's data, yet rolls back every request in it: the flush is then written again
 * in halves, down to single requests, so the others are stored and only the guilty request fails,
 * with an UnstorableValueError. A failure of the database itself fails every request in the flush.
 */
export class GroupCommitter {
	private queue: Pending[] = [];
	private running = 0;
	private pumpScheduled = false;

	constructor(
		private readonly storeMany: StoreStatement,
		private readonly maxConcurrentStatements = GROUP_COMMIT_STATEMENTS,
		private readonly maxEventsPerStatement = 2000,
	) {}

	store(siteId: string, rows: EventRow[], facts: RequestFacts, destinations: string[]): Promise<StoreResult> {
		return new Promise((resolve, reject) => {
			this.queue.push({ siteId, rows, facts, destinations, resolve, reject });
			if (this.pumpScheduled) return;
			this.pumpScheduled = true;
			// After the poll phase has read every request that is ready, so they share a statement.
			// On the embedded PGlite, whose statements run on this thread, requests arrive only
			// between statements: without this wait each would be a statement of its own.
			setImmediate(() => {
				this.pumpScheduled = false;
				this.pump();
			});
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
		const owned = new Set<string>();
		const columns = new FlushColumns();
		for (const pending of batch) {
			const request = columns.addRequest(pending);
			for (const row of pending.rows) {
				const key = `${pending.siteId}|${row.event_id}`;
				if (owned.has(key)) continue;
				owned.add(key);
				columns.addEvent(request, row);
			}
		}
		let stored: number[];
		try {
			stored = await this.storeMany(columns.parameters());
		} catch (error) {
			const refused = unstorableValue(error);
			if (!refused) {
				for (const pending of batch) pending.reject(error);
			} else if (batch.length === 1) {
				batch[0].reject(refused);
			} else {
				// Halves rather than one statement per request: one bad batch among n costs about 2·log2(n) statements.
				const half = Math.ceil(batch.length / 2);
				await this.write(batch.slice(0, half));
				await this.write(batch.slice(half));
			}
			return;
		}
		const storedBy = new Array<number>(batch.length).fill(0);
		for (const request of stored) storedBy[request - 1] += 1;
		batch.forEach((pending, index) => pending.resolve({ stored: storedBy[index], duplicates: pending.rows.length - storedBy[index] }));
	}
}
