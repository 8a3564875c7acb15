import {
	ATTRIBUTION_MODELS,
	attributeConversion,
	type AttributionModel,
	type AttributionOptions,
	type AttributionResult,
	type ConversionToAttribute,
	type Touchpoint,
} from '../../nodes/ConversionDetector/attribution';

const DAY = 86_400_000;
const CONVERTED_AT = new Date('2026-03-31T12:00:00.000Z');

const daysBefore = (days: number) => new Date(CONVERTED_AT.getTime() - days * DAY);
const touch = (index: number, channel: string, days: number): Touchpoint => ({ index, sessionId: `s${index}`, channel, touchedAt: daysBefore(days) });
const conversion = (value: number | string): ConversionToAttribute => ({ value, occurredAt: CONVERTED_AT, sessionId: 'converting' });

/** A model's rows as [touchpointIndex, credit, value]. */
function rowsOf(result: AttributionResult, model: AttributionModel): Array<[number, number, string]> {
	return result.rows.filter((row) => row.model === model).map((row) => [row.touchpointIndex, row.credit, row.value]);
}

/** Credits are compared to 10 decimals, values exactly. */
function expectRows(result: AttributionResult, model: AttributionModel, expected: Array<[number, number, string]>): void {
	const actual = rowsOf(result, model);
	expect(actual.map(([index, , value]) => [index, value])).toEqual(expected.map(([index, , value]) => [index, value]));
	actual.forEach(([, credit], i) => expect(credit).toBeCloseTo(expected[i][1], 10));
}

describe('hand-checked journeys', () => {
	// Organic search three weeks before, an email two weeks before, then two direct visits:
	// one a week before and the converting one. 50.25 EUR = 502,500 units of 0.0001.
	const journey = [touch(0, 'Organic Search', 21), touch(1, 'Email', 14), touch(2, 'Direct', 7), touch(3, 'Direct', 0)];
	const result = attributeConversion(conversion(50.25), journey);

	it('reports the value at the stored scale and the touches oldest first', () => {
		expect(result.value).toBe('50.2500');
		expect(result.touchpoints.map((t) => t.index)).toEqual([0, 1, 2, 3]);
		expect(result.synthetic).toBe(false);
		expect(result.ignored).toEqual([]);
		expect([...new Set(result.rows.map((row) => row.model))]).toEqual([...ATTRIBUTION_MODELS]);
	});

	it('first touch: all to the organic search visit', () => {
		expectRows(result, 'first_touch', [[0, 1, '50.2500']]);
	});

	it('last touch: all to the converting direct visit', () => {
		expectRows(result, 'last_touch', [[3, 1, '50.2500']]);
	});

	it('last non-direct: skips the two direct visits back to the email', () => {
		expectRows(result, 'last_non_direct', [[1, 1, '50.2500']]);
	});

	it('linear: a quarter each', () => {
		// 502,500 / 4 = 125,625 units = 12.5625 each, no remainder.
		expectRows(result, 'linear', [
			[0, 0.25, '12.5625'],
			[1, 0.25, '12.5625'],
			[2, 0.25, '12.5625'],
			[3, 0.25, '12.5625'],
		]);
	});

	it('time decay (half-life 7 days): weights halve every week back', () => {
		// Weights 2^-3, 2^-2, 2^-1, 2^0 = 1/8, 2/8, 4/8, 8/8; sum 15/8 → credits 1/15, 2/15, 4/15, 8/15.
		// 502,500 / 15 = 33,500 → 33,500; 67,000; 134,000; 268,000 units, no remainder.
		expectRows(result, 'time_decay', [
			[0, 0.0666666666667, '3.3500'],
			[1, 0.1333333333333, '6.7000'],
			[2, 0.2666666666667, '13.4000'],
			[3, 0.5333333333333, '26.8000'],
		]);
	});

	it('position-based: 40% to each end, 20% split over the middle', () => {
		// 0.4 × 502,500 = 201,000; 0.1 × 502,500 = 50,250.
		expectRows(result, 'position_based', [
			[0, 0.4, '20.1000'],
			[1, 0.1, '5.0250'],
			[2, 0.1, '5.0250'],
			[3, 0.4, '20.1000'],
		]);
	});

	it('time decay with remainders: the same journey worth 100 EUR', () => {
		// 1,000,000 units × 1/15, 2/15, 4/15, 8/15 = 66,666.67; 133,333.33; 266,666.67; 533,333.33.
		// Floors sum to 999,998: the 2 left over go to the largest remainders (.67, touches 0 and 2).
		expectRows(attributeConversion(conversion(100), journey), 'time_decay', [
			[0, 0.0666666666667, '6.6667'],
			[1, 0.1333333333333, '13.3333'],
			[2, 0.2666666666667, '26.6667'],
			[3, 0.5333333333333, '53.3333'],
		]);
	});

	it('linear with a remainder: 100 EUR over 3 touches, the odd unit to the oldest', () => {
		// 1,000,000 / 3 = 333,333 r 1 each; 1 unit left, equal remainders → the oldest touch.
		const three = [touch(7, 'Paid Search', 10), touch(8, 'Referral', 5), touch(9, 'Paid Search', 0)];
		expectRows(attributeConversion(conversion(100), three), 'linear', [
			[7, 0.3333333333333, '33.3334'],
			[8, 0.3333333333333, '33.3333'],
			[9, 0.3333333333333, '33.3333'],
		]);
	});

	it('position-based over 5 touches: the middle 20% split in thirds', () => {
		// 10 EUR = 100,000 units. Ends 0.4 → 40,000 each. Middle 0.2 / 3 = 1/15 → 6,666.67 each;
		// floors 6,666 × 3 leave 2 units, equal remainders → the two older middle touches.
		const five = [touch(0, 'Paid Search', 40), touch(1, 'Email', 30), touch(2, 'Email', 20), touch(3, 'Referral', 10), touch(4, 'Direct', 0)];
		expectRows(attributeConversion(conversion(10), five), 'position_based', [
			[0, 0.4, '4.0000'],
			[1, 0.0666666666667, '0.6667'],
			[2, 0.0666666666667, '0.6667'],
			[3, 0.0666666666667, '0.6666'],
			[4, 0.4, '4.0000'],
		]);
	});

	it('position-based over 2 touches is 50/50 and over 1 touch 100%', () => {
		// 502,500 / 2 = 251,250 units each.
		expectRows(attributeConversion(conversion('50.25'), [touch(0, 'Email', 3), touch(1, 'Direct', 0)]), 'position_based', [
			[0, 0.5, '25.1250'],
			[1, 0.5, '25.1250'],
		]);
		expectRows(attributeConversion(conversion('50.25'), [touch(0, 'Email', 3)]), 'position_based', [[0, 1, '50.2500']]);
	});

	it('position-based with a single unit: it goes to the first of the tied ends', () => {
		// 1 unit × 0.4, 0.1, 0.1, 0.4 → all floors 0; remainders .4, .1, .1, .4 → first touch.
		expectRows(attributeConversion(conversion(0.0001), journey), 'position_based', [
			[0, 0.4, '0.0001'],
			[1, 0.1, '0.0000'],
			[2, 0.1, '0.0000'],
			[3, 0.4, '0.0000'],
		]);
	});

	it('time decay half a half-life apart: √2 − 1 and 2 − √2', () => {
		// Weights 2^-0.5 = 0.70710678 and 1 → credits 0.70710678 / 1.70710678 = 0.41421356 and 0.58578644.
		// 10,000 units → 4,142.14 and 5,857.86; the unit left goes to the larger remainder (.86).
		const result = attributeConversion(conversion(1), [touch(0, 'Email', 3.5), touch(1, 'Direct', 0)]);
		expectRows(result, 'time_decay', [
			[0, 0.4142135624, '0.4142'],
			[1, 0.5857864376, '0.5858'],
		]);
	});

	it('time decay with a half-life of 14 days', () => {
		// Weights 2^-1 and 1 → 1/3 and 2/3 of 30,000 units = 10,000 and 20,000.
		const result = attributeConversion(conversion(3), [touch(0, 'Email', 14), touch(1, 'Direct', 0)], { halfLifeDays: 14 });
		expectRows(result, 'time_decay', [
			[0, 0.3333333333333, '1.0000'],
			[1, 0.6666666666667, '2.0000'],
		]);
	});

	it('time decay leaves out a touch whose weight is negligible', () => {
		// Half-life 0.1 day: 10 days back weighs 2^-100, under 2^-41 of the newest → no row.
		const result = attributeConversion(conversion(5), [touch(0, 'Email', 10), touch(1, 'Direct', 0)], { halfLifeDays: 0.1 });
		expectRows(result, 'time_decay', [[1, 1, '5.0000']]);
		expectRows(result, 'linear', [
			[0, 0.5, '2.5000'],
			[1, 0.5, '2.5000'],
		]);
	});

	it('last non-direct falls back to the last touch when every touch is direct', () => {
		// A blank channel and "direct" in any case count as direct.
		const allDirect = [touch(0, 'Direct', 9), touch(1, 'direct', 5), touch(2, ' ', 3), touch(3, 'DIRECT', 1)];
		expectRows(attributeConversion(conversion(20), allDirect), 'last_non_direct', [[3, 1, '20.0000']]);
	});

	it('last non-direct takes a non-direct converting touch itself', () => {
		expectRows(attributeConversion(conversion(20), [touch(0, 'Email', 9), touch(1, 'Paid Social', 0)]), 'last_non_direct', [[1, 1, '20.0000']]);
	});

	it('a zero-value conversion still records credits', () => {
		// 0 units split any way is 0 for everyone; the credits keep the model's shares.
		expectRows(attributeConversion(conversion(0), journey), 'linear', [
			[0, 0.25, '0.0000'],
			[1, 0.25, '0.0000'],
			[2, 0.25, '0.0000'],
			[3, 0.25, '0.0000'],
		]);
	});

	it('a negative value (a refund) is split the same way with its sign', () => {
		// 3 units over 2 touches: 1 each, 1 left → the older touch.
		expectRows(attributeConversion(conversion('-0.0003'), [touch(0, 'Email', 2), touch(1, 'Direct', 0)]), 'linear', [
			[0, 0.5, '-0.0002'],
			[1, 0.5, '-0.0001'],
		]);
	});
});

describe('which touches count', () => {
	it('ignores touches after the conversion and before the 90-day lookback, keeping the boundary', () => {
		const touches = [touch(0, 'Paid Search', 90.0001), touch(1, 'Email', 90), { ...touch(2, 'Referral', 0), touchedAt: new Date(CONVERTED_AT.getTime() + 1) }, touch(3, 'Direct', 0)];
		const result = attributeConversion(conversion(10), touches);
		expect(result.touchpoints.map((t) => t.index)).toEqual([1, 3]);
		expect(result.ignored).toEqual([
			{ index: 0, reason: 'outside_lookback' },
			{ index: 2, reason: 'after_conversion' },
		]);
		expectRows(result, 'first_touch', [[1, 1, '10.0000']]);
	});

	it('takes a custom lookback, Infinity keeping every earlier touch', () => {
		const touches = [touch(0, 'Paid Search', 400), touch(1, 'Email', 45), touch(2, 'Direct', 1)];
		expect(attributeConversion(conversion(1), touches, { lookbackDays: 30 }).touchpoints.map((t) => t.index)).toEqual([2]);
		expect(attributeConversion(conversion(1), touches, { lookbackDays: Infinity }).touchpoints.map((t) => t.index)).toEqual([0, 1, 2]);
	});

	it('gives the same rows whatever the input order', () => {
		const ordered = [touch(0, 'Organic Search', 21), touch(1, 'Email', 14), touch(2, 'Direct', 7), touch(3, 'Direct', 0)];
		const shuffled = [ordered[2], ordered[0], ordered[3], ordered[1]];
		expect(attributeConversion(conversion(99.99), shuffled)).toEqual(attributeConversion(conversion(99.99), ordered));
	});

	it('orders touches at the same time by index', () => {
		const result = attributeConversion(conversion(1), [touch(5, 'Email', 2), touch(2, 'Referral', 2), touch(9, 'Direct', 0)]);
		expect(result.touchpoints.map((t) => t.index)).toEqual([2, 5, 9]);
		expectRows(result, 'first_touch', [[2, 1, '1.0000']]);
	});

	it('credits a synthetic direct touch of the converting session when no touch qualifies', () => {
		const result = attributeConversion(conversion(12.5), []);
		expect(result.synthetic).toBe(true);
		expect(result.touchpoints).toEqual([{ index: 0, sessionId: 'converting', channel: 'Direct', touchedAt: CONVERTED_AT }]);
		for (const model of ATTRIBUTION_MODELS) expectRows(result, model, [[0, 1, '12.5000']]);
	});

	it('numbers the synthetic touch past every given index', () => {
		const late = [{ ...touch(3, 'Email', 0), touchedAt: new Date(CONVERTED_AT.getTime() + DAY) }, touch(7, 'Email', 200)];
		const result = attributeConversion({ value: 1, occurredAt: CONVERTED_AT }, late);
		expect(result.touchpoints).toEqual([{ index: 8, sessionId: null, channel: 'Direct', touchedAt: CONVERTED_AT }]);
		expect(result.ignored.map((i) => i.reason)).toEqual(['after_conversion', 'outside_lookback']);
	});
});

describe('options and input checks', () => {
	const journey = [touch(0, 'Email', 3), touch(1, 'Direct', 0)];

	it('computes only the models asked for, in the canonical order', () => {
		const result = attributeConversion(conversion(1), journey, { models: ['linear', 'first_touch', 'linear'] });
		expect(result.rows.map((row) => row.model)).toEqual(['first_touch', 'linear', 'linear']);
		expect(attributeConversion(conversion(1), journey, { models: [] }).rows).toEqual([]);
	});

	// [value given, value stored]
	const values: Array<[number | string, string]> = [
		[50.25, '50.2500'],
		['50.25', '50.2500'],
		[' 7 ', '7.0000'],
		['+7', '7.0000'],
		[0, '0.0000'],
		['0', '0.0000'],
		['-0', '0.0000'],
		[0.0001, '0.0001'],
		['0.0001', '0.0001'],
		[9999999999.9999, '9999999999.9999'],
		['9999999999.9999', '9999999999.9999'],
		['0009999999999.99990000', '9999999999.9999'],
		[0.1 + 0.2, '0.3000'],
		['1.23456', '1.2346'],
		['0.00005', '0.0001'],
		['0.000049999', '0.0000'],
		['-0.00005', '-0.0001'],
		['1e-7', '0.0000'],
		[1e-7, '0.0000'],
		['1.5e3', '1500.0000'],
		['15E-1', '1.5000'],
		['.5', '0.5000'],
		['5.', '5.0000'],
		['1e-999999999', '0.0000'],
		['0e999999999', '0.0000'],
	];

	it.each(values)('stores %j as %s', (given, stored) => {
		expect(attributeConversion(conversion(given), journey).value).toBe(stored);
	});

	it.each([['10000000000'], ['9999999999.99995'], [1e10], ['1e999999999'], [-1e10]])('rejects %j, too large for Decimal(14, 4)', (given) => {
		expect(() => attributeConversion(conversion(given), journey)).toThrow(/does not fit Decimal\(14, 4\)/);
	});

	it.each([[''], ['.'], ['abc'], ['1,5'], ['--1'], ['1e'], ['0x10'], [NaN], [Infinity]])('rejects %j, not a decimal', (given) => {
		expect(() => attributeConversion(conversion(given), journey)).toThrow(/is not a decimal number/);
	});

	it.each<[string, AttributionOptions, RegExp]>([
		['half-life 0', { halfLifeDays: 0 }, /halfLifeDays/],
		['negative half-life', { halfLifeDays: -7 }, /halfLifeDays/],
		['infinite half-life', { halfLifeDays: Infinity }, /halfLifeDays/],
		['NaN half-life', { halfLifeDays: NaN }, /halfLifeDays/],
		['lookback 0', { lookbackDays: 0 }, /lookbackDays/],
		['NaN lookback', { lookbackDays: NaN }, /lookbackDays/],
		['unknown model', { models: ['u_shaped' as AttributionModel] }, /unknown attribution model\(s\) u_shaped/],
	])('rejects %s', (_name, options, message) => {
		expect(() => attributeConversion(conversion(1), journey, options)).toThrow(message);
	});

	it('rejects touches it cannot tell apart or place in time', () => {
		expect(() => attributeConversion(conversion(1), [touch(1, 'Email', 2), touch(1, 'Direct', 0)])).toThrow(/index 1 is used twice/);
		expect(() => attributeConversion(conversion(1), [touch(1.5, 'Email', 2)])).toThrow(/index 1.5 must be an integer/);
		expect(() => attributeConversion(conversion(1), [{ ...touch(4, 'Email', 2), touchedAt: new Date('soon') }])).toThrow(/touchedAt of touchpoint 4/);
		expect(() => attributeConversion({ value: 1, occurredAt: new Date(NaN) }, journey)).toThrow(/conversion occurredAt/);
	});
});

/** Mulberry32: a small seeded generator, so a failing journey can be replayed. */
function prng(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const toUnits = (decimal: string) => BigInt(decimal.replace('.', ''));

describe('properties over 2,000 generated journeys', () => {
	const random = prng(20261123);
	const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
	const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)];
	const CHANNELS = ['Direct', 'Organic Search', 'Paid Search', 'Email', 'Referral', 'Organic Social', ''];
	const SPECIAL_VALUES: Array<number | string> = [0, 0.0001, 9999999999.9999, '0.0001', '9999999999.9999', 1, 0.0003, 50.25];

	function randomValue(): number | string {
		const kind = int(0, 3);
		if (kind === 0) return pick(SPECIAL_VALUES);
		// Any amount the column can hold, as a decimal string.
		const units = BigInt(int(0, 99_999)) * 1_000_000_000n + BigInt(int(0, 999_999_999));
		if (kind === 1) return `${units / 10_000n}.${(units % 10_000n).toString().padStart(4, '0')}`;
		if (kind === 2) return Math.round(random() * 1_000_000) / 100;
		return int(0, 9);
	}

	const journeys = Array.from({ length: 2000 }, (_, n) => {
		const length = int(1, 30);
		// Indices are distinct but neither 0-based nor in time order; times spread past both
		// ends of the window so that some touches (sometimes all) are filtered out.
		const touches: Touchpoint[] = Array.from({ length }, (_, i) => ({
			index: i * 3 + int(0, 2),
			channel: pick(CHANNELS),
			touchedAt: new Date(CONVERTED_AT.getTime() - Math.round((random() * 100 - 2) * DAY)),
		}));
		const options: AttributionOptions = n % 4 === 0 ? { halfLifeDays: 0.05 + random() * 30, lookbackDays: int(1, 120) } : {};
		return { value: randomValue(), touches, options };
	});

	it('splits every model exactly: values sum to the conversion value, credits to 1', () => {
		// Plain checks collected into one assertion: an expect() per row would take half a minute.
		const failures: string[] = [];
		const check = (ok: boolean, what: () => string) => {
			if (!ok && failures.length < 20) failures.push(what());
		};
		journeys.forEach(({ value, touches, options }, n) => {
			const result = attributeConversion({ value, occurredAt: CONVERTED_AT }, touches, options);
			const total = toUnits(result.value);
			const eligible = new Set(result.touchpoints.map((t) => t.index));
			check(result.touchpoints.length + result.ignored.length === touches.length + (result.synthetic ? 1 : 0), () => `journey ${n}: touches lost`);

			for (const model of ATTRIBUTION_MODELS) {
				const rows = result.rows.filter((row) => row.model === model);
				const where = () => `journey ${n}, ${model}, value ${result.value}: ${JSON.stringify(rows)}`;
				const units = rows.map((row) => toUnits(row.value));
				check(units.reduce((a, b) => a + b, 0n) === total, () => `${where()}: values do not sum to the conversion value`);
				check(Math.abs(rows.reduce((sum, row) => sum + row.credit, 0) - 1) <= 1e-9, () => `${where()}: credits do not sum to 1`);
				check(new Set(rows.map((row) => row.touchpointIndex)).size === rows.length, () => `${where()}: a touch credited twice`);
				rows.forEach((row, i) => {
					check(eligible.has(row.touchpointIndex), () => `${where()}: credits touch ${row.touchpointIndex}, which does not count`);
					check(row.credit > 0 && row.credit <= 1, () => `${where()}: credit out of (0, 1]`);
					check(/^\d+\.\d{4}$/.test(row.value), () => `${where()}: value not a non-negative 4-decimal string`);
					// Largest remainder moves each value less than one unit away from its exact share.
					check(Math.abs(Number(units[i]) - row.credit * Number(total)) < 1 + Number(total) * 1e-12, () => `${where()}: value far from its credit`);
				});
				const expected = model === 'linear' || model === 'position_based' ? result.touchpoints.length : model === 'time_decay' ? rows.length : 1;
				check(rows.length === expected && rows.length > 0, () => `${where()}: ${rows.length} rows, expected ${expected}`);
			}
		});
		expect(failures).toEqual([]);
	});

	it('does not depend on the order of the input', () => {
		journeys.slice(0, 300).forEach(({ value, touches, options }) => {
			const forward = attributeConversion({ value, occurredAt: CONVERTED_AT }, touches, options);
			const backward = attributeConversion({ value, occurredAt: CONVERTED_AT }, [...touches].reverse(), options);
			expect(backward).toEqual(forward);
		});
	});
});
