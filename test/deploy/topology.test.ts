/**
 * docker-compose.yml's production topology, started from plain processes (no Docker engine runs
 * here; see test/helpers/queueTopology.ts): Postgres, Redis, the real n8n 2.41 in queue mode — a
 * main process, the compose file's two workers and its webhook processor — and two receivers,
 * each with the environment its compose service gives it.
 *
 * The demo's traffic (visitors browsing the demo site of config/site.example.json, a third of
 * them sending its contact form) goes through both receivers, each visitor's batches alternating
 * between them as a load balancer sends them, and through the six bundled workflows on the
 * workers. Then:
 * 1. the CRM holds what the traffic means (sessions, conversions, leads, activities, emails), the
 *    executions were spread over both workers (counted from each worker's log);
 * 2. the same traffic again, with one worker SIGKILLed while it runs executions: every event is
 *    processed, nothing is done twice (rows, ledger, emails received by the SMTP server), each
 *    visitor's events reached n8n in order, and the CRM holds the same as after run 1.
 *
 * The receivers' deliveries to n8n pass through a recording pass-through in this process, so the
 * test sees what each delivery carried, when, and how it was answered.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';

import { PrismaPg } from '@prisma/adapter-pg';
import { v7 as uuidv7 } from 'uuid';

import type { LeadPayloadInput, TrackBatch, TrackEvent } from '../../lib/contracts';
import { PrismaClient } from '../../lib/db/generated/client';
import { linkedEvents } from '../helpers/db';
import { BROWSER_UA } from '../helpers/events';
import { startQueueTopology, type QueueLog, type QueueTopology } from '../helpers/queueTopology';
import { SmtpSink } from '../helpers/smtpSink';

const ROOT = path.join(__dirname, '..', '..');
const SITE = JSON.parse(readFileSync(path.join(ROOT, 'config', 'site.example.json'), 'utf8')) as { site: { key: string; domain: string }; integrations: Record<string, unknown> };
const ORIGIN = `https://${SITE.site.domain}`;
const VISITORS = 24;
const WELCOME = (firstName: string) => `Welcome to NAT-PETS, ${firstName}`;

// ---------------------------------------------------------------------------------------------
// The demo's traffic, and what it must make of the CRM
// ---------------------------------------------------------------------------------------------

interface Visit {
	index: number;
	anonymousId: string;
	/** The tracker's batches, in the order the browser sends them. */
	batches: TrackEvent[][];
	lead?: LeadPayloadInput & { email: string; firstName: string };
	/** What the traffic definition says the CRM must hold for this visitor. */
	expected: { events: number; pageviews: number; entryPage: string; exitPage: string; channel: string; campaign: string | null; conversions: string[] };
}

/**
 * Every third visitor lands from the spring newsletter, looks at the pricing page and sends the
 * contact form (the demo's journey, with consent); the others come from a Google search and read
 * the pricing page. Each visit happened in the 20 s before it is made; its lead is posted when
 * the traffic is sent.
 */
function demoTraffic(run: string, count: number): Visit[] {
	const start = Date.now() - 20_000;
	return Array.from({ length: count }, (_, index) => {
		const anonymousId = `${run}-visitor-${index}`;
		const event = (type: TrackEvent['type'], pagePath: string, secondsIn: number, extra: Partial<TrackEvent> = {}): TrackEvent => ({
			id: uuidv7(),
			type,
			ts: start + index * 10 + secondsIn * 1000,
			anonymousId,
			sessionId: `${anonymousId}-session`,
			url: `${ORIGIN}${pagePath}`,
			title: `NAT-PETS ${pagePath}`,
			...extra,
		});
		if (index % 3 === 0) {
			const firstName = `Ana${index}`;
			return {
				index,
				anonymousId,
				batches: [
					[event('pageview', '/demo/?utm_source=newsletter&utm_medium=email&utm_campaign=spring', 0, { relevance: 3, context: { utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'spring', timezone: 'Europe/Madrid', language: 'es-ES' } })],
					[event('pageview', '/demo/pricing', 5, { relevance: 7 })],
					[event('pageview', '/demo/contact', 10, { relevance: 3 }), event('form_submit', '/demo/contact', 12, { name: 'contact', relevance: 10 })],
				],
				lead: { site: SITE.site.key, email: `ana.${run}.${index}@clinica-${run}-${index}.es`, eventId: randomUUID(), anonymousId, firstName, company: `Clínica ${index}`, consent: true, timezone: 'Europe/Madrid', formId: 'contact' },
				// The session stays under the engaged-pricing-visit rule's 60 whatever the batching:
				// 3 pages (12) + a form and the lead's identify (25) + relevance (5) + the time from
				// landing to the lead, under 2 minutes (< 19).
				expected: { events: 4, pageviews: 3, entryPage: '/demo/', exitPage: '/demo/contact', channel: 'Email', campaign: 'spring', conversions: ['contact-request'] },
			};
		}
		return {
			index,
			anonymousId,
			batches: [[event('pageview', '/demo/', 0, { relevance: 3, referrer: 'https://www.google.com/' })], [event('pageview', '/demo/pricing', 6, { relevance: 7 }), event('scroll', '/demo/pricing', 9, { relevance: 2, props: { depth: 75 } })]],
			// GA4's default channel group names a search engine's campaign "(organic)".
			expected: { events: 3, pageviews: 2, entryPage: '/demo/', exitPage: '/demo/pricing', channel: 'Organic Search', campaign: '(organic)', conversions: [] },
		};
	});
}

async function post(url: string, body: unknown): Promise<void> {
	const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': BROWSER_UA, origin: ORIGIN }, body: JSON.stringify(body) });
	if (response.status !== 202) throw new Error(`${url} answered ${response.status}: ${await response.text()}`);
}

/**
 * Sends the traffic in waves (every visitor's first batch, then every second …, then the
 * forms' leads), each visitor's batches alternating between the receivers; `between` runs
 * after each wave.
 */
async function sendTraffic(visits: Visit[], receivers: string[], between: (wave: number) => Promise<void> = async () => undefined): Promise<void> {
	const waves = Math.max(...visits.map((visit) => visit.batches.length));
	for (let wave = 0; wave <= waves; wave++) {
		await Promise.all(
			visits.map(async (visit) => {
				const receiver = receivers[(visit.index + wave) % receivers.length];
				if (wave < visit.batches.length) {
					const batch: TrackBatch = { site: SITE.site.key, consent: 'granted', sentAt: Date.now(), events: visit.batches[wave] };
					await post(`${receiver}/api/track`, batch);
				} else if (wave === waves && visit.lead) {
					await post(`${receiver}/api/lead`, visit.lead);
				}
			}),
		);
		await between(wave);
	}
}

// ---------------------------------------------------------------------------------------------
// The receivers' deliveries to n8n, as they went
// ---------------------------------------------------------------------------------------------

interface Tapped {
	path: string;
	events: Array<{ id: string; anonymousId: string }>;
	sentAt: number;
	/** When n8n answered, or when the receiver gave up on the delivery (its timeout). */
	endedAt?: number;
	status?: number;
	/** The receiver closed the request before n8n answered. */
	abandoned: boolean;
}

interface Tap {
	url: string;
	deliveries: Tapped[];
	close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

/** A pass-through to `target` that records each delivery; a request the receiver abandons is abandoned upstream too. */
async function startTap(target: string): Promise<Tap> {
	const deliveries: Tapped[] = [];
	const readBody = (req: IncomingMessage) =>
		new Promise<Buffer>((resolve, reject) => {
			const chunks: Buffer[] = [];
			req.on('data', (chunk: Buffer) => chunks.push(chunk));
			req.once('end', () => resolve(Buffer.concat(chunks)));
			req.once('error', reject);
		});
	const server: Server = createServer((req, res) => {
		void (async () => {
			const body = await readBody(req);
			let parsed: { events?: Array<{ id: string; anonymousId: string }> } = {};
			try {
				parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
			} catch {
				// Not a delivery (a preflight, a probe): passed on all the same.
			}
			const record: Tapped = {
				path: req.url ?? '',
				events: (parsed.events ?? []).map((event) => ({ id: event.id, anonymousId: event.anonymousId })),
				sentAt: Date.now(),
				abandoned: false,
			};
			deliveries.push(record);
			const upstream = new AbortController();
			res.once('close', () => {
				if (res.writableFinished) return;
				record.abandoned = true;
				record.endedAt ??= Date.now();
				upstream.abort();
			});
			const headers = Object.fromEntries(Object.entries(req.headers).filter(([name, value]) => !HOP_BY_HOP.has(name) && typeof value === 'string')) as Record<string, string>;
			try {
				const answer = await fetch(`${target}${req.url}`, { method: req.method, headers, body: req.method === 'GET' || req.method === 'HEAD' ? undefined : new Uint8Array(body), signal: upstream.signal });
				const answerBody = Buffer.from(await answer.arrayBuffer());
				record.status = answer.status;
				record.endedAt ??= Date.now();
				res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' });
				res.end(answerBody);
			} catch (error) {
				record.endedAt ??= Date.now();
				if (!res.headersSent && !record.abandoned) {
					res.writeHead(502, { 'content-type': 'text/plain' });
					res.end(`tap: ${(error as Error).message}`);
				}
			}
		})();
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		deliveries,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

// ---------------------------------------------------------------------------------------------
// What the CRM holds
// ---------------------------------------------------------------------------------------------

/** What the CRM holds of one visitor (and its lead), without ids and times. */
interface Holding {
	visitors: number;
	/** The visitor's tracked events (those the test sent to /api/track), and how many of them no session holds. */
	events: number;
	unprocessedEvents: number;
	sessions: Array<{ pageviews: number; entryPage: string | null; exitPage: string | null; channel: string | null; campaign: string | null; engagementLevel: string; countsItsEvents: boolean }>;
	conversions: Array<{ goal: string; value: string; currency: string | null; models: string[] }>;
	lead: { stage: string; score: number; emails: Array<{ subject: string; status: string }>; enrollments: string[]; stageChanges: string[] } | null;
	activities: string[];
	/** Activities with the same subject, type, description, time and data as another. */
	duplicateActivities: number;
}

async function holding(prisma: PrismaClient, siteId: string, visit: Visit): Promise<Holding> {
	const visitors = await prisma.visitor.findMany({ where: { siteId, anonymousId: visit.anonymousId } });
	const visitorIds = visitors.map((visitor) => visitor.id);
	const lead = visit.lead
		? await prisma.lead.findUnique({ where: { siteId_email: { siteId, email: visit.lead.email } }, include: { emailMessages: true, enrollments: { include: { sequence: true } }, stageChanges: true } })
		: null;
	const activities = await prisma.activity.findMany({ where: { siteId, OR: [{ visitorId: { in: visitorIds } }, ...(lead ? [{ leadId: lead.id }] : [])] } });
	const contents = activities.map((activity) => JSON.stringify([activity.leadId, activity.visitorId, activity.type, activity.description, activity.occurredAt.toISOString(), activity.data]));
	const tracked = { siteId, anonymousId: visit.anonymousId, type: { not: 'identify' } };
	const sessions = await prisma.visitorSession.findMany({ where: { siteId, visitorId: { in: visitorIds } } });
	const linked = await prisma.visitorEventLink.groupBy({ by: ['sessionId'], where: { siteId, sessionId: { in: sessions.map((session) => session.id) } }, _count: { _all: true } });
	const eventsOf = new Map(linked.map((group) => [group.sessionId, group._count._all]));
	return {
		visitors: visitors.length,
		events: await prisma.visitorEvent.count({ where: tracked }),
		unprocessedEvents: (await linkedEvents(prisma, { siteIds: [siteId], anonymousIds: [visit.anonymousId] })).filter((event) => event.type !== 'identify' && event.sessionId === null).length,
		sessions: sessions.map((session) => ({
			pageviews: session.pageviews,
			entryPage: session.entryPage,
			exitPage: session.exitPage,
			channel: session.channel,
			campaign: session.campaign,
			engagementLevel: session.engagementLevel,
			countsItsEvents: session.eventCount === eventsOf.get(session.id),
		})),
		conversions: (await prisma.conversion.findMany({ where: { siteId, visitorId: { in: visitorIds } }, include: { attributions: true }, orderBy: { goal: 'asc' } })).map((conversion) => ({
			goal: conversion.goal,
			value: conversion.value.toString(),
			currency: conversion.currency,
			models: conversion.attributions.map((row) => row.model).sort(),
		})),
		lead: lead && {
			stage: lead.lifecycleStage,
			// The ledger's decay moves a score by hundredths between runs minutes apart.
			score: Math.round(lead.score),
			emails: lead.emailMessages.map((message) => ({ subject: message.subject, status: message.status })).sort((a, b) => a.subject.localeCompare(b.subject)),
			enrollments: lead.enrollments.map((enrollment) => `${enrollment.sequence.name}:${enrollment.status}`).sort(),
			stageChanges: lead.stageChanges.map((change) => `${change.fromStage}→${change.toStage}`).sort(),
		},
		activities: activities.map((activity) => activity.type).sort(),
		duplicateActivities: contents.length - new Set(contents).size,
	};
}

async function until<T>(what: string, timeoutMs: number, read: () => Promise<T> | T, done: (value: T) => boolean, diagnose: () => string, everyMs = 250): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await read();
		if (done(value)) return value;
		if (Date.now() > deadline) throw new Error(`not within ${timeoutMs / 1000} s: ${what}; last: ${JSON.stringify(value).slice(0, 1000)}\n${diagnose()}`);
		await new Promise((resolve) => setTimeout(resolve, everyMs));
	}
}

/** The queue's executions since `before`: enqueued, and started and finished per worker. */
function queueSince(before: QueueLog, now: QueueLog): QueueLog {
	const known = new Set([...before.enqueued, ...before.workers.flatMap((worker) => worker.started)]);
	const fresh = (ids: string[]) => ids.filter((id) => !known.has(id));
	return { enqueued: fresh(now.enqueued), workers: now.workers.map((worker) => ({ worker: worker.worker, started: fresh(worker.started), finished: fresh(worker.finished) })) };
}

/** Enqueued executions that no worker started, or that more than one did. */
function notRunOnce(queue: QueueLog): string[] {
	return queue.enqueued.filter((id) => queue.workers.filter((worker) => worker.started.includes(id)).length !== 1);
}

/**
 * A visitor's events as n8n's Visitor Processor received them in the deliveries it answered
 * (each event's first arrival, the deliveries in the order they were sent), and how many of the
 * visitor's deliveries were sent while an earlier one was still open.
 */
function arrivalOrder(deliveries: Tapped[], anonymousId: string): { order: string[]; overlapping: number } {
	const mine = deliveries.filter((delivery) => delivery.path.endsWith('/crm-visitor-processor') && delivery.events.some((event) => event.anonymousId === anonymousId)).sort((a, b) => a.sentAt - b.sentAt);
	const order: string[] = [];
	for (const delivery of mine) {
		if (delivery.abandoned || !delivery.status || delivery.status >= 300) continue;
		for (const event of delivery.events) if (event.anonymousId === anonymousId && !order.includes(event.id)) order.push(event.id);
	}
	let overlapping = 0;
	for (let index = 1; index < mine.length; index++) if (mine[index].sentAt < (mine[index - 1].endedAt ?? Number.POSITIVE_INFINITY)) overlapping++;
	return { order, overlapping };
}

const UNFINISHED = ['new', 'running'];

describe('the compose topology from plain processes: two receivers, n8n in queue mode with two workers', () => {
	let topology: QueueTopology;
	let smtp: SmtpSink;
	let tap: Tap;
	let prisma: PrismaClient;
	let siteId: string;
	/** Tests begun and not passed: the logs are kept when one failed. */
	let unfinished = 0;
	const holdings1 = new Map<number, Holding>();
	let leadsSoFar = 0;

	beforeAll(async () => {
		smtp = await SmtpSink.start();
		topology = await startQueueTopology({
			smtpUrl: `smtp://127.0.0.1:${smtp.port}?starttls=off`,
			sites: async ({ webhookProcessorUrl }) => {
				tap = await startTap(webhookProcessorUrl);
				return [{ ...SITE, integrations: { ...SITE.integrations, n8nUrl: tap.url } }];
			},
		});
		prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: topology.crmDatabaseUrl }) });
		siteId = (await prisma.site.findUniqueOrThrow({ where: { key: SITE.site.key } })).id;
		const changes = [topology.main, topology.webhook, topology.workers[0], topology.receivers[0]].map((entry) => `  ${entry.name}: ${entry.overrides.join('; ')}`);
		console.log(
			`${topology.compose.file} started from plain processes: ${[topology.main, topology.webhook, ...topology.workers, ...topology.receivers].map((entry) => entry.name).join(', ')}; ` +
				`.env.example's empty secrets generated (${topology.generatedSecrets.join(', ')}). Each process has its service's environment with these changes (the other workers and receivers alike):\n${changes.join('\n')}`,
		);
	}, 20 * 60_000);

	afterAll(async () => {
		await prisma?.$disconnect();
		await topology?.stop({ keepLogs: unfinished > 0 });
		if (unfinished > 0 && topology) console.log(`logs kept in ${topology.logFolder}`);
		await tap?.close();
		await smtp?.stop();
	});

	/**
	 * Waits until every outbox row of the site is delivered, every lead so far has its welcome
	 * email at the SMTP server and n8n runs nothing (but what a killed worker had started).
	 */
	async function settle(killedWorker?: string): Promise<number> {
		const started = Date.now();
		const diagnose = () => topology.logTails(15);
		await until('every outbox row delivered', 180_000, () => prisma.outboxMessage.count({ where: { siteId, status: 'pending' } }), (pending) => pending === 0, diagnose);
		await until(`${leadsSoFar} welcome emails at the SMTP server`, 120_000, async () => (await smtp.messages()).length, (count) => count >= leadsSoFar, diagnose);
		const lost = new Set(topology.queueLog().workers.find((worker) => worker.worker === killedWorker)?.started ?? []);
		await until(
			'no execution still running in n8n',
			180_000,
			async () => (await topology.executions()).filter((execution) => UNFINISHED.includes(execution.status) && !lost.has(execution.id)).map((execution) => execution.id),
			(running) => running.length === 0,
			diagnose,
		);
		return Date.now() - started;
	}

	it('processes the demo traffic through both receivers and both workers into the CRM rows it means', async () => {
		unfinished++;
		const visits = demoTraffic(`r1${Date.now().toString(36)}`, VISITORS);
		leadsSoFar += visits.filter((visit) => visit.lead).length;
		const queueBefore = topology.queueLog();
		const executionsBefore = new Set((await topology.executions()).map((execution) => execution.id));
		const started = Date.now();
		await sendTraffic(visits, topology.receivers.map((receiver) => receiver.url));
		await settle();
		const seconds = (Date.now() - started) / 1000;

		for (const visit of visits) {
			const held = await holding(prisma, siteId, visit);
			holdings1.set(visit.index, held);
			const { expected } = visit;
			expect([visit.anonymousId, held.visitors, held.events, held.unprocessedEvents, held.duplicateActivities]).toEqual([visit.anonymousId, 1, expected.events, 0, 0]);
			expect([visit.anonymousId, held.sessions]).toEqual([
				visit.anonymousId,
				[expect.objectContaining({ pageviews: expected.pageviews, entryPage: expected.entryPage, exitPage: expected.exitPage, channel: expected.channel, campaign: expected.campaign, countsItsEvents: true })],
			]);
			expect(held.conversions.map((conversion) => conversion.goal)).toEqual(expected.conversions);
			for (const conversion of held.conversions) {
				expect(conversion).toEqual({ goal: 'contact-request', value: '50', currency: 'EUR', models: ['first_touch', 'last_non_direct', 'last_touch', 'linear', 'position_based', 'time_decay'] });
			}
			if (visit.lead) {
				// The example config's rules: a form submit 15, three page views 1 each, the pricing
				// page 5 = 23, stage "lead" (10 to 39): the welcome email at once, nurture after 3 days.
				expect(held.lead).toEqual({
					stage: 'lead',
					score: 23,
					emails: [{ subject: WELCOME(visit.lead.firstName), status: 'sent' }],
					enrollments: ['nurture:active', 'welcome:completed'],
					stageChanges: ['subscriber→lead'],
				});
				expect(held.activities).toContain('conversion');
				expect((await smtp.messages(visit.lead.email)).map((mail) => mail.parsed.subject)).toEqual([WELCOME(visit.lead.firstName)]);
			} else {
				expect(held.lead).toBeNull();
			}
			const arrival = arrivalOrder(tap.deliveries, visit.anonymousId);
			expect([visit.anonymousId, arrival.order, arrival.overlapping]).toEqual([visit.anonymousId, visit.batches.flat().map((event) => event.id), 0]);
		}

		// Every execution ran on one worker, each worker finished what it started, both took part, none failed.
		const queue = queueSince(queueBefore, topology.queueLog());
		const failures = (await topology.executions()).filter((execution) => !executionsBefore.has(execution.id) && execution.status !== 'success');
		console.log(
			`run 1: ${visits.length} visitors, ${visits.reduce((sum, visit) => sum + visit.expected.events, 0)} events and ${visits.filter((visit) => visit.lead).length} leads through 2 receivers, ` +
				`all in the CRM ${seconds.toFixed(1)} s after the first batch; ${tap.deliveries.length} deliveries from the receivers; ` +
				`${queue.enqueued.length} n8n executions queued, run per worker: ${queue.workers.map((worker) => `${worker.worker} ${worker.finished.length}`).join(', ')}`,
		);
		expect(queue.enqueued.length).toBeGreaterThan(0);
		expect(notRunOnce(queue)).toEqual([]);
		for (const worker of queue.workers) {
			expect([worker.worker, worker.started.filter((id) => !worker.finished.includes(id))]).toEqual([worker.worker, []]);
			expect([worker.worker, worker.finished.length > 0]).toEqual([worker.worker, true]);
		}
		expect(failures).toEqual([]);
		// The bundled workflows keep no successful execution, whose data holds people's addresses: n8n
		// marks each deleted as it ends, for its pruner (every minute, as the compose file sets it).
		const finished = new Set(queue.workers.flatMap((worker) => worker.finished));
		const kept = (await topology.executions()).filter((execution) => finished.has(execution.id) && execution.status === 'success' && execution.deletedAt === null);
		expect(kept).toEqual([]);
		unfinished--;
	}, 5 * 60_000);

	it('loses nothing, does nothing twice and keeps each visitor’s order when a worker is SIGKILLed mid-run', async () => {
		unfinished++;
		const visits = demoTraffic(`r2${Date.now().toString(36)}`, VISITORS);
		leadsSoFar += visits.filter((visit) => visit.lead).length;
		const queueBefore = topology.queueLog();
		const executionsBefore = new Set((await topology.executions()).map((execution) => execution.id));
		const tappedBefore = tap.deliveries.length;
		let killed: { worker: string; inFlight: string[]; workflows: string[]; waiting: string[]; eventsProcessed: number } | undefined;
		const started = Date.now();
		await sendTraffic(
			visits,
			topology.receivers.map((receiver) => receiver.url),
			async (wave) => {
				if (wave !== 1) return;
				// Mid-run: the first batches processed, the second being handed from workflow to
				// workflow. The worker running the oldest execution dies: one that has handed its
				// work on and waits for the chain's answer, so it is still running when the kill
				// lands (the newest, a hand-off's, can finish in the milliseconds before). The
				// executions it handed on may be running on the other worker.
				const moment = await until(
					'a hand-off running in n8n after the first batches were processed',
					60_000,
					async () => {
						const inFlight = queueSince(queueBefore, topology.queueLog()).workers.flatMap((worker) => worker.started.filter((id) => !worker.finished.includes(id)).map((id) => ({ id, worker: worker.worker })));
						return {
							eventsProcessed: (await linkedEvents(prisma, { siteIds: [siteId], anonymousIds: visits.map((visit) => visit.anonymousId) })).filter((event) => event.sessionId !== null).length,
							inFlight: inFlight.sort((a, b) => Number(a.id) - Number(b.id)),
						};
					},
					({ eventsProcessed, inFlight }) => eventsProcessed > 0 && inFlight.length >= 2,
					() => topology.logTails(10),
					20,
				);
				const victim = moment.inFlight[0].worker;
				await topology.killWorker(topology.workers.findIndex((worker) => worker.name === victim));
				const running = new Map((await topology.executions()).map((execution) => [execution.id, execution.workflowId]));
				const inFlight = moment.inFlight.filter((execution) => execution.worker === victim).map((execution) => execution.id);
				const waiting = moment.inFlight.filter((execution) => execution.worker !== victim).map((execution) => `${execution.id} of ${running.get(execution.id) ?? '?'}`);
				killed = { worker: victim, inFlight, workflows: inFlight.map((id) => running.get(id) ?? '?'), waiting, eventsProcessed: moment.eventsProcessed };
			},
		);
		if (!killed) throw new Error('no worker was killed');
		const settleMs = await settle(killed.worker);
		const seconds = (Date.now() - started) / 1000;

		const differences: string[] = [];
		for (const visit of visits) {
			const held = await holding(prisma, siteId, visit);
			// Nothing lost, nothing twice: the CRM holds what it held for the same traffic without the kill.
			if (!isDeepStrictEqual(held, holdings1.get(visit.index))) differences.push(`${visit.anonymousId}: ${JSON.stringify(held)}\n  run 1: ${JSON.stringify(holdings1.get(visit.index))}`);
			expect([visit.anonymousId, held.visitors, held.events, held.unprocessedEvents, held.sessions.length, held.duplicateActivities]).toEqual([visit.anonymousId, 1, visit.expected.events, 0, 1, 0]);
			expect(held.conversions.map((conversion) => conversion.goal)).toEqual(visit.expected.conversions);
			if (visit.lead) expect((await smtp.messages(visit.lead.email)).map((mail) => mail.parsed.subject)).toEqual([WELCOME(visit.lead.firstName)]);
			// Order: each visitor's events reached the Visitor Processor in the order they happened.
			const arrival = arrivalOrder(tap.deliveries.slice(tappedBefore), visit.anonymousId);
			expect([visit.anonymousId, arrival.order, arrival.overlapping]).toEqual([visit.anonymousId, visit.batches.flat().map((event) => event.id), 0]);
		}
		expect(differences).toEqual([]);
		expect(await prisma.outboxMessage.count({ where: { siteId, status: { not: 'delivered' } } })).toBe(0);

		const queue = queueSince(queueBefore, topology.queueLog());
		const victim = queue.workers.find((worker) => worker.worker === killed!.worker)!;
		const survivors = queue.workers.filter((worker) => worker !== victim);
		const failures = (await topology.executions()).filter((execution) => !executionsBefore.has(execution.id) && execution.status !== 'success');
		const tapped = tap.deliveries.slice(tappedBefore);
		console.log(
			`run 2: ${visits.length} visitors, ${visits.reduce((sum, visit) => sum + visit.expected.events, 0)} events, ${visits.filter((visit) => visit.lead).length} leads; ` +
				`${killed.worker} SIGKILLed with ${killed.inFlight.length} execution(s) in flight (${killed.inFlight.map((id, index) => `${id} of ${killed!.workflows[index]}`).join(', ')}) when ${killed.eventsProcessed} events had been processed, the other worker running ${killed.waiting.join(', ') || 'nothing'}; ` +
				`everything in the CRM ${seconds.toFixed(1)} s after the first batch (n8n idle ${(settleMs / 1000).toFixed(1)} s after the last); ` +
				`${queue.enqueued.length} executions queued, run per worker: ${queue.workers.map((worker) => `${worker.worker} started ${worker.started.length}, finished ${worker.finished.length}`).join('; ')}; ` +
				`failed executions in n8n: ${failures.length} (${failures.map((execution) => `${execution.id} ${execution.workflowId} ${execution.status}`).join(', ')}); ` +
				`${tapped.length} deliveries from the receivers, ${tapped.filter((delivery) => delivery.abandoned).length} abandoned at their timeout and sent again, ${tapped.filter((delivery) => (delivery.status ?? 0) >= 300).length} answered with an error`,
		);
		// The victim died with work in flight; no execution ran twice; the survivors did the rest.
		expect(killed.inFlight.length).toBeGreaterThan(0);
		expect(victim.started.filter((id) => !victim.finished.includes(id)).length).toBeGreaterThan(0);
		expect(queue.enqueued.filter((id) => queue.workers.filter((worker) => worker.started.includes(id)).length > 1)).toEqual([]);
		for (const worker of survivors) expect([worker.worker, worker.started.filter((id) => !worker.finished.includes(id))]).toEqual([worker.worker, []]);
		expect(survivors.reduce((sum, worker) => sum + worker.finished.length, 0)).toBeGreaterThan(0);
		unfinished--;
	}, 6 * 60_000);
});
