import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { ErasedPerson, findLeadId, findLeads, leadReference } from '../../nodes/shared/leads';
import { createTestSite, testPrisma } from '../helpers/db';
import { InputError } from '../../nodes/shared/inputError';

describe('leadReference', () => {
	// [what the builder typed, what it names]
	const cases: Array<[string, { id: string } | { email: string } | { error: string }]> = [
		['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', { id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }],
		['  0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B ', { id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }],
		['jane@acme.io', { email: 'jane@acme.io' }],
		[' Jane@ACME.io ', { email: 'jane@acme.io' }],
		['Jane.Doe+news@gmail.com', { email: 'janedoe@gmail.com' }],
		['jane.doe@googlemail.com', { email: 'janedoe@gmail.com' }],
		['jane+tag@acme.io', { email: 'jane+tag@acme.io' }],
		['nobody', { error: '"nobody" is neither a lead id nor an email address; give the lead\'s id or email address' }],
		['   ', { error: '"" is neither a lead id nor an email address; give the lead\'s id or email address' }],
		['@acme.io', { error: '"@acme.io" is neither a lead id nor an email address; give the lead\'s id or email address' }],
	];
	it.each(cases)('%j names %j', (reference, expected) => {
		const named = leadReference(reference);
		if ('error' in expected) {
			expect('error' in named && named.error).toBeInstanceOf(InputError);
			expect('error' in named && { field: named.error.field, message: named.error.message }).toEqual({ field: 'lead', message: expected.error });
		} else expect(named).toEqual(expected);
	});
});

describe('findLeads', () => {
	let prisma: PrismaClient;
	let site: { id: string };
	let other: { id: string };
	let jane: string;
	let bob: string;
	let elsewhere: string;

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'leads');
		other = await createTestSite(prisma, 'leads-other');
		jane = (await prisma.lead.create({ data: { siteId: site.id, email: 'janedoe@gmail.com', emailHash: 'h1' } })).id;
		bob = (await prisma.lead.create({ data: { siteId: site.id, email: 'bob@acme.io', emailHash: 'h2' } })).id;
		elsewhere = (await prisma.lead.create({ data: { siteId: other.id, email: 'carol@acme.io', emailHash: 'h3' } })).id;
	});
	afterAll(async () => {
		await prisma.$disconnect();
	});

	it('maps each reference to its lead, or to why there is none', async () => {
		const unknownId = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
		// [reference, lead id or error message]
		const cases: Array<[string, string]> = [
			['Jane.Doe+crm@gmail.com', jane],
			['janedoe@gmail.com', jane],
			[` ${bob.toUpperCase()} `, bob],
			['BOB@acme.io', bob],
			['carol@acme.io', 'No lead "carol@acme.io" on this site; give the lead\'s id or email address'],
			[elsewhere, `No lead "${elsewhere}" on this site; give the lead's id or email address`],
			[unknownId, `No lead "${unknownId}" on this site; give the lead's id or email address`],
			['not an address', '"not an address" is neither a lead id nor an email address; give the lead\'s id or email address'],
		];
		const found = await findLeads(prisma, site.id, cases.map(([reference]) => reference));
		expect(cases.map(([reference]) => {
			const result = found.get(reference);
			return [reference, result instanceof InputError ? result.message : result];
		})).toEqual(cases);
	});

	it('throws for one reference that names no lead, naming the Lead parameter', async () => {
		await expect(findLeadId(prisma, site.id, 'bob@acme.io')).resolves.toBe(bob);
		await expect(findLeadId(prisma, site.id, 'ghost@acme.io')).rejects.toMatchObject({ field: 'lead', message: 'No lead "ghost@acme.io" on this site; give the lead\'s id or email address' });
	});

	it('tells a lead an erasure deleted, by the id it left behind or its address suppressed as erased, from one that never was', async () => {
		// Rows as POST /api/privacy/erase leaves them (test/privacy/erasedLeads.test.ts erases through it).
		const erasedId = uuidv7();
		const erasedElsewhere = uuidv7();
		await prisma.erasedLead.createMany({ data: [{ siteId: site.id, leadId: erasedId }, { siteId: other.id, leadId: erasedElsewhere }] });
		await prisma.suppression.createMany({
			data: [
				{ siteId: site.id, emailHash: emailHash('gone.person@gmail.com'), reason: 'erased' },
				{ siteId: site.id, emailHash: emailHash('left@acme.io'), reason: 'unsubscribed' },
				{ siteId: other.id, emailHash: emailHash('gone.elsewhere@acme.io'), reason: 'erased' },
			],
		});
		// [reference, 'erased', a lead id or an error message]
		const cases: Array<[string, string]> = [
			[erasedId, 'erased'],
			[` ${erasedId.toUpperCase()} `, 'erased'],
			['Gone.Person+crm@gmail.com', 'erased'],
			['bob@acme.io', bob],
			['left@acme.io', 'No lead "left@acme.io" on this site; give the lead\'s id or email address'],
			[erasedElsewhere, `No lead "${erasedElsewhere}" on this site; give the lead's id or email address`],
			['gone.elsewhere@acme.io', 'No lead "gone.elsewhere@acme.io" on this site; give the lead\'s id or email address'],
		];
		const found = await findLeads(prisma, site.id, cases.map(([reference]) => reference));
		expect(
			cases.map(([reference]) => {
				const result = found.get(reference);
				return [reference, result instanceof ErasedPerson ? 'erased' : result instanceof InputError ? result.message : result];
			}),
		).toEqual(cases);
		expect(found.get(erasedId)).not.toBeInstanceOf(InputError);

		await expect(findLeadId(prisma, site.id, 'gone.person@gmail.com')).rejects.toBeInstanceOf(ErasedPerson);
		await expect(findLeadId(prisma, site.id, erasedElsewhere)).rejects.toMatchObject({ field: 'lead' });
	});
});
