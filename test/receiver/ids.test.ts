import { uuidv7s } from '../../server/ingest/ids';

describe('row ids', () => {
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
