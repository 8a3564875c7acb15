import { leadPayloadSchema } from '../../lib/contracts/lead';

/**
 * A `matches` scoring rule tests its pattern against the lead's fields, values a visitor types into
 * a form. The site config refuses patterns that backtrack exponentially; the time any other takes
 * grows with the value's length, which the lead contract, passed by every lead before it is stored
 * and scored, bounds for each field a fit rule reads (the email domain by the address).
 */
describe('the lead fields a matches rule is tested against', () => {
	const lead = (extra: Record<string, unknown>) => leadPayloadSchema.safeParse({ site: 'shop', email: 'ana@shop.example', ...extra });

	it.each([
		['company', 200],
		['jobTitle', 200],
		['source', 100],
		['phone', 40],
	])('bounds %s at %i characters', (field, max) => {
		expect(lead({ [field]: 'a'.repeat(max) }).success).toBe(true);
		const refused = lead({ [field]: 'a'.repeat(max + 1) });
		expect(refused.error?.issues).toEqual([expect.objectContaining({ path: [field], message: `must be at most ${max} characters` })]);
	});

	it('bounds the address, and with it the email domain, at 254 characters, and the country at a code', () => {
		expect(lead({ email: `ana@${'a'.repeat(250)}.example` }).success).toBe(false);
		expect(lead({ country: 'a'.repeat(3) }).success).toBe(false);
	});
});
