/**
 * The Lead Scorer's pure scorer, and a batch of lead items through the Lead Scorer node inside
 * n8n's execution engine with its Postgres reads and writes, on a fresh database; then Rescore
 * Visitor's Lead, the operation workflow 01 runs on every visitor of a delivery, on visitors that
 * are leads and on visitors that are none.
 *
 * "Item" in the pure figure: one stored event run through every event rule of the config (type /
 * name match, path glob, decay) while a lead's score is recomputed from its full history; that is
 * the unit of work that grows with traffic, since each lead is rescored from all its events.
 */
import path from 'node:path';

import { PrismaPg } from '@prisma/adapter-pg';
import { v7 as uuidv7 } from 'uuid';

import type { LeadScoringRule } from '../lib/contracts/siteConfig';
import { PrismaClient } from '../lib/db/generated/client';
import { deployMigrations } from '../lib/db/migrator';
import { compileScoringRules, scoreLead, type ScoringEvent } from '../nodes/LeadScorer/scoring';
import { disconnectAll } from '../nodes/shared/database';
import { HarnessNodeTypes, runWorkflow } from '../test/harness/n8n';
import { createTestDatabase, dropTestDatabase } from '../test/setup/testDatabase';
import { prng } from '../test/helpers/prng';

const DAY = 86_400_000;
const LEADS = Number(process.env.BENCH_LEADS ?? 1_000);
const EVENTS_PER_LEAD = 10;
const ROOT = path.join(__dirname, '..', '..');

const RULES: LeadScoringRule[] = [
	{ id: 'pageviews', event: 'pageview', score: 1, cap: 30, group: 'engagement', halfLifeDays: 30 },
	{ id: 'pricing', event: 'pageview', urlPattern: '/pricing', score: 5, group: 'engagement', halfLifeDays: 14 },
	{ id: 'docs', event: 'pageview', urlPattern: '/docs/**', score: 2, group: 'engagement' },
	{ id: 'careers', event: 'pageview', urlPattern: '/careers/*', score: -5 },
	{ id: 'forms', event: 'form_submit', score: 20 },
	{ id: 'downloads', event: 'download', score: 8, halfLifeDays: 60 },
	{ id: 'demo', event: 'demo_request', score: 40 },
	{ id: 'decision-maker', field: 'jobTitle', operator: 'matches', value: '\\b(ceo|cto|head)\\b', score: 10 },
	{ id: 'free-mail', field: 'freeMail', operator: 'isTrue', score: -5 },
];
const CRM = { leadScoringRules: RULES, groupCaps: { engagement: 60 }, maxScore: 100 };

const random = prng(11);
const PATHS = ['/', '/pricing', '/blog/a', '/docs/api/leads', '/careers/dev', '/contact'];
const TYPES = ['pageview', 'pageview', 'pageview', 'pageview', 'scroll', 'form_submit', 'download', 'custom'];
const now = Date.UTC(2026, 10, 24);

function syntheticEvent(i: number): ScoringEvent {
	const type = TYPES[Math.floor(random() * TYPES.length)];
	return {
		eventId: `e${i}`,
		type,
		name: type === 'custom' ? 'demo_request' : null,
		url: `https://bench.example${PATHS[Math.floor(random() * PATHS.length)]}?utm_source=x`,
		occurredAt: now - random() * 180 * DAY,
	};
}

function pureBench(): void {
	const rules = compileScoringRules(CRM);
	const histories = Array.from({ length: 500 }, (_, lead) => Array.from({ length: 400 }, (_, i) => syntheticEvent(lead * 400 + i)));
	const facts = { jobTitle: 'CTO', freeMail: false };
	let checksum = 0;
	const pass = () => {
		for (const history of histories) checksum += scoreLead(rules, history, facts, now).total;
	};
	// warm-up: JIT, and the parsed paths of the URLs, which rescoring finds cached as in production
	pass();
	const passes = 5;
	const started = process.hrtime.bigint();
	for (let p = 0; p < passes; p++) pass();
	const seconds = Number(process.hrtime.bigint() - started) / 1e9;
	const events = passes * histories.length * 400;
	const leads = passes * histories.length;
	console.log(`pure scorer, ${RULES.length} rules (7 event rules, 3 with a path glob, 3 with decay; 2 fit rules), histories of 400 events`);
	console.log(`  ${(events / seconds).toFixed(0)} items/s (item = one event through every event rule, recomputing a lead's full history)`);
	console.log(`  ${(leads / seconds).toFixed(0)} leads rescored/s from 400-event histories  (checksum ${checksum.toFixed(0)})`);
}

async function engineBench(): Promise<void> {
	const { name, url } = await createTestDatabase('tcrm_bench_ls');
	const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
	try {
		await deployMigrations(new PrismaPg({ connectionString: url }));
		const site = await prisma.site.create({
			data: {
				key: 'bench',
				name: 'Bench',
				domain: 'bench.example',
				config: { site: { key: 'bench', name: 'Bench', domain: 'bench.example' }, tracking: { allowedOrigins: ['https://bench.example'] }, crm: CRM },
			},
		});
		/** `count` lead items, each of a browser `<prefix><n>` with EVENTS_PER_LEAD stored events. */
		const leadsOf = async (prefix: string, count: number) => {
			const rows = [];
			for (let lead = 0; lead < count; lead++) {
				for (let e = 0; e < EVENTS_PER_LEAD; e++) {
					const event = syntheticEvent(lead * EVENTS_PER_LEAD + e);
					rows.push({ siteId: site.id, eventId: uuidv7(), anonymousId: `${prefix}${lead}`, type: event.type, name: event.name, url: event.url, occurredAt: new Date(event.occurredAt) });
				}
			}
			// In slices under Postgres's bind-parameter limit: above it Prisma splits the insert itself and
			// sends the parts on one connection at once, which pg deprecates with a warning.
			for (let start = 0; start < rows.length; start += 4000) await prisma.visitorEvent.createMany({ data: rows.slice(start, start + 4000) });
			return Array.from({ length: count }, (_, lead) => ({
				site: 'bench',
				siteId: site.id,
				kind: 'lead',
				lead: { site: 'bench', email: `${prefix}lead${lead}@${lead % 3 === 0 ? 'gmail.com' : `company${lead}.io`}`, anonymousId: `${prefix}${lead}`, jobTitle: lead % 2 ? 'CTO' : 'Engineer', consent: true },
				country: 'DE',
				receivedAt: new Date(now).toISOString(),
			}));
		};
		const warmUp = await leadsOf('warm', 100);
		const input = await leadsOf('v', LEADS);
		// The planner's statistics of the rows just loaded, as autovacuum keeps them in a running database.
		await prisma.$executeRawUnsafe('ANALYZE');
		const nodeTypes = await HarnessNodeTypes.load({ sourcePackages: [], installedPackages: [ROOT, path.dirname(require.resolve('n8n-nodes-base/package.json'))] });
		const parsed = new URL(url);
		const credentials = { postgres: { host: parsed.hostname, port: Number(parsed.port || 5432), database: name, user: parsed.username || 'postgres', password: '', ssl: 'disable' } };
		const workflowOf = (parameters: Record<string, string>) => ({
			nodes: [
				{ id: 's', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0] as [number, number], parameters: {} },
				{ id: 'l', name: 'Lead Scorer', type: 'n8n-nodes-tracking-crm.leadScorer', typeVersion: 1, position: [200, 0] as [number, number], parameters, credentials: { postgres: { id: '1', name: 'db' } } },
			],
			connections: { Start: { main: [[{ node: 'Lead Scorer', type: 'main' as const, index: 0 }]] } },
		});
		const workflow = workflowOf({});

		// n8n, Prisma and the node compiled, as in a running n8n; these leads are not counted below.
		await runWorkflow(workflow, { input: warmUp, credentials, nodeTypes, throwOnError: true });
		const warmRows = await prisma.leadScore.count();

		const started = process.hrtime.bigint();
		const result = await runWorkflow(workflow, { input, credentials, nodeTypes, throwOnError: true });
		const seconds = Number(process.hrtime.bigint() - started) / 1e9;
		const changed = result.outputOf('Lead Scorer', 1).length;
		const scoreRows = (await prisma.leadScore.count()) - warmRows;

		const replayStarted = process.hrtime.bigint();
		const replay = await runWorkflow(workflow, { input, credentials, nodeTypes, throwOnError: true });
		const replaySeconds = Number(process.hrtime.bigint() - replayStarted) / 1e9;

		console.log(`Lead Scorer node, ${LEADS} lead items (each merging a visitor of ${EVENTS_PER_LEAD} events) in one execution (n8n engine + Postgres), after a warm-up execution of 100 others`);
		console.log(`  first run: ${seconds.toFixed(2)} s → ${(LEADS / seconds).toFixed(0)} items/s; ${scoreRows} lead_scores rows, ${changed} stage changes`);
		const decayRows = await prisma.leadScore.count({ where: { cause: { startsWith: 'recomputed' } } });
		console.log(
			`  replay:    ${replaySeconds.toFixed(2)} s → ${(LEADS / replaySeconds).toFixed(0)} items/s; lead_scores afterwards ${(await prisma.leadScore.count()) - warmRows} (${decayRows} of them decay deltas: time passed between the runs), stage changes emitted ${replay.outputOf('Lead Scorer', 1).length}`,
		);

		// Create or Update in a running CRM: n8n's code hot after executions like these, and a site whose
		// leads the planner's statistics know (autovacuum analyzes a table as it grows). The first run
		// above is the first execution on an empty site: its plans are made for tables of a few pages.
		for (let warmUpExecution = 0; warmUpExecution < 2; warmUpExecution++) {
			await runWorkflow(workflow, { input: await leadsOf(`established${warmUpExecution}-`, LEADS), credentials, nodeTypes, throwOnError: true });
		}
		const established = [];
		for (let execution = 0; execution < 3; execution++) established.push(await leadsOf(`new${execution}-`, LEADS));
		await prisma.$executeRawUnsafe('ANALYZE');
		const sitesLeads = await prisma.lead.count();
		const establishedRates: string[] = [];
		for (const input of established) {
			const runStarted = process.hrtime.bigint();
			await runWorkflow(workflow, { input, credentials, nodeTypes, throwOnError: true });
			const runSeconds = Number(process.hrtime.bigint() - runStarted) / 1e9;
			establishedRates.push(`${runSeconds.toFixed(2)} s → ${(LEADS / runSeconds).toFixed(0)} items/s`);
		}
		console.log(`  on a site of ${sitesLeads} leads, after two executions like it (n8n warm, statistics current), ${LEADS} new leads per execution: ${establishedRates.join('; then ')}`);

		// Workflow 01's step after the Visitor Processor: one item per visitor of a delivery, most of them no lead.
		const rescoreVisitor = workflowOf({ operation: 'rescoreVisitor', siteKey: '={{ $json.site }}', visitor: '={{ $json.anonymousId }}' });
		const visitorItems = (prefix: string) => Array.from({ length: LEADS }, (_, n) => ({ site: 'bench', anonymousId: `${prefix}${n}` }));
		await prisma.visitor.createMany({ data: visitorItems('anonymous').map(({ anonymousId }) => ({ siteId: site.id, anonymousId, firstSeenAt: new Date(now), lastSeenAt: new Date(now) })) });
		await prisma.$executeRawUnsafe('ANALYZE');
		// Workflow 01 rescores a visitor on every delivery of its events, so in a running n8n this code is
		// hot: V8 optimizes it only after it has run many times. Two executions that are not counted,
		// then three that are, one after the other.
		for (let warmUpExecution = 0; warmUpExecution < 2; warmUpExecution++) {
			await runWorkflow(rescoreVisitor, { input: visitorItems('v'), credentials, nodeTypes, throwOnError: true });
		}
		for (const [label, prefix, executions] of [
			['visitors that are leads (each rescored from its merged history)', 'v', 3],
			['visitors that are no lead (passed through)', 'anonymous', 1],
		] as const) {
			const rates: string[] = [];
			let itemsOut = 0;
			for (let execution = 0; execution < executions; execution++) {
				const rescoreStarted = process.hrtime.bigint();
				const rescored = await runWorkflow(rescoreVisitor, { input: visitorItems(prefix), credentials, nodeTypes, throwOnError: true });
				const rescoreSeconds = Number(process.hrtime.bigint() - rescoreStarted) / 1e9;
				rates.push(`${rescoreSeconds.toFixed(2)} s → ${(LEADS / rescoreSeconds).toFixed(0)} items/s`);
				itemsOut = rescored.outputOf('Lead Scorer').length;
			}
			console.log(`  Rescore Visitor's Lead, ${LEADS} ${label}: ${rates.join('; then ')}; ${itemsOut} items out`);
		}

		// A lead scored for years: a rescore that finds decayed points adds a row per decaying rule,
		// so ledgers grow without bound. These rows, older than the leads' own, cancel out in pairs.
		// Written here behind the scorer's back, as by a version before the ledger summary: the leads'
		// summaries are dropped, the first rescore sums their rows once, the next reads the summary.
		const historyRows = 200;
		await prisma.$executeRawUnsafe(
			`INSERT INTO lead_scores (id, site_id, lead_id, rule, delta, score_after, cause, cause_key, occurred_at, created_at)
			SELECT gen_random_uuid(), site_id, id, 'pageviews', CASE WHEN n % 2 = 0 THEN 0.5 ELSE -0.5 END, score, 'recomputed (decay or changed rules): years ago', 'h' || n || ':years-ago',
				$2::timestamptz - n * interval '1 day', $2::timestamptz - n * interval '1 day'
			FROM leads, generate_series(1, $3) AS n WHERE site_id = $1::uuid AND email LIKE 'vlead%'`,
			site.id,
			new Date(now),
			historyRows,
		);
		await prisma.$executeRawUnsafe(`UPDATE leads SET ledger_summary = NULL WHERE site_id = $1::uuid AND email LIKE 'vlead%'`, site.id);
		await prisma.$executeRawUnsafe('ANALYZE lead_scores');
		for (const label of ['first rescore, summing their rows', 'the next, reading the summary']) {
			const ledgerStarted = process.hrtime.bigint();
			const longLedgers = await runWorkflow(rescoreVisitor, { input: visitorItems('v'), credentials, nodeTypes, throwOnError: true });
			const ledgerSeconds = Number(process.hrtime.bigint() - ledgerStarted) / 1e9;
			const written = longLedgers.outputOf('Lead Scorer').reduce((sum, item) => sum + Number((item.scoring as { rowsWritten: number }).rowsWritten), 0);
			console.log(
				`  Rescore Visitor's Lead, the same ${LEADS} leads with ${historyRows} more ledger rows each (years of decay rows), ${label}: ${ledgerSeconds.toFixed(2)} s → ${(LEADS / ledgerSeconds).toFixed(0)} items/s; ${written} rows written`,
			);
		}
	} finally {
		await disconnectAll();
		await prisma.$disconnect();
		await dropTestDatabase(name);
	}
}

pureBench();
engineBench().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
