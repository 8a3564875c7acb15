/**
 * How a node splits one execution's writes over several transactions at once: while one
 * transaction waits for Postgres, the node prepares the next one's rows, and Postgres works on
 * more than one core.
 */
import type { RawDatabase } from '../../lib/db/rawSql';

/**
 * Transactions one execution runs at once, at most and never more than half the pool, so another
 * execution always finds a connection.
 */
const TRANSACTIONS_AT_ONCE = 4;

/** How many transactions one execution may run at once on `db` (1 on an in-process PGlite). */
export const transactionsAtOnce = (db: Pick<RawDatabase, 'concurrency'>): number => Math.max(1, Math.min(TRANSACTIONS_AT_ONCE, Math.floor(db.concurrency / 2)));

/**
 * Runs `step` on every part, `workers` at a time, each worker taking the next part when its last
 * has ended. A step that throws stops the parts not begun; this settles only once every step begun
 * has ended, so no transaction outlives the node's execution, and then throws the first failure.
 */
export async function inTurns<T>(parts: readonly T[], workers: number, step: (part: T) => Promise<void>): Promise<void> {
	let next = 0;
	let failed = false;
	const takeTurns = async () => {
		while (!failed && next < parts.length) {
			try {
				await step(parts[next++]);
			} catch (error) {
				failed = true;
				throw error;
			}
		}
	};
	const outcomes = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(workers, parts.length)) }, takeTurns));
	const failure = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
	if (failure) throw failure.reason;
}

/**
 * Items split into parts that share no key (a lead, an address, a browser), so parts written by
 * concurrent transactions never wait on each other's rows; the items of a part keep their order,
 * so items sharing a key act as if run one after the other. At most `parts` parts of about equal
 * size, none (but a lone one) of fewer than `minItems` items; items linked by keys are never split,
 * whatever their number.
 */
export function disjointParts<T>(items: readonly T[], keysOf: (item: T) => readonly string[], parts: number, minItems: number): T[][] {
	const root = items.map((_, index) => index);
	const find = (index: number): number => {
		while (root[index] !== index) index = root[index] = root[root[index]];
		return index;
	};
	const holder = new Map<string, number>();
	items.forEach((item, index) => {
		for (const key of keysOf(item)) {
			const other = holder.get(key);
			if (other === undefined) {
				holder.set(key, index);
				continue;
			}
			// The earlier item's root stays the group's root: groups are then met in order of their first item.
			const [first, second] = [find(other), find(index)].sort((a, b) => a - b);
			root[second] = first;
		}
	});
	const groupSize = new Map<number, number>();
	items.forEach((_, index) => groupSize.set(find(index), (groupSize.get(find(index)) ?? 0) + 1));
	const target = Math.ceil(items.length / Math.max(1, Math.min(parts, Math.floor(items.length / minItems))));
	const partOf = new Map<number, number>();
	let part = 0;
	let filled = 0;
	for (const [group, size] of groupSize) {
		if (filled > 0 && filled + size > target) {
			part++;
			filled = 0;
		}
		partOf.set(group, part);
		filled += size;
	}
	const split: T[][] = Array.from({ length: filled > 0 ? part + 1 : 0 }, () => []);
	items.forEach((item, index) => split[partOf.get(find(index)) as number].push(item));
	return split;
}
