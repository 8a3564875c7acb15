import { conversionNames, endingConversion, exitConversionsOf, storedExitConversions } from '../../nodes/EmailOrchestrator/exits';
import { InputError } from '../../nodes/shared/inputError';

const ENROLLED = new Date('2026-06-10T10:00:00.000Z');
const at = (offsetMs: number) => new Date(ENROLLED.getTime() + offsetMs);

describe('endingConversion', () => {
	it('ends an enrollment only on a conversion its sequence exits on, reached after the enrollment began', () => {
		const exitOn = ['purchase', 'demo-booked'];
		expect(endingConversion(exitOn, ENROLLED, { names: ['purchase'], occurredAt: at(60_000) })).toBe('purchase');
		// the first named one of several conversions reached by one event
		expect(endingConversion(exitOn, ENROLLED, { names: ['contact-request', 'demo-booked', 'purchase'], occurredAt: at(1) })).toBe('demo-booked');
		// a conversion the sequence does not name: the form that made the lead
		expect(endingConversion(exitOn, ENROLLED, { names: ['contact-request'], occurredAt: at(60_000) })).toBeNull();
	});

	it('never ends an enrollment on a conversion from before it or from the same moment', () => {
		const exitOn = ['contact-request'];
		expect(endingConversion(exitOn, ENROLLED, { names: ['contact-request'], occurredAt: at(-800) })).toBeNull();
		expect(endingConversion(exitOn, ENROLLED, { names: ['contact-request'], occurredAt: at(0) })).toBeNull();
		expect(endingConversion(exitOn, ENROLLED, { names: ['contact-request'], occurredAt: at(1) })).toBe('contact-request');
	});

	it('ends a sequence without exitOn on no conversion', () => {
		expect(endingConversion([], ENROLLED, { names: ['purchase'], occurredAt: at(60_000) })).toBeNull();
	});
});

describe('exitConversionsOf', () => {
	const configured = [{ name: 'welcome', exitOn: { conversions: ['purchase'] } }, { name: 'plain' }];

	it('follows the site config for its sequences, whatever the database kept, and the stored settings for others', () => {
		expect(exitConversionsOf({ name: 'welcome', settings: { exitOn: { conversions: ['old'] } } }, configured)).toEqual(['purchase']);
		expect(exitConversionsOf({ name: 'plain', settings: { exitOn: { conversions: ['old'] } } }, configured)).toEqual([]);
		expect(exitConversionsOf({ name: 'from-database', settings: { quietHours: { start: '21:00', end: '08:00' }, exitOn: { conversions: ['trial'] } } }, configured)).toEqual(['trial']);
	});

	it('reads settings it does not understand as ending on nothing', () => {
		for (const settings of [null, undefined, {}, { exitOn: 'purchase' }, { exitOn: { conversions: 'purchase' } }]) expect(storedExitConversions(settings)).toEqual([]);
		expect(storedExitConversions({ exitOn: { conversions: ['purchase', 7, null] } })).toEqual(['purchase']);
	});
});

describe('conversionNames', () => {
	it('takes a name, a list of names, or the Conversion Detector’s conversions', () => {
		expect(conversionNames(' purchase ')).toEqual(['purchase']);
		expect(conversionNames(['purchase', 'demo-booked'])).toEqual(['purchase', 'demo-booked']);
		expect(conversionNames([{ goal: 'contact-request', leadId: 'x', value: '50.0000' }, { goal: 'purchase' }])).toEqual(['contact-request', 'purchase']);
	});

	it.each([[undefined], [''], [[]], [[{ value: 1 }]], [['purchase', '']], [42]])('names the Conversions parameter for %j', (value) => {
		const error = (() => {
			try {
				conversionNames(value);
			} catch (caught) {
				return caught;
			}
			return undefined;
		})();
		expect(error).toBeInstanceOf(InputError);
		expect(error).toMatchObject({ field: 'conversions', message: expect.stringMatching(/names no conversion; give the name of the conversion rule reached/) });
	});
});
