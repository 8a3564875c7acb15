/**
 * Multi-touch attribution of one conversion over the visitor's touchpoints (sessions), under
 * the six models of the `attribution_model` enum. Plain functions over structural types.
 */

export const ATTRIBUTION_MODELS = ['first_touch', 'last_touch', 'last_non_direct', 'linear', 'time_decay', 'position_based'] as const;

export type AttributionModel = (typeof ATTRIBUTION_MODELS)[number];

/** Channel of a visit with no referrer and no campaign; also given to the synthetic touch. */
export const DIRECT_CHANNEL = 'Direct';

export const DEFAULT_HALF_LIFE_DAYS = 7;
export const DEFAULT_LOOKBACK_DAYS = 90;

export interface Touchpoint {
	/** The caller's identity of the touch, returned as `touchpointIndex`; unique per call. */
	index: number;
	sessionId?: string | null;
	channel: string;
	source?: string | null;
	medium?: string | null;
	campaign?: string | null;
	touchedAt: Date;
}

export interface ConversionToAttribute {
	/** A number or a decimal string such as "50.25" (what a Prisma Decimal's toString() gives). */
	value: number | string;
	occurredAt: Date;
	/** The session the conversion happened in; carried by the synthetic touch. */
	sessionId?: string | null;
}

export interface AttributionOptions {
	/** Time-decay: a touch this many days older than another gets half its weight. */
	halfLifeDays?: number;
	/** Touches older than this many days before the conversion are ignored; Infinity keeps all. */
	lookbackDays?: number;
	/** Models to compute; all six by default. Rows come in the order of {@link ATTRIBUTION_MODELS}. */
	models?: readonly AttributionModel[];
}

export interface AttributionRow {
	model: AttributionModel;
	touchpointIndex: number;
	/** Fraction of the conversion, 0..1; a model's credits sum to 1. */
	credit: number;
	/** Decimal string with 4 decimals; a model's values sum exactly to the conversion value. */
	value: string;
}

export interface IgnoredTouchpoint {
	index: number;
	reason: 'after_conversion' | 'outside_lookback';
}

export interface AttributionResult {
	/** The conversion value at the stored scale, e.g. "50.2500". */
	value: string;
	/** The touches that share the credit, oldest first. */
	touchpoints: Touchpoint[];
	/** True when no given touch qualified and a Direct touch at the conversion stands in for its session. */
	synthetic: boolean;
	/** Given touches that do not count, by index. */
	ignored: IgnoredTouchpoint[];
	rows: AttributionRow[];
}

// Money is held as integer units of the stored scale: conversions.value and
// attribution_data.value are Decimal(14, 4).
const SCALE = 4;
const UNITS_PER_WHOLE = 10n ** BigInt(SCALE);
const MAX_DIGITS = 14;
const MAX_UNITS = 10n ** BigInt(MAX_DIGITS) - 1n;
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i;

const DAY_MS = 86_400_000;
// Time-decay weights become integers at this resolution so that money is split exactly.
const DECAY_RESOLUTION = 2 ** 40;

/**
 * Attributes one conversion to the touches before it, under each model.
 *
 * Touches after the conversion or older than the lookback window are left out (listed in
 * `ignored`); input order does not matter, ties in time are ordered by `index`. A conversion
 * always happened in a session, so when no touch qualifies a synthetic Direct touch at the
 * conversion time (index 0, or one above the largest index given) takes all the credit, and
 * `synthetic` says so: the values of every model still add up to the conversion value.
 *
 * A model has a row for each touch it credits: first touch, last touch and last non-direct
 * one; linear and position-based every touch; time decay every touch except those weighing
 * under 2^-41 of the newest (possible only with a half-life far shorter than the lookback).
 */
export function attributeConversion(
	conversion: ConversionToAttribute,
	touchpoints: readonly Touchpoint[],
	options: AttributionOptions = {},
): AttributionResult {
	const total = toUnits(conversion.value);
	const occurredAt = time(conversion.occurredAt, 'conversion occurredAt');
	const halfLifeDays = options.halfLifeDays ?? DEFAULT_HALF_LIFE_DAYS;
	if (!(halfLifeDays > 0 && Number.isFinite(halfLifeDays))) throw new RangeError(`halfLifeDays must be a positive number of days, got ${halfLifeDays}`);
	const lookbackDays = options.lookbackDays ?? DEFAULT_LOOKBACK_DAYS;
	if (!(lookbackDays > 0)) throw new RangeError(`lookbackDays must be a positive number of days (or Infinity), got ${lookbackDays}`);
	const models = selectModels(options.models);

	const seen = new Set<number>();
	for (const touch of touchpoints) {
		if (!Number.isSafeInteger(touch.index)) throw new RangeError(`touchpoint index ${touch.index} must be an integer`);
		if (seen.has(touch.index)) throw new RangeError(`touchpoint index ${touch.index} is used twice; each touch needs its own index`);
		seen.add(touch.index);
		time(touch.touchedAt, `touchedAt of touchpoint ${touch.index}`);
	}

	const earliest = occurredAt - lookbackDays * DAY_MS;
	const ignored: IgnoredTouchpoint[] = [];
	const eligible: Touchpoint[] = [];
	for (const touch of touchpoints) {
		const at = touch.touchedAt.getTime();
		if (at > occurredAt) ignored.push({ index: touch.index, reason: 'after_conversion' });
		else if (at < earliest) ignored.push({ index: touch.index, reason: 'outside_lookback' });
		else eligible.push(touch);
	}
	eligible.sort((a, b) => a.touchedAt.getTime() - b.touchedAt.getTime() || a.index - b.index);
	ignored.sort((a, b) => a.index - b.index);

	const synthetic = eligible.length === 0;
	if (synthetic) {
		const index = touchpoints.reduce((max, touch) => Math.max(max, touch.index + 1), 0);
		eligible.push({ index, sessionId: conversion.sessionId ?? null, channel: DIRECT_CHANNEL, touchedAt: new Date(occurredAt) });
	}

	const rows: AttributionRow[] = [];
	for (const model of models) {
		const shares = modelShares(model, eligible, halfLifeDays * DAY_MS);
		const sum = shares.reduce((a, b) => a + b, 0n);
		const amounts = distribute(total, shares, sum);
		shares.forEach((share, i) => {
			if (share === 0n) return;
			rows.push({ model, touchpointIndex: eligible[i].index, credit: Number(share) / Number(sum), value: formatUnits(amounts[i]) });
		});
	}
	return { value: formatUnits(total), touchpoints: eligible, synthetic, ignored, rows };
}

function selectModels(requested: readonly AttributionModel[] | undefined): readonly AttributionModel[] {
	if (requested === undefined) return ATTRIBUTION_MODELS;
	const unknown = requested.filter((model) => !ATTRIBUTION_MODELS.includes(model));
	if (unknown.length > 0) throw new RangeError(`unknown attribution model(s) ${unknown.join(', ')}; use ${ATTRIBUTION_MODELS.join(', ')}`);
	return ATTRIBUTION_MODELS.filter((model) => requested.includes(model));
}

function time(date: Date, what: string): number {
	const ms = date instanceof Date ? date.getTime() : NaN;
	if (Number.isNaN(ms)) throw new RangeError(`${what} must be a valid Date`);
	return ms;
}

/** A blank channel is a visit nobody could attribute, which analytics tools report as direct. */
function isDirect(channel: string): boolean {
	const name = channel.trim().toLowerCase();
	return name === '' || name === 'direct';
}

/** Integer weights of the touches (oldest first) under a model; credit is weight / sum. */
function modelShares(model: AttributionModel, touches: readonly Touchpoint[], halfLifeMs: number): bigint[] {
	const last = touches.length - 1;
	const only = (position: number) => touches.map((_, i) => (i === position ? 1n : 0n));
	switch (model) {
		case 'first_touch':
			return only(0);
		case 'last_touch':
			return only(last);
		case 'last_non_direct': {
			const position = touches.findLastIndex((touch) => !isDirect(touch.channel));
			return only(position === -1 ? last : position);
		}
		case 'linear':
			return touches.map(() => 1n);
		case 'position_based': {
			if (touches.length <= 2) return touches.map(() => 1n);
			// 40% each for the ends and 20% shared by the n - 2 middle touches: in units of
			// 1 / (5(n - 2)), the ends get 2(n - 2) and each middle touch 1.
			const end = BigInt(2 * (touches.length - 2));
			return touches.map((_, i) => (i === 0 || i === last ? end : 1n));
		}
		case 'time_decay': {
			// Weighing against the newest touch rather than the conversion gives the same
			// credits once normalized, and the newest weight is 1 so the sum is never 0.
			const newest = touches[last].touchedAt.getTime();
			return touches.map((touch) => BigInt(Math.round(2 ** ((touch.touchedAt.getTime() - newest) / halfLifeMs) * DECAY_RESOLUTION)));
		}
	}
}

/**
 * Splits `total` units in proportion to `shares` so that the parts add up exactly (largest
 * remainder method). Leftover units go to the largest remainders, ties to the older touch,
 * so the same journey always gets the same split.
 */
function distribute(total: bigint, shares: readonly bigint[], sum: bigint): bigint[] {
	const magnitude = total < 0n ? -total : total;
	const amounts = shares.map((share) => (magnitude * share) / sum);
	const remainders = shares.map((share) => (magnitude * share) % sum);
	let left = magnitude - amounts.reduce((a, b) => a + b, 0n);
	const order = shares.map((_, i) => i).sort((a, b) => (remainders[a] === remainders[b] ? a - b : remainders[a] > remainders[b] ? -1 : 1));
	for (let k = 0; left > 0n; k++, left--) amounts[order[k]] += 1n;
	return total < 0n ? amounts.map((amount) => -amount) : amounts;
}

function toUnits(value: number | string): bigint {
	const parsed = parseUnits(value);
	if (typeof parsed === 'string') throw new RangeError(`conversion value ${JSON.stringify(value)} ${parsed}`);
	return parsed;
}

/**
 * Parses a decimal into units of the stored scale, rounding further digits half away from
 * zero as Postgres does when it stores a numeric(14, 4), or says why it cannot. Numbers go
 * through their shortest decimal form, so 0.1 is 0.1 and not the binary fraction near it.
 */
function parseUnits(value: number | string): bigint | string {
	const text = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : value.trim();
	const match = DECIMAL.exec(text);
	if (!match || match[2] + (match[3] ?? '') === '') return 'is not a decimal number such as 50.25';
	const [, sign, whole, fraction = '', exponent = '0'] = match;
	const digits = BigInt(whole + fraction);
	// value = digits × 10^(exponent − fraction digits), so units = digits × 10^shift.
	const shift = Number(exponent) - fraction.length + SCALE;
	const tooLarge = 'does not fit Decimal(14, 4): at most 9999999999.9999';
	let units: bigint;
	if (digits === 0n) units = 0n;
	// Checked before 10n ** shift, which an exponent such as e999999999 would make enormous.
	else if (shift > MAX_DIGITS) return tooLarge;
	else if (shift >= 0) units = digits * 10n ** BigInt(shift);
	// Below a tenth of a unit, so it rounds to zero, whatever the exponent.
	else if (-shift > whole.length + fraction.length + 1) units = 0n;
	else {
		const divisor = 10n ** BigInt(-shift);
		units = digits / divisor + ((digits % divisor) * 2n >= divisor ? 1n : 0n);
	}
	if (units > MAX_UNITS) return tooLarge;
	return sign === '-' ? -units : units;
}

function formatUnits(units: bigint): string {
	const magnitude = units < 0n ? -units : units;
	const fraction = (magnitude % UNITS_PER_WHOLE).toString().padStart(SCALE, '0');
	return `${units < 0n ? '-' : ''}${magnitude / UNITS_PER_WHOLE}.${fraction}`;
}
