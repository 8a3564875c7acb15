import { boundedMemo } from '../lib/memo';

describe('boundedMemo', () => {
	it('computes each key once while it is kept, null results included', () => {
		const computed: string[] = [];
		const lengthOrNull = boundedMemo(10, (key) => {
			computed.push(key);
			return key === '' ? null : key.length;
		});
		expect(['ab', 'abc', 'ab', '', '', 'abc'].map(lengthOrNull)).toEqual([2, 3, 2, null, null, 3]);
		expect(computed).toEqual(['ab', 'abc', '']);
	});

	it('drops what it kept once it holds its limit of keys, and gives the same results afterwards', () => {
		const computed: string[] = [];
		const upper = boundedMemo(3, (key) => {
			computed.push(key);
			return key.toUpperCase();
		});
		expect(['a', 'b', 'c', 'd', 'a', 'd'].map(upper)).toEqual(['A', 'B', 'C', 'D', 'A', 'D']);
		// 'd' arrived with three keys held: they went, so 'a' is computed again; 'd' was kept.
		expect(computed).toEqual(['a', 'b', 'c', 'd', 'a']);
	});
});
