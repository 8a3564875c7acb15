/**
 * Parameter values the editor would not let through, reaching the nodes as an expression's result
 * or in workflow JSON imported or written by hand: a count of 0 or "ten", an object where text
 * belongs, a date past what Postgres stores, a NUL character. Each is refused with the field's
 * label and the fix, writes nothing, and under Continue On Fail leaves the good items next to it
 * alone. Nodes run through n8n's engine on a real Postgres.
 */
import type { INode } from 'n8n-workflow';

import type { PrismaClient } from '../../lib/db/generated/client';
import { disconnectAll } from '../../nodes/shared/database';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { runWorkflow, type WorkflowJson } from '../harness/n8n';

const PACKAGE = 'n8n-nodes-tracking-crm';

function workflowOf(type: string, parameters: INode['parameters'], options: { continueOnFail?: boolean } = {}): WorkflowJson {
	return {
		name: 'Parameter values',
		nodes: [
			{ id: 'start', name: 'Start', type: 'n8n-nodes-base.manualTrigger', typeVersion: 1, position: [0, 0], parameters: {} },
			{
				id: 'crm',
				name: 'CRM',
				type: `${PACKAGE}.${type}`,
				typeVersion: 1,
				position: [200, 0],
				parameters,
				credentials: { postgres: { id: '1', name: 'CRM database' }, trackingCrmApi: { id: '2', name: 'Receiver' }, smtp: { id: '3', name: 'Mail' } },
				...(options.continueOnFail ? { onError: 'continueRegularOutput' as const } : {}),
			},
		],
		connections: { Start: { main: [[{ node: 'CRM', type: 'main', index: 0 }]] } },
	};
}

const credentials = () => ({
	postgres: postgresCredential(),
	trackingCrmApi: { receiverUrl: 'http://127.0.0.1:3000', webhookSecret: 'parameter-values-secret', emailTokenSecret: 'parameter-values-token-secret-of-32-characters-or-more' },
	// Nothing listens here: every case below is refused before a message would be sent.
	smtp: { host: '127.0.0.1', port: 9, secure: false, disableStartTls: true, user: '', password: '' },
});

describe('parameter values the editor would not let through', () => {
	let prisma: PrismaClient;
	let site: { id: string; key: string };

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'param-values');
		await prisma.lead.create({ data: { siteId: site.id, email: 'ana@values.example', emailHash: 'a'.repeat(64) } });
	});
	afterAll(async () => {
		await prisma.$disconnect();
		await disconnectAll();
	});

	const activity = (overrides: Record<string, unknown> = {}) => ({ site: site.key, lead: 'ana@values.example', type: 'note_added', description: 'Called back', ...overrides });
	const logParameters = {
		operation: 'log',
		subject: 'lead',
		lead: '={{ $json.lead }}',
		activityType: '={{ $json.type }}',
		description: '={{ $json.description }}',
		data: '={{ $json.data ?? "{}" }}',
		occurredAt: '={{ $json.at ?? "" }}',
		dedupeKey: '={{ $json.key ?? "" }}',
	};

	it.each([
		['an option the node does not have', 'activityLogger', { ...logParameters, subject: '={{ "customer" }}' }, {}, 'Subject: is "customer": give one of "lead", "visitor"'],
		['an operation the node does not have', 'leadScorer', { operation: 'delete', siteKey: '={{ $json.site }}' }, {}, 'Operation: is "delete": give one of "upsert", "getSettings", "rescore", "rescoreStale", "rescoreVisitor"'],
		['an operation of another node', 'activityLogger', { operation: 'delete', lead: 'ana@values.example' }, {}, 'Operation: is "delete": give one of "log", "logOutcome", "getTimeline"'],
		['an operation the Email Orchestrator does not have', 'emailOrchestrator', { operation: 'blast' }, {}, 'Operation: is "blast": give one of "enroll", "enrollByTrigger", "handleCrmItems", "handleEmailEvent", "sendDue"'],
		['an input the node does not read', 'visitorProcessor', { input: 'csv' }, {}, 'Input: is "csv": give one of "event", "batch"'],
		['an input the Conversion Detector does not read', 'conversionDetector', { input: 'stream' }, {}, 'Input: is "stream": give one of "event", "batch"'],
		['a visitor that is empty', 'leadScorer', { operation: 'rescoreVisitor', siteKey: '={{ $json.site }}', visitor: '={{ $json.anonymousId }}' }, {}, "Visitor: is empty: give the visitor's ID or the tracker's anonymous ID, such as {{ $json.anonymousId }}"],
		['All Sites for an operation of one site', 'emailOrchestrator', { operation: 'enroll', siteKey: '*', lead: 'ana@values.example', sequenceSource: 'site', sequence: 'welcome' }, {}, 'Site Key: is "All Sites", which only Send Due takes: pick one site for this operation, or map it, such as {{ $json.site }}'],
		['a count of 0', 'leadScorer', { operation: 'rescoreStale', siteKey: '={{ $json.site }}', limit: 0 }, {}, 'Limit: is 0: give a whole number of 1 or more'],
		['a negative count', 'leadScorer', { operation: 'rescoreStale', siteKey: '={{ $json.site }}', limit: -5 }, {}, 'Limit: is -5: give a whole number of 1 or more'],
		['a limit above what is read at once', 'activityLogger', { operation: 'getTimeline', lead: 'ana@values.example', limit: 5000 }, {}, 'Limit: is 5000: give a whole number from 1 to 1000'],
		['a type to include that is no activity type', 'activityLogger', { operation: 'getTimeline', lead: 'ana@values.example', types: 'page_viewed, Not A Type!' }, {}, 'Activity Types: "Not A Type!" is not an activity type; start with a lowercase letter, then lowercase letters, digits and _ . : - (e.g. page_viewed), at most 64 characters'],
		['an activity type of thousands of characters, shown cut', 'activityLogger', logParameters, { type: 'X'.repeat(5000) }, `Activity Type: "${'X'.repeat(40)}…" is not an activity type; start with a lowercase letter, then lowercase letters, digits and _ . : - (e.g. page_viewed), at most 64 characters`],
		['a count that is text', 'activityLogger', { operation: 'getTimeline', lead: 'ana@values.example', limit: '={{ "ten" }}' }, {}, 'Limit: is "ten": give a whole number from 1 to 1000'],
		['a list where text belongs', 'activityLogger', { operation: 'getTimeline', lead: 'ana@values.example', types: '={{ ["a", "b"] }}' }, {}, 'Activity Types: is a list: give text (map one field of the item, such as {{ $json.email }}, not a whole object)'],
		['a site key that is a list', 'leadScorer', { operation: 'getSettings', siteKey: '={{ [$json.site] }}' }, {}, 'Site Key: is a list: give one site key, such as {{ $json.site }}, or pick a site from the list'],
		['an activity type that is missing', 'activityLogger', logParameters, { type: undefined }, 'Activity Type: "" is not an activity type; start with a lowercase letter, then lowercase letters, digits and _ . : - (e.g. page_viewed), at most 64 characters'],
		['a description that is a number of fields', 'activityLogger', logParameters, { description: { text: 'x' } }, 'Description: is an object: give text (map one field of the item, such as {{ $json.email }}, not a whole object)'],
		['a description with a NUL character', 'activityLogger', logParameters, { description: 'bad\u0000text' }, 'Description: contains a NUL character (\\u0000), which cannot be stored: remove it'],
		['data with a NUL character', 'activityLogger', logParameters, { data: { note: 'bad\u0000' } }, 'Data: note contains a NUL character (\\u0000), which cannot be stored: remove it'],
		['a time past what Postgres stores', 'activityLogger', logParameters, { at: '+275000-01-01T00:00:00Z' }, 'Occurred At: is +275000-01-01T00:00:00.000Z: give a time from the year 1900 to 9999'],
		['a dedupe key that is an object', 'activityLogger', { ...logParameters, dedupeKey: '={{ $json }}' }, {}, 'Dedupe Key: is an object: give text (map one field of the item, such as {{ $json.email }}, not a whole object)'],
		['a batch size that is text', 'emailOrchestrator', { operation: 'sendDue', batchSize: '={{ "ten" }}' }, {}, 'Batch Size: is "ten": give a whole number from 1 to 1000'],
		['an As Of past what Postgres stores', 'emailOrchestrator', { operation: 'sendDue', options: { asOf: '+275000-01-01T00:00:00Z' } }, {}, 'Options › As Of: is +275000-01-01T00:00:00.000Z: give a time from the year 1900 to 9999'],
		['a sender that is no address', 'emailOrchestrator', { operation: 'sendDue', options: { fromEmail: 'broken@' } }, {}, 'Options › From Email: "broken@" is not an email address: give the sender address, such as news@example.com'],
		['a request country that is a name', 'enricher', { lead: 'ana@values.example', country: 'Spain' }, {}, 'Request Country: is "Spain": must be an ISO 3166-1 alpha-2 country code such as DE, or empty'],
		['an MX timeout that is text', 'enricher', { lead: 'ana@values.example', checkMx: true, mxTimeoutMs: '={{ "abc" }}' }, {}, 'MX Timeout (Ms): is "abc": give a whole number from 50 to 60000'],
		[
			'a DNS server that is no IP address',
			'enricher',
			{ lead: 'ana@values.example', checkMx: true, dnsServers: '1.1.1.1, not-an-ip' },
			{},
			'DNS Servers: "not-an-ip" is not an IP address: give IP addresses such as 1.1.1.1 or 1.1.1.1:53 (an IPv6 one with a port as [2606:4700::1111]:53), separated by commas',
		],
	])('refuses %s, naming the field and the fix', async (_case, type, parameters, item, message) => {
		const result = await runWorkflow(workflowOf(type, parameters as INode['parameters']), { input: [type === 'activityLogger' && (parameters as Record<string, unknown>).operation === 'log' ? activity(item) : { site: site.key }], credentials: credentials() });
		expect(result.status).toBe('error');
		expect(result.error?.message).toBe(message);
	});

	it('refuses a lead that names another site than the Site Key, and stores nothing of it', async () => {
		const input = [{ site: site.key, lead: { site: 'another-site', email: 'eve@values.example', consent: true } }];
		const result = await runWorkflow(workflowOf('leadScorer', { operation: 'upsert', siteKey: '={{ $json.site }}' }), { input, credentials: credentials() });
		expect(result.error?.message).toBe(`Field "lead.site": is "another-site", but the Site Key is "${site.key}": a lead is stored for the site it names; send it to that site's workflow`);
		expect(await prisma.lead.count({ where: { email: 'eve@values.example' } })).toBe(0);
	});

	it('writes nothing for a refused item and the good items next to it under Continue On Fail', async () => {
		const input = [activity({ key: 'good-1' }), activity({ key: 'bad', description: 'bad\u0000text' }), activity({ key: 'bad-time', at: '+275000-01-01T00:00:00Z' }), activity({ key: 'good-2' })];
		const result = await runWorkflow(workflowOf('activityLogger', logParameters, { continueOnFail: true }), { input, credentials: credentials() });
		expect(result.status).toBe('success');
		const output = result.outputOf('CRM');
		expect(output.map((json) => (json.error ? 'error' : json.duplicate === false ? 'written' : 'other'))).toEqual(['written', 'error', 'error', 'written']);
		expect(output[1].error).toBe('Description: contains a NUL character (\\u0000), which cannot be stored: remove it');
		const stored = await prisma.activity.findMany({ where: { siteId: site.id, dedupeKey: { in: ['good-1', 'bad', 'bad-time', 'good-2'] } }, select: { dedupeKey: true } });
		expect(stored.map((row) => row.dedupeKey).sort()).toEqual(['good-1', 'good-2']);
	});

	it('refuses a Sequence Definition whose template cannot render, before enrolling anyone', async () => {
		const definition = { name: 'broken', steps: [{ delayMinutes: 0, subject: 'Hi', html: '<p>{{> missing}}</p>' }] };
		const result = await runWorkflow(workflowOf('emailOrchestrator', { operation: 'enroll', lead: 'ana@values.example', sequenceSource: 'parameter', sequenceDefinition: JSON.stringify(definition) }), {
			input: [{ site: site.key }],
			credentials: credentials(),
		});
		expect(result.status).toBe('error');
		expect(result.error?.message).toContain('Sequence Definition: is not a sequence:');
		expect(result.error?.message).toContain('steps[0].html');
		expect(result.error?.message).toContain('uses the partial {{> missing}}');
		expect(await prisma.sequenceEnrollment.count({ where: { siteId: site.id } })).toBe(0);
		expect(await prisma.emailSequence.count({ where: { siteId: site.id } })).toBe(0);
	});

	it('refuses a Sequence Definition that exits on a conversion the site has no rule for, as the site config does', async () => {
		const definition = { name: 'exits', exitOn: { conversions: ['nonexistent'] }, steps: [{ delayMinutes: 0, subject: 'Hi', html: '<p>Hi</p>' }] };
		const result = await runWorkflow(workflowOf('emailOrchestrator', { operation: 'enroll', lead: 'ana@values.example', sequenceSource: 'parameter', sequenceDefinition: JSON.stringify(definition) }), {
			input: [{ site: site.key }],
			credentials: credentials(),
		});
		expect(result.error?.message).toBe(
			'Sequence Definition: is not a sequence:\n  - exitOn.conversions[0]: must name a rule of crm.conversionRules (it has none); add a conversion rule named "nonexistent" or correct the name',
		);
		expect(await prisma.emailSequence.count({ where: { siteId: site.id } })).toBe(0);
	});
});
