/**
 * A seeded pseudo-random generator (mulberry32): the same seed gives the same numbers in [0, 1), so
 * generated traffic, fuzz cases and benchmark data can be reproduced from their seed.
 */
export function prng(seed: number): () => number {
	return () => {
		seed = (seed + 0x6d2b79f5) | 0;
		let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}
