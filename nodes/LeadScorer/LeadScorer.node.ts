import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, inputError, nodeOption, type ItemGlue } from '../shared/items';
import { numberParameter, textParameter } from '../shared/parameters';
import { ErasedPerson, findLeads, logErasedItems, piiCredentialOf, piiKeyProblem, piiKeyringOf } from '../shared/leads';
import { SiteResolver, type ResolvedSite } from '../shared/subjects';
import { disjointParts, inTurns, transactionsAtOnce } from '../shared/transactions';
import { payloadOf } from './payload';
import { compileScoringRules, type CompiledRules } from './scoring';
import { cipherOf, findVisitorLeads, prepareLead, rescoreLeads, upsertLeads, type PreparedLead, type ScoringContext, type ScoringOutcome } from './store';
import type { PrismaClient } from '../../lib/db/generated/client';
import type { RawDatabase, RawSql } from '../../lib/db/rawSql';

/**
 * Items written per transaction. The reads and writes of a batch are a fixed number of statements,
 * so larger batches are faster; this bounds how long one transaction holds its row locks.
 */
const BATCH_SIZE = 500;

/** Items below which a batch is not split for concurrency: a transaction's round trips would cost more than they save. */
const MIN_ITEMS_PER_TRANSACTION = 100;

interface BatchItem {
	index: number;
	lead?: PreparedLead;
	/** The Lead parameter of Rescore. */
	reference?: string;
	/** The Visitor parameter of Rescore Visitor's Lead. */
	visitor?: string;
	leadId?: string;
}

interface Batch {
	operation: 'upsert' | 'rescore';
	context: ScoringContext;
	items: BatchItem[];
}

/** What an item's writes lock: its lead, or its address and browser. */
const partKeys = (item: BatchItem): string[] => {
	if (item.leadId !== undefined) return [`lead:${item.leadId}`];
	const { email, payload } = item.lead as PreparedLead;
	return payload.anonymousId ? [`email:${email}`, `browser:${payload.anonymousId}`] : [`email:${email}`];
};

/** One outcome per item; null for a lead item whose address was erased. */
async function runBatch(tx: RawSql, batch: Batch, items: readonly BatchItem[]): Promise<Array<ScoringOutcome | null>> {
	if (batch.operation === 'upsert') return await upsertLeads(tx, batch.context, items.map((item) => item.lead as PreparedLead));
	const outcomes = await rescoreLeads(tx, batch.context, items.map((item) => item.leadId as string));
	// Several items of one lead: only the first reports what this run recorded.
	const reported = new Set<string>();
	return items.map((item) => {
		const outcome = outcomes.get(item.leadId as string) as ScoringOutcome;
		if (reported.has(outcome.lead.id)) return { ...outcome, scoreRows: 0, stageChange: null };
		reported.add(outcome.lead.id);
		return outcome;
	});
}

/** The `limit` leads of a site scored longest ago (never scored first), rescored in batches. */
async function rescoreStalest(prisma: PrismaClient, sql: RawDatabase, context: ScoringContext, limit: number): Promise<ScoringOutcome[]> {
	const stalest = await prisma.lead.findMany({
		where: { siteId: context.siteId },
		orderBy: [{ scoredAt: { sort: 'asc', nulls: 'first' } }, { id: 'asc' }],
		take: limit,
		select: { id: true },
	});
	const outcomes: ScoringOutcome[] = [];
	for (let from = 0; from < stalest.length; from += BATCH_SIZE) {
		const ids = stalest.slice(from, from + BATCH_SIZE).map((lead) => lead.id);
		const scored = await sql.$transaction((tx) => rescoreLeads(tx, context, ids));
		for (const id of ids) {
			const outcome = scored.get(id);
			if (outcome) outcomes.push(outcome);
		}
	}
	return outcomes;
}

/** What the editor cannot show: the site config's scoring rules, stages and sequences, as one item. */
function siteSettingsOf(site: ResolvedSite): IDataObject {
	const { crm } = site.config;
	return {
		site: site.key,
		domain: site.domain,
		leadScoringRules: crm.leadScoringRules as unknown as IDataObject[],
		maxScore: crm.maxScore ?? null,
		groupCaps: crm.groupCaps,
		lifecycleStages: crm.lifecycleStages as unknown as IDataObject[],
		conversionRules: crm.conversionRules as unknown as IDataObject[],
		emailSequences: crm.emailSequences.map((sequence) => ({ ...sequence, steps: sequence.steps.map(({ delayMinutes, subject }) => ({ delayMinutes, subject })) })) as unknown as IDataObject[],
		maxEmailsPerDay: crm.maxEmailsPerDay,
		sessionTimeoutSeconds: site.config.tracking.sessionTimeout,
	};
}

function outputOf(json: IDataObject, outcome: ScoringOutcome): IDataObject {
	return {
		...json,
		leadId: outcome.lead.id,
		lead: outcome.lead as unknown as IDataObject,
		scoring: {
			total: outcome.lead.score,
			engagement: outcome.lead.engagementScore,
			fit: outcome.lead.fitScore,
			rules: outcome.score.rules as unknown as IDataObject[],
			rowsWritten: outcome.scoreRows,
		},
		stageChange: outcome.stageChange as IDataObject | null,
		...(outcome.visitorOfOtherLead ? { visitorOfOtherLead: outcome.visitorOfOtherLead } : {}),
	};
}

const properties: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		options: [
			{
				name: 'Create or Update',
				value: 'upsert',
				description: 'Create a new record, or update the current one if it already exists (upsert)',
				action: 'Upsert a lead',
			},
			{
				name: 'Get Site Settings',
				value: 'getSettings',
				description: 'Return the site config’s scoring rules, lifecycle stages, conversion rules and email sequences',
				action: 'Get the scoring settings of a site',
			},
			{
				name: 'Rescore',
				value: 'rescore',
				description: 'Recompute a lead’s score now, e.g. on a schedule so decay lowers it',
				action: 'Rescore a lead',
			},
			{
				name: 'Rescore Stalest Leads',
				value: 'rescoreStale',
				description: 'Recompute the scores of the site’s leads scored longest ago, for a Schedule Trigger, so decay lowers scores of leads gone quiet',
				action: 'Rescore the stalest leads of a site',
			},
			{
				name: 'Rescore Visitor’s Lead',
				value: 'rescoreVisitor',
				description: 'Recompute the score of the lead a visitor belongs to, e.g. after the Visitor Processor stored its sessions; items of a visitor that is no lead pass through',
				action: 'Rescore the lead of a visitor',
			},
		],
		default: 'upsert',
	},
	siteKeyProperty,
	{
		displayName:
			'Scoring rules, group caps, the maximum score and lifecycle stages come from the site config (crm.leadScoringRules, crm.lifecycleStages). Get Site Settings lists them; every scored lead has scoring.rules with the points of each rule.',
		name: 'siteConfigNotice',
		type: 'notice',
		default: '',
	},
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '={{ $json.leadId || $json.email }}',
		description: 'ID or email address of the lead to rescore',
		displayOptions: { show: { operation: ['rescore'] } },
	},
	{
		displayName: 'Visitor',
		name: 'visitor',
		type: 'string',
		required: true,
		default: '={{ $json.session ? $json.session.visitorId : $json.anonymousId }}',
		description:
			'The visitor whose lead to rescore: its ID (the CRM Visitor Processor’s session.visitorId) or the tracker’s anonymous ID. An item of a visitor that is no lead passes through unchanged.',
		displayOptions: { show: { operation: ['rescoreVisitor'] } },
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		typeOptions: { minValue: 1, numberPrecision: 0 },
		default: 50,
		description: 'Max number of results to return',
		displayOptions: { show: { operation: ['rescoreStale'] } },
	},
		];

export class LeadScorer implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Lead Scorer',
		name: 'leadScorer',
		icon: 'file:leadScorer.svg',
		group: ['transform'],
		version: 1,
		subtitle:
			'={{ $parameter["operation"] === "upsert" ? "Create or Update" : $parameter["operation"] === "rescore" ? "Rescore" : $parameter["operation"] === "rescoreVisitor" ? "Rescore Visitor’s Lead" : $parameter["operation"] === "rescoreStale" ? "Rescore Stalest Leads" : "Get Site Settings" }}',
		description: 'Create or update leads, merge their anonymous history, score them and move their lifecycle stage',
		defaults: { name: 'CRM Lead Scorer' },
		usableAsTool: true,
		inputs: ['main'],
		// eslint-disable-next-line n8n-nodes-base/node-class-description-outputs-wrong -- two outputs, like n8n's If node
		outputs: ['main', 'main'],
		outputNames: ['All Leads', 'Stage Changed'],
		// Tracking CRM API: only its PII keys, for sites with privacy.encryptPii (else n8n's environment's).
		credentials: [{ ...crmDatabaseCredential }, { name: 'trackingCrmApi', required: false }],
		properties,
	};

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const { prisma, sql, credentials } = await crmDatabase(this);
		const glue: ItemGlue = { properties, database: credentials };
		const sites = new SiteResolver(sql);
		const piiKeys = await piiCredentialOf(this);
		const compiled = new Map<string, CompiledRules>();
		const rulesOf = (site: ResolvedSite) => {
			let rules = compiled.get(site.id);
			if (!rules) {
				rules = compileScoringRules(site.config.crm, { hashRouting: site.config.tracking.hashRouting });
				compiled.set(site.id, rules);
			}
			return rules;
		};
		const outcomes: Array<ScoringOutcome | ScoringOutcome[] | null | undefined> = new Array(items.length);
		const failures = new Map<number, INodeExecutionData>();
		const fail = (i: number, error: unknown) => failures.set(i, failedItem(this, glue, piiKeyProblem(error), i));
		const settings = new Map<number, IDataObject>();
		/** Items of Rescore Visitor's Lead whose visitor is no lead: output as they came. */
		const passing = new Set<number>();

		// Every item is checked before anything is written: a bad item stops the node with no write.
		const batches = new Map<string, Batch>();
		const stale: Array<{ index: number; context: ScoringContext; limit: number }> = [];
		const now = Date.now();
		const contextOf = (site: ResolvedSite): ScoringContext => ({ siteId: site.id, config: site.config, rules: rulesOf(site), now, keyring: piiKeyringOf(piiKeys, site.config.privacy.encryptPii) });
		// Not an expression (noDataExpression): the same for every item, so read once.
		const requested = nodeOption<'upsert' | 'rescore' | 'rescoreVisitor' | 'rescoreStale' | 'getSettings'>(this, properties, 'operation');
		for (let i = 0; i < items.length; i++) {
			const json = items[i].json;
			try {
				const site = await sites.siteOf(siteKeyOf(this, i));
				if (requested === 'getSettings') {
					settings.set(i, siteSettingsOf(site));
					continue;
				}
				if (requested === 'rescoreStale') {
					stale.push({ index: i, context: contextOf(site), limit: numberParameter(this, properties, 'limit', i) });
					continue;
				}
				const operation = requested === 'rescore' || requested === 'rescoreVisitor' ? 'rescore' : 'upsert';
				const key = `${site.id}:${operation}`;
				let batch = batches.get(key);
				if (!batch) batches.set(key, (batch = { operation, context: contextOf(site), items: [] }));
				if (requested === 'rescore') {
					batch.items.push({ index: i, reference: textParameter(this, 'lead', i) });
				} else if (requested === 'rescoreVisitor') {
					const visitor = textParameter(this, 'visitor', i).trim();
					if (!visitor) throw inputError('visitor', "is empty: give the visitor's ID or the tracker's anonymous ID, such as {{ $json.anonymousId }}");
					batch.items.push({ index: i, visitor });
				} else {
					const receivedAt = typeof json.receivedAt === 'string' && !Number.isNaN(Date.parse(json.receivedAt)) ? new Date(json.receivedAt) : new Date(now);
					const payload = payloadOf(json);
					// A lead names its own site when it came through the receiver: one that disagrees with the Site Key is another site's.
					if (payload.site && payload.site !== site.key) throw inputError('lead.site', `is "${payload.site}", but the Site Key is "${site.key}": a lead is stored for the site it names; send it to that site's workflow`);
					batch.items.push({ index: i, lead: prepareLead(payload, receivedAt) });
				}
			} catch (error) {
				fail(i, error);
			}
		}

		for (const batch of batches.values()) {
			if (batch.operation === 'rescore') {
				const named = batch.items.filter((item) => item.reference !== undefined).map((item) => item.reference as string);
				let leads: Awaited<ReturnType<typeof findLeads>>;
				let visitors: Awaited<ReturnType<typeof findVisitorLeads>>;
				try {
					leads = await findLeads(prisma, batch.context.siteId, named, cipherOf(batch.context));
					visitors = await findVisitorLeads(sql, batch.context.siteId, batch.items.filter((item) => item.visitor !== undefined).map((item) => item.visitor as string));
				} catch (error) {
					// The site's keys (its hash key not the receiver's, say) or its database: every item of the site fails with it.
					for (const item of batch.items) fail(item.index, error);
					continue;
				}
				batch.items = batch.items.filter((item) => {
					const leadId = item.reference !== undefined ? leads.get(item.reference) : visitors.get(item.visitor as string);
					if (typeof leadId === 'string') item.leadId = leadId;
					else if (leadId === null) passing.add(item.index);
					// Named by an item already on its way when the person was erased: left out, as below.
					else if (leadId instanceof ErasedPerson) outcomes[item.index] = null;
					else fail(item.index, leadId);
					return typeof leadId === 'string';
				});
			}
			// Parts share no lead and no browser: they are written by transactions at once, and the
			// items of one lead or browser still act as if run one after the other.
			const parts = disjointParts(batch.items, partKeys, transactionsAtOnce(sql), MIN_ITEMS_PER_TRANSACTION);
			await inTurns(parts, transactionsAtOnce(sql), async (part) => {
				for (let from = 0; from < part.length; from += BATCH_SIZE) {
					const chunk = part.slice(from, from + BATCH_SIZE);
					try {
						const results = await sql.$transaction((tx) => runBatch(tx, batch, chunk));
						chunk.forEach((item, n) => (outcomes[item.index] = results[n]));
					} catch {
						// Item by item, so the error names the item that caused it and the others still commit.
						for (const item of chunk) {
							try {
								const [result] = await sql.$transaction((tx) => runBatch(tx, batch, [item]));
								outcomes[item.index] = result;
							} catch (error) {
								fail(item.index, error);
							}
						}
					}
				}
			});
		}

		for (const { index, context, limit } of stale) {
			try {
				outcomes[index] = await rescoreStalest(prisma, sql, context, limit);
			} catch (error) {
				fail(index, error);
			}
		}

		const all: INodeExecutionData[] = [];
		const changed: INodeExecutionData[] = [];
		let erased = 0;
		for (let i = 0; i < items.length; i++) {
			const failure = failures.get(i);
			const setting = settings.get(i);
			if (failure || setting) {
				all.push(failure ?? { json: setting as IDataObject, pairedItem: { item: i } });
				continue;
			}
			if (passing.has(i)) {
				all.push({ json: items[i].json, pairedItem: { item: i } });
				continue;
			}
			const outcome = outcomes[i];
			// The person at this address was erased: nothing was stored, and nothing goes on.
			if (outcome === null) {
				erased += 1;
				continue;
			}
			for (const one of Array.isArray(outcome) ? outcome : [outcome as ScoringOutcome]) {
				const output = { json: outputOf(items[i].json, one), pairedItem: { item: i } };
				all.push(output);
				if (one.stageChange) changed.push(output);
			}
		}
		logErasedItems(this, erased);
		return [all, changed];
	}
}
