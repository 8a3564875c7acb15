import { createSocket, type Socket } from 'node:dgram';

import type { IDataObject, INode } from 'n8n-workflow';
import { v7 as uuidv7 } from 'uuid';

import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

/** Lead Scorer → Enricher, as a team would chain them; or the Enricher alone. */
function workflow(enricher: INode['parameters'] = {}, options: { withScorer?: boolean } = {}): WorkflowJson {
	const credentials = { postgres: { id: '1', name: 'CRM database' } };
	const enricherNode = { id: 'en', name: 'Enricher', type: 'n8n-nodes-tracking-crm.enricher', typeVersion: 1, position: [400, 0] as [number, number], parameters: enricher, credentials };
	const start = { id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0] as [number, number], parameters: {} };
	if (options.withScorer === false) {
		return { name: 'Enricher test', nodes: [start, enricherNode], connections: { Start: { main: [[{ node: 'Enricher', type: 'main', index: 0 }]] } } };
	}
	return {
		name: 'Enricher test',
		nodes: [start, { id: 'ls', name: 'Lead Scorer', type: 'n8n-nodes-tracking-crm.leadScorer', typeVersion: 1, position: [200, 0], parameters: {}, credentials }, enricherNode],
		connections: {
			Start: { main: [[{ node: 'Lead Scorer', type: 'main', index: 0 }]] },
			'Lead Scorer': { main: [[{ node: 'Enricher', type: 'main', index: 0 }]] },
		},
	};
}

describe('Enricher node in the n8n execution engine', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	let silentDns: Socket;
	const credentials = () => ({ postgres: postgresCredential() });

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'enrich');
		// a DNS server that never answers, standing in for an unreachable resolver
		silentDns = createSocket('udp4');
		await new Promise<void>((resolve) => silentDns.bind(0, '127.0.0.1', resolve));
	});
	afterAll(async () => {
		silentDns.close();
		await prisma.$disconnect();
		await disconnectAll();
	});

	const leadItem = (lead: IDataObject, extra: IDataObject = {}): IDataObject => ({
		site: site.key,
		siteId: site.id,
		kind: 'lead',
		lead: { site: site.key, consent: true, ...lead },
		country: null,
		receivedAt: new Date().toISOString(),
		...extra,
	});

	const tagsOf = async (leadId: string) => (await prisma.leadTag.findMany({ where: { leadId }, orderBy: { tag: 'asc' } })).map((row) => row.tag);

	it('links a company lead to its business, formats the phone and tags it, idempotently', async () => {
		const anonymousId = `anon-${uuidv7()}`;
		await prisma.visitorEvent.create({
			data: { siteId: site.id, eventId: uuidv7(), anonymousId, type: 'pageview', url: '/', userAgent: GOOGLEBOT, occurredAt: new Date() },
		});
		const items = [
			leadItem({ email: 'ceo@mail.acme-corp.co.uk', phone: '030 1234567', country: 'DE', anonymousId }),
			leadItem({ email: 'sam@acme-corp.co.uk', phone: '+44 20 7946 0958' }),
			leadItem({ email: 'jane@gmail.com' }),
			leadItem({ email: 'temp@mailinator.com' }),
		];
		const first = await runWorkflow(workflow(), { input: items, credentials: credentials(), throwOnError: true });
		const out = first.outputOf('Enricher');
		expect(out).toHaveLength(4);
		const [ceo, sam, jane, temp] = out;

		const business = await prisma.business.findUniqueOrThrow({ where: { siteId_domain: { siteId: site.id, domain: 'acme-corp.co.uk' } } });
		expect(business.country).toBe('DE');
		expect(await prisma.lead.findUniqueOrThrow({ where: { id: ceo.leadId as string } })).toMatchObject({ businessId: business.id, phone: '+49301234567' });
		expect(await prisma.lead.findUniqueOrThrow({ where: { id: sam.leadId as string } })).toMatchObject({ businessId: business.id, phone: '+442079460958' });
		expect(await tagsOf(ceo.leadId as string)).toEqual(['bot', 'company-domain']);
		expect((ceo.enrichment as IDataObject).device).toMatchObject({ isBot: true });

		expect(await prisma.lead.findUniqueOrThrow({ where: { id: jane.leadId as string } })).toMatchObject({ businessId: null });
		expect(await tagsOf(jane.leadId as string)).toEqual(['free-mail']);
		// the free-mail list names the big disposable providers as well
		expect(await tagsOf(temp.leadId as string)).toEqual(['disposable', 'free-mail']);
		expect((temp.enrichment as IDataObject).business).toBeNull();

		const counts = async () => ({
			businesses: await prisma.business.count({ where: { siteId: site.id } }),
			tags: await prisma.leadTag.count({ where: { siteId: site.id } }),
		});
		const before = await counts();
		expect(before).toEqual({ businesses: 1, tags: 6 });
		await runWorkflow(workflow(), { input: items, credentials: credentials(), throwOnError: true });
		expect(await counts()).toEqual(before);
	});

	it('takes the country the receiver passed when the lead has none', async () => {
		const lead = await prisma.lead.create({ data: { siteId: site.id, email: 'marie@exemple.fr', emailHash: 'h', phone: '01 23 45 67 89' } });
		const run = await runWorkflow(workflow({}, { withScorer: false }), { input: [{ site: site.key, email: 'Marie@Exemple.fr', country: 'fr' }], credentials: credentials(), throwOnError: true });
		expect(run.outputOf('Enricher')[0].enrichment).toMatchObject({ country: 'FR', phone: { e164: '+33123456789', valid: true } });
		expect(await prisma.lead.findUniqueOrThrow({ where: { id: lead.id } })).toMatchObject({ country: 'FR', phone: '+33123456789' });
	});

	it('never fails an item when DNS does not answer the MX lookup', async () => {
		const { port } = silentDns.address();
		const started = Date.now();
		const run = await runWorkflow(workflow({ checkMx: true, mxTimeoutMs: 300, dnsServers: `127.0.0.1:${port}` }), {
			input: [leadItem({ email: 'ops@unanswered-domain.io' })],
			credentials: credentials(),
			throwOnError: true,
		});
		const [item] = run.outputOf('Enricher');
		expect(item.enrichment).toMatchObject({ mx: null });
		expect(await tagsOf(item.leadId as string)).toEqual(['company-domain']);
		expect(Date.now() - started).toBeLessThan(5_000);
	});

	it('finds the lead its Lead parameter reads from the item as n8n evaluates the expression', async () => {
		const scored = await runWorkflow(workflow(), { input: [leadItem({ email: 'lina@reader.example' }), leadItem({ email: 'omar@reader.example' })], credentials: credentials(), throwOnError: true });
		const [lina, omar] = scored.outputOf('Enricher').map((item) => item.leadId as string);
		const items: IDataObject[] = [
			{ site: site.key, leadId: lina },
			{ site: site.key, lead: { email: 'omar@reader.example' } },
			{ site: site.key, email: 'lina@reader.example' },
			{ site: site.key, leadId: '', lead: null, email: 'omar@reader.example' },
			{ site: site.key, leadId: omar, email: 'lina@reader.example' },
			{ site: site.key, lead: {}, email: 'lina@reader.example' },
		];
		const expected = [lina, omar, lina, omar, omar, lina];
		// The default reads the item natively; in parentheses, the same expression is n8n's to evaluate.
		const read = await runWorkflow(workflow({}, { withScorer: false }), { input: items, credentials: credentials(), throwOnError: true });
		const evaluated = await runWorkflow(workflow({ lead: '={{ ($json.leadId || $json.lead?.email || $json.email) }}' }, { withScorer: false }), { input: items, credentials: credentials(), throwOnError: true });
		expect(read.outputOf('Enricher').map((item) => item.leadId)).toEqual(expected);
		expect(evaluated.outputOf('Enricher').map((item) => item.leadId)).toEqual(expected);
	});

	it('names the parameter when the lead is unknown', async () => {
		const run = await runWorkflow(workflow({}, { withScorer: false }), { input: [{ site: site.key, email: 'ghost@nowhere.io' }], credentials: credentials() });
		expect(run.error?.message).toMatch(/Lead: No lead "ghost@nowhere.io" on this site/);
	});
});
