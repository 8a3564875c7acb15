import type { RawSql } from '../../lib/db/rawSql';

/**
 * The names a site's rules may give a tracked event by (a conversion rule's or a sequence trigger's
 * `event`): its type, and its custom name or the label refining the type (a form's id).
 */
export function eventNames(event: { type?: unknown; name?: unknown }): string[] {
	return [event.type, event.name].filter((name): name is string => typeof name === 'string' && name !== '');
}

/** Events by visitor (anonymous id), visitors in order of their first event, each visitor's events in input order. */
export function eventsByVisitor<E extends { anonymousId: string }>(events: readonly E[]): Map<string, E[]> {
	const byVisitor = new Map<string, E[]>();
	for (const event of events) {
		const list = byVisitor.get(event.anonymousId);
		if (list) list.push(event);
		else byVisitor.set(event.anonymousId, [event]);
	}
	return byVisitor;
}

/**
 * Takes each browser's advisory lock (the key the Visitor Processor has always used, so an older
 * node and this one exclude each other), in key order: two batches that share browsers queue on the
 * first shared one instead of each holding what the other waits for. The Visitor Processor holds
 * them while it stores a browser's events; an erasure takes them before it deletes the browser.
 */
export async function lockBrowsers(db: Pick<RawSql, '$queryRawUnsafe'>, siteId: string, anonymousIds: readonly string[]): Promise<void> {
	await db.$queryRawUnsafe(
		`SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT hashtext($1::text || ':' || a) AS k FROM unnest($2::text[]) AS a ORDER BY 1) AS locks`,
		siteId,
		[...anonymousIds],
	);
}
