// First: playwright-core needs Symbol.dispose from the moment it loads (see test/setup/symbolDispose.ts).

import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { v7 as uuidv7 } from 'uuid';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { leadChoice } from '../../lib/consent';
import type { SiteConfig, SiteConfigInput } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { sendDueSteps } from '../../nodes/EmailOrchestrator/actions/sendDue.operation';
import { smtpTransport } from '../../nodes/EmailOrchestrator/transport';
import { compileScoringRules } from '../../nodes/LeadScorer/scoring';
import { rescoreLeads } from '../../nodes/LeadScorer/store';
import { createApiKey } from '../../server/auth';
import { recordChoices } from '../../server/consent/records';
import { startReceiver, type Receiver } from '../../server/receiver';
import { launchChromium } from '../helpers/browser';
import { daysAgo, pageBounds, parseCsv, startOfToday } from '../helpers/dashboard';
import { storeEvents, testDbUrl, testPrisma } from '../helpers/db';
import { overflowingTables } from './layout';

const OUTPUT = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'dashboard-leads');
const DAY = 86_400_000;
const HOUR = 3_600_000;

/** Scoring as a site would configure it: a capped and decaying rule, a decaying one, fit rules, a visit rule. */
function siteWithScoring(name: string, privacy: Partial<SiteConfigInput['privacy']> = {}): SiteConfig {
	const key = `leads-${name}-${Math.random().toString(16).slice(2, 10)}`;
	return parseSiteConfig({
		site: { key, name: `Leads ${name} ${key.slice(-4)}`, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: false, ...privacy },
		integrations: { n8nUrl: 'http://127.0.0.1:9', webhookSecretEnv: 'TEST_WEBHOOK_SECRET', webhookEndpoints: [] },
		crm: {
			leadScoringRules: [
				{ id: 'pageviews', event: 'pageview', score: 3, cap: 9, halfLifeDays: 14 },
				{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 10, halfLifeDays: 7 },
				{ id: 'forms', event: 'form_submit', score: 20 },
				{ id: 'demo', event: 'demo_request', score: 30 },
				{ id: 'decision-maker', field: 'jobTitle', operator: 'matches', value: '\\b(ceo|cto|founder)\\b', score: 15 },
				{ id: 'returning', visits: 2, score: 5 },
			],
		},
	});
}

type EventSeed = { type: string; path?: string; name?: string; minutes?: number };
type SessionSeed = { startedAt: Date; channel: string; events: EventSeed[] };

/** A visitor and its sessions as the receiver and the Visitor Processor leave them: events attached, first touch from its first session. */
async function seedVisitor(prisma: PrismaClient, siteId: string, anonymousId: string, leadId: string | null, sessions: SessionSeed[]): Promise<{ id: string; sessions: string[] }> {
	const first = sessions[0];
	const visitor = await prisma.visitor.create({
		data: {
			siteId,
			anonymousId,
			leadId,
			firstSeenAt: first.startedAt,
			lastSeenAt: sessions.at(-1)!.startedAt,
			sessionCount: sessions.length,
			firstTouch: { channel: first.channel, source: first.channel === 'Organic Search' ? 'google' : null, landingPage: first.events[0]?.path ?? '/', at: first.startedAt.toISOString() },
		},
	});
	const ids: string[] = [];
	for (const session of sessions) ids.push(await addSession(prisma, siteId, visitor.id, anonymousId, session));
	return { id: visitor.id, sessions: ids };
}

async function addSession(prisma: PrismaClient, siteId: string, visitorId: string, anonymousId: string, { startedAt, channel, events }: SessionSeed): Promise<string> {
	const pageviews = events.filter((event) => event.type === 'pageview');
	const last = new Date(startedAt.getTime() + (events.at(-1)?.minutes ?? 0) * 60_000);
	const session = await prisma.visitorSession.create({
		data: {
			siteId,
			visitorId,
			sessionKey: uuidv7(),
			startedAt,
			lastActivityAt: last,
			pageviews: pageviews.length,
			eventCount: events.length,
			durationSeconds: Math.round((last.getTime() - startedAt.getTime()) / 1000),
			isBounce: pageviews.length < 2,
			engagementLevel: events.length > 2 ? 'high' : 'low',
			channel,
			entryPage: pageviews[0]?.path ?? null,
		},
	});
	await storeEvents(
		prisma,
		events.map((event) => ({
			siteId,
			eventId: uuidv7(),
			anonymousId,
			visitorId,
			sessionId: session.id,
			type: event.type,
			name: event.name ?? null,
			path: event.path ?? null,
			url: event.path ? `https://site.example${event.path}` : null,
			occurredAt: new Date(startedAt.getTime() + (event.minutes ?? 0) * 60_000),
		})),
	);
	await prisma.visitor.update({ where: { id: visitorId }, data: { lastSeenAt: last } });
	return session.id;
}

/** Scores leads with the Lead Scorer's own store at time `at`, as the node does: ledger rows, stage moves, the lead's score. */
async function score(prisma: PrismaClient, siteId: string, config: SiteConfig, leadIds: string[], at: Date): Promise<void> {
	await prisma.$transaction((tx) => rescoreLeads(tx, { siteId, config, rules: compileScoringRules(config.crm), now: at.getTime() }, leadIds), { timeout: 60_000 });
}

/** A table's body rows as text. */
async function tableRows(page: Page, id: string): Promise<string[][]> {
	return page.$$eval(`#${id} tbody tr`, (rows) => rows.map((row) => Array.from(row.children).map((cell) => (cell.textContent ?? '').trim())));
}

async function pageFigures(page: Page): Promise<Record<string, { value: string; previous: string; text: string }>> {
	const raw = await page.$$eval('[data-figure]', (elements) =>
		elements.map((element) => [(element as HTMLElement).dataset.figure!, (element as HTMLElement).dataset.value ?? '', (element as HTMLElement).dataset.previous ?? '', element.textContent ?? ''] as const),
	);
	return Object.fromEntries(raw.map(([name, value, previous, text]) => [name, { value, previous, text: text.trim() }]));
}

const count = (value: number) => new Intl.NumberFormat('en-US').format(value);

/** Plain SQL over one site's tables, each figure the way a person would count it. */
function siteSql(prisma: PrismaClient, siteId: string) {
	const rows = <T>(sql: string, ...params: unknown[]) => prisma.$queryRawUnsafe<T[]>(sql, siteId, ...params);
	return {
		async summary(from: string, to: string) {
			const [leads] = await rows<{ n: number; avg: number | null; median: number | null }>(
				`SELECT count(*)::int AS n, avg(score)::float8 AS avg, percentile_cont(0.5) WITHIN GROUP (ORDER BY score)::float8 AS median
				FROM leads WHERE site_id = $1::uuid AND created_at >= $2::timestamptz AND created_at < $3::timestamptz`,
				from,
				to,
			);
			const [visitors] = await rows<{ n: number }>(
				`SELECT count(DISTINCT visitor_id)::int AS n FROM visitor_sessions WHERE site_id = $1::uuid AND started_at >= $2::timestamptz AND started_at < $3::timestamptz`,
				from,
				to,
			);
			const [converted] = await rows<{ n: number }>(
				`SELECT count(DISTINCT v.id)::int AS n FROM visitors v JOIN leads l ON l.id = v.lead_id JOIN visitor_sessions s ON s.visitor_id = v.id
				WHERE v.site_id = $1::uuid AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz`,
				from,
				to,
			);
			return { newLeads: leads.n, avgScore: leads.avg, medianScore: leads.median, visitors: visitors.n, convertedVisitors: converted.n };
		},
		scores: async (from: string, to: string) =>
			(await rows<{ score: number }>(`SELECT score FROM leads WHERE site_id = $1::uuid AND created_at >= $2::timestamptz AND created_at < $3::timestamptz`, from, to)).map((row) => row.score),
		/** Each new lead's first-touch channel: the lead's own, else its earliest browser's. */
		channels: async (from: string, to: string) => {
			const leads = await rows<{ own: string | null; browser: string | null }>(
				`SELECT l.first_touch ->> 'channel' AS own,
					(SELECT v.first_touch ->> 'channel' FROM visitors v WHERE v.lead_id = l.id ORDER BY v.first_seen_at LIMIT 1) AS browser
				FROM leads l WHERE l.site_id = $1::uuid AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz`,
				from,
				to,
			);
			const tally = new Map<string, number>();
			for (const lead of leads) {
				const channel = lead.own ?? lead.browser ?? '(not set)';
				tally.set(channel, (tally.get(channel) ?? 0) + 1);
			}
			return tally;
		},
		sources: async (from: string, to: string) =>
			new Map(
				(
					await rows<{ source: string | null; n: number }>(
						`SELECT source, count(*)::int AS n FROM leads WHERE site_id = $1::uuid AND created_at >= $2::timestamptz AND created_at < $3::timestamptz GROUP BY source`,
						from,
						to,
					)
				).map((row) => [row.source ?? '(not set)', row.n]),
			),
		pipelineNow: async () => new Map((await rows<{ stage: string; n: number }>(`SELECT lifecycle_stage AS stage, count(*)::int AS n FROM leads WHERE site_id = $1::uuid GROUP BY 1`)).map((row) => [row.stage, row.n])),
		stageMoves: (from: string, to: string) =>
			rows<{ from: string; to: string; n: number }>(
				`SELECT from_stage AS "from", to_stage AS "to", count(*)::int AS n FROM lead_stage_changes WHERE site_id = $1::uuid AND occurred_at >= $2::timestamptz AND occurred_at < $3::timestamptz GROUP BY 1, 2`,
				from,
				to,
			),
		/** The stage of every lead at instant `at`: the latest move before it, else where it started. */
		pipelineAt: async (at: Date) => {
			const leads = await rows<{ stage: string }>(
				`SELECT coalesce(
						(SELECT c.to_stage FROM lead_stage_changes c WHERE c.lead_id = l.id AND c.occurred_at < $2::timestamptz ORDER BY c.occurred_at DESC LIMIT 1),
						(SELECT c.from_stage FROM lead_stage_changes c WHERE c.lead_id = l.id ORDER BY c.occurred_at LIMIT 1),
						l.lifecycle_stage) AS stage
				FROM leads l WHERE l.site_id = $1::uuid AND l.created_at < $2::timestamptz`,
				at.toISOString(),
			);
			const tally = new Map<string, number>();
			for (const { stage } of leads) tally.set(stage, (tally.get(stage) ?? 0) + 1);
			return tally;
		},
		newLeadsByDay: (from: string, to: string) =>
			rows<{ day: string; n: number }>(
				`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)::int AS n FROM leads WHERE site_id = $1::uuid AND created_at >= $2::timestamptz AND created_at < $3::timestamptz GROUP BY 1`,
				from,
				to,
			),
		ledger: (leadId: string) =>
			rows<{ rule: string; points: number; decay: number; rows: number }>(
				`SELECT rule, sum(delta)::float8 AS points, coalesce(sum(delta) FILTER (WHERE cause LIKE 'recomputed%'), 0)::float8 AS decay, count(*)::int AS rows
				FROM lead_scores WHERE site_id = $1::uuid AND lead_id = $2::uuid GROUP BY rule`,
				leadId,
			),
		timelineSize: async (leadId: string) => {
			const [row] = await rows<{ n: number }>(
				`WITH linked AS (SELECT id FROM visitors WHERE lead_id = $2::uuid), sent AS (SELECT id FROM email_messages WHERE lead_id = $2::uuid)
				SELECT ((SELECT count(*) FROM visitor_sessions WHERE visitor_id IN (SELECT id FROM linked))
					+ (SELECT count(*) FROM conversions WHERE lead_id = $2::uuid OR visitor_id IN (SELECT id FROM linked))
					+ (SELECT count(*) FROM activities WHERE lead_id = $2::uuid OR (lead_id IS NULL AND visitor_id IN (SELECT id FROM linked)))
					+ (SELECT count(*) FROM sent) + (SELECT count(*) FROM email_events WHERE message_id IN (SELECT id FROM sent))
					+ (SELECT count(*) FROM lead_stage_changes WHERE lead_id = $2::uuid))::int AS n
				WHERE $1::uuid IS NOT NULL`,
				leadId,
			);
			return row.n;
		},
	};
}

describe('Lead Intelligence pages in a real Chromium', () => {
	const prisma = testPrisma();
	const siteA = siteWithScoring('a');
	const siteB = siteWithScoring('b');
	/** Mails only leads that gave their marketing consent. */
	const siteC = siteWithScoring('c', { requireMarketingConsent: true });
	let receiver: Receiver;
	let browser: Browser;
	let siteAId: string;
	let siteBId: string;
	let keyA: string;
	let keyB: string;
	const lead: Record<string, string> = {};
	const consoleErrors: string[] = [];
	const sqlA = () => siteSql(prisma, siteAId);

	beforeAll(async () => {
		mkdirSync(OUTPUT, { recursive: true });
		receiver = await startReceiver({ sites: [siteA, siteB, siteC], database: { url: testDbUrl(), migrate: false }, settings: { PORT: 0, DISPATCHER: 'off' }, logger: pino({ level: 'silent' }) });
		siteAId = receiver.sites.byPublicKey(siteA.site.key)!.id;
		siteBId = receiver.sites.byPublicKey(siteB.site.key)!.id;
		keyA = await createApiKey(prisma, siteAId, 'read', 'leads A');
		keyB = await createApiKey(prisma, siteBId, 'read', 'leads B');
		const newLead = async (siteId: string, name: string, data: Record<string, unknown>) => {
			const created = await prisma.lead.create({ data: { siteId, email: `${name}`, emailHash: name, ...data } });
			lead[name] = created.id;
			return created.id;
		};

		// Site A. Ana: a decision maker from a known company, two visits (the second with the pricing
		// page and the contact form), tagged, enriched, converted, mailed by two sequences.
		const acme = await prisma.business.create({ data: { siteId: siteAId, domain: 'acme.example', name: 'Acme Inc', industry: 'Software', size: '51-200', country: 'ES' } });
		const ana = await newLead(siteAId, 'ana@acme.example', {
			firstName: 'Ana',
			lastName: 'López',
			company: 'Acme',
			jobTitle: 'CEO',
			country: 'ES',
			timezone: 'Europe/Madrid',
			source: 'contact-form',
			consentGiven: true,
			businessId: acme.id,
			properties: { plan: 'pro', seats: 12 },
			createdAt: daysAgo(3),
		});
		const anaVisitor = await seedVisitor(prisma, siteAId, 'ana-browser', ana, [
			{ startedAt: daysAgo(5), channel: 'Organic Search', events: [{ type: 'pageview', path: '/' }, { type: 'pageview', path: '/blog', minutes: 2 }] },
			{
				startedAt: daysAgo(3, 11),
				channel: 'Direct',
				events: [
					{ type: 'pageview', path: '/' },
					{ type: 'pageview', path: '/pricing', minutes: 3 },
					{ type: 'pageview', path: '/pricing', minutes: 5 },
					{ type: 'form_submit', path: '/contact', minutes: 9 },
				],
			},
		]);
		await prisma.leadTag.createMany({ data: ['trial', 'newsletter'].map((tag) => ({ siteId: siteAId, leadId: ana, tag, source: 'form' })) });
		await prisma.channelStatus.create({ data: { siteId: siteAId, leadId: ana, channel: 'email', status: 'subscribed' } });
		await prisma.conversion.create({
			data: { siteId: siteAId, visitorId: anaVisitor.id, leadId: ana, sessionId: anaVisitor.sessions[1], goal: 'contact-request', eventId: uuidv7(), value: 150, currency: 'EUR', occurredAt: daysAgo(3, 11.2) },
		});
		await prisma.activity.create({ data: { siteId: siteAId, leadId: ana, type: 'note', description: 'Called back, wants a demo', occurredAt: daysAgo(2) } });
		// As Log CRM Outcome writes it: the value as the Conversion Detector passed it, at the stored Decimal(14, 4) scale.
		await prisma.activity.create({ data: { siteId: siteAId, leadId: ana, type: 'conversion', description: 'Converted: contact-request (150.0000 EUR), newsletter (49.9000 EUR)', occurredAt: daysAgo(3, 11.2) } });
		await score(prisma, siteAId, siteA, [ana], daysAgo(3, 13));

		// Bob: one visit from an ad, a newsletter address.
		const bob = await newLead(siteAId, 'bob@mail.example', { firstName: 'Bob', source: 'newsletter', createdAt: daysAgo(1) });
		await seedVisitor(prisma, siteAId, 'bob-browser', bob, [{ startedAt: daysAgo(1, 10), channel: 'Paid Search', events: [{ type: 'pageview', path: '/landing' }] }]);
		await prisma.leadTag.create({ data: { siteId: siteAId, leadId: bob, tag: 'newsletter' } });
		await score(prisma, siteAId, siteA, [bob], daysAgo(1, 13));

		// Cyd: the week before, from an email, two visits and a form.
		const cyd = await newLead(siteAId, 'cyd@corp.example', { firstName: 'Cyd', lastName: 'Moss', company: 'Corp', source: 'contact-form', createdAt: daysAgo(9) });
		await seedVisitor(prisma, siteAId, 'cyd-browser', cyd, [
			{ startedAt: daysAgo(10), channel: 'Email', events: [{ type: 'pageview', path: '/' }] },
			{ startedAt: daysAgo(9, 11), channel: 'Email', events: [{ type: 'pageview', path: '/docs' }, { type: 'form_submit', path: '/contact', minutes: 4 }] },
		]);
		await score(prisma, siteAId, siteA, [cyd], daysAgo(9, 13));

		// Dee: a founder who filled in a form without a tracked visit.
		const dee = await newLead(siteAId, 'dee@startup.example', { firstName: 'Dee', jobTitle: 'Founder', createdAt: daysAgo(2) });
		await prisma.leadTag.create({ data: { siteId: siteAId, leadId: dee, tag: 'trial' } });
		await score(prisma, siteAId, siteA, [dee], daysAgo(2, 13));

		// Eve: an older lead that asks for a demo this week and moves on to sql; a long history of activities.
		const eve = await newLead(siteAId, 'eve@bigco.example', { firstName: 'Eve', company: 'BigCo', jobTitle: 'CTO', source: 'webinar', createdAt: daysAgo(20) });
		const eveVisitor = await seedVisitor(prisma, siteAId, 'eve-browser', eve, [
			{ startedAt: daysAgo(21), channel: 'Direct', events: [{ type: 'pageview', path: '/' }] },
			{ startedAt: daysAgo(20, 10), channel: 'Referral', events: [{ type: 'pageview', path: '/pricing' }, { type: 'form_submit', path: '/webinar', minutes: 1 }] },
		]);
		await score(prisma, siteAId, siteA, [eve], daysAgo(20, 13));
		await addSession(prisma, siteAId, eveVisitor.id, 'eve-browser', {
			startedAt: daysAgo(4, 9),
			channel: 'Direct',
			events: [{ type: 'pageview', path: '/pricing' }, { type: 'demo_request', path: '/demo', minutes: 2 }],
		});
		await score(prisma, siteAId, siteA, [eve], daysAgo(4, 13));
		await prisma.activity.createMany({
			data: Array.from({ length: 110 }, (_, index) => ({ siteId: siteAId, leadId: eve, type: 'page_view', description: `Read article ${index + 1}`, occurredAt: new Date(daysAgo(19).getTime() + index * HOUR) })),
		});

		// Fay: the week before, never did anything; Gus: never scored at all.
		const fay = await newLead(siteAId, 'fay@quiet.example', { source: 'import', createdAt: daysAgo(11) });
		await score(prisma, siteAId, siteA, [fay], daysAgo(11, 13));
		await newLead(siteAId, 'gus@unscored.example', { firstName: 'Gus', source: 'import', createdAt: daysAgo(1, 8) });

		// Thirty quiet leads from an old import, so the list has pages.
		for (let index = 1; index <= 30; index++) await newLead(siteAId, `bulk${String(index).padStart(2, '0')}@import.example`, { source: 'import', createdAt: daysAgo(40, index % 24) });
		// And visitors that never became leads.
		await seedVisitor(prisma, siteAId, 'anon-1', null, [{ startedAt: daysAgo(2), channel: 'Organic Search', events: [{ type: 'pageview', path: '/' }] }]);
		await seedVisitor(prisma, siteAId, 'anon-2', null, [{ startedAt: daysAgo(8), channel: 'Direct', events: [{ type: 'pageview', path: '/' }] }]);

		// Today's rescore: the pricing points of Ana and Eve have decayed since, Cyd's page view too.
		await score(prisma, siteAId, siteA, [ana, bob, cyd, dee, eve, fay], new Date());

		// Ana's sequences: welcome (first step sent, opened and clicked; the second scheduled; the third
		// waiting), and nurture, which she left by unsubscribing after its first email.
		const welcome = await prisma.emailSequence.create({ data: { siteId: siteAId, name: 'welcome' } });
		const nurture = await prisma.emailSequence.create({ data: { siteId: siteAId, name: 'nurture' } });
		const steps = async (sequenceId: string, subjects: string[]) =>
			Promise.all(subjects.map((subject, position) => prisma.emailSequenceStep.create({ data: { siteId: siteAId, sequenceId, position, delayMinutes: position * 1440, subject, htmlTemplate: '<p>Hi</p>' } })));
		// Subjects are templates: what was sent is the rendered one the message stores.
		const welcomeSteps = await steps(welcome.id, ['Welcome to Acme, {{firstName}}', 'How teams use it', 'Your trial ends soon']);
		const nurtureSteps = await steps(nurture.id, ['A case study', 'Pricing explained']);
		const welcomeEnrollment = await prisma.sequenceEnrollment.create({
			data: { siteId: siteAId, sequenceId: welcome.id, leadId: ana, status: 'active', nextStep: 1, nextRunAt: new Date(startOfToday() + DAY + 9 * HOUR), enrolledAt: daysAgo(3, 13) },
		});
		const nurtureEnrollment = await prisma.sequenceEnrollment.create({
			data: { siteId: siteAId, sequenceId: nurture.id, leadId: ana, status: 'unenrolled', nextStep: 1, enrolledAt: daysAgo(3, 13), unenrolledAt: daysAgo(1), unenrollReason: 'suppressed: unsubscribed' },
		});
		const sent = async (sequenceId: string, step: { id: string; position: number; subject: string }, enrollmentId: string, at: Date, opened?: Date, clicked?: Date) =>
			prisma.emailMessage.create({
				data: {
					siteId: siteAId,
					leadId: ana,
					sequenceId,
					stepId: step.id,
					enrollmentId,
					idempotencyKey: `${ana}:${sequenceId}:${step.position}`,
					toEmail: 'ana@acme.example',
					subject: step.subject.replace('{{firstName}}', 'Ana'),
					status: 'sent',
					sentAt: at,
					firstOpenedAt: opened,
					firstClickedAt: clicked,
					createdAt: at,
				},
			});
		const first = await sent(welcome.id, welcomeSteps[0], welcomeEnrollment.id, daysAgo(3, 14), daysAgo(3, 15), daysAgo(3, 16));
		await prisma.emailEvent.createMany({
			data: [
				{ siteId: siteAId, messageId: first.id, type: 'open', occurredAt: daysAgo(3, 15) },
				{ siteId: siteAId, messageId: first.id, type: 'click', url: 'https://acme.example/start', occurredAt: daysAgo(3, 16) },
			],
		});
		const caseStudy = await sent(nurture.id, nurtureSteps[0], nurtureEnrollment.id, daysAgo(2, 14));
		await prisma.emailEvent.create({ data: { siteId: siteAId, messageId: caseStudy.id, type: 'unsubscribe', occurredAt: daysAgo(1) } });

		// Site B: leads A must never see.
		const zed = await newLead(siteBId, 'zed@b-only.example', { firstName: 'Zed', company: 'B-Only Corp', source: 'b-only-form', createdAt: daysAgo(2) });
		await seedVisitor(prisma, siteBId, 'zed-browser', zed, [{ startedAt: daysAgo(2, 10), channel: 'Social', events: [{ type: 'pageview', path: '/pricing' }, { type: 'form_submit', path: '/b' }] }]);
		await prisma.leadTag.create({ data: { siteId: siteBId, leadId: zed, tag: 'b-secret' } });
		await score(prisma, siteBId, siteB, [zed], daysAgo(2, 13));
		await newLead(siteBId, 'yan@b-only.example', { source: 'b-only-form', createdAt: daysAgo(5) });

		browser = await launchChromium();
	});

	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await prisma.$disconnect();
	});

	async function openPage(viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page }> {
		const context = await browser.newContext({ viewport, reducedMotion: 'reduce', acceptDownloads: true });
		const page = await context.newPage();
		page.on('console', (message) => {
			if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
		});
		page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
		return { context, page };
	}

	/** Signs in through the form, as a person does. */
	async function signIn(page: Page, key: string): Promise<void> {
		await page.goto(`${receiver.url}/dashboard`);
		await page.fill('#key', key);
		await Promise.all([page.waitForURL(/\/dashboard\/visitors/), page.click('button[type=submit]')]);
	}

	const chartsDrawn = (page: Page) => page.waitForFunction(() => Array.from(document.querySelectorAll('canvas')).every((canvas) => (window as any).Chart?.getChart(canvas)));
	const shot = (page: Page, name: string) => page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
	const cookieOf = async (context: BrowserContext) => (await context.cookies()).map((entry) => `${entry.name}=${entry.value}`).join('; ');
	const get = async (url: string, cookie: string) => {
		const response = await fetch(`${receiver.url}${url}`, { redirect: 'manual', headers: { cookie, connection: 'close' } });
		return { status: response.status, headers: response.headers, text: await response.text() };
	};

	it('shows the overview: every figure and table equal to SQL over the bounds it states, each against the period before', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		await page.goto(`${receiver.url}/dashboard/leads`);
		await chartsDrawn(page);
		await expect(page.textContent('h1')).resolves.toBe('Lead Intelligence');

		const bounds = await pageBounds(page);
		const today = startOfToday();
		expect(bounds).toEqual({
			from: new Date(today - 6 * DAY).toISOString(),
			to: new Date(today + DAY).toISOString(),
			'previous-from': new Date(today - 13 * DAY).toISOString(),
			'previous-to': new Date(today - 6 * DAY).toISOString(),
		});
		const sql = sqlA();
		const now = await sql.summary(bounds.from, bounds.to);
		const before = await sql.summary(bounds['previous-from'], bounds['previous-to']);
		// The seed counted by hand, so the SQL is not trivially empty: Ana, Bob, Dee and Gus are new this
		// week; of this week's visitors (Ana, Bob, Eve, anon-1) Ana and Bob became leads in it.
		expect([now.newLeads, now.visitors, now.convertedVisitors, before.newLeads, before.visitors, before.convertedVisitors]).toEqual([4, 4, 2, 2, 2, 1]);

		const figures = await pageFigures(page);
		for (const name of ['newLeads', 'visitors', 'convertedVisitors'] as const) {
			expect([name, Number(figures[name].value), Number(figures[name].previous)]).toEqual([name, now[name], before[name]]);
			expect(figures[name].text).toBe(String(now[name]));
		}
		expect(Number(figures.visitorToLeadRate.value)).toBeCloseTo(now.convertedVisitors / now.visitors, 12);
		expect(Number(figures.visitorToLeadRate.previous)).toBeCloseTo(before.convertedVisitors / before.visitors, 12);
		expect(figures.visitorToLeadRate.text).toBe(`${((100 * now.convertedVisitors) / now.visitors).toFixed(1)}%`);
		const rate = (summary: typeof now) => (100 * summary.convertedVisitors) / summary.visitors;
		const movement = rate(now) === rate(before) ? 'no change' : `${rate(now) > rate(before) ? '+' : '−'}${Math.abs(rate(now) - rate(before)).toFixed(1)} pts`;
		await expect(page.textContent('[data-change=visitorToLeadRate]')).resolves.toBe(`${movement} (previous period: ${rate(before).toFixed(1)}%)`);
		for (const name of ['avgScore', 'medianScore'] as const) {
			expect(Number(figures[name].value)).toBeCloseTo(now[name]!, 9);
			expect(Number(figures[name].previous)).toBeCloseTo(before[name]!, 9);
		}
		const [{ n: allLeads }] = await prisma.$queryRawUnsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM leads WHERE site_id = $1::uuid`, siteAId);
		expect(Number(figures.allLeads.value)).toBe(allLeads);

		// Score distribution: each lead's score put in its ten-point bucket here.
		const bucketOf = (value: number) => (value < 0 ? 'below 0' : value >= 100 ? '100 and over' : `${Math.floor(value / 10) * 10} to under ${Math.floor(value / 10) * 10 + 10}`);
		const tally = (scores: number[]) => scores.reduce((map, value) => map.set(bucketOf(value), (map.get(bucketOf(value)) ?? 0) + 1), new Map<string, number>());
		const [scoresNow, scoresBefore] = [tally(await sql.scores(bounds.from, bounds.to)), tally(await sql.scores(bounds['previous-from'], bounds['previous-to']))];
		const distribution = await tableRows(page, 'table-score-distribution');
		expect(distribution).toHaveLength(12);
		for (const [label, leads, previous] of distribution) expect([label, Number(leads), Number(previous)]).toEqual([label, scoresNow.get(label) ?? 0, scoresBefore.get(label) ?? 0]);

		// Channels, sources: the rows of either period, each with both counts.
		const channelsNow = await sql.channels(bounds.from, bounds.to);
		const channelsBefore = await sql.channels(bounds['previous-from'], bounds['previous-to']);
		expect(Object.fromEntries(channelsNow)).toEqual({ 'Organic Search': 1, 'Paid Search': 1, '(not set)': 2 });
		const channelRows = await tableRows(page, 'table-channels');
		expect(channelRows.map((row) => row[0]).sort()).toEqual([...new Set([...channelsNow.keys(), ...channelsBefore.keys()])].sort());
		for (const [channel, leads, , previous] of channelRows) expect([channel, Number(leads), Number(previous)]).toEqual([channel, channelsNow.get(channel) ?? 0, channelsBefore.get(channel) ?? 0]);
		const sourcesNow = await sql.sources(bounds.from, bounds.to);
		const sourcesBefore = await sql.sources(bounds['previous-from'], bounds['previous-to']);
		const sourceRows = await tableRows(page, 'table-sources');
		expect(sourceRows.map((row) => row[0]).sort()).toEqual([...new Set([...sourcesNow.keys(), ...sourcesBefore.keys()])].sort());
		for (const [source, leads, share, previous] of sourceRows) {
			expect([source, Number(leads), Number(previous)]).toEqual([source, sourcesNow.get(source) ?? 0, sourcesBefore.get(source) ?? 0]);
			if (Number(leads)) expect(share).toBe(`${((100 * Number(leads)) / now.newLeads).toFixed(1)}%`);
		}

		// The pipeline now, and over time: the stages every lead was at at the end of each day.
		const pipelineNow = await sql.pipelineNow();
		expect(Object.fromEntries((await tableRows(page, 'table-pipeline')).map(([stage, leads]) => [stage, Number(leads)]))).toEqual({
			subscriber: pipelineNow.get('subscriber') ?? 0,
			lead: pipelineNow.get('lead') ?? 0,
			mql: pipelineNow.get('mql') ?? 0,
			sql: pipelineNow.get('sql') ?? 0,
			customer: 0,
		});
		const stages = ['subscriber', 'lead', 'mql', 'sql', 'customer'];
		const head = await page.$$eval('#table-pipeline-over-time thead th', (cells) => cells.map((cell) => cell.textContent));
		expect(head.slice(1)).toEqual([...stages, 'All leads']);
		const overTime = await tableRows(page, 'table-pipeline-over-time');
		expect(overTime).toHaveLength(7);
		for (const [index, row] of overTime.entries()) {
			const end = new Date(today - 5 * DAY + index * DAY);
			expect(row[0]).toBe(new Date(end.getTime() - DAY).toISOString().slice(0, 10));
			const expected = await sql.pipelineAt(end);
			expect([row[0], ...row.slice(1).map(Number)]).toEqual([row[0], ...stages.map((stage) => expected.get(stage) ?? 0), [...expected.values()].reduce((a, b) => a + b, 0)]);
		}
		// Eve moved from mql to sql four days ago: the day before she is mql, that day sql.
		const sqlColumn = 1 + stages.indexOf('sql');
		expect(overTime.map((row) => Number(row[sqlColumn]))).toEqual([0, 0, 1, 1, 1, 1, 1]);

		const moves = await sql.stageMoves(bounds.from, bounds.to);
		expect((await tableRows(page, 'table-stage-changes')).map(([from, to, leads]) => [from, to, Number(leads)]).sort()).toEqual(moves.map((move) => [move.from, move.to, move.n]).sort());
		const perDay = new Map((await sql.newLeadsByDay(bounds.from, bounds.to)).map((row) => [row.day, row.n]));
		expect((await tableRows(page, 'table-new-leads')).map(([day, leads]) => [day, Number(leads)])).toEqual(
			Array.from({ length: 7 }, (_, index) => {
				const day = new Date(today - 6 * DAY + index * DAY).toISOString().slice(0, 10);
				return [day, perDay.get(day) ?? 0];
			}),
		);

		expect(await page.content()).not.toMatch(/b-only|b-secret|zed@/);
		await shot(page, '01-leads-overview');
		await context.close();
	});

	it('answers every period: hours for a day, weeks of pipeline for a quarter, and a 400 naming the field for a wrong period', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const [{ n: allLeads }] = await prisma.$queryRawUnsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM leads WHERE site_id = $1::uuid`, siteAId);

		await page.goto(`${receiver.url}/dashboard/leads?range=24h`);
		expect(await tableRows(page, 'table-new-leads')).toHaveLength(24);
		const hourly = await tableRows(page, 'table-pipeline-over-time');
		expect(hourly).toHaveLength(24);
		expect(Number(hourly.at(-1)!.at(-1))).toBe(allLeads);

		await page.goto(`${receiver.url}/dashboard/leads?range=90d`);
		expect(await tableRows(page, 'table-new-leads')).toHaveLength(90);
		const weekly = await tableRows(page, 'table-pipeline-over-time');
		expect(weekly.length).toBeGreaterThanOrEqual(13);
		expect(weekly.length).toBeLessThanOrEqual(14);
		await expect(page.textContent('section[aria-labelledby=h-pipeline-over-time] .note')).resolves.toContain('at the end of each week');
		// Weeks start on Mondays; each row holds the stages at the end of its week (or of the period).
		for (const row of weekly.slice(1)) expect(new Date(`${row[0]}T00:00:00Z`).getUTCDay()).toBe(1);
		for (const row of weekly.slice(0, -1)) {
			const end = new Date(new Date(`${row[0]}T00:00:00Z`).getTime() + 7 * DAY);
			const expected = await sqlA().pipelineAt(end);
			expect(Number(row.at(-1))).toBe([...expected.values()].reduce((a, b) => a + b, 0));
		}
		expect(Number(weekly.at(-1)!.at(-1))).toBe(allLeads);

		const bad = await page.goto(`${receiver.url}/dashboard/leads?range=custom&from=2026-02-30&to=2026-03-01`);
		expect(bad!.status()).toBe(400);
		await expect(page.textContent('[role=alert]')).resolves.toBe('From must be an ISO 8601 date or date-time with a zone, such as 2026-11-01 or 2026-11-01T09:30:00Z (got "2026-02-30").');
		await context.close();
	});

	it('lists leads: search, filters, sorts and pages, each row a link to its lead; bad input is a 400 naming the field', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		await page.goto(`${receiver.url}/dashboard/leads/list`);
		const emails = () => page.$$eval('#table-leads tbody th a', (links) => links.map((link) => link.textContent));
		const orderedBy = (order: string) =>
			prisma.$queryRawUnsafe<Array<{ email: string }>>(`SELECT email FROM leads WHERE site_id = $1::uuid ORDER BY ${order}, id DESC`, siteAId).then((rows) => rows.map((row) => row.email));

		// The default: the highest score first, 25 a page.
		const byScore = await orderedBy('score DESC');
		expect(byScore).toHaveLength(37);
		expect(await emails()).toEqual(byScore.slice(0, 25));
		await expect(page.getAttribute('#list-count', 'data-total')).resolves.toBe('37');
		await expect(page.textContent('#list-count')).resolves.toContain('Showing 1–25 of 37 leads');
		const scores = await page.$$eval('#table-leads tbody tr', (rows) => rows.map((row) => row.children[4].textContent));
		const [{ score: anaScore }] = await prisma.$queryRawUnsafe<Array<{ score: number }>>(`SELECT score FROM leads WHERE id = $1::uuid`, lead['ana@acme.example']);
		expect(scores[byScore.indexOf('ana@acme.example')]).toBe(count(anaScore));
		await shot(page, '02-lead-list');
		await Promise.all([page.waitForURL(/page=2/), page.click('a[rel=next]')]);
		expect(await emails()).toEqual(byScore.slice(25));
		await expect(page.textContent('.pages [aria-current=page]')).resolves.toBe('Page 2 of 2');
		await expect(page.textContent('.pages')).resolves.toBe('Previous page · Page 2 of 2');

		// One lead is "a lead", and a count past the last page still reads as English.
		await page.goto(`${receiver.url}/dashboard/leads/list?search=bob@mail.example`);
		await expect(page.textContent('#list-count')).resolves.toMatch(/^Showing 1–1 of 1 lead, /);
		await page.goto(`${receiver.url}/dashboard/leads/list?search=bob@mail.example&page=2`);
		await expect(page.textContent('#list-count')).resolves.toBe('1 lead matches.');
		await page.goto(`${receiver.url}/dashboard/leads/list?tag=newsletter&page=2`);
		await expect(page.textContent('#list-count')).resolves.toBe('2 leads match.');

		// Search by a part of the name, the company (the lead's or its business's) or the email, in any case.
		const search = async (text: string) => {
			await page.goto(`${receiver.url}/dashboard/leads/list`);
			await page.fill('#search', text);
			await Promise.all([page.waitForURL(/search=/), page.click('#lead-filters button[type=submit]')]);
			return (await emails()).sort();
		};
		expect(await search('LÓPEZ')).toEqual(['ana@acme.example']);
		expect(await search('acme inc')).toEqual(['ana@acme.example']);
		expect(await search('corp')).toEqual(['cyd@corp.example']);
		expect(await search('import.example')).toHaveLength(25);
		expect(await search('100%_')).toEqual([]);

		// Stage, score range and tag, together, then sorted by creation, oldest first.
		const [tagged] = await prisma.$queryRawUnsafe<Array<{ emails: string[] }>>(
			`SELECT coalesce(array_agg(email ORDER BY created_at, id), '{}') AS emails FROM leads l WHERE site_id = $1::uuid AND score >= 10 AND score <= 100
				AND EXISTS (SELECT 1 FROM lead_tags t WHERE t.lead_id = l.id AND t.tag = 'trial')`,
			siteAId,
		);
		expect(tagged.emails).toEqual(['ana@acme.example', 'dee@startup.example']);
		await page.goto(`${receiver.url}/dashboard/leads/list`);
		await page.fill('#min-score', '10');
		await page.fill('#max-score', '100');
		await page.selectOption('#tag', 'trial');
		await page.selectOption('#sort', 'created');
		await page.selectOption('#order', 'asc');
		await Promise.all([page.waitForURL(/tag=trial/), page.click('#lead-filters button[type=submit]')]);
		expect(await emails()).toEqual(tagged.emails);
		await page.selectOption('#stage', 'mql');
		await Promise.all([page.waitForURL(/stage=mql/), page.click('#lead-filters button[type=submit]')]);
		const [mql] = await prisma.$queryRawUnsafe<Array<{ emails: string[] }>>(
			`SELECT array_agg(email ORDER BY created_at) AS emails FROM leads l WHERE site_id = $1::uuid AND lifecycle_stage = 'mql' AND score BETWEEN 10 AND 100 AND EXISTS (SELECT 1 FROM lead_tags t WHERE t.lead_id = l.id AND t.tag = 'trial')`,
			siteAId,
		);
		expect(await emails()).toEqual(mql.emails);

		// Last activity: the latest visit, activity, conversion or email of each lead.
		await page.goto(`${receiver.url}/dashboard/leads/list?sort=activity&size=50`);
		const [activity] = await prisma.$queryRawUnsafe<Array<{ emails: string[] }>>(
			`SELECT array_agg(email ORDER BY at DESC, id DESC) AS emails FROM (
				SELECT l.email, l.id, greatest(l.created_at,
					(SELECT max(last_seen_at) FROM visitors WHERE lead_id = l.id), (SELECT max(occurred_at) FROM activities WHERE lead_id = l.id),
					(SELECT max(occurred_at) FROM conversions WHERE lead_id = l.id),
					(SELECT max(greatest(sent_at, first_opened_at, first_clicked_at)) FROM email_messages WHERE lead_id = l.id)) AS at
				FROM leads l WHERE l.site_id = $1::uuid) t`,
			siteAId,
		);
		expect(await emails()).toEqual(activity.emails);
		expect(await page.$('a[rel=next]')).toBeNull();

		// Each row opens its lead.
		await page.goto(`${receiver.url}/dashboard/leads/list?search=bob`);
		await Promise.all([page.waitForURL(new RegExp(`/dashboard/leads/${lead['bob@mail.example']}`)), page.click('#table-leads tbody a')]);
		await expect(page.textContent('#h-lead')).resolves.toBe('Bob · bob@mail.example');

		// Wrong input: the form again, with the field named as the form labels it.
		const refusals: Array<[string, string]> = [
			['minScore=abc', 'Score from must be a number, such as 40 or 12.5 (got "abc").'],
			['minScore=50&maxScore=10', 'Score from must not be above Score to (50 is above 10).'],
			['size=30', 'Leads per page must be 25 or 50 (got "30").'],
			['page=0', 'Page must be a whole number from 1 (got "0").'],
			['stage=nope', 'Stage must be one of subscriber, lead, mql, sql, customer (got "nope").'],
			['sort=email', 'Sort by must be one of Score, Created, Last activity (got "email").'],
			['search=a%00b', 'Search must not contain control characters (such as NUL, tab or line breaks) (got "a\\u0000b").'],
		];
		for (const [query, message] of refusals) {
			const response = await page.goto(`${receiver.url}/dashboard/leads/list?${query}`);
			expect([query, response!.status()]).toEqual([query, 400]);
			await expect(page.textContent('#list-error')).resolves.toBe(message);
		}
		await expect(page.inputValue('#min-score')).resolves.toBe('');
		await context.close();
	});

	it('shows a lead: profile, enrichment, tags, consent, a score explained to the point, the timeline and its sequences', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const ana = lead['ana@acme.example'];
		await page.goto(`${receiver.url}/dashboard/leads/${ana}`);
		await expect(page.textContent('#h-lead')).resolves.toBe('Ana López · ana@acme.example');
		const facts = (id: string) =>
			page.$$eval(`#${id} dt`, (terms) => Object.fromEntries(terms.map((term) => [term.textContent, term.nextElementSibling?.textContent])));
		await expect(facts('profile')).resolves.toMatchObject({ Email: 'ana@acme.example', Name: 'Ana López', Company: 'Acme', 'Job title': 'CEO', Country: 'ES', 'Time zone': 'Europe/Madrid', Source: 'contact-form', 'Browsers linked': '1' });
		await expect(facts('business')).resolves.toEqual({ 'Company name': 'Acme Inc', Domain: 'acme.example', Industry: 'Software', Size: '51-200', Country: 'ES' });
		await expect(facts('first-touch')).resolves.toMatchObject({ Channel: 'Organic Search', Source: 'google', 'Landing page': '/' });
		await expect(facts('properties')).resolves.toEqual({ plan: 'pro', seats: '12' });
		await expect(facts('consent')).resolves.toEqual({ 'Consent to be contacted': 'Given', Email: expect.stringMatching(/^subscribed since /) });
		await expect(page.$$eval('#tags li', (items) => items.map((item) => item.firstChild?.textContent?.trim()))).resolves.toEqual(['newsletter', 'trial']);

		// The score: each rule's rows of the ledger, summed here with SQL, and their sum is the score.
		const [stored] = await prisma.$queryRawUnsafe<Array<{ score: number; stage: string }>>(`SELECT score, lifecycle_stage AS stage FROM leads WHERE id = $1::uuid`, ana);
		const ledger = await sqlA().ledger(ana);
		const round = (value: number) => Math.round(value * 100) / 100;
		expect(round(ledger.reduce((sum, rule) => sum + rule.points, 0))).toBe(stored.score);
		const rows = await tableRows(page, 'table-score');
		expect(rows.map(([rule, points, evidence, decay]) => [rule, Number(points), Number(evidence), Number(decay)]).sort()).toEqual(
			ledger.map((rule) => [rule.rule, round(rule.points), round(rule.points - rule.decay), round(rule.decay)]).sort(),
		);
		// Page views are capped at 9 (five would give 15); the pricing points decayed since the form.
		expect(rows.find((row) => row[0] === 'pageviews')!.slice(1, 4)).toEqual(['9', '9', '0']);
		const pricing = rows.find((row) => row[0] === 'pricing')!;
		expect(Number(pricing[3])).toBeLessThan(0);
		// The ledger itself, newest first: the decay row on top, every row of the lead.
		const changes = await tableRows(page, 'table-ledger');
		expect(changes).toHaveLength(ledger.reduce((sum, rule) => sum + rule.rows, 0));
		expect(changes.find((row) => row[1] === 'pricing')!.slice(2)).toEqual([pricing[3], 'recomputed (decay or changed rules): 2 × pageview on /pricing (10 each, decayed)']);
		expect(changes.find((row) => row[1] === 'returning')![3]).toBe('2 visits (at least 2 visits: 5)');
		expect(round(changes.reduce((sum, row) => sum + Number(row[2]), 0))).toBe(stored.score);
		await expect(page.textContent('#ledger-count')).resolves.toBe(`Showing ${changes.length} of ${changes.length} changes, newest first.`);
		const check = await page.$eval('#score-check', (element) => ({ sum: (element as HTMLElement).dataset.sum, score: (element as HTMLElement).dataset.score, text: element.textContent }));
		expect([Number(check.sum), Number(check.score)]).toEqual([stored.score, stored.score]);
		expect(check.text).toBe(`The rules’ points add up to ${count(stored.score)}, which is the lead’s score (${count(stored.score)}).`);
		await expect(page.textContent('[data-figure=score]')).resolves.toBe(count(stored.score));
		await expect(page.textContent('[data-figure=stage]')).resolves.toBe(stored.stage);
		// Her last activity: the nurture email two days ago (her unsubscribe is an email event, not a send, open or click).
		await expect(page.getAttribute('[data-figure=lastActivity]', 'data-value')).resolves.toBe(daysAgo(2, 14).toISOString());
		await expect(page.textContent('[data-figure=lastActivity]')).resolves.toMatch(/^(1|2) days? ago$/);

		// The timeline, newest first: every entry of the lead.
		const total = await sqlA().timelineSize(ana);
		expect(total).toBe(2 + 1 + 2 + 2 + 3 + 1);
		const timeline = await tableRows(page, 'table-timeline');
		expect(timeline).toHaveLength(total);
		expect(timeline.map((row) => row[0])).toEqual([...timeline.map((row) => row[0])].sort().reverse());
		expect(timeline.map((row) => row[1])).toEqual(
			expect.arrayContaining(['Visit', 'Conversion', 'Activity: note', 'Email sent', 'Email opened', 'Email link clicked', 'Unsubscribed', 'Stage changed']),
		);
		expect(timeline.find((row) => row[1] === 'Conversion')![2]).toBe('contact-request · 150 EUR');
		// Money reads one way on the whole page, the activity's stored text included.
		expect(timeline.find((row) => row[1] === 'Activity: conversion')![2]).toBe('Converted: contact-request (150 EUR), newsletter (49.90 EUR)');
		expect(timeline.map((row) => row[2]).join('\n')).not.toMatch(/\d\.\d{3,}|\.0000/);
		await expect(page.textContent('#timeline-count')).resolves.toBe(`Showing ${total} of ${total} entries, newest first.`);

		// The sequences: each step's state from the sequence's steps and the messages sent.
		const states = async (index: number) => (await tableRows(page, `table-sequence-${index}`)).map((row) => [row[0], row[1], row[2]]);
		await expect(page.textContent('#h-sequence-1')).resolves.toBe('welcome');
		// A sent step shows the subject its email went out with; the others their template, said to be one.
		expect(await states(1)).toEqual([
			['1', 'Welcome to Acme, Ana', 'sent'],
			['2', 'template: How teams use it', 'scheduled'],
			['3', 'template: Your trial ends soon', 'pending'],
		]);
		expect(await states(2)).toEqual([
			['1', 'A case study', 'sent'],
			['2', 'template: Pricing explained', 'skipped'],
		]);
		expect(await page.textContent('#content')).not.toContain('{{firstName}}');
		// The step number and its header line up, right-aligned as every number.
		const alignment = await page.$$eval('#table-sequence-1 tr > :first-child', (cells) => cells.map((cell) => getComputedStyle(cell).textAlign));
		expect(alignment).toEqual(['right', 'right', 'right', 'right']);
		const details = async (index: number) => (await tableRows(page, `table-sequence-${index}`)).map((row) => row[3]);
		const dayOf = (days: number) => daysAgo(days).toISOString().slice(0, 10);
		expect(await details(1)).toEqual([
			`${dayOf(3)} 14:00 UTC · opened ${dayOf(3)} 15:00 · clicked ${dayOf(3)} 16:00`,
			`due ${dayOf(-1)} 09:00 UTC`,
			'2 days after the step before',
		]);
		expect(await details(2)).toEqual([`${dayOf(2)} 14:00 UTC · not opened`, 'the lead left the sequence (suppressed: unsubscribed)']);
		expect(await overflowingTables(page)).toEqual([]);
		await shot(page, '03-lead-page');

		// A long history: the newest 100 of Eve's entries, saying so.
		const eve = lead['eve@bigco.example'];
		await page.goto(`${receiver.url}/dashboard/leads/${eve}`);
		const eveTotal = await sqlA().timelineSize(eve);
		expect(eveTotal).toBeGreaterThan(100);
		await expect(page.textContent('#timeline-count')).resolves.toBe(`Showing the newest 100 of ${eveTotal} entries; the CSV holds more.`);
		expect(await tableRows(page, 'table-timeline')).toHaveLength(100);
		await context.close();
	});

	it('explains every scored lead’s score from its ledger, adding up to the score, and says so where a score has no ledger', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const cookie = await cookieOf(context);
		const scored = await prisma.$queryRawUnsafe<Array<{ id: string; email: string; score: number; ledger: number }>>(
			`SELECT l.id, l.email, l.score, round(sum(s.delta)::numeric, 2)::float8 AS ledger FROM leads l JOIN lead_scores s ON s.lead_id = l.id WHERE l.site_id = $1::uuid GROUP BY l.id`,
			siteAId,
		);
		expect(scored.map((row) => row.email).sort()).toEqual(['ana@acme.example', 'bob@mail.example', 'cyd@corp.example', 'dee@startup.example', 'eve@bigco.example']);
		for (const row of scored) {
			const { text } = await get(`/dashboard/leads/${row.id}`, cookie);
			const [, sum, scoreShown] = /id="score-check" data-sum="([^"]*)" data-score="([^"]*)"/.exec(text)!;
			expect([row.email, Number(sum), Number(scoreShown)]).toEqual([row.email, row.ledger, row.score]);
			expect([row.email, text.includes('does not explain')]).toEqual([row.email, row.ledger !== row.score]);
		}
		// The scorer's score is its ledger's sum, decayed rules included (Eve has several).
		expect(scored.map((row) => [row.email, row.ledger])).toEqual(scored.map((row) => [row.email, row.score]));
		// A score no ledger row explains (set by hand here) is shown as such.
		const gus = lead['gus@unscored.example'];
		await prisma.lead.update({ where: { id: gus }, data: { score: 7.5 } });
		await page.goto(`${receiver.url}/dashboard/leads/${gus}`);
		await expect(page.textContent('#score-check')).resolves.toBe('The rules’ points add up to 0, but the lead’s score is 7.5: the score ledger does not explain 7.5 points of it.');
		await prisma.lead.update({ where: { id: gus }, data: { score: 0 } });
		await context.close();
	});

	it('downloads each table as CSV with the rows of the page', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		await page.goto(`${receiver.url}/dashboard/leads`);
		const [download] = await Promise.all([page.waitForEvent('download'), page.click('section[aria-labelledby=h-channels] a.csv')]);
		expect(download.suggestedFilename()).toMatch(new RegExp(`^${siteA.site.key}-channels-\\d{4}-\\d{2}-\\d{2}-to-\\d{4}-\\d{2}-\\d{2}\\.csv$`));
		const rows = parseCsv(readFileSync((await download.path())!, 'utf8'));
		expect(rows[0]).toEqual(['Channel', 'New leads', 'Share (%)', 'Previous period']);
		const shown = await tableRows(page, 'table-channels');
		expect(rows.slice(1).map((row) => [row[0], row[1], row[3]])).toEqual(shown.map((row) => [row[0], row[1], row[3]]));

		// The list with its filters: every lead that matches, not only the page.
		await page.goto(`${receiver.url}/dashboard/leads/list?tag=newsletter&sort=created&order=asc`);
		const [list] = await Promise.all([page.waitForEvent('download'), page.click('section[aria-labelledby=h-leads] a.csv')]);
		expect(list.suggestedFilename()).toBe(`${siteA.site.key}-leads-filtered.csv`);
		const listed = parseCsv(readFileSync((await list.path())!, 'utf8'));
		expect(listed[0]).toEqual(['Email', 'Name', 'Company', 'Stage', 'Score', 'Tags', 'Created (UTC)', 'Last activity (UTC)']);
		expect(listed.slice(1).map((row) => row[0])).toEqual(['ana@acme.example', 'bob@mail.example']);
		expect(listed[1][5]).toBe('newsletter, trial');
		const cookie = await cookieOf(context);
		const all = parseCsv((await get('/dashboard/leads.csv?table=leads&size=25&page=2', cookie)).text);
		expect(all).toHaveLength(1 + 37);

		// A lead's score explanation, as on its page.
		await page.goto(`${receiver.url}/dashboard/leads/${lead['ana@acme.example']}`);
		const [explained] = await Promise.all([page.waitForEvent('download'), page.click('section[aria-labelledby=h-score] a.csv')]);
		const scoreRows = parseCsv(readFileSync((await explained.path())!, 'utf8'));
		expect(scoreRows[0]).toEqual(['Rule', 'Points now', 'From evidence', 'Decay and recomputation']);
		expect(scoreRows.slice(1)).toEqual(await tableRows(page, 'table-score'));
		const ledgerCsv = parseCsv((await get(`/dashboard/leads.csv?table=ledger&lead=${lead['ana@acme.example']}`, await cookieOf(context))).text);
		expect(ledgerCsv[0]).toEqual(['When (UTC)', 'Rule', 'Points', 'Cause']);
		expect(ledgerCsv.slice(1).map((row) => row.slice(1))).toEqual((await tableRows(page, 'table-ledger')).map((row) => row.slice(1)));
		const timelineCsv = parseCsv((await get(`/dashboard/leads.csv?table=timeline&lead=${lead['eve@bigco.example']}`, cookie)).text);
		expect(timelineCsv).toHaveLength(1 + (await sqlA().timelineSize(lead['eve@bigco.example'])));

		expect((await get('/dashboard/leads.csv?table=nope', cookie)).text).toBe(
			'table must be one of new-leads, pipeline-over-time, pipeline, score-distribution, channels, sources, stage-changes, leads, score, ledger, timeline, sequences.',
		);
		expect(await get('/dashboard/leads.csv?table=leads&maxScore=x', cookie)).toMatchObject({ status: 400, text: 'Score to must be a number, such as 40 or 12.5 (got "x").' });
		await context.close();
	});

	it('shows site A’s key nothing of site B on any page or download, and site B’s lead answers 404 as a missing one', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const cookie = await cookieOf(context);
		const zed = lead['zed@b-only.example'];
		const theirs = await page.goto(`${receiver.url}/dashboard/leads/${zed}`);
		expect(theirs!.status()).toBe(404);
		const missing = await get(`/dashboard/leads/${uuidv7()}`, cookie);
		expect(missing.status).toBe(404);
		expect(await page.content()).toContain('This site has no lead with this id.');
		expect(missing.text).toContain('This site has no lead with this id.');
		expect((await get('/dashboard/leads/not-a-uuid', cookie)).status).toBe(404);

		const bodies = [
			(await get(`/dashboard/leads?site=${siteB.site.key}`, cookie)).text,
			(await get('/dashboard/leads/list?size=50', cookie)).text,
			(await get('/dashboard/leads.csv?table=leads', cookie)).text,
			...(await Promise.all(['new-leads', 'pipeline-over-time', 'pipeline', 'score-distribution', 'channels', 'sources', 'stage-changes'].map(async (table) => (await get(`/dashboard/leads.csv?table=${table}`, cookie)).text))),
		];
		for (const body of bodies) expect(body).not.toMatch(/b-only|b-secret|zed@|yan@|Social/);
		// Searching for B's leads by their own words finds none (the page repeats only the search).
		const searched = await get('/dashboard/leads/list?search=b-only', cookie);
		expect(searched.text).toContain('data-total="0"');
		expect(searched.text).not.toMatch(/zed@|yan@|B-Only Corp/);
		for (const table of ['score', 'ledger', 'timeline', 'sequences']) expect((await get(`/dashboard/leads.csv?table=${table}&lead=${zed}`, cookie)).status).toBe(404);
		const tagB = await get('/dashboard/leads/list?tag=b-secret', cookie);
		expect(tagB.text).toContain('No lead matches these filters.');
		await context.close();

		// Site B's key sees its own lead and not A's.
		const b = await openPage();
		await signIn(b.page, keyB);
		const own = await b.page.goto(`${receiver.url}/dashboard/leads/${zed}`);
		expect(own!.status()).toBe(200);
		await expect(b.page.textContent('#h-lead')).resolves.toBe('Zed · zed@b-only.example');
		expect((await get(`/dashboard/leads/${lead['ana@acme.example']}`, await cookieOf(b.context))).status).toBe(404);
		await b.page.goto(`${receiver.url}/dashboard/leads/list`);
		expect((await b.page.$$eval('#table-leads tbody th a', (links) => links.map((link) => link.textContent))).sort()).toEqual(['yan@b-only.example', 'zed@b-only.example']);
		await b.context.close();
	});

	it('is usable at phone width and by keyboard: no sideways scrolling, every control labelled, tab reaches the list form', async () => {
		const { context, page } = await openPage({ width: 390, height: 844 });
		await signIn(page, keyA);
		const pages: Array<[string, string]> = [
			['/dashboard/leads', '04-leads-overview-phone'],
			['/dashboard/leads/list', '05-lead-list-phone'],
			[`/dashboard/leads/${lead['ana@acme.example']}`, '06-lead-page-phone'],
		];
		for (const [url, name] of pages) {
			await page.goto(`${receiver.url}${url}`);
			await chartsDrawn(page);
			expect([url, await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)]).toEqual([url, true]);
			const unlabelled = await page.$$eval('input:not([type=hidden]), select, button, canvas', (elements) =>
				elements.filter((element) => !((element as HTMLInputElement).labels?.length || element.getAttribute('aria-label') || (element.textContent ?? '').trim())).map((element) => element.outerHTML),
			);
			expect([url, unlabelled]).toEqual([url, []]);
			await shot(page, name);
		}

		await page.goto(`${receiver.url}/dashboard/leads/list`);
		const reached = new Set<string>();
		for (let press = 0; press < 40; press++) {
			await page.keyboard.press('Tab');
			reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim().slice(0, 12) || document.activeElement?.tagName || ''));
		}
		expect([...reached]).toEqual(expect.arrayContaining(['Overview', 'Lead list', 'search', 'stage', 'min-score', 'max-score', 'tag', 'sort', 'order', 'size', 'Apply', 'Download CSV']));
		await context.close();

		// Desktop screenshots of the list and lead page beside the overview's.
		const desktop = await openPage();
		await signIn(desktop.page, keyA);
		await desktop.page.goto(`${receiver.url}/dashboard/leads/${lead['eve@bigco.example']}`);
		await shot(desktop.page, '07-lead-page-long-history');
		await desktop.context.close();
	});

	it('shows the steps Send Due will skip for a lead it may not mail, and why, and the Email Orchestrator then leaves them out for that reason', async () => {
		const siteId = receiver.sites.byPublicKey(siteC.site.key)!.id;
		const key = await createApiKey(prisma, siteId, 'read', 'leads C');
		const nurture = await prisma.emailSequence.create({ data: { siteId, name: 'nurture' } });
		for (const [position, subject] of ['Tips for your first week', 'A case study', 'Pricing explained'].entries()) {
			await prisma.emailSequenceStep.create({ data: { siteId, sequenceId: nurture.id, position, delayMinutes: position * 1440, subject, htmlTemplate: '<p>Hi</p>' } });
		}
		const dueAt = new Date(startOfToday() + DAY + 9 * HOUR);
		const enrolled = async (email: string, firstName: string) => {
			const hash = emailHash(email);
			const created = await prisma.lead.create({ data: { siteId, email, emailHash: hash, firstName, source: 'signup', createdAt: daysAgo(2) } });
			const enrollment = await prisma.sequenceEnrollment.create({ data: { siteId, sequenceId: nurture.id, leadId: created.id, status: 'active', nextStep: 0, nextRunAt: dueAt, enrolledAt: daysAgo(2) } });
			return { id: created.id, hash, enrollment: enrollment.id };
		};
		const consented = (hash: string) => recordChoices(prisma, siteId, [leadChoice({ consent: true, formId: 'signup' }, hash, undefined)!]);
		// Hal never gave his consent; Ivy gave it, but her address bounced; Jo gave it.
		const hal = await enrolled('hal@no-consent.example', 'Hal');
		const ivy = await enrolled('ivy@bounced.example', 'Ivy');
		await consented(ivy.hash);
		await prisma.suppression.create({ data: { siteId, emailHash: ivy.hash, channel: 'email', reason: 'bounced' } });
		const jo = await enrolled('jo@consented.example', 'Jo');
		await consented(jo.hash);

		const { context, page } = await openPage();
		await signIn(page, key);
		const steps = async () => (await tableRows(page, 'table-sequence-1')).map((row) => row.slice(2));
		const due = `due ${dueAt.toISOString().slice(0, 10)} 09:00 UTC`;
		const stepsOf = async (id: string) => {
			await page.goto(`${receiver.url}/dashboard/leads/${id}`);
			return steps();
		};

		const halSteps = await stepsOf(hal.id);
		const [, halReason] = /^.* · the lead will leave the sequence then \((.*)\)$/.exec(halSteps[0][1]) ?? [];
		expect(halReason).toMatch(/^no marketing consent: /);
		expect(halSteps).toEqual([
			['will be skipped', `${due} · the lead will leave the sequence then (${halReason})`],
			['will be skipped', `the lead will leave the sequence before it (${halReason})`],
			['will be skipped', `the lead will leave the sequence before it (${halReason})`],
		]);
		await expect(page.textContent('section[aria-labelledby=h-sequences] .note')).resolves.toMatch(new RegExp(`^Active until its next step is due: the lead will leave the sequence then \\(no marketing consent: `));
		expect(await overflowingTables(page)).toEqual([]);
		await shot(page, '08-lead-page-steps-to-skip');
		const csv = parseCsv((await get(`/dashboard/leads.csv?table=sequences&lead=${hal.id}`, await cookieOf(context))).text);
		expect(csv.slice(1).map((row) => row[4])).toEqual(['will be skipped', 'will be skipped', 'will be skipped']);

		expect(await stepsOf(ivy.id)).toEqual([
			['will be skipped', `${due} · the lead will leave the sequence then (suppressed: bounced)`],
			['will be skipped', 'the lead will leave the sequence before it (suppressed: bounced)'],
			['will be skipped', 'the lead will leave the sequence before it (suppressed: bounced)'],
		]);
		expect(await stepsOf(jo.id)).toEqual([
			['scheduled', due],
			['pending', '1 day after the step before'],
			['pending', '2 days after the step before'],
		]);

		// Send Due, when the steps are due, takes Hal and Ivy out for the reasons their pages gave, and sends them nothing.
		const transport = smtpTransport({ host: '127.0.0.1', port: 9, secure: false, disableStartTls: true, user: '', password: '' });
		try {
			const site = { id: siteId, key: siteC.site.key, domain: siteC.site.domain, config: siteC };
			const sender = { transport, receiverUrl: receiver.url, tokenSecret: 'leads-page-token-secret-of-32-characters', from: { address: `hello@${siteC.site.domain}` }, keyring: null };
			const reports = await sendDueSteps(prisma, site, sender, () => dueAt, 10, [hal.enrollment, ivy.enrollment]);
			expect(reports.map((report) => [report.leadId, report.outcome]).sort()).toEqual(
				[
					[hal.id, 'no-consent'],
					[ivy.id, 'suppressed'],
				].sort(),
			);
		} finally {
			transport.close();
		}
		const left = await prisma.sequenceEnrollment.findMany({ where: { id: { in: [hal.enrollment, ivy.enrollment] } }, select: { leadId: true, status: true, unenrollReason: true } });
		expect(left.map((row) => [row.leadId, row.status, row.unenrollReason]).sort()).toEqual(
			[
				[hal.id, 'unenrolled', halReason],
				[ivy.id, 'unenrolled', 'suppressed: bounced'],
			].sort(),
		);
		expect(await prisma.emailMessage.count({ where: { siteId } })).toBe(0);
		expect(await stepsOf(hal.id)).toEqual(Array.from({ length: 3 }, () => ['skipped', `the lead left the sequence (${halReason})`]));
		await shot(page, '09-lead-page-steps-skipped');
		await context.close();
	});

	it('had no console errors on the lead pages but the error pages the tests asked for', () => {
		// The Visitor Analytics page, where the sign-in lands, has its own test.
		const onLeadPages = consoleErrors.filter((line) => line.includes('/dashboard/leads'));
		const asked = /\/dashboard\/leads(\/list)?\?.*: Failed to load resource: the server responded with a status of 400 \(Bad Request\)$|\/dashboard\/leads\/[\w-]+: Failed to load resource: the server responded with a status of 404 \(Not Found\)$/;
		expect(onLeadPages.filter((line) => !asked.test(line))).toEqual([]);
		expect(onLeadPages.length).toBeGreaterThan(0);
	});
});
