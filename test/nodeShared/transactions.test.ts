import { disjointParts, inTurns, transactionsAtOnce } from '../../nodes/shared/transactions';

interface Item {
	n: number;
	keys: string[];
}

const itemsOf = (count: number, keysOf: (n: number) => string[] = (n) => [`k${n}`]): Item[] => Array.from({ length: count }, (_, n) => ({ n, keys: keysOf(n) }));
const keys = (item: Item) => item.keys;

describe('disjointParts', () => {
	it('keeps a batch below the minimum per part in one part', () => {
		expect(disjointParts(itemsOf(150), keys, 4, 100)).toEqual([itemsOf(150)]);
		expect(disjointParts([], keys, 4, 100)).toEqual([]);
	});

	it('splits a large batch into about equal parts that share no key, each in the batch order', () => {
		// Every 7th item shares a key with the item 100 before it, every 11th with item 0.
		const items = itemsOf(1_000, (n) => [`k${n}`, ...(n % 7 === 0 && n >= 100 ? [`k${n - 100}`] : []), ...(n % 11 === 0 ? ['k0'] : [])]);
		const parts = disjointParts(items, keys, 4, 100);
		expect(parts.flat().map((item) => item.n).sort((a, b) => a - b)).toEqual(items.map((item) => item.n));
		const partOfKey = new Map<string, number>();
		parts.forEach((part, index) => {
			expect(part.map((item) => item.n)).toEqual([...part.map((item) => item.n)].sort((a, b) => a - b));
			for (const item of part) {
				for (const key of item.keys) {
					expect(partOfKey.get(key) ?? index).toBe(index);
					partOfKey.set(key, index);
				}
			}
		});
		expect(parts.length).toBeGreaterThan(1);
		expect(parts.length).toBeLessThanOrEqual(6);
	});

	it('gives parts of the target size when no keys link items', () => {
		expect(disjointParts(itemsOf(1_000), keys, 4, 100).map((part) => part.length)).toEqual([250, 250, 250, 250]);
		expect(disjointParts(itemsOf(1_000), keys, 1, 100).map((part) => part.length)).toEqual([1_000]);
		expect(disjointParts(itemsOf(250), keys, 4, 100).map((part) => part.length)).toEqual([125, 125]);
	});

	it('never splits items linked by keys, even beyond the target size', () => {
		const items = itemsOf(600, (n) => (n % 2 === 0 ? ['shared'] : [`k${n}`]));
		const parts = disjointParts(items, keys, 4, 100);
		const holding = parts.filter((part) => part.some((item) => item.keys.includes('shared')));
		expect(holding).toHaveLength(1);
		expect(holding[0].filter((item) => item.keys.includes('shared'))).toHaveLength(300);
	});
});

describe('inTurns', () => {
	it('runs at most `workers` steps at once and every part once', async () => {
		let open = 0;
		let peak = 0;
		const done: number[] = [];
		await inTurns([1, 2, 3, 4, 5, 6, 7], 3, async (part) => {
			open++;
			peak = Math.max(peak, open);
			await new Promise((resolve) => setTimeout(resolve, 5));
			done.push(part);
			open--;
		});
		expect(peak).toBe(3);
		expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
	});

	it('stops the parts not begun when a step fails, and settles only after the steps begun have ended', async () => {
		const ended: number[] = [];
		const run = inTurns([1, 2, 3, 4, 5, 6], 2, async (part) => {
			await new Promise((resolve) => setTimeout(resolve, part === 1 ? 5 : 30));
			if (part === 1) throw new Error('part 1 failed');
			ended.push(part);
		});
		await expect(run).rejects.toThrow('part 1 failed');
		expect(ended).toEqual([2]);
	});

	it('takes half the pool, at most four, and one on a single connection', () => {
		expect([1, 2, 3, 8, 10, 20].map((concurrency) => transactionsAtOnce({ concurrency }))).toEqual([1, 1, 1, 4, 4, 4]);
	});
});
