/**
 * Sessionization throughput: 1,000,000 synthetic events of ~50,000 visitors, mixed as a
 * receiver would forward them (interleaved visitors, a few late and duplicated events).
 * Build with tsc, then run `node dist-bench/bench/sessionize.bench.js [events] [visitors]`.
 * Generation is deterministic (seeded PRNG), so runs compare like with like.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { EventContext, TrackEventType } from '../lib/contracts/tracking';
import { sessionize, type SessionEvent, type SessionizeOptions } from '../nodes/shared/sessionize';

const EVENTS = Number(process.argv[2] ?? 1_000_000);
const VISITORS = Number(process.argv[3] ?? 50_000);
const RUNS = 5;

const OPTIONS: SessionizeOptions = { sessionTimeout: 1800, maxSessionDuration: 43_200, siteDomain: 'shop.example.com' };

/** mulberry32: tiny, fast and good enough to spread synthetic traffic. */
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

const random = prng(20261123);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];

const PAGES = ['/', '/pricing', '/blog/how-to-track', '/blog/n8n-crm', '/features', '/contact', '/docs/install', '/docs/api', '/about', '/careers'];
const REFERRERS = ['', '', '', 'https://www.google.com/', 'https://www.bing.com/', 'https://l.facebook.com/', 'https://news.ycombinator.com/', 'https://t.co/abc', 'https://blog.partner.io/post'];
const CAMPAIGNS: EventContext[] = [
	{ utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'brand' },
	{ utm_source: 'newsletter', utm_medium: 'email', utm_campaign: 'november' },
	{ utm_source: 'facebook', utm_medium: 'paid_social', utm_campaign: 'retarget' },
	{ clickIds: { gclid: 'Cj0KCQ-bench' } },
];
const INTERACTIONS: TrackEventType[] = ['scroll', 'scroll', 'engagement', 'click', 'click', 'outbound', 'download', 'form_submit', 'custom'];

function eventId(ts: number, serial: number): string {
	const hex = ts.toString(16).padStart(12, '0');
	const tail = serial.toString(16).padStart(15, '0');
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${tail.slice(0, 3)}-8${tail.slice(3, 6)}-${tail.slice(6, 15).padEnd(12, '0')}`;
}

function generate(): SessionEvent[] {
	const perVisitor = EVENTS / VISITORS;
	const events: SessionEvent[] = [];
	const start = Date.UTC(2026, 10, 1);
	let serial = 0;
	for (let v = 0; v < VISITORS && events.length < EVENTS; v++) {
		const anonymousId = `v${v.toString(36).padStart(8, '0')}`;
		let ts = start + Math.floor(random() * 20 * 86_400_000);
		const budget = Math.max(1, Math.round(perVisitor * (0.5 + random())));
		let inVisit = 0;
		for (let n = 0; n < budget && events.length < EVENTS; n++) {
			const newVisit = n === 0 || random() < 0.08;
			if (newVisit && n > 0) ts += 3_600_000 + Math.floor(random() * 2 * 86_400_000);
			else ts += 2_000 + Math.floor(random() * 90_000);
			inVisit = newVisit ? 0 : inVisit + 1;
			const type: TrackEventType = inVisit === 0 || random() < 0.35 ? 'pageview' : pick(INTERACTIONS);
			const event: SessionEvent = {
				id: eventId(ts, serial++),
				type,
				ts,
				anonymousId,
				url: `https://shop.example.com${pick(PAGES)}`,
			};
			if (inVisit === 0) {
				event.referrer = pick(REFERRERS);
				if (random() < 0.25) event.context = pick(CAMPAIGNS);
			}
			if (type === 'scroll') event.props = { depth: Math.floor(random() * 100) };
			if (type === 'engagement') event.props = { engagedMs: Math.floor(random() * 60_000) };
			if (random() < 0.2) event.relevance = 1 + Math.floor(random() * 10);
			events.push(event);
		}
	}
	// The receiver forwards events in arrival order: visitors interleaved by time.
	events.sort((a, b) => a.ts - b.ts);
	// ~1% arrive late (swapped with a neighbour) and ~0.5% are delivered twice.
	for (let i = 1; i < events.length; i++) {
		if (random() < 0.01) [events[i - 1], events[i]] = [events[i], events[i - 1]];
	}
	const duplicated = Math.floor(events.length * 0.005);
	for (let d = 0; d < duplicated; d++) events[Math.floor(random() * events.length)] = { ...events[Math.floor(random() * events.length)] };
	// A round trip through JSON gives the events the flat strings and object shapes of a parsed webhook body.
	return JSON.parse(JSON.stringify(events)) as SessionEvent[];
}

function main(): void {
	const events = generate();
	// Warm the JIT so the timed runs measure the optimised code, not the interpreter.
	sessionize(events.slice(0, 100_000), OPTIONS);
	collectGarbage();
	const heapBefore = process.memoryUsage().heapUsed;

	const wallRates: number[] = [];
	const cpuRates: number[] = [];
	const timedRun = () => {
		const cpu = process.cpuUsage();
		const started = process.hrtime.bigint();
		const result = sessionize(events, OPTIONS);
		const seconds = Number(process.hrtime.bigint() - started) / 1e9;
		const { user, system } = process.cpuUsage(cpu);
		wallRates.push(events.length / seconds);
		cpuRates.push(events.length / ((user + system) / 1e6));
		return result;
	};
	let result = timedRun();
	for (let run = 1; run < RUNS; run++) result = timedRun();
	collectGarbage();
	const resultMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;

	const median = (rates: number[]) => [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)];
	const format = (value: number) => Math.round(value).toLocaleString('en-US');
	console.log(`sessionize: ${format(events.length)} events, ${format(new Set(events.map((e) => e.anonymousId)).size)} visitors, ${RUNS} runs`);
	console.log(`  events/s wall  median ${format(median(wallRates))}  best ${format(Math.max(...wallRates))}`);
	// CPU time leaves out time spent waiting for a core, which dominates on a busy machine.
	console.log(`  events/s CPU   median ${format(median(cpuRates))}  best ${format(Math.max(...cpuRates))}  (GC threads included)`);
	console.log(`  sessions ${format(result.sessions.length)}  duplicates skipped ${format(result.duplicates)}`);
	console.log(`  heap used ${format(process.memoryUsage().heapUsed / 1024 / 1024)} MB (input events + result); result alone ${resultMb.toFixed(1)} MB`);
}

/**
 * A full GC before reading the heap, so the figure is live data rather than garbage that
 * happens to be uncollected. Enabled at run time so the bench needs no node flags.
 */
function collectGarbage(): void {
	setFlagsFromString('--expose-gc');
	(runInNewContext('gc') as () => void)();
}

main();
