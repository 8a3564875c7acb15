import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { InputError } from '../../nodes/shared/inputError';
import type { ResolvedSite } from '../../nodes/shared/subjects';
import { parseSequenceDefinition, SequenceResolver } from '../../nodes/EmailOrchestrator/sequences';

/**
 * A Sequence Definition parameter names the site's stages and conversion rules as a sequence of the
 * site config does, and is held to them the same way, before anything is written: a trigger stage
 * no lead enters would enroll nobody, silently.
 */

const config = parseSiteConfig({
	site: { key: 'defs', name: 'Definitions', domain: 'defs.example' },
	tracking: { allowedOrigins: ['https://defs.example'] },
	crm: { conversionRules: [{ name: 'purchase', event: 'purchase' }] },
});
const site: ResolvedSite = { id: '0190a8d2-0000-7000-8000-0000000000aa', key: 'defs', domain: 'defs.example', config };

/** A database that answers only the sync's transaction, so a refused definition shows it wrote nothing. */
function resolver(): { sequences: SequenceResolver; synced: () => number } {
	let synced = 0;
	const prisma = {
		$transaction: async () => {
			synced += 1;
			return 'synced';
		},
	} as unknown as PrismaClient;
	return { sequences: new SequenceResolver(prisma), synced: () => synced };
}

const definition = (extra: Record<string, unknown>) => parseSequenceDefinition({ name: 'adhoc', steps: [{ delayMinutes: 0, subject: 'Hi', html: '<p>Hi</p>' }], ...extra });

function refusal(extra: Record<string, unknown>): InputError {
	const { sequences, synced } = resolver();
	try {
		void sequences.fromDefinition(site, definition(extra));
	} catch (error) {
		expect(synced()).toBe(0);
		if (error instanceof InputError) return error;
		throw error;
	}
	throw new Error('the definition was accepted');
}

describe('a Sequence Definition’s trigger stage', () => {
	it('must be one of the site’s crm.lifecycleStages, with a did-you-mean', () => {
		const error = refusal({ trigger: { stage: 'leed' } });
		expect(error.field).toBe('sequenceDefinition');
		expect(error.message).toBe('is not a sequence:\n  - trigger.stage: must name a stage of crm.lifecycleStages; did you mean "lead"? (it has: subscriber, lead, mql, sql, customer)');
	});

	it('is reported together with an exit conversion the site has no rule for', () => {
		expect(refusal({ trigger: { stage: 'vip' }, exitOn: { conversions: ['purchase', 'signup'] } }).message).toBe(
			'is not a sequence:\n' +
				'  - trigger.stage: must name a stage of crm.lifecycleStages (it has: subscriber, lead, mql, sql, customer); add a stage named "vip" or correct the name\n' +
				'  - exitOn.conversions[1]: must name a rule of crm.conversionRules (it has: purchase); add a conversion rule named "signup" or correct the name',
		);
	});

	it.each([{ trigger: { stage: 'mql' } }, { trigger: { tag: 'leed' } }, { trigger: { event: 'leed' } }, {}])('lets %j through to the database', async (extra) => {
		const { sequences, synced } = resolver();
		await expect(sequences.fromDefinition(site, definition(extra))).resolves.toBe('synced');
		expect(synced()).toBe(1);
	});
});
