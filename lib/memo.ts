/**
 * `compute` with its results kept by key, for pure work on values that come back again and again
 * (URLs, hosts, user agents, paths). The kept results are dropped all at once when `limit` keys
 * are held: memory stays bounded whatever the input, and after a flood of distinct keys the ones
 * that recur are computed again once. `compute` must not return undefined.
 */
export function boundedMemo<V>(limit: number, compute: (key: string) => V): (key: string) => V {
	const kept = new Map<string, V>();
	return (key) => {
		let value = kept.get(key);
		if (value === undefined) {
			value = compute(key);
			if (kept.size >= limit) kept.clear();
			kept.set(key, value);
		}
		return value;
	};
}
