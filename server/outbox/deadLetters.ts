import type { RawSql } from '../../lib/db/rawSql';

/**
 * Which dead-lettered deliveries an operator decides about: all of them, or those of one site
 * (its database id), one workflow, or with rows received at or after a time. A delivery is taken
 * whole when any of its rows matches, so a re-sent delivery carries the rows it first carried,
 * under the same X-CRM-Delivery id.
 */
export interface DeadLetterFilter {
	siteId?: string;
	destination?: string;
	since?: Date;
}

export interface DeadLetterGroup {
	siteId: string;
	destination: string;
	deliveries: number;
	rows: number;
	oldestCreatedAt: Date;
	newestCreatedAt: Date;
	/** The error of the group's most recent failure. */
	lastError: string | null;
}

/** The dead rows of the deliveries the filter takes, each row once. */
const CHOSEN = `chosen AS (
	SELECT o.id FROM outbox o
	WHERE o.status = 'dead' AND o.delivery_id IN (
		SELECT m.delivery_id FROM outbox m
		WHERE m.status = 'dead'
			AND ($1::uuid IS NULL OR m.site_id = $1::uuid)
			AND ($2::text IS NULL OR m.destination = $2::text)
			AND ($3::timestamptz IS NULL OR m.created_at >= $3::timestamptz))
	UNION
	SELECT o.id FROM outbox o
	WHERE o.status = 'dead' AND o.delivery_id IS NULL
		AND ($1::uuid IS NULL OR o.site_id = $1::uuid)
		AND ($2::text IS NULL OR o.destination = $2::text)
		AND ($3::timestamptz IS NULL OR o.created_at >= $3::timestamptz))`;

const GROUPS = `WITH ${CHOSEN}
SELECT o.site_id::text AS "siteId", o.destination, count(DISTINCT o.delivery_id)::int + count(*) FILTER (WHERE o.delivery_id IS NULL)::int AS deliveries,
	count(*)::int AS rows, min(o.created_at) AS "oldestCreatedAt", max(o.created_at) AS "newestCreatedAt",
	(array_agg(o.last_error ORDER BY o.next_attempt_at DESC) FILTER (WHERE o.last_error IS NOT NULL))[1] AS "lastError"
FROM outbox o JOIN chosen USING (id)
GROUP BY o.site_id, o.destination
ORDER BY o.site_id, o.destination`;

/**
 * Back to pending, due now, as deliveries never tried: the backoff starts again from its first
 * wait and the give-up time from the next failure. The delivery id stays, so n8n sees a retry of
 * the delivery it may have half processed. Only dead rows change, and the dispatcher never
 * touches a dead row, so this is safe while receivers run: their next claim takes the rows like
 * any other pending row, one receiver per delivery.
 */
const REQUEUE = `WITH ${CHOSEN}
UPDATE outbox o SET status = 'pending', attempts = 0, next_attempt_at = now(), failing_since = NULL
FROM chosen WHERE o.id = chosen.id AND o.status = 'dead'
RETURNING o.id`;

/** Gone for good: the rows of a delivery nobody wants made any more (their events stay in visitor_events). */
const DISCARD = `WITH ${CHOSEN}
DELETE FROM outbox o USING chosen WHERE o.id = chosen.id AND o.status = 'dead'
RETURNING o.id`;

const parameters = (filter: DeadLetterFilter) => [filter.siteId ?? null, filter.destination ?? null, filter.since?.toISOString() ?? null] as const;

/** The dead-lettered deliveries the filter takes, per site and workflow. */
export async function deadLetterGroups(db: Pick<RawSql, '$queryRawUnsafe'>, filter: DeadLetterFilter = {}): Promise<DeadLetterGroup[]> {
	return db.$queryRawUnsafe<DeadLetterGroup[]>(GROUPS, ...parameters(filter));
}

/** Queues the dead-lettered deliveries the filter takes for delivery again; the rows it re-queued. */
export async function requeueDeadLetters(db: Pick<RawSql, '$queryRawUnsafe'>, filter: DeadLetterFilter = {}): Promise<number> {
	return (await db.$queryRawUnsafe<Array<{ id: bigint }>>(REQUEUE, ...parameters(filter))).length;
}

/** Deletes the dead-lettered deliveries the filter takes; the rows it deleted. */
export async function discardDeadLetters(db: Pick<RawSql, '$queryRawUnsafe'>, filter: DeadLetterFilter = {}): Promise<number> {
	return (await db.$queryRawUnsafe<Array<{ id: bigint }>>(DISCARD, ...parameters(filter))).length;
}

/** The commands that decide about a site's dead letters, as /health and the dispatcher's log name them. */
export function deadLetterAdvice(count: number, siteKey: string): string {
	return (
		`${count} dead-lettered ${count === 1 ? 'row waits' : 'rows wait'} for a decision: once the cause in lastError is fixed, ` +
		`send them again with scripts/dead-letters requeue --site ${siteKey}, or drop them with scripts/dead-letters discard --site ${siteKey} (scripts/dead-letters list shows them)`
	);
}
