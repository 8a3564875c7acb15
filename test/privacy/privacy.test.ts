import { randomUUID } from 'node:crypto';

import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { removeSite } from '../../server/sites';
import { storeEvents, testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const at = new Date('2026-11-20T10:00:00.000Z');

/** Row counts of every table holding a person's data, for one site. */
async function siteCounts(prisma: PrismaClient, siteId: string): Promise<Record<string, number>> {
	const where = { where: { siteId } };
	return {
		outbox: await prisma.outboxMessage.count(where),
		email_events: await prisma.emailEvent.count(where),
		email_messages: await prisma.emailMessage.count(where),
		attribution_data: await prisma.attributionData.count(where),
		conversions: await prisma.conversion.count(where),
		activities: await prisma.activity.count(where),
		lead_scores: await prisma.leadScore.count(where),
		lead_tags: await prisma.leadTag.count(where),
		lead_stage_changes: await prisma.leadStageChange.count(where),
		channel_statuses: await prisma.channelStatus.count(where),
		sequence_enrollments: await prisma.sequenceEnrollment.count(where),
		visitor_event_links: await prisma.visitorEventLink.count(where),
		visitor_events: await prisma.visitorEvent.count(where),
		visitor_sessions: await prisma.visitorSession.count(where),
		visitors: await prisma.visitor.count(where),
		contacts: await prisma.contact.count(where),
		leads: await prisma.lead.count(where),
		businesses: await prisma.business.count(where),
		suppressions: await prisma.suppression.count(where),
		erasure_log: await prisma.erasureLog.count(where),
		erased_leads: await prisma.erasedLead.count(where),
	};
}

/**
 * One person on one site, in every table the nodes write: a lead at a business, two browsers
 * with sessions and events, an activity, a conversion with attribution, scoring, tags, a stage
 * change, a channel status, a sequence enrollment, and an email with an open and a click.
 * Returns every id it created, so a test can look for them in an export.
 */
async function seedPerson(prisma: PrismaClient, siteId: string, email: string, anonymousIds: string[], businessId: string, sequenceId: string) {
	const ids: string[] = [];
	const keep = <T extends { id: string }>(row: T) => (ids.push(row.id), row);
	const lead = keep(await prisma.lead.create({ data: { siteId, email, emailHash: emailHash(email), firstName: 'Pat', businessId, lifecycleStage: 'mql' } }));
	keep(await prisma.contact.create({ data: { siteId, leadId: lead.id, businessId, email, firstName: 'Pat' } }));
	let firstVisitor = '';
	let firstSession = '';
	for (const anonymousId of anonymousIds) {
		const visitor = keep(await prisma.visitor.create({ data: { siteId, anonymousId, leadId: lead.id, firstSeenAt: at, lastSeenAt: at } }));
		const session = keep(await prisma.visitorSession.create({ data: { siteId, visitorId: visitor.id, sessionKey: `${anonymousId}-s0`, startedAt: at, lastActivityAt: at } }));
		for (const path of ['/', '/pricing']) {
			const event = { id: uuidv7(), siteId, eventId: uuidv7(), anonymousId, sessionKey: session.sessionKey, visitorId: visitor.id, sessionId: session.id, type: 'pageview', path, occurredAt: at };
			await storeEvents(prisma, [event]);
			keep(event);
		}
		keep(await prisma.activity.create({ data: { siteId, visitorId: visitor.id, leadId: firstVisitor ? null : lead.id, type: 'page_viewed', description: 'Visited /pricing', occurredAt: at } }));
		firstVisitor ||= visitor.id;
		firstSession ||= session.id;
	}
	const conversion = keep(await prisma.conversion.create({ data: { siteId, visitorId: firstVisitor, leadId: lead.id, sessionId: firstSession, goal: 'signup', eventId: randomUUID(), occurredAt: at } }));
	for (const model of ['first_touch', 'last_touch'] as const) {
		keep(await prisma.attributionData.create({ data: { siteId, conversionId: conversion.id, model, touchpointIndex: 0, sessionId: firstSession, channel: 'Direct', touchedAt: at, credit: 1, value: 0 } }));
	}
	keep(await prisma.leadScore.create({ data: { siteId, leadId: lead.id, rule: 'pageview', delta: 5, scoreAfter: 5, cause: 'pageview /pricing', causeKey: randomUUID(), occurredAt: at } }));
	for (const tag of ['trial', 'company-domain']) keep(await prisma.leadTag.create({ data: { siteId, leadId: lead.id, tag } }));
	keep(await prisma.leadStageChange.create({ data: { siteId, leadId: lead.id, fromStage: 'lead', toStage: 'mql', scoreAt: 5 } }));
	keep(await prisma.channelStatus.create({ data: { siteId, leadId: lead.id, channel: 'email', status: 'subscribed' } }));
	const enrollment = keep(await prisma.sequenceEnrollment.create({ data: { siteId, sequenceId, leadId: lead.id } }));
	const message = keep(
		await prisma.emailMessage.create({
			data: { siteId, leadId: lead.id, sequenceId, enrollmentId: enrollment.id, idempotencyKey: `${lead.id}:welcome:0`, toEmail: email, subject: 'Welcome', status: 'sent', links: ['https://x.example/'], sentAt: at },
		}),
	);
	for (const type of ['open', 'click'] as const) keep(await prisma.emailEvent.create({ data: { siteId, messageId: message.id, type } }));
	await prisma.outboxMessage.create({
		data: { siteId, destination: 'email-orchestrator', partitionKey: `lead:${lead.id}`, payload: { kind: 'email-event', type: 'open', messageId: message.id, leadId: lead.id } },
	});
	return { lead, ids };
}

describe('privacy export and erasure', () => {
	const prisma = testPrisma();
	const siteA = testSiteConfig();
	const siteB = testSiteConfig();
	const person = 'pat.person@example.com';
	const other = 'quinn.other@example.com';
	const onlyOnB = 'robin.b@example.com';
	let receiver: Receiver;
	let siteAId: string;
	let siteBId: string;
	let adminA: string;
	let readA: string;
	let adminB: string;
	let pat: Awaited<ReturnType<typeof seedPerson>>;
	let quinn: Awaited<ReturnType<typeof seedPerson>>;
	let patOnB: Awaited<ReturnType<typeof seedPerson>>;

	const exportOf = (email: string, key: string) =>
		fetch(`${receiver.url}/api/privacy/export?email=${encodeURIComponent(email)}`, { headers: { authorization: `Bearer ${key}` } }).then(async (response) => ({
			status: response.status,
			json: await response.json(),
		}));
	const erase = (body: unknown, key: string) => post(`${receiver.url}/api/privacy/erase`, body, { authorization: `Bearer ${key}`, 'content-type': 'application/json' });

	beforeAll(async () => {
		receiver = await startTestReceiver([siteA, siteB], { DISPATCHER: 'off' });
		siteAId = receiver.sites.byPublicKey(siteA.site.key)!.id;
		siteBId = receiver.sites.byPublicKey(siteB.site.key)!.id;
		adminA = await createApiKey(prisma, siteAId, 'admin', 'privacy-officer');
		readA = await createApiKey(prisma, siteAId, 'read', 'dashboard');
		adminB = await createApiKey(prisma, siteBId, 'admin', 'b-admin');

		const acme = await prisma.business.create({ data: { siteId: siteAId, domain: 'acme.example', name: 'Acme' } });
		const sequence = await prisma.emailSequence.create({ data: { siteId: siteAId, name: 'welcome' } });
		pat = await seedPerson(prisma, siteAId, person, ['anon-p1', 'anon-p2'], acme.id, sequence.id);
		quinn = await seedPerson(prisma, siteAId, other, ['anon-q1'], acme.id, sequence.id);
		const bBusiness = await prisma.business.create({ data: { siteId: siteBId, domain: 'acme.example' } });
		const bSequence = await prisma.emailSequence.create({ data: { siteId: siteBId, name: 'welcome' } });
		// The same person (and the same browser id) on another site is that site's data, not A's.
		patOnB = await seedPerson(prisma, siteBId, person, ['anon-p1'], bBusiness.id, bSequence.id);
		await seedPerson(prisma, siteBId, onlyOnB, ['anon-r1'], bBusiness.id, bSequence.id);

		// Through the receiver: a form post without a browser id, one from a browser no visitor is
		// linked to yet, and pageviews of Pat's and Quinn's browsers, all with their outbox rows.
		const key = siteA.site.key;
		const accepted = { status: 202, json: { stored: true, duplicate: false } };
		const joined = { status: 202, json: { stored: true, duplicate: false, history: 'joined' } };
		expect(await post(`${receiver.url}/api/lead`, { site: key, email: 'Pat.Person@Example.com' })).toEqual(accepted);
		expect(await post(`${receiver.url}/api/lead`, { site: key, email: person, anonymousId: 'anon-p3' })).toEqual(joined);
		// Quinn's seeded history began on no client this post comes from: it stays as seeded, the post proves nothing.
		expect(await post(`${receiver.url}/api/lead`, { site: key, email: other, anonymousId: 'anon-q1' })).toEqual({ ...joined, json: { ...joined.json, history: 'kept anonymous: other-client' } });
		for (const anonymousId of ['anon-p1', 'anon-p3', 'anon-q1']) {
			expect((await post(`${receiver.url}/api/track`, batch(key, [pageview(key, anonymousId)]))).status).toBe(202);
		}
		expect((await post(`${receiver.url}/api/track`, batch(siteB.site.key, [pageview(siteB.site.key, 'anon-p1')]))).status).toBe(202);
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	it('exports everything of the person on the key’s site and nothing of anyone else', async () => {
		const { status, json } = await exportOf(' PAT.person@example.com ', adminA);
		expect(status).toBe(200);
		expect(json).toMatchObject({ email: person, emailHash: emailHash(person) });
		const sizes = Object.fromEntries(Object.entries(json).flatMap(([key, value]) => (Array.isArray(value) ? [[key, value.length]] : [])));
		expect(sizes).toEqual({
			leads: 1,
			contacts: 1,
			businesses: 1,
			visitors: 2,
			sessions: 2,
			// 2 seeded pageviews per browser, 2 form posts (identify), 2 tracked pageviews
			eventLinks: 4,
			events: 8,
			activities: 2,
			conversions: 1,
			scores: 1,
			tags: 2,
			stageChanges: 1,
			channelStatuses: 1,
			enrollments: 1,
			emailMessages: 1,
			suppressions: 0,
			formSubmissions: 2,
			consentRecords: 0,
		});
		expect(json.leads[0]).toMatchObject({ id: pat.lead.id, email: person, firstName: 'Pat' });
		expect(json.conversions[0].attributions).toHaveLength(2);
		expect(json.emailMessages[0].events.map((event: { type: string }) => event.type).sort()).toEqual(['click', 'open']);
		expect(new Set(json.events.map((event: { anonymousId: string }) => event.anonymousId))).toEqual(new Set(['anon-p1', 'anon-p2', 'anon-p3', `lead:${emailHash(person).slice(0, 32)}`]));
		const text = JSON.stringify(json);
		for (const id of pat.ids) expect(text).toContain(id);
		for (const id of [...quinn.ids, ...patOnB.ids]) expect(text).not.toContain(id);
		expect(text).not.toMatch(/quinn|anon-q1/);
	});

	it('keeps each site to its own key: a read key is refused and another site’s person is unknown', async () => {
		expect((await exportOf(person, readA)).status).toBe(403);
		expect((await erase({ email: person }, readA)).status).toBe(403);
		expect((await exportOf(person, 'tcrm_admin_not-a-key')).status).toBe(401);
		const foreign = await exportOf(onlyOnB, adminA);
		expect(foreign.status).toBe(404);
		expect(foreign.json.error).toBe('not_found');
		expect((await exportOf(onlyOnB, adminB)).status).toBe(200);
		const fromB = await exportOf(person, adminB);
		expect(fromB.json.leads.map((lead: { id: string }) => lead.id)).toEqual([patOnB.lead.id]);
	});

	it('matches an address exactly: "_" in it is no wildcard, case and spaces do not matter', async () => {
		for (const email of ['j_doe@example.com', 'jxdoe@example.com']) {
			const lead = await prisma.lead.create({ data: { siteId: siteAId, email, emailHash: emailHash(email) } });
			await prisma.contact.create({ data: { siteId: siteAId, leadId: lead.id, email } });
			await prisma.emailMessage.create({ data: { siteId: siteAId, idempotencyKey: `no-lead:${email}`, toEmail: email, subject: 'Hi' } });
		}
		const { status, json } = await exportOf(' J_Doe@Example.com', adminA);
		expect(status).toBe(200);
		expect([json.leads, json.contacts, json.emailMessages].map((rows) => rows.map((row: { email?: string; toEmail?: string }) => row.email ?? row.toEmail))).toEqual([
			['j_doe@example.com'],
			['j_doe@example.com'],
			['j_doe@example.com'],
		]);
	});

	it.each([
		['a missing address', '', 'email'],
		['a malformed address', 'not-an-address', 'email'],
		['two addresses', 'a@x.example&email=b@x.example', 'email'],
		['a NUL byte in the address', 'a%00@x.example', 'email'],
		['a DEL character in the address', 'a%7F@x.example', 'email'],
		['a misspelt parameter', 'a@x.example&emial=b', 'emial'],
	])('refuses an export with %s, naming the field', async (_what, query, field) => {
		const response = await fetch(`${receiver.url}/api/privacy/export?email=${query}`, { headers: { authorization: `Bearer ${adminA}` } });
		expect(response.status).toBe(400);
		expect((await response.json()).issues.map((issue: { field: string }) => issue.field)).toEqual([field]);
	});

	it.each([
		['no body', '', 'invalid_json', undefined],
		['broken JSON', '{"email":', 'invalid_json', undefined],
		['no email', {}, 'invalid_request', 'email'],
		['a misspelt field', { emial: person }, 'invalid_request', 'emial'],
		['a number for the email', { email: 42 }, 'invalid_request', 'email'],
		['a NUL byte in the email', { email: 'a\u0000@x.example' }, 'invalid_request', 'email'],
		['half of a surrogate pair in the email', { email: 'a\ud800@x.example' }, 'invalid_request', 'email'],
	])('refuses an erasure with %s and changes nothing', async (_what, body, code, field) => {
		const before = await siteCounts(prisma, siteAId);
		const response = await erase(body, adminA);
		expect(response.status).toBe(400);
		expect(response.json.error).toBe(code);
		if (field) expect(response.json.issues.map((issue: { field: string }) => issue.field)).toContain(field);
		expect(await siteCounts(prisma, siteAId)).toEqual(before);
	});

	it('erases exactly the person’s rows in one call, keeps the suppression, and refuses the address afterwards', async () => {
		const beforeA = await siteCounts(prisma, siteAId);
		const beforeB = await siteCounts(prisma, siteBId);
		const removed = {
			outbox: 5,
			email_events: 2,
			email_messages: 1,
			attribution_data: 2,
			conversions: 1,
			activities: 2,
			lead_scores: 1,
			lead_tags: 2,
			lead_stage_changes: 1,
			channel_statuses: 1,
			sequence_enrollments: 1,
			visitor_event_links: 4,
			visitor_events: 8,
			visitor_sessions: 2,
			visitors: 2,
			contacts: 1,
			leads: 1,
			consent_records: 0,
		};
		const response = await erase({ email: 'Pat.Person@example.com' }, adminA);
		expect(response).toEqual({ status: 200, json: { erased: true, emailHash: emailHash(person), suppressed: true, removed } });

		const expected = Object.fromEntries(Object.entries(beforeA).map(([table, count]) => [table, count - (removed[table as keyof typeof removed] ?? 0)]));
		expect(await siteCounts(prisma, siteAId)).toEqual({ ...expected, suppressions: beforeA.suppressions + 1, erasure_log: beforeA.erasure_log + 1, erased_leads: beforeA.erased_leads + 1 });
		expect(await siteCounts(prisma, siteBId)).toEqual(beforeB);
		expect(await prisma.lead.findUnique({ where: { id: quinn.lead.id } })).not.toBeNull();
		expect(await prisma.business.count({ where: { siteId: siteAId, domain: 'acme.example' } })).toBe(1);

		expect(await prisma.suppression.findMany({ where: { siteId: siteAId, emailHash: emailHash(person) } })).toEqual([expect.objectContaining({ channel: 'email', reason: 'erased' })]);
		// The erased lead's id stays behind, so an item already on its way that names it is left out, not failed.
		expect(await prisma.erasedLead.findMany({ where: { siteId: siteAId }, select: { leadId: true } })).toEqual([{ leadId: pat.lead.id }]);
		const log = await prisma.erasureLog.findMany({ where: { siteId: siteAId } });
		expect(log).toEqual([expect.objectContaining({ emailHash: emailHash(person), requestedBy: 'privacy-officer', removed })]);
		expect(JSON.stringify(log)).not.toMatch(/pat/i);

		expect(await post(`${receiver.url}/api/lead`, { site: siteA.site.key, email: person, anonymousId: 'anon-p9' })).toEqual({ status: 202, json: { stored: false, reason: 'erased' } });
		expect((await exportOf(person, adminA)).status).toBe(404);
	});

	it('answers a repeated or unknown erasure with zero counts and still suppresses the address', async () => {
		const zero = (json: { removed: Record<string, number> }) => Object.values(json.removed).every((count) => count === 0);
		const again = await erase({ email: person }, adminA);
		expect(again.status).toBe(200);
		expect(again.json.erased).toBe(false);
		expect(zero(again.json)).toBe(true);

		const stranger = 'never.seen@example.com';
		const unknown = await erase({ email: stranger }, adminA);
		expect(unknown.status).toBe(200);
		expect(zero(unknown.json)).toBe(true);
		expect(await prisma.suppression.findMany({ where: { siteId: siteAId, emailHash: emailHash(stranger) } })).toEqual([expect.objectContaining({ reason: 'erased' })]);
		expect(await post(`${receiver.url}/api/lead`, { site: siteA.site.key, email: stranger })).toEqual({ status: 202, json: { stored: false, reason: 'erased' } });
		expect(await prisma.suppression.count({ where: { siteId: siteBId, emailHash: emailHash(stranger) } })).toBe(0);
		expect(await prisma.erasedLead.count({ where: { siteId: siteAId } })).toBe(1);
	});

	it('keeps the erased lead ids of a site until the site itself is deleted', async () => {
		expect((await erase({ email: person }, adminB)).json).toMatchObject({ erased: true, removed: expect.objectContaining({ leads: 1 }) });
		expect(await prisma.erasedLead.findMany({ where: { siteId: siteBId }, select: { leadId: true } })).toEqual([{ leadId: patOnB.lead.id }]);

		await removeSite(prisma, siteBId);
		expect(await prisma.erasedLead.count({ where: { siteId: siteBId } })).toBe(0);
		expect(await prisma.erasedLead.findMany({ where: { siteId: siteAId }, select: { leadId: true } })).toEqual([{ leadId: pat.lead.id }]);
	});
});
