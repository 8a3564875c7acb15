import { parseSiteConfig } from '../../lib/config/siteConfig';
import { SiteRegistry } from '../../server/siteRegistry';

/** Where the outbox posts each workflow's deliveries, for an n8nUrl as the site config gives it. */
function endpointsFor(integrations: Record<string, unknown>): Record<string, string> {
	const config = parseSiteConfig({ site: { key: 'shop', name: 'Shop', domain: 'shop.example' }, tracking: { allowedOrigins: ['https://shop.example'] }, integrations });
	const site = new SiteRegistry([config], new Map([['shop', '00000000-0000-4000-8000-000000000001']])).byPublicKey('shop')!;
	return Object.fromEntries(site.endpoints);
}

describe('webhook URLs under integrations.n8nUrl', () => {
	it.each([
		['https://tools.example.com/n8n', 'https://tools.example.com/n8n/webhook/crm-visitor-processor'],
		['https://tools.example.com/n8n/', 'https://tools.example.com/n8n/webhook/crm-visitor-processor'],
		['http://127.0.0.1:5678', 'http://127.0.0.1:5678/webhook/crm-visitor-processor'],
		['http://n8n:5678/', 'http://n8n:5678/webhook/crm-visitor-processor'],
	])('keep the path n8n is served under: %s', (n8nUrl, visitorProcessor) => {
		expect(endpointsFor({ n8nUrl })['visitor-processor']).toBe(visitorProcessor);
	});

	it('append every path endpoint to it, and leave a full URL as it is', () => {
		const webhookEndpoints = [
			{ workflow: 'lead-processor', url: '/webhook/leads' },
			{ workflow: 'email-orchestrator', url: 'https://other.example.com/webhook/mail' },
		];
		expect(endpointsFor({ n8nUrl: 'https://tools.example.com/n8n', webhookEndpoints })).toEqual({
			'lead-processor': 'https://tools.example.com/n8n/webhook/leads',
			'email-orchestrator': 'https://other.example.com/webhook/mail',
		});
	});

	it('stay paths for the embedded engine when n8nUrl is unset', () => {
		expect(endpointsFor({})['visitor-processor']).toBe('/webhook/crm-visitor-processor');
	});
});
