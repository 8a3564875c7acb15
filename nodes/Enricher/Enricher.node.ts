import { isIP } from 'node:net';

import {
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeType,
	type INodeProperties,
	type INodeTypeDescription,
} from 'n8n-workflow';

import { COUNTRY_CODE, COUNTRY_CODE_RULE } from '../../lib/contracts/lead';
import type { PrismaClient } from '../../lib/db/generated/client';
// One UUIDv7 per row, as Prisma's own `uuid(7)` default would give.
import { uuidv7s } from '../../lib/ids';
import { leadField, openLead, type PiiCipher } from '../../lib/pii';
import { crmDatabase } from '../shared/database';
import { crmDatabaseCredential, siteKeyOf, siteKeyProperty, siteMethods } from '../shared/descriptions';
import { failedItem, inputError, type ItemGlue } from '../shared/items';
import { numberParameter, shownValue, textParameter } from '../shared/parameters';
import { SiteResolver, type ResolvedSite } from '../shared/subjects';
import { ErasedPerson, findLeads, logErasedItems, piiCredentialOf, piiKeyProblem, siteCipherOf } from '../shared/leads';
import { createMxChecker, enrich, type Enrichment, type MxChecker } from './enrich';

/** The Request Country: empty, or a country code as leads store it. */
function requestCountry(value: string): string {
	const country = value.trim();
	if (country !== '' && !COUNTRY_CODE.test(country)) throw inputError('country', `is ${shownValue(country)}: ${COUNTRY_CODE_RULE}, or empty`);
	return country;
}

/** Definite MX answers for the life of the n8n process: mail domains change rarely. */
const mxCache = new Map<string, boolean>();

/**
 * The latest user agent of each lead's visitors, by anonymous id: events the Visitor Processor has
 * not attached to the visitor yet count too.
 */
const LATEST_USER_AGENTS = `
SELECT DISTINCT ON (v.lead_id) v.lead_id, e.user_agent
FROM visitors v JOIN visitor_events e ON e.site_id = v.site_id AND e.anonymous_id = v.anonymous_id
WHERE v.site_id = $1::uuid AND v.lead_id = ANY($2::uuid[]) AND e.user_agent IS NOT NULL
ORDER BY v.lead_id, e.occurred_at DESC`;

const INSERT_BUSINESSES = `
INSERT INTO businesses (id, site_id, domain, country, updated_at)
SELECT b.id, $1::uuid, b.domain, b.country, now() FROM unnest($2::uuid[], $3::text[], $4::text[]) AS b(id, domain, country)
ON CONFLICT (site_id, domain) DO NOTHING`;

/**
 * What enrichment fills in: a business and a country only where the lead has none, a phone number
 * in E.164; nothing else, so a field another node wrote meanwhile stays. `updated_at` moves only
 * when something changed. The leads are locked in id order, the order every node locks leads in.
 */
const UPDATE_LEADS = `
WITH locked AS (
	SELECT l.id, v.business_id, v.phone, v.country FROM leads l JOIN unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) AS v(id, business_id, phone, country) ON v.id = l.id
	ORDER BY l.id FOR UPDATE OF l)
UPDATE leads SET business_id = COALESCE(leads.business_id, v.business_id), phone = COALESCE(v.phone, leads.phone), country = COALESCE(leads.country, v.country),
	updated_at = CASE WHEN (COALESCE(leads.business_id, v.business_id), COALESCE(v.phone, leads.phone), COALESCE(leads.country, v.country))
		IS NOT DISTINCT FROM (leads.business_id, leads.phone, leads.country) THEN leads.updated_at ELSE now() END
FROM locked AS v
WHERE leads.id = v.id`;

const INSERT_TAGS = `
INSERT INTO lead_tags (id, site_id, lead_id, tag, source)
SELECT t.id, $1::uuid, t.lead_id, t.tag, 'enricher' FROM unnest($2::uuid[], $3::uuid[], $4::text[]) AS t(id, lead_id, tag)
ON CONFLICT (lead_id, tag) DO NOTHING`;

/** A domain that answers now was only unreachable before. */
const CLEAR_MX_MISSING = `DELETE FROM lead_tags WHERE lead_id = ANY($1::uuid[]) AND tag = 'mx-missing'`;

/** A lead as enrichment reads and changes it; items of one lead see what the earlier ones changed. */
interface LeadState {
	id: string;
	/** Opened: the address and phone as they read, on a site that seals them too. */
	email: string;
	phone: string | null;
	/** The phone as stored (sealed or clear), which an unchanged number keeps. */
	storedPhone: string | null;
	country: string | null;
	businessId: string | null;
	/** The company domain whose business to link, once its row exists. */
	businessDomain?: string;
	/** What the batch writes: the latest valid number in E.164, the country it filled in. */
	newPhone?: string;
	newCountry?: string;
	tags: Set<string>;
	/** The latest definite MX answer of the batch: true clears an earlier mx-missing. */
	mx?: boolean;
}

interface EnricherItem {
	item: number;
	site: ResolvedSite;
	reference: string;
	country: string;
	userAgent: string;
	mx?: { timeoutMs: number; servers: readonly string[] };
}

const properties: INodeProperties[] = [
	siteKeyProperty,
	{
		displayName: 'Lead',
		name: 'lead',
		type: 'string',
		required: true,
		default: '={{ $json.leadId || $json.lead?.email || $json.email }}',
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
		typeOptions: { minValue: 50, maxValue: 60000, numberPrecision: 0 },
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

const HOST_AND_PORT = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/;

/**
 * The DNS Servers parameter as the resolver takes it: IP addresses, each with an optional port
 * (1.1.1.1, 1.1.1.1:53, [2606:4700::1111]:53). A name or typo is refused here, naming the field,
 * rather than by the resolver on the first lookup the cache does not answer.
 */
export function dnsServersOf(text: string): string[] {
	return text
		.split(',')
		.map((server) => server.trim())
		.filter(Boolean)
		.map((server) => {
			const withPort = HOST_AND_PORT.exec(server);
			const host = withPort ? (withPort[1] ?? withPort[2]) : server;
			const port = withPort ? Number(withPort[3]) : 53;
			if (!isIP(host) || port < 1 || port > 65535 || (withPort?.[2] !== undefined && isIP(host) === 6)) {
				throw inputError('dnsServers', `"${server}" is not an IP address: give IP addresses such as 1.1.1.1 or 1.1.1.1:53 (an IPv6 one with a port as [2606:4700::1111]:53), separated by commas`);
			}
			return server;
		});
}

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
		const output = new Map<number, INodeExecutionData>();
		const fail = (item: number, error: unknown) => output.set(item, failedItem(this, glue, piiKeyProblem(error), item));
		/** Items whose lead was erased, left out: the person is meant to be gone, which is no failure to retry. */
		const erased = new Set<number>();
		const leaveOut = (item: number) => erased.add(item);

		const bySite = new Map<string, EnricherItem[]>();
		for (let i = 0; i < items.length; i++) {
			try {
				const site = await sites.siteOf(siteKeyOf(this, i));
				const entry: EnricherItem = {
					item: i,
					site,
					reference: textParameter(this, 'lead', i),
					country: requestCountry(textParameter(this, 'country', i)),
					userAgent: textParameter(this, 'userAgent', i).trim(),
					...(this.getNodeParameter('checkMx', i) === true
						? { mx: { timeoutMs: numberParameter(this, properties, 'mxTimeoutMs', i), servers: dnsServersOf(textParameter(this, 'dnsServers', i)) } }
						: {}),
				};
				bySite.set(site.id, [...(bySite.get(site.id) ?? []), entry]);
			} catch (error) {
				fail(i, error);
			}
		}
		for (const [siteId, entries] of bySite) {
			try {
				const cipher = siteCipherOf(piiKeys, entries[0].site);
				for (const [item, json] of await enrichSite(prisma, siteId, cipher, entries, items, { fail, leaveOut })) output.set(item, { json, pairedItem: { item } });
			} catch (error) {
				for (const entry of entries) if (!output.has(entry.item) && !erased.has(entry.item)) fail(entry.item, error);
			}
		}
		logErasedItems(this, erased.size);
		return [items.flatMap((_, i) => output.get(i) ?? [])];
	}
}

/**
 * Enriches the items of one site with a fixed number of statements: their leads, their visitors'
 * latest user agents, the businesses of their company domains, then the leads' new fields and tags
 * in one transaction. Items run in order, as if one by one: a later item of a lead sees what an
 * earlier one filled in. An item whose lead was erased is left out (`leaveOut`), not failed.
 */
async function enrichSite(
	prisma: PrismaClient,
	siteId: string,
	cipher: PiiCipher | null,
	entries: readonly EnricherItem[],
	items: readonly INodeExecutionData[],
	{ fail, leaveOut }: { fail: (item: number, error: unknown) => void; leaveOut: (item: number) => void },
): Promise<Map<number, IDataObject>> {
	const found = await findLeads(prisma, siteId, entries.map((entry) => entry.reference), cipher);
	const ready = entries.flatMap((entry) => {
		const leadId = found.get(entry.reference);
		if (typeof leadId === 'string') return [{ ...entry, leadId }];
		if (leadId instanceof ErasedPerson) leaveOut(entry.item);
		else fail(entry.item, leadId);
		return [];
	});
	const leadIds = [...new Set(ready.map((entry) => entry.leadId))];
	if (leadIds.length === 0) return new Map();
	const leads = new Map<string, LeadState>(
		(await prisma.lead.findMany({ where: { id: { in: leadIds } }, select: { id: true, email: true, phone: true, country: true, businessId: true } })).map((stored) => [
			stored.id,
			{ ...openLead(cipher, stored), storedPhone: stored.phone, tags: new Set<string>() },
		]),
	);
	const needAgent = [...new Set(ready.filter((entry) => !entry.userAgent).map((entry) => entry.leadId))];
	const agents = new Map(
		needAgent.length === 0
			? []
			: (await prisma.$queryRawUnsafe<Array<{ lead_id: string; user_agent: string }>>(LATEST_USER_AGENTS, siteId, needAgent)).map((row) => [row.lead_id, row.user_agent]),
	);

	const checkers = new Map<string, MxChecker>();
	const businesses = new Map<string, string | null>();
	const enriched: Array<{ item: number; lead: LeadState; enrichment: Enrichment; mx: boolean | null | undefined; domain: string | null }> = [];
	for (const entry of ready) {
		const lead = leads.get(entry.leadId) as LeadState;
		const enrichment = enrich({ email: lead.email, phone: lead.phone, country: lead.country ?? entry.country, userAgent: entry.userAgent || (agents.get(lead.id) ?? null) });
		let mx: boolean | null | undefined;
		const domain = enrichment.email?.domain;
		if (entry.mx && domain) {
			const key = `${entry.mx.timeoutMs}|${entry.mx.servers.join(',')}`;
			let checker = checkers.get(key);
			if (!checker) {
				checker = createMxChecker({ timeoutMs: entry.mx.timeoutMs, servers: entry.mx.servers }, mxCache);
				checkers.set(key, checker);
			}
			mx = await checker(domain);
			// Only a definite "no mail servers" is tagged; unknown (null) is not missing.
			if (mx === false) enrichment.tags.push('mx-missing');
		}
		const companyDomain = enrichment.email?.companyDomain ?? null;
		// A business is created with the country of the first lead that names its domain.
		if (companyDomain && !businesses.has(companyDomain)) businesses.set(companyDomain, enrichment.country);
		// An existing link may come from a CRM user; the email domain only fills a gap.
		if (companyDomain && lead.businessId === null && lead.businessDomain === undefined) lead.businessDomain = companyDomain;
		if (enrichment.phone?.valid && enrichment.phone.e164) lead.phone = lead.newPhone = enrichment.phone.e164;
		if (lead.country === null && enrichment.country) lead.country = lead.newCountry = enrichment.country;
		if (mx === true) lead.tags.delete('mx-missing');
		for (const tag of enrichment.tags) lead.tags.add(tag);
		if (mx === true || mx === false) lead.mx = mx;
		enriched.push({ item: entry.item, lead, enrichment, mx, domain: companyDomain });
	}

	const domains = [...businesses.keys()];
	const businessOf = new Map<string, string>();
	if (domains.length > 0) {
		await prisma.$executeRawUnsafe(INSERT_BUSINESSES, siteId, uuidv7s(domains.length), domains, domains.map((domain) => businesses.get(domain) ?? null));
		for (const row of await prisma.business.findMany({ where: { siteId, domain: { in: domains } }, select: { id: true, domain: true } })) businessOf.set(row.domain, row.id);
	}
	const states = [...leads.values()].filter((lead) => ready.some((entry) => entry.leadId === lead.id));
	const tags = states.flatMap((lead) => [...lead.tags].map((tag) => ({ leadId: lead.id, tag })));
	await prisma.$transaction([
		prisma.$executeRawUnsafe(
			UPDATE_LEADS,
			states.map((lead) => lead.id),
			states.map((lead) => (lead.businessDomain ? (businessOf.get(lead.businessDomain) ?? null) : null)),
			// Sealed on a site with privacy.encryptPii; an unchanged number keeps its seal, so the lead is not marked updated.
			states.map((lead) => (cipher ? cipher.sealUnlessSame(lead.newPhone, lead.storedPhone, leadField('phone')) : (lead.newPhone ?? null))),
			states.map((lead) => lead.newCountry ?? null),
		),
		...(tags.length > 0 ? [prisma.$executeRawUnsafe(INSERT_TAGS, siteId, uuidv7s(tags.length), tags.map((tag) => tag.leadId), tags.map((tag) => tag.tag))] : []),
		...(states.some((lead) => lead.mx === true) ? [prisma.$executeRawUnsafe(CLEAR_MX_MISSING, states.filter((lead) => lead.mx === true).map((lead) => lead.id))] : []),
	]);

	return new Map(
		enriched.map(({ item, lead, enrichment, mx, domain }) => {
			const business = domain ? { id: businessOf.get(domain) as string, domain } : null;
			return [item, { ...items[item].json, leadId: lead.id, enrichment: { ...enrichment, mx: mx ?? null, business } as unknown as IDataObject }];
		}),
	);
}
