import { isUuid, uuidv7s } from '../lib/ids';

describe('uuidv7s', () => {
	it('are UUIDv7s that carry the time and sort by it', () => {
		const at = Date.UTC(2026, 10, 24, 12, 0, 0, 123);
		const ids = uuidv7s(1000, at);
		for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		expect(new Set(ids).size).toBe(1000);
		expect(parseInt(ids[0].replace('-', '').slice(0, 12), 16)).toBe(at);
		const later = uuidv7s(1000, at + 1);
		expect(later.every((id) => ids.every((earlier) => earlier < id))).toBe(true);
		expect(uuidv7s(0, at)).toEqual([]);
	});
});

describe('isUuid', () => {
	it.each([
		['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', true],
		['0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B', true],
		['f47ac10b-58cc-4372-a567-0e02b2c3d479', true],
		['0190a1b2c3d47e5f8a9b0c1d2e3f4a5b', false],
		[' 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', false],
		['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5', false],
		['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g', false],
		['jane@acme.io', false],
		['', false],
	])('%j → %s', (value, expected) => {
		expect(isUuid(value)).toBe(expected);
	});
});
