import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';

import type { PrismaClient } from '../../lib/db/generated/client';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { forEachItem } from '../shared/items';
import { SiteResolver } from '../shared/subjects';
import { findLeadId } from '../shared/leads';
import { createMxChecker, enrich, type MxChecker } from './enrich';

/** Definite MX answers for the life of the n8n process: mail domains change rarely. */
const mxCache = new Map<string, boolean>();

/** By anonymous id: events the Visitor Processor has not attached to the visitor yet count too. */
async function latestUserAgent(prisma: PrismaClient, siteId: string, leadId: string): Promise<string | null> {
	const visitors = await prisma.visitor.findMany({ where: { siteId, leadId }, select: { anonymousId: true } });
	if (visitors.length === 0) return null;
	const event = await prisma.visitorEvent.findFirst({
		where: { siteId, userAgent: { not: null }, anonymousId: { in: visitors.map((visitor) => visitor.anonymousId) } },
		orderBy: { occurredAt: 'desc' },
		select: { userAgent: true },
	});
	return event?.userAgent ?? null;
}

const properties: INodeProperties[] = [
	siteKeyProperty,
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '={{ $json.leadId || ($json.lead && $json.lead.email) || $json.email }}',
		description: 'ID or email address of the lead to enrich',
	},
	{
		displayName: 'Request Country',
		name: 'country',
		type: 'string',
		default: '={{ $json.country }}',
		description: 'Country code the receiver took from the request headers; used when the lead has none',
	},
	{
		displayName: 'User Agent',
		name: 'userAgent',
		type: 'string',
		default: '={{ $json.userAgent }}',
		description: 'User agent to parse; when empty, the latest one of the lead’s visitors is used',
	},
	{
		displayName: 'Check MX Records',
		name: 'checkMx',
		type: 'boolean',
		default: false,
		description: 'Whether to look up the mail servers of the email domain (DNS): enrichment.mx is true, false (the domain takes no mail; tagged mx-missing) or null when DNS did not answer, which never fails the item',
	},
	{
		displayName: 'MX Timeout (Ms)',
		name: 'mxTimeoutMs',
		type: 'number',
		typeOptions: { minValue: 50 },
		default: 1500,
		displayOptions: { show: { checkMx: [true] } },
	},
	{
		displayName: 'DNS Servers',
		name: 'dnsServers',
		type: 'string',
		default: '',
		placeholder: '1.1.1.1, 8.8.8.8',
		description: 'Comma-separated DNS servers for MX lookups; empty for the system’s',
		displayOptions: { show: { checkMx: [true] } },
	},
		];

export class Enricher implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CRM Enricher',
		name: 'enricher',
		icon: 'file:enricher.svg',
		group: ['transform'],
		version: 1,
		description: 'Enrich leads offline: email checks, company from the email domain, phone in E.164, device and bot detection',
		defaults: { name: 'CRM Enricher' },
		usableAsTool: true,
		inputs: ['main'],
		outputs: ['main'],
		credentials: [{ ...crmDatabaseCredential }],
		properties,
	};

	methods = siteMethods;

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const { prisma, credentials } = await crmDatabase(this);
		const sites = new SiteResolver(prisma);
		const checkers = new Map<string, MxChecker>();

		const out = await forEachItem.call(this, { properties, database: credentials }, async (i) => {
			const site = await sites.siteOf(siteKeyOf(this, i));
			const leadId = await findLeadId(prisma, site.id, String(this.getNodeParameter('lead', i) ?? ''));
			const lead = await prisma.lead.findUniqueOrThrow({ where: { id: leadId }, select: { email: true, phone: true, country: true, businessId: true } });
			const userAgent = String(this.getNodeParameter('userAgent', i, '') ?? '').trim() || (await latestUserAgent(prisma, site.id, leadId));
			const enrichment = enrich({ email: lead.email, phone: lead.phone, country: lead.country ?? String(this.getNodeParameter('country', i, '') ?? ''), userAgent });

			let mx: boolean | null | undefined;
			const domain = enrichment.email?.domain;
			if (this.getNodeParameter('checkMx', i) === true && domain) {
				const timeoutMs = this.getNodeParameter('mxTimeoutMs', i) as number;
				const servers = String(this.getNodeParameter('dnsServers', i, '') ?? '');
				const key = `${timeoutMs}|${servers}`;
				let checker = checkers.get(key);
				if (!checker) {
					const list = servers.split(',').map((server) => server.trim()).filter(Boolean);
					checker = createMxChecker({ timeoutMs, servers: list }, mxCache);
					checkers.set(key, checker);
				}
				mx = await checker(domain);
				// Only a definite "no mail servers" is tagged; unknown (null) is not missing.
				if (mx === false) enrichment.tags.push('mx-missing');
			}

			const companyDomain = enrichment.email?.companyDomain ?? null;
			const business = companyDomain
				? await prisma.business.upsert({
						where: { siteId_domain: { siteId: site.id, domain: companyDomain } },
						create: { siteId: site.id, domain: companyDomain, country: enrichment.country },
						update: {},
						select: { id: true, domain: true },
					})
				: null;
			await prisma.$transaction([
				prisma.lead.update({
					where: { id: leadId },
					data: {
						// An existing link may come from a CRM user; the email domain only fills a gap.
						...(business && lead.businessId === null ? { businessId: business.id } : {}),
						...(enrichment.phone?.valid && enrichment.phone.e164 ? { phone: enrichment.phone.e164 } : {}),
						...(lead.country === null && enrichment.country ? { country: enrichment.country } : {}),
					},
				}),
				prisma.leadTag.createMany({ data: enrichment.tags.map((tag) => ({ siteId: site.id, leadId, tag, source: 'enricher' })), skipDuplicates: true }),
				// A domain that answers now was only unreachable before.
				...(mx === true ? [prisma.leadTag.deleteMany({ where: { leadId, tag: 'mx-missing' } })] : []),
			]);
			return [{ ...items[i].json, leadId, enrichment: { ...enrichment, mx: mx ?? null, business } as unknown as IDataObject }];
		});
		return [out];
	}
}
