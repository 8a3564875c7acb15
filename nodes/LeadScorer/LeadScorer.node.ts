import {
	NodeOperationError,
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeTypeDescription,
} from 'n8n-workflow';
import { prismaFor } from '../shared/database';
import { SiteResolver, SubjectNotFoundError, type ResolvedSite } from '../shared/subjects';
import { payloadOf } from './payload';
import { compileScoringRules, type CompiledRules } from './scoring';
import { findLead, LeadInputError, rescoreLead, upsertLead, type ScoringOutcome } from './store';

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

export class LeadScorer implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Lead Scorer',
		name: 'leadScorer',
		icon: 'file:leadScorer.svg',
		group: ['transform'],
		version: 1,
		subtitle: '={{ $parameter["operation"] }}',
		description: 'Create or update leads, merge their anonymous history, score them and move their lifecycle stage',
		defaults: { name: 'CRM Lead Scorer' },
		usableAsTool: true,
		inputs: ['main'],
		// eslint-disable-next-line n8n-nodes-base/node-class-description-outputs-wrong -- two outputs, like n8n's If node
		outputs: ['main', 'main'],
		outputNames: ['All Leads', 'Stage Changed'],
		credentials: [
			{
				// eslint-disable-next-line n8n-nodes-base/node-class-description-credentials-name-unsuffixed
				name: 'postgres',
				required: true,
			},
		],
		properties: [
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
						name: 'Rescore',
						value: 'rescore',
						description: 'Recompute a lead’s score now, e.g. on a schedule so decay lowers it',
						action: 'Rescore a lead',
					},
				],
				default: 'upsert',
			},
			{
				displayName: 'Site Key',
				name: 'siteKey',
				type: 'string',
				required: true,
				default: '={{ $json.site }}',
				description: 'Public key of the site (site.key in its config)',
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
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const prisma = prismaFor(await this.getCredentials('postgres'));
		const sites = new SiteResolver(prisma);
		const compiled = new Map<string, CompiledRules>();
		const rulesOf = (site: ResolvedSite) => {
			let rules = compiled.get(site.id);
			if (!rules) {
				rules = compileScoringRules(site.config.crm, { hashRouting: site.config.tracking.hashRouting, sessionTimeoutSeconds: site.config.tracking.sessionTimeout });
				compiled.set(site.id, rules);
			}
			return rules;
		};
		const all: INodeExecutionData[] = [];
		const changed: INodeExecutionData[] = [];

		for (let i = 0; i < items.length; i++) {
			const json = items[i].json;
			try {
				const site = await sites.siteOf(this.getNodeParameter('siteKey', i) as string);
				const context = { siteId: site.id, config: site.config, rules: rulesOf(site), now: Date.now() };
				const operation = this.getNodeParameter('operation', i) as string;
				const reference = operation === 'rescore' ? String(this.getNodeParameter('lead', i) ?? '') : '';
				const payload = operation === 'rescore' ? null : payloadOf(json);
				const receivedAt = typeof json.receivedAt === 'string' && !Number.isNaN(Date.parse(json.receivedAt)) ? new Date(json.receivedAt) : new Date(context.now);
				const outcome: ScoringOutcome = await prisma.$transaction(
					async (tx) => (payload ? await upsertLead(tx, context, payload, receivedAt) : await rescoreLead(tx, context, await findLead(tx, site.id, reference))),
					{ timeout: 30_000 },
				);
				const output = { json: outputOf(json, outcome), pairedItem: { item: i } };
				all.push(output);
				if (outcome.stageChange) changed.push(output);
			} catch (error) {
				const message =
					error instanceof SubjectNotFoundError || error instanceof LeadInputError
						? `${error instanceof SubjectNotFoundError ? 'Parameter' : 'Field'} "${error.field}": ${error.message}`
						: (error as Error).message;
				if (this.continueOnFail()) {
					all.push({ json: { error: message }, pairedItem: { item: i } });
					continue;
				}
				throw new NodeOperationError(this.getNode(), message, { itemIndex: i });
			}
		}
		return [all, changed];
	}
}
