/**
 * The Tracking CRM API credential's "Test" button, in a REAL n8n (started by test/helpers/realN8n
 * with this package installed from its tarball): n8n runs the credential's declared request and
 * rules itself (POST /rest/credentials/test, as the editor does). It passes for the receiver only:
 * n8n's own URL, a server answering 404 and a web page all fail with a message saying so. In the
 * same n8n, the Site Key list loads the sites of the CRM database as the editor asks for it.
 *
 * Needs `npm run build` (the package's dist) and the cached n8n of scripts/real-n8n.sh.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { PrismaClient } from '../../lib/db/generated/client';
import type { Receiver } from '../../server/receiver';
import { createTestSite, postgresCredential, testPrisma } from '../helpers/db';
import { startRealN8n, type RealN8n } from '../helpers/realN8n';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const POSTGRES = { id: 'crmPostgresListTest1', name: 'CRM database (site list)', type: 'postgres' };
const CREDENTIAL = { id: 'crmCredentialTest1', name: 'Tracking CRM (credential test)', type: 'trackingCrmApi' };
const BROWSER = { 'browser-id': 'credential-test-browser' };

async function plainServer(status: number, contentType: string, body: string): Promise<{ server: Server; url: string }> {
	const server = createServer((_req, res) => {
		res.writeHead(status, { 'content-type': contentType });
		res.end(body);
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const OWNER = { email: 'owner@crm.example', firstName: 'Owner', lastName: 'Crm', password: 'Credential-Test-1' };

/** The n8n-auth cookie among the answer's cookies, as "name=value". */
function authCookie(response: Response): string | undefined {
	return response.headers
		.getSetCookie()
		.map((line) => line.split(';')[0])
		.find((pair) => pair.startsWith('n8n-auth='));
}

/**
 * Sets up n8n's owner as the editor does on first start, or signs in as it once it is set up;
 * retried until an answer carries the auth cookie (a starting n8n answers 200 with no cookie).
 */
async function signIn(n8n: RealN8n): Promise<string> {
	const post = (route: string, body: object) =>
		fetch(`${n8n.baseUrl}/rest/${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...BROWSER }, body: JSON.stringify(body) });
	for (let attempt = 0; ; attempt++) {
		let response = await post('owner/setup', OWNER);
		if (response.status === 400) response = await post('login', { emailOrLdapLoginId: OWNER.email, password: OWNER.password });
		const cookie = response.ok ? authCookie(response) : undefined;
		if (cookie) return cookie;
		const text = await response.text();
		if (attempt === 120) throw new Error(`n8n sign-in answered ${response.status} without an n8n-auth cookie: ${text}\n${n8n.logTail(30)}`);
		await new Promise((resolve) => setTimeout(resolve, 500));
	}
}

describe('Tracking CRM API credential test in a real n8n', () => {
	let n8n: RealN8n | undefined;
	let receiver: Receiver;
	let cookie = '';
	let prisma: PrismaClient;
	let site: { id: string; key: string };
	const servers: Server[] = [];

	beforeAll(async () => {
		prisma = testPrisma();
		site = await createTestSite(prisma, 'list');
		receiver = await startTestReceiver([testSiteConfig()], { DISPATCHER: 'off' });
		n8n = await startRealN8n({
			workflows: [],
			credentials: [
				{ ...CREDENTIAL, data: { receiverUrl: 'http://127.0.0.1:9', webhookSecret: 'credential-test-secret' } },
				{ ...POSTGRES, data: postgresCredential() },
			],
		});
		cookie = await signIn(n8n);
		// The credential routes may come up after the owner's: wait until they answer with JSON.
		const tries: string[] = [];
		for (let attempt = 0; ; attempt++) {
			const probe = await fetch(`${n8n.baseUrl}/rest/credentials/test`, {
				method: 'POST',
				headers: { 'content-type': 'application/json', cookie, ...BROWSER },
				body: JSON.stringify({ credentials: { ...CREDENTIAL, data: { receiverUrl: 'http://127.0.0.1:9', webhookSecret: 'credential-test-secret' } } }),
			});
			const text = await probe.text();
			if (probe.ok && text.trimStart().startsWith('{')) break;
			tries.push(`${probe.status}`);
			if (attempt === 120) throw new Error(`n8n's credential test route never answered with JSON (statuses: ${tries.join(', ')})\n${n8n.logTail(40)}`);
			await new Promise((resolve) => setTimeout(resolve, 500));
		}
	}, 20 * 60_000);

	afterAll(async () => {
		await n8n?.stop();
		await receiver?.close();
		await prisma?.$disconnect();
		await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
	});

	/** What n8n's editor gets when the builder presses "Test" with this Receiver URL. */
	async function testWith(receiverUrl: string): Promise<{ status: string; message: string }> {
		if (!n8n) throw new Error('n8n did not start (see the beforeAll error above)');
		const response = await fetch(`${n8n.baseUrl}/rest/credentials/test`, {
			method: 'POST',
			headers: { 'content-type': 'application/json', cookie, ...BROWSER },
			body: JSON.stringify({ credentials: { ...CREDENTIAL, data: { receiverUrl, webhookSecret: 'credential-test-secret' } } }),
		});
		const text = await response.text();
		if (!response.ok) throw new Error(`POST /rest/credentials/test answered ${response.status}: ${text}\n${n8n.logTail(30)}`);
		return (JSON.parse(text) as { data: { status: string; message: string } }).data;
	}

	const NOT_A_RECEIVER = /^The Receiver URL does not answer like a Tracking CRM receiver/;

	it('passes for the receiver', async () => {
		expect(await testWith(receiver.url)).toEqual({ status: 'OK', message: 'Connection successful!' });
	});

	it('fails for n8n’s own URL', async () => {
		const result = await testWith(n8n!.baseUrl);
		expect(result.status).toBe('Error');
		expect(result.message).toMatch(NOT_A_RECEIVER);
	});

	it('fails for a server that answers 404, or 200 with a web page or another service’s JSON', async () => {
		const answers = await Promise.all([
			plainServer(404, 'text/plain', 'Not Found'),
			plainServer(200, 'text/html', '<!doctype html><title>Shop</title>'),
			plainServer(200, 'application/json', '{"status":"ok"}'),
		]);
		servers.push(...answers.map((answer) => answer.server));
		for (const { url } of answers) {
			const result = await testWith(url);
			expect({ url, ...result }).toEqual({ url, status: 'Error', message: expect.stringMatching(NOT_A_RECEIVER) });
		}
	});

	it('lists the sites of the CRM database for the Site Key, as the editor loads it', async () => {
		const response = await fetch(`${n8n!.baseUrl}/rest/dynamic-node-parameters/options`, {
			method: 'POST',
			headers: { 'content-type': 'application/json', cookie, ...BROWSER },
			body: JSON.stringify({
				nodeTypeAndVersion: { name: 'n8n-nodes-tracking-crm.leadScorer', version: 1 },
				path: 'parameters.siteKey',
				methodName: 'getSites',
				currentNodeParameters: { operation: 'upsert', siteKey: '' },
				credentials: { postgres: { id: POSTGRES.id, name: POSTGRES.name } },
			}),
		});
		const text = await response.text();
		expect([response.status, text]).toEqual([200, expect.any(String)]);
		const { data } = JSON.parse(text) as { data: Array<{ name: string; value: string }> };
		expect(data).toContainEqual({ name: `list (${site.key})`, value: site.key, description: `${site.key}.example` });
	});
});
