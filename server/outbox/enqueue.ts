import type { DeliveredEmailEvent, DeliveredLead } from '../../lib/contracts';

/** A batch's new events of one visitor for one workflow, by id: the dispatcher reads them from visitor_events when it delivers. */
export interface EventsPayload {
	kind: 'events';
	eventIds: string[];
}

/** What an outbox row carries: events by id, or one lead or email event as the delivery contract (lib/contracts/delivery.ts) has it. */
export type OutboxPayload = EventsPayload | DeliveredLead | DeliveredEmailEvent;

/** SQL expressions for an outbox row's columns, evaluated per row of the SELECT they are put into. */
export interface OutboxColumns {
	siteId: string;
	destination: string;
	/** Rows of one partition (a visitor, a lead) are delivered in order, one delivery at a time. */
	partitionKey: string;
	payload: string;
}

/**
 * The one statement that puts rows into the outbox, for every writer: a data-modifying CTE that
 * each writer composes into the statement storing what the rows announce (events, a lead, an
 * email event), so they commit together or not at all. `from` is the rest of the SELECT the
 * columns are read from (FROM, WHERE, GROUP BY). Rows start pending and due now.
 */
export function enqueueStatement(columns: OutboxColumns, from: string): string {
	return `INSERT INTO outbox (site_id, destination, partition_key, payload, status, attempts, next_attempt_at, created_at)
	SELECT ${columns.siteId}, ${columns.destination}, ${columns.partitionKey}, ${columns.payload}, 'pending', 0, now(), now()
	${from}
	RETURNING 1`;
}

type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };

/**
 * A jsonb_build_object of a payload built in SQL, one expression per field of its type: a field
 * the contract requires cannot be left out of the statement that writes it.
 */
export function jsonbPayload<T extends OutboxPayload>(fields: { [K in keyof T as K extends KnownKeys<T> ? K : never]: string }): string {
	const pairs = Object.entries(fields as Record<string, string>).map(([key, sql]) => `'${key}', ${sql}`);
	return `jsonb_build_object(${pairs.join(', ')})`;
}
