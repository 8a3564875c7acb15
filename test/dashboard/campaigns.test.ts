// First: playwright-core needs Symbol.dispose from the moment it loads (see test/setup/symbolDispose.ts).

import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { v7 as uuidv7 } from 'uuid';

import type { SiteConfig } from '../../lib/contracts';
import type { PrismaClient } from '../../lib/db/generated/client';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { launchChromium } from '../helpers/browser';
import { daysAgo, pageBounds, parseCsv, startOfToday } from '../helpers/dashboard';
import { storeEvents, testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';
import { overflowingTables } from './layout';

const OUTPUT = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'dashboard');
const DAY = 86_400_000;
const later = (at: Date, minutes: number) => new Date(at.getTime() + minutes * 60_000);

/** Site A's goals in their configured order: not the order of their counts, so the funnel must follow the config. */
const GOALS_A = [
	{ name: 'signup', value: 0 },
	{ name: 'demo-request', value: 0 },
	{ name: 'purchase', value: 49, currency: 'EUR' },
	{ name: 'upgrade', value: 20, currency: 'USD' },
];

function configWithGoals(goals: Array<{ name: string; value: number; currency?: string }>): SiteConfig {
	const config = testSiteConfig();
	config.crm.conversionRules = goals.map((goal) => ({ ...goal, event: goal.name }));
	return config;
}

// ---------------------------------------------------------------------------------------------
// Seeding: visitors, sessions and conversions as the nodes leave them; sequences, sends and email events

interface SessionSeed {
	startedAt: Date;
	channel: string | null;
	campaign?: string;
	/** Pages viewed, ten seconds apart. */
	paths?: string[];
	/** Goals reached in the session, a few minutes apart; a goal's value and currency are the config's. */
	goals?: string[];
}

interface Seeded {
	leads: Record<string, string>;
}

async function seedVisitors(
	prisma: PrismaClient,
	siteId: string,
	goals: Array<{ name: string; value: number; currency?: string }>,
	visitors: Record<string, { lead?: boolean; sessions: SessionSeed[] }>,
): Promise<Seeded> {
	const leads: Record<string, string> = {};
	for (const [name, { lead, sessions }] of Object.entries(visitors)) {
		const leadRow = lead ? await prisma.lead.create({ data: { siteId, email: `${name}@example.com`, emailHash: `hash-${name}-${siteId}` } }) : undefined;
		if (leadRow) leads[name] = leadRow.id;
		const visitor = await prisma.visitor.create({ data: { siteId, anonymousId: name, leadId: leadRow?.id, firstSeenAt: daysAgo(30), lastSeenAt: new Date() } });
		for (const session of sessions) {
			const row = await prisma.visitorSession.create({
				data: { siteId, visitorId: visitor.id, sessionKey: uuidv7(), startedAt: session.startedAt, lastActivityAt: later(session.startedAt, 30), channel: session.channel, campaign: session.campaign },
			});
			await storeEvents(
				prisma,
				(session.paths ?? []).map((path, index) => ({
					siteId,
					eventId: uuidv7(),
					anonymousId: name,
					visitorId: visitor.id,
					sessionId: row.id,
					type: 'pageview',
					path,
					occurredAt: new Date(session.startedAt.getTime() + index * 10_000),
				})),
			);
			for (const [index, goal] of (session.goals ?? []).entries()) {
				const rule = goals.find((entry) => entry.name === goal)!;
				await prisma.conversion.create({
					data: { siteId, visitorId: visitor.id, leadId: leadRow?.id, sessionId: row.id, goal, eventId: uuidv7(), value: rule.value, currency: rule.currency, occurredAt: later(session.startedAt, 10 + index * 5) },
				});
			}
		}
	}
	return { leads };
}

interface MessageSeed {
	lead: string;
	sequence: string;
	step: number;
	sentAt: Date | null;
	opened?: boolean;
	clicked?: boolean;
	events?: Array<'open' | 'click' | 'unsubscribe' | 'bounce'>;
}

async function seedEmail(prisma: PrismaClient, siteId: string, leads: Record<string, string>, campaign: string, sequences: Record<string, string[]>, messages: MessageSeed[]): Promise<void> {
	const campaignRow = await prisma.emailCampaign.create({ data: { siteId, name: campaign, status: 'active' } });
	const steps: Record<string, { sequenceId: string; stepIds: string[] }> = {};
	for (const [name, subjects] of Object.entries(sequences)) {
		const sequence = await prisma.emailSequence.create({ data: { siteId, name, campaignId: campaignRow.id } });
		const stepIds: string[] = [];
		for (const [position, subject] of subjects.entries()) {
			stepIds.push((await prisma.emailSequenceStep.create({ data: { siteId, sequenceId: sequence.id, position, subject, htmlTemplate: `<p>${subject}</p>` } })).id);
		}
		steps[name] = { sequenceId: sequence.id, stepIds };
	}
	const enrollments = new Map<string, string>();
	for (const message of messages) {
		const { sequenceId, stepIds } = steps[message.sequence];
		const key = `${message.sequence}:${message.lead}`;
		if (!enrollments.has(key)) enrollments.set(key, (await prisma.sequenceEnrollment.create({ data: { siteId, sequenceId, leadId: leads[message.lead], enrolledAt: daysAgo(30) } })).id);
		const sentAt = message.sentAt;
		const row = await prisma.emailMessage.create({
			data: {
				siteId,
				leadId: leads[message.lead],
				campaignId: campaignRow.id,
				sequenceId,
				stepId: stepIds[message.step],
				enrollmentId: enrollments.get(key),
				idempotencyKey: `${leads[message.lead]}:${sequenceId}:${message.step}`,
				toEmail: `${message.lead}@example.com`,
				subject: message.sequence,
				status: sentAt ? 'sent' : 'failed',
				sentAt,
				firstOpenedAt: sentAt && message.opened ? later(sentAt, 60) : null,
				firstClickedAt: sentAt && message.clicked ? later(sentAt, 65) : null,
			},
		});
		for (const [index, type] of (message.events ?? []).entries()) {
			await prisma.emailEvent.create({ data: { siteId, messageId: row.id, type, occurredAt: later(sentAt!, 60 + index) } });
		}
	}
}

// ---------------------------------------------------------------------------------------------
// The figures the page must show, worked out here with plain SQL over the raw tables and a little arithmetic

const count = (value: number) => value.toLocaleString('en-US');
const percent = (part: number, whole: number) => (whole === 0 ? '—' : `${((part / whole) * 100).toFixed(1)}%`);
const csvPercent = (part: number, whole: number) => (whole === 0 ? '' : String(Math.round((part / whole) * 10_000) / 100));
const ratio = (part: number, whole: number) => (whole === 0 ? null : part / whole);

interface EmailTotals {
	sent: number;
	opened: number;
	clicked: number;
	unsubscribed: number;
	bounced: number;
	converted: number;
}

/** Each message sent in [from, to) with what became of it: the unit every email figure counts. */
async function sqlMessages(prisma: PrismaClient, siteId: string, from: string, to: string) {
	return prisma.$queryRawUnsafe<Array<{ sequence: string; position: number; subject: string; sentDay: string; opened: boolean; clicked: boolean; unsubscribed: boolean; bounced: boolean; converted: boolean }>>(
		`SELECT q.name AS sequence, st.position, st.subject, to_char(m.sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS "sentDay",
			m.first_opened_at IS NOT NULL AS opened, m.first_clicked_at IS NOT NULL AS clicked,
			EXISTS (SELECT 1 FROM email_events e WHERE e.message_id = m.id AND e.type = 'unsubscribe') AS unsubscribed,
			EXISTS (SELECT 1 FROM email_events e WHERE e.message_id = m.id AND e.type = 'bounce') AS bounced,
			EXISTS (SELECT 1 FROM conversions c WHERE c.lead_id = m.lead_id AND c.occurred_at >= m.sent_at AND c.occurred_at < m.sent_at + interval '7 days') AS converted
		FROM email_messages m JOIN email_sequences q ON q.id = m.sequence_id JOIN email_sequence_steps st ON st.id = m.step_id
		WHERE m.site_id = $1::uuid AND m.sent_at >= $2::timestamptz AND m.sent_at < $3::timestamptz`,
		siteId,
		from,
		to,
	);
}

function totalsOf(messages: Awaited<ReturnType<typeof sqlMessages>>): EmailTotals {
	const n = (flag: 'opened' | 'clicked' | 'unsubscribed' | 'bounced' | 'converted') => messages.filter((message) => message[flag]).length;
	return { sent: messages.length, opened: n('opened'), clicked: n('clicked'), unsubscribed: n('unsubscribed'), bounced: n('bounced'), converted: n('converted') };
}

const emailRow = (name: string, t: EmailTotals) => [
	name,
	count(t.sent),
	percent(t.opened, t.sent),
	percent(t.clicked, t.sent),
	percent(t.clicked, t.opened),
	percent(t.converted, t.sent),
	percent(t.unsubscribed, t.sent),
	percent(t.bounced, t.sent),
	count(t.opened),
	count(t.clicked),
	count(t.converted),
	count(t.unsubscribed),
	count(t.bounced),
];

/** The sequences table (most sent first) and the steps table (in the sequences' order, then by position). */
function expectedEmailTables(messages: Awaited<ReturnType<typeof sqlMessages>>) {
	const sequences = [...new Set(messages.map((message) => message.sequence))]
		.map((name) => ({ name, totals: totalsOf(messages.filter((message) => message.sequence === name)) }))
		.sort((a, b) => b.totals.sent - a.totals.sent || (a.name < b.name ? -1 : 1));
	const steps = sequences.flatMap(({ name }) => {
		const own = messages.filter((message) => message.sequence === name);
		return [...new Set(own.map((message) => message.position))]
			.sort((a, b) => a - b)
			.map((position) => {
				const at = own.filter((message) => message.position === position);
				return emailRow(`${name} · ${position + 1}. ${at[0].subject}`, totalsOf(at));
			});
	});
	return { sequences: sequences.map(({ name, totals }) => emailRow(name, totals)), steps };
}

/** The sessions that started in [from, to), the filter applied, and the conversions that happened in them. */
async function sqlConversions(prisma: PrismaClient, siteId: string, from: string, to: string, filter: { channel?: string; campaign?: string; page?: string } = {}) {
	const where = `s.site_id = $1::uuid AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz AND ($4::text IS NULL OR s.channel = $4) AND ($5::text IS NULL OR s.campaign = $5)
		AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM visitor_event_links l JOIN visitor_events e ON e.site_id = l.site_id AND e.event_id = l.event_id WHERE l.session_id = s.id AND e.type = 'pageview' AND e.path = $6))`;
	const params = [siteId, from, to, filter.channel ?? null, filter.campaign ?? null, filter.page ?? null];
	const sessions = await prisma.$queryRawUnsafe<Array<{ id: string; visitorId: string; channel: string | null; campaign: string | null }>>(
		`SELECT s.id, s.visitor_id AS "visitorId", s.channel, s.campaign FROM visitor_sessions s WHERE ${where}`,
		...params,
	);
	const conversions = await prisma.$queryRawUnsafe<Array<{ sessionId: string; visitorId: string; goal: string; value: number; currency: string | null; channel: string | null; campaign: string | null }>>(
		`SELECT c.session_id AS "sessionId", c.visitor_id AS "visitorId", c.goal, c.value::float8 AS value, c.currency, s.channel, s.campaign
		FROM conversions c JOIN visitor_sessions s ON s.id = c.session_id WHERE ${where}`,
		...params,
	);
	return { sessions, conversions };
}

type ConversionData = Awaited<ReturnType<typeof sqlConversions>>;

/** Currencies with a value in the period, sorted: the value columns. */
const currenciesOf = (data: ConversionData) => [...new Set(data.conversions.filter((c) => c.value !== 0).map((c) => c.currency))].sort() as string[];
/** Money as the page writes it: whole amounts without cents, others with two decimals (50, 49.90). */
const pageMoney = (value: number) => value.toLocaleString('en-US', Number.isInteger(Math.round(value * 100) / 100) ? { maximumFractionDigits: 0 } : { minimumFractionDigits: 2, maximumFractionDigits: 2 });
/** A currency's sum, as the page shows it or (`csv`) as the CSV holds it: two decimals, a plain number. */
const sumIn = (conversions: ConversionData['conversions'], currency: string, csv = false) => {
	const sum = conversions.filter((c) => c.currency === currency).reduce((total, c) => total + c.value, 0);
	return csv ? sum.toFixed(2) : pageMoney(sum);
};

/** The channels or campaigns table: most sessions first, then by name, the unset value last. */
function expectedBreakdown(data: ConversionData, key: 'channel' | 'campaign', csv = false): string[][] {
	const currencies = currenciesOf(data);
	const values = [...new Set(data.sessions.map((session) => session[key]))];
	return values
		.map((value) => {
			const sessions = data.sessions.filter((session) => session[key] === value).length;
			const conversions = data.conversions.filter((c) => c[key] === value);
			const converting = new Set(conversions.map((c) => c.sessionId)).size;
			return { value, sessions, cells: [value ?? '(not set)', String(sessions), String(converting), (csv ? csvPercent : percent)(converting, sessions), String(conversions.length), ...currencies.map((currency) => sumIn(conversions, currency, csv))] };
		})
		.sort((a, b) => b.sessions - a.sessions || (a.value === null ? 1 : b.value === null ? -1 : a.value < b.value ? -1 : 1))
		.map((row) => row.cells);
}

function expectedFunnel(data: ConversionData, goals: string[]): string[][] {
	const currencies = currenciesOf(data);
	const visitors = new Set(data.sessions.map((session) => session.visitorId)).size;
	return [
		['Visitors', count(visitors), percent(visitors, visitors), '—', ...currencies.map(() => '—')],
		...goals.map((goal) => {
			const reached = data.conversions.filter((c) => c.goal === goal);
			const converted = new Set(reached.map((c) => c.visitorId)).size;
			return [goal, count(converted), percent(converted, visitors), count(reached.length), ...currencies.map((currency) => sumIn(reached, currency))];
		}),
	];
}

// ---------------------------------------------------------------------------------------------
// Reading the page

async function pageFigures(page: Page): Promise<Record<string, { value: number | null; previous: number | null }>> {
	const raw = await page.$$eval('[data-figure]', (elements) => elements.map((element) => [(element as HTMLElement).dataset.figure!, (element as HTMLElement).dataset.value ?? '', (element as HTMLElement).dataset.previous ?? ''] as const));
	const number = (text: string) => (text === '' ? null : Number(text));
	return Object.fromEntries(raw.map(([name, value, previous]) => [name, { value: number(value), previous: number(previous) }]));
}

async function tableRows(page: Page, name: string): Promise<string[][]> {
	return page.$$eval(`#table-${name} tbody tr`, (rows) => rows.map((row) => Array.from(row.children).map((cell) => (cell.textContent ?? '').trim())));
}

async function tableHead(page: Page, name: string): Promise<string[]> {
	return page.$$eval(`#table-${name} thead th`, (cells) => cells.map((cell) => (cell.textContent ?? '').trim()));
}

/** A request on a connection of its own, without following redirects. */
async function send(url: string, cookie?: string): Promise<{ status: number; headers: Headers; text: string }> {
	const response = await fetch(url, { redirect: 'manual', headers: { connection: 'close', ...(cookie && { cookie }) } });
	return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('Campaign Performance in a real Chromium: sequences, steps, conversions by channel and campaign, the goal funnel', () => {
	const prisma = testPrisma();
	const siteA = configWithGoals(GOALS_A);
	const siteB = configWithGoals([{ name: 'b-goal', value: 99, currency: 'GBP' }]);
	let receiver: Receiver;
	let browser: Browser;
	let siteAId: string;
	let siteBId: string;
	let keyA: string;
	let keyB: string;
	const consoleErrors: string[] = [];

	beforeAll(async () => {
		mkdirSync(OUTPUT, { recursive: true });
		receiver = await startTestReceiver([siteA, siteB], { DISPATCHER: 'off' });
		siteAId = receiver.sites.byPublicKey(siteA.site.key)!.id;
		siteBId = receiver.sites.byPublicKey(siteB.site.key)!.id;
		keyA = await createApiKey(prisma, siteAId, 'read', 'campaigns A');
		keyB = await createApiKey(prisma, siteBId, 'read', 'campaigns B');

		const { leads } = await seedVisitors(prisma, siteAId, GOALS_A, {
			ana: {
				lead: true,
				sessions: [
					{ startedAt: daysAgo(1), channel: 'Paid Search', campaign: 'spring-sale', paths: ['/', '/pricing', '/checkout'], goals: ['signup', 'purchase'] },
					{ startedAt: daysAgo(3), channel: 'Paid Search', campaign: 'spring-sale' },
				],
			},
			bob: {
				lead: true,
				sessions: [
					{ startedAt: daysAgo(3), channel: 'Email', campaign: 'weekly-digest', goals: ['demo-request'] },
					{ startedAt: daysAgo(2), channel: 'Paid Search', campaign: 'spring-sale', paths: ['/pricing', '/checkout'], goals: ['purchase'] },
				],
			},
			cyd: {
				lead: true,
				sessions: [
					{ startedAt: daysAgo(2), channel: 'Organic Search', goals: ['demo-request'] },
					{ startedAt: daysAgo(4), channel: 'Direct', goals: ['upgrade'] },
				],
			},
			dee: { lead: true, sessions: [{ startedAt: daysAgo(5), channel: 'Email', campaign: 'weekly-digest', goals: ['signup'] }] },
			eve: { sessions: [{ startedAt: daysAgo(1), channel: 'Paid Social', campaign: 'retarget', paths: ['/', '/blog'], goals: ['upgrade', 'purchase'] }] },
			fay: {
				sessions: [
					{ startedAt: daysAgo(2), channel: 'Direct', paths: ['/pricing'] },
					{ startedAt: daysAgo(6), channel: 'Organic Search' },
				],
			},
			gus: {
				sessions: [
					{ startedAt: daysAgo(10), channel: 'Direct', goals: ['purchase'] },
					{ startedAt: daysAgo(12), channel: 'Paid Search', campaign: 'spring-sale' },
				],
			},
			hal: { lead: true, sessions: [{ startedAt: daysAgo(1), channel: 'Referral', goals: ['signup'] }] },
			// A session of the previous period whose conversion came after midnight: it stays with its session.
			ivy: { sessions: [{ startedAt: daysAgo(7, 23.9), channel: 'Direct', goals: ['demo-request'] }] },
			win: { lead: true, sessions: [] },
			old: { lead: true, sessions: [{ startedAt: daysAgo(20), channel: 'Organic Search', goals: ['signup'] }] },
		});
		await seedEmail(prisma, siteAId, leads, 'Spring launch', { Onboarding: ['Welcome aboard, {{firstName}}', 'Your first week', 'Tips and tricks'], 'Win-back': ['We miss you'] }, [
			// ana converts on day 1: 4 and 2 days after these two.
			{ lead: 'ana', sequence: 'Onboarding', step: 0, sentAt: daysAgo(5, 9), opened: true, clicked: true, events: ['open', 'open', 'click'] },
			{ lead: 'ana', sequence: 'Onboarding', step: 1, sentAt: daysAgo(3, 9), opened: true, events: ['open'] },
			{ lead: 'bob', sequence: 'Onboarding', step: 0, sentAt: daysAgo(6, 9), opened: true, clicked: true, events: ['open', 'click', 'unsubscribe', 'unsubscribe'] },
			{ lead: 'cyd', sequence: 'Onboarding', step: 0, sentAt: daysAgo(4, 9), events: ['bounce'] },
			// dee converted before these: not after the email.
			{ lead: 'dee', sequence: 'Onboarding', step: 0, sentAt: daysAgo(2, 9), opened: true, events: ['open'] },
			{ lead: 'dee', sequence: 'Onboarding', step: 1, sentAt: daysAgo(1, 9) },
			{ lead: 'cyd', sequence: 'Onboarding', step: 1, sentAt: daysAgo(1, 9), opened: true, events: ['open'] },
			{ lead: 'win', sequence: 'Win-back', step: 0, sentAt: daysAgo(1, 9), opened: true, clicked: true, events: ['open', 'click'] },
			// The previous period: hal converts 8 days after, outside the window.
			{ lead: 'hal', sequence: 'Win-back', step: 0, sentAt: daysAgo(9, 9), opened: true, events: ['open'] },
			{ lead: 'hal', sequence: 'Onboarding', step: 2, sentAt: daysAgo(10, 9), opened: true, clicked: true, events: ['open', 'click'] },
			{ lead: 'old', sequence: 'Onboarding', step: 0, sentAt: daysAgo(20, 9), opened: true },
			// Never sent.
			{ lead: 'old', sequence: 'Onboarding', step: 1, sentAt: null },
		]);

		// Site B: names, a campaign and a currency site A never has.
		const b = await seedVisitors(prisma, siteBId, [{ name: 'b-goal', value: 99, currency: 'GBP' }], {
			zed: { lead: true, sessions: [{ startedAt: daysAgo(1), channel: 'Referral', campaign: 'b-only-campaign', goals: ['b-goal'] }] },
			yan: { sessions: [{ startedAt: daysAgo(2), channel: 'Affiliates', campaign: 'b-only-campaign' }] },
		});
		await seedEmail(prisma, siteBId, b.leads, 'B-only launch', { 'B-only sequence': ['B-only subject'] }, [{ lead: 'zed', sequence: 'B-only sequence', step: 0, sentAt: daysAgo(2, 9), opened: true, events: ['open'] }]);

		browser = await launchChromium();
	});

	afterAll(async () => {
		await browser?.close();
		await receiver?.close();
		await prisma.$disconnect();
	});

	async function openPage(options: { viewport?: { width: number; height: number } } = {}): Promise<{ context: BrowserContext; page: Page }> {
		// Charts drawn without animation, so a screenshot shows them whole.
		const context = await browser.newContext({ viewport: options.viewport ?? { width: 1280, height: 900 }, reducedMotion: 'reduce', acceptDownloads: true });
		const page = await context.newPage();
		page.on('console', (message) => {
			if (message.type() === 'error') consoleErrors.push(`${page.url()}: ${message.text()}`);
		});
		page.on('pageerror', (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
		return { context, page };
	}

	/** Signs in through the form, then opens Campaign Performance (by its link in the navigation). */
	async function signIn(page: Page, key: string): Promise<void> {
		await page.goto(`${receiver.url}/dashboard`);
		await page.fill('#key', key);
		await Promise.all([page.waitForURL(/\/dashboard\/visitors/), page.click('button[type=submit]')]);
		await Promise.all([page.waitForURL(/\/dashboard\/campaigns/), page.click('nav a[href^="/dashboard/campaigns"]')]);
		await chartsDrawn(page);
	}

	const chartsDrawn = (page: Page) => page.waitForFunction(() => Array.from(document.querySelectorAll('canvas')).every((canvas) => (window as any).Chart?.getChart(canvas)));
	const shot = (page: Page, name: string) => page.screenshot({ path: path.join(OUTPUT, `${name}.png`), fullPage: true });
	const cookieOf = async (context: BrowserContext) => (await context.cookies()).map((entry) => `${entry.name}=${entry.value}`).join('; ');

	it('shows site A’s email figures per sequence and step, against the previous period, equal to SQL over the bounds it states', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		await expect(page.textContent('h1')).resolves.toBe('Campaign Performance');
		const bounds = await pageBounds(page);
		const today = startOfToday();
		expect(bounds).toEqual({
			from: new Date(today - 6 * DAY).toISOString(),
			to: new Date(today + DAY).toISOString(),
			'previous-from': new Date(today - 13 * DAY).toISOString(),
			'previous-to': new Date(today - 6 * DAY).toISOString(),
		});

		const messages = await sqlMessages(prisma, siteAId, bounds.from, bounds.to);
		const before = totalsOf(await sqlMessages(prisma, siteAId, bounds['previous-from'], bounds['previous-to']));
		const now = totalsOf(messages);
		// The seed, counted by hand, so the SQL above is not trivially empty.
		expect(now).toEqual({ sent: 8, opened: 6, clicked: 3, unsubscribed: 1, bounced: 1, converted: 4 });
		expect(before).toEqual({ sent: 2, opened: 2, clicked: 1, unsubscribed: 0, bounced: 0, converted: 0 });

		const figures = await pageFigures(page);
		const rates = (t: EmailTotals) => ({
			sent: t.sent,
			openRate: ratio(t.opened, t.sent),
			clickRate: ratio(t.clicked, t.sent),
			clickToOpenRate: ratio(t.clicked, t.opened),
			emailConversionRate: ratio(t.converted, t.sent),
			unsubscribeRate: ratio(t.unsubscribed, t.sent),
			bounceRate: ratio(t.bounced, t.sent),
		});
		for (const [name, value] of Object.entries(rates(now))) expect([name, figures[name].value]).toEqual([name, value]);
		for (const [name, value] of Object.entries(rates(before))) expect([name, figures[name].previous]).toEqual([name, value]);
		await expect(page.textContent('[data-figure=sent]')).resolves.toBe('8');
		await expect(page.textContent('[data-change=sent]')).resolves.toContain('+300.0%');
		await expect(page.textContent('[data-figure=openRate]')).resolves.toBe('75.0%');

		const expected = expectedEmailTables(messages);
		expect(await tableHead(page, 'sequences')).toEqual([
			'Sequence',
			'Sent',
			'Open rate',
			'Click rate',
			'Click-to-open rate',
			'Conversion rate',
			'Unsubscribe rate',
			'Bounce rate',
			'Opened',
			'Clicked',
			'Converted',
			'Unsubscribed',
			'Bounced',
		]);
		expect(await tableRows(page, 'sequences')).toEqual(expected.sequences);
		expect(await tableRows(page, 'steps')).toEqual(expected.steps);
		expect(expected.steps.map((row) => row[0])).toEqual(['Onboarding · 1. Welcome aboard, {{firstName}}', 'Onboarding · 2. Your first week', 'Win-back · 1. We miss you']);
		// A step's row adds up every lead's email, each rendered its own way: the column says it shows the template.
		expect((await tableHead(page, 'steps'))[0]).toBe('Step (subject template)');

		// One row per day, sent / opened / clicked by the day of the send.
		const days = Array.from({ length: 7 }, (_, index) => new Date(today - (6 - index) * DAY).toISOString().slice(0, 10));
		const byDay = days.map((day) => {
			const sent = messages.filter((message) => message.sentDay === day);
			return [day, String(sent.length), String(sent.filter((m) => m.opened).length), String(sent.filter((m) => m.clicked).length)];
		});
		expect(await tableRows(page, 'email-over-time')).toEqual(byDay);
		// Every table fits its card at 1280 px: no column cut at the card's edge.
		expect(await overflowingTables(page)).toEqual([]);
		await shot(page, '20-campaigns-desktop');
		await context.close();
	});

	it('shows conversions by channel and UTM campaign with their values per currency, and the goal funnel in the configured order', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const bounds = await pageBounds(page);
		const data = await sqlConversions(prisma, siteAId, bounds.from, bounds.to);
		const before = await sqlConversions(prisma, siteAId, bounds['previous-from'], bounds['previous-to']);
		expect([data.sessions.length, data.conversions.length, before.sessions.length, before.conversions.length]).toEqual([11, 10, 3, 2]);
		expect(currenciesOf(data)).toEqual(['EUR', 'USD']);

		const figures = await pageFigures(page);
		const converting = (d: ConversionData) => new Set(d.conversions.map((c) => c.sessionId)).size;
		const total = (d: ConversionData, currency: string) => Number(sumIn(d.conversions, currency, true));
		expect(figures.conversions).toEqual({ value: data.conversions.length, previous: before.conversions.length });
		expect(figures.convertingSessions).toEqual({ value: converting(data), previous: converting(before) });
		expect(figures.sessionConversionRate).toEqual({ value: ratio(converting(data), data.sessions.length), previous: ratio(converting(before), before.sessions.length) });
		expect(figures['value-EUR']).toEqual({ value: total(data, 'EUR'), previous: total(before, 'EUR') });
		expect(figures['value-USD']).toEqual({ value: total(data, 'USD'), previous: total(before, 'USD') });
		await expect(page.textContent('[data-figure="value-EUR"]')).resolves.toBe('147');

		expect(await tableHead(page, 'channels')).toEqual(['Channel', 'Sessions', 'Converting sessions', 'Conversion rate', 'Conversions', 'Value (EUR)', 'Value (USD)']);
		expect(await tableRows(page, 'channels')).toEqual(expectedBreakdown(data, 'channel'));
		expect(await tableRows(page, 'campaigns')).toEqual(expectedBreakdown(data, 'campaign'));
		expect((await tableRows(page, 'campaigns')).find((row) => row[0] === 'spring-sale')).toEqual(['spring-sale', '3', '2', '66.7%', '3', '98', '0']);

		const funnel = expectedFunnel(
			data,
			GOALS_A.map((goal) => goal.name),
		);
		expect(await tableRows(page, 'funnel')).toEqual(funnel);
		expect(funnel.map((row) => row.slice(0, 2))).toEqual([
			['Visitors', '7'],
			['signup', '3'],
			['demo-request', '2'],
			['purchase', '3'],
			['upgrade', '2'],
		]);
		// The funnel's chart draws the same steps as its table.
		const chart = await page.$eval('section[aria-labelledby=h-funnel] canvas', (canvas) => JSON.parse(canvas.getAttribute('data-chart')!));
		expect([chart.labels, chart.datasets[0].data]).toEqual([funnel.map((row) => row[0]), funnel.map((row) => Number(row[1]))]);

		const html = await page.content();
		for (const onlyB of ['B-only', 'b-only-campaign', 'GBP', siteB.site.name]) expect([onlyB, html.includes(onlyB)]).toEqual([onlyB, false]);
		await context.close();
	});

	it('filters the conversion figures by channel, UTM campaign and page, keeping the period; emails stay unfiltered', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const unfilteredSent = (await pageFigures(page)).sent.value;
		const goals = GOALS_A.map((goal) => goal.name);

		await page.selectOption('#channel', 'Paid Search');
		await Promise.all([page.waitForURL(/channel=Paid\+Search/), page.click('form.filters button[type=submit]')]);
		await chartsDrawn(page);
		expect(new URL(page.url()).searchParams.get('range')).toBe('7d');
		const bounds = await pageBounds(page);
		const paid = await sqlConversions(prisma, siteAId, bounds.from, bounds.to, { channel: 'Paid Search' });
		expect(await tableRows(page, 'channels')).toEqual(expectedBreakdown(paid, 'channel'));
		expect(await tableRows(page, 'campaigns')).toEqual(expectedBreakdown(paid, 'campaign'));
		expect(await tableRows(page, 'funnel')).toEqual(expectedFunnel(paid, goals));
		expect(await tableRows(page, 'channels')).toEqual([['Paid Search', '3', '2', '66.7%', '3', '98']]);
		await expect(page.textContent('#filtered')).resolves.toContain('from channel “Paid Search”');
		expect((await pageFigures(page)).sent.value).toBe(unfilteredSent);
		// The navigation keeps the filter for the other dashboards.
		expect(await page.getAttribute('nav a[href^="/dashboard/visitors"]', 'href')).toBe('/dashboard/visitors?range=7d&channel=Paid+Search');

		// A campaign typed into the form of a custom period.
		const from = new Date(startOfToday() - 5 * DAY).toISOString().slice(0, 10);
		const to = new Date(startOfToday() - 1 * DAY).toISOString().slice(0, 10);
		await page.goto(`${receiver.url}/dashboard/campaigns?range=custom&from=${from}&to=${to}`);
		await page.fill('#campaign', 'weekly-digest');
		await Promise.all([page.waitForURL(/campaign=weekly-digest/), page.click('form.filters button[type=submit]')]);
		const query = new URL(page.url()).searchParams;
		expect([query.get('range'), query.get('from'), query.get('to'), query.get('channel')]).toEqual(['custom', from, to, '']);
		const custom = await pageBounds(page);
		expect([custom.from, custom.to]).toEqual([`${from}T00:00:00.000Z`, new Date(startOfToday()).toISOString()]);
		const digest = await sqlConversions(prisma, siteAId, custom.from, custom.to, { campaign: 'weekly-digest' });
		expect(digest.sessions.length).toBe(2);
		expect(await tableRows(page, 'channels')).toEqual(expectedBreakdown(digest, 'channel'));
		expect(await tableRows(page, 'funnel')).toEqual(expectedFunnel(digest, goals));
		const csvHref = await page.getAttribute('section[aria-labelledby=h-channels] a.csv', 'href');
		expect(csvHref).toBe(`/dashboard/campaigns.csv?table=channels&range=custom&from=${from}&to=${to}&campaign=weekly-digest`);
		await shot(page, '21-campaigns-filtered');

		// The sessions that viewed a page, and a page with a campaign together (no rollup holds that pair).
		const viewedFilters: Array<Record<string, string>> = [{ page: '/pricing' }, { page: '/checkout', campaign: 'spring-sale' }];
		for (const filter of viewedFilters) {
			await page.goto(`${receiver.url}/dashboard/campaigns?${new URLSearchParams(filter)}`);
			const viewed = await sqlConversions(prisma, siteAId, bounds.from, bounds.to, filter);
			expect(viewed.sessions.length).toBe(filter.campaign ? 2 : 3);
			expect(await tableRows(page, 'channels')).toEqual(expectedBreakdown(viewed, 'channel'));
			expect(await tableRows(page, 'campaigns')).toEqual(expectedBreakdown(viewed, 'campaign'));
			expect(await tableRows(page, 'funnel')).toEqual(expectedFunnel(viewed, goals));
		}

		// Wrong filters: the page and the download say which field and why.
		const badChannel = await page.goto(`${receiver.url}/dashboard/campaigns?channel=Carrier+pigeon`);
		expect(badChannel!.status()).toBe(400);
		await expect(page.textContent('[role=alert]')).resolves.toMatch(/^Channel must be one of Direct, .*, Unassigned\.$/);
		const cookie = await cookieOf(context);
		const csvBad = await send(`${receiver.url}/dashboard/campaigns.csv?table=channels&campaign=${encodeURIComponent('a\tb')}`, cookie);
		expect([csvBad.status, csvBad.text]).toEqual([400, 'Campaign must not contain control characters (such as NUL, tab or line breaks).']);
		const csvPage = await send(`${receiver.url}/dashboard/campaigns.csv?table=channels&page=pricing`, cookie);
		expect([csvPage.status, csvPage.text]).toEqual([400, 'Page must be a path starting with / (such as /pricing).']);
		const csvTable = await send(`${receiver.url}/dashboard/campaigns.csv?table=leads`, cookie);
		expect([csvTable.status, csvTable.text]).toEqual([400, 'table must be one of email-over-time, sequences, steps, channels, campaigns, funnel.']);
		const csvPeriod = await send(`${receiver.url}/dashboard/campaigns.csv?table=channels&range=1y`, cookie);
		expect(csvPeriod.status).toBe(400);
		expect(csvPeriod.text).toMatch(/^Period must be one of /);
		await context.close();
	});

	it('downloads each table as CSV with the page’s figures as plain numbers', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		const bounds = await pageBounds(page);
		const [download] = await Promise.all([page.waitForEvent('download'), page.click('section[aria-labelledby=h-channels] a.csv')]);
		expect(download.suggestedFilename()).toMatch(new RegExp(`^${siteA.site.key}-channels-\\d{4}-\\d{2}-\\d{2}-to-\\d{4}-\\d{2}-\\d{2}\\.csv$`));
		const rows = parseCsv(readFileSync((await download.path())!, 'utf8'));
		const data = await sqlConversions(prisma, siteAId, bounds.from, bounds.to);
		expect(rows[0]).toEqual(['Channel', 'Sessions', 'Converting sessions', 'Conversion rate (%)', 'Conversions', 'Value (EUR)', 'Value (USD)']);
		expect(rows.slice(1)).toEqual(expectedBreakdown(data, 'channel', true));

		const cookie = await cookieOf(context);
		const steps = parseCsv((await send(`${receiver.url}/dashboard/campaigns.csv?table=steps`, cookie)).text);
		const messages = await sqlMessages(prisma, siteAId, bounds.from, bounds.to);
		const welcome = totalsOf(messages.filter((message) => message.sequence === 'Onboarding' && message.position === 0));
		expect(steps[1]).toEqual([
			'Onboarding · 1. Welcome aboard, {{firstName}}',
			String(welcome.sent),
			csvPercent(welcome.opened, welcome.sent),
			csvPercent(welcome.clicked, welcome.sent),
			csvPercent(welcome.clicked, welcome.opened),
			csvPercent(welcome.converted, welcome.sent),
			csvPercent(welcome.unsubscribed, welcome.sent),
			csvPercent(welcome.bounced, welcome.sent),
			String(welcome.opened),
			String(welcome.clicked),
			String(welcome.converted),
			String(welcome.unsubscribed),
			String(welcome.bounced),
		]);
		const signedOut = await send(`${receiver.url}/dashboard/campaigns.csv?table=steps`);
		expect([signedOut.status, signedOut.headers.get('location')]).toEqual([303, '/dashboard/sign-in']);
		await context.close();
	});

	it('is usable at phone width and by keyboard: labelled controls, no sideways scrolling, tab reaches the filters and downloads', async () => {
		const { context, page } = await openPage({ viewport: { width: 390, height: 844 } });
		await signIn(page, keyA);
		expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
		const unlabelled = await page.$$eval('input:not([type=hidden]), select, button, canvas', (elements) =>
			elements.filter((element) => !((element as HTMLInputElement).labels?.length || element.getAttribute('aria-label') || (element.textContent ?? '').trim())).map((element) => element.outerHTML),
		);
		expect(unlabelled).toEqual([]);
		await shot(page, '22-campaigns-phone');

		const reached = new Set<string>();
		for (let press = 0; press < 60; press++) {
			await page.keyboard.press('Tab');
			reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim().slice(0, 12) || document.activeElement?.tagName || ''));
		}
		expect([...reached]).toEqual(expect.arrayContaining(['Campaign Per', 'range', 'channel', 'campaign', 'page', 'Apply', 'Download CSV']));
		await context.close();
	});

	it('shows site B’s key site B only, on the page and in every download, whatever the URL names', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyB);
		await page.goto(`${receiver.url}/dashboard/campaigns?site=${siteA.site.key}`);
		await expect(page.textContent('header .site')).resolves.toBe(siteB.site.name);
		const bounds = await pageBounds(page);
		const messages = await sqlMessages(prisma, siteBId, bounds.from, bounds.to);
		expect(await tableRows(page, 'sequences')).toEqual(expectedEmailTables(messages).sequences);
		const data = await sqlConversions(prisma, siteBId, bounds.from, bounds.to);
		expect(await tableRows(page, 'channels')).toEqual(expectedBreakdown(data, 'channel'));
		expect(await tableRows(page, 'funnel')).toEqual(expectedFunnel(data, ['b-goal']));
		expect(await tableRows(page, 'campaigns')).toEqual([['b-only-campaign', '2', '1', '50.0%', '1', '99']]);
		// (Paid Search is one of the filter form's channels, so only the downloads are searched for it.)
		const onlyA = ['Onboarding', 'Win-back', 'spring-sale', 'weekly-digest', 'EUR', 'USD', siteA.site.name];
		const html = await page.content();
		for (const text of onlyA) expect([text, html.includes(text)]).toEqual([text, false]);

		const cookie = await cookieOf(context);
		for (const table of ['email-over-time', 'sequences', 'steps', 'channels', 'campaigns', 'funnel']) {
			const { status, text } = await send(`${receiver.url}/dashboard/campaigns.csv?table=${table}&site=${siteA.site.key}`, cookie);
			expect(status).toBe(200);
			for (const name of [...onlyA, 'Paid Search']) expect([table, name, text.includes(name)]).toEqual([table, name, false]);
		}
		// Site A's campaign as a filter: nothing of site A answers it.
		await page.goto(`${receiver.url}/dashboard/campaigns?campaign=spring-sale`);
		expect(await tableRows(page, 'channels')).toEqual([]);
		await expect(page.textContent('section[aria-labelledby=h-channels] .empty')).resolves.toBe('No sessions in this period.');
		expect((await tableRows(page, 'funnel'))[0]).toEqual(['Visitors', '0', '—', '—']);
		await shot(page, '23-campaigns-site-b');
		await context.close();
	});

	it('shows a period given with times as the UTC dates it covers, and Apply keeps it working', async () => {
		const { context, page } = await openPage();
		await signIn(page, keyA);
		// 10:00 at UTC+14 is 20:00 UTC the day before: that is the day the period starts.
		await page.goto(`${receiver.url}/dashboard/campaigns?range=custom&from=2026-12-07T10:00:00%2B14:00&to=2026-12-07`);
		await expect(page.getAttribute('#period time[data-bound=from]', 'datetime')).resolves.toBe('2026-12-06T20:00:00.000Z');
		await expect(page.inputValue('#from')).resolves.toBe('2026-12-06');
		await expect(page.inputValue('#to')).resolves.toBe('2026-12-07');
		await expect(page.textContent('#custom-times')).resolves.toContain('given with times');
		// A To time is the end of the period, not included: the day shown is the last it covers.
		await page.goto(`${receiver.url}/dashboard/campaigns?range=custom&from=2026-12-01&to=2026-12-08T00:00:00Z`);
		await expect(page.inputValue('#to')).resolves.toBe('2026-12-07');
		await page.goto(`${receiver.url}/dashboard/campaigns?range=custom&from=2026-12-07T10:00:00%2B14:00&to=2026-12-07`);
		await Promise.all([page.waitForURL(/from=2026-12-06&to=2026-12-07/), page.click('form.filters button[type=submit]')]);
		expect(await page.$('[role=alert]')).toBeNull();
		await expect(page.getAttribute('#period time[data-bound=from]', 'datetime')).resolves.toBe('2026-12-06T00:00:00.000Z');
		await expect(page.inputValue('#from')).resolves.toBe('2026-12-06');
		expect(await page.$('#custom-times')).toBeNull();
		await context.close();
	});

	it('had no console errors but the 400 the tests asked for', () => {
		expect(consoleErrors).toEqual([expect.stringMatching(/\/dashboard\/campaigns\?channel=Carrier\+pigeon: Failed to load resource: the server responded with a status of 400 \(Bad Request\)$/)]);
	});
});
