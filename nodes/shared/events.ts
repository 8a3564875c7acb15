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
