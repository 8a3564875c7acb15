// First: playwright-core needs Symbol.dispose from the moment it loads (see test/setup/symbolDispose.ts).

import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';

import Ajv2020 from '@redocly/ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { Application } from 'express';
import type { Browser } from 'playwright-core';
import { v7 as uuidv7 } from 'uuid';

import { emailHash } from '../../lib/email';
import { signEmailToken } from '../../lib/emailTokens';
import { createApiKey } from '../../server/auth';
import { openApiDocument, type OpenApiDocument } from '../../server/openapi/document';
import type { PrismaClient } from '../../lib/db/generated/client';
import type { Receiver } from '../../server/receiver';
import { launchChromium } from '../helpers/browser';
import { createTestSite, storeEvents, testPrisma } from '../helpers/db';
import { batch, BROWSER_UA, pageview } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

const OUTPUT = path.join(process.env.TEST_OUTPUT_DIR ?? path.join(tmpdir(), 'tracking-crm-test-output'), 'openapi');
const TOKEN_SECRET = 'openapi-email-token-secret-0123456789abcdef';
const VERSION = (JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;

/**
 * Registered routes the document leaves out on purpose: web pages for people (and the files they
 * load), not an API. Each entry is a method and an Express path, or a path prefix ending in `*`.
 */
const WEB_PAGES: Array<[method: string, path: string, why: string]> = [
	['GET', '/', 'the landing page: links to the demo, dashboards, mailbox and health check'],
	['GET', '/docs/api', 'this reference, as a page'],
	['GET', '/docs/api.css', 'the reference page’s stylesheet'],
	// Signed in with a cookie from the sign-in form: pages, their assets, the sign-in and sign-out
	// forms and CSV downloads of the pages' tables. Other work adds pages here, hence the prefix.
	['*', '/dashboard*', 'the dashboards'],
	['*', '/demo*', 'the demo site: its pages, scripts, a form target and its panel’s feed'],
	['GET', '/mailbox', 'the mailbox page'],
	['GET', '/mailbox/mailbox.css', 'the mailbox page’s stylesheet'],
	['GET', '/mailbox/mailbox.js', 'the mailbox page’s script'],
	['GET', '/mailbox/messages/:id', 'a caught message’s page'],
	['GET', '/mailbox/messages/:id/html', 'a caught message’s HTML part, as a page'],
];

/** The one route the receiver serves before Express (server/app.ts isTrack): its busiest. Its answers are checked below. */
const OUTSIDE_EXPRESS = ['POST /api/track'];

const isWebPage = (method: string, route: string) =>
	WEB_PAGES.some(([pageMethod, page]) => (pageMethod === '*' || pageMethod === method) && (page.endsWith('*') ? route.startsWith(page.slice(0, -1)) : route === page));

/** Express 5 keeps the router stack on app.router; a route is a layer with `.route`, a mounted router a layer whose handle has a stack. */
interface Layer {
	route?: { path: string | string[]; methods: Record<string, boolean> };
	handle?: { stack?: Layer[] };
	slash?: boolean;
}

/** Every `METHOD path` the app routes, with Express's `:param` as it registered it. */
function registeredRoutes(app: Application): string[] {
	const routes: string[] = [];
	const walk = (stack: Layer[]) => {
		for (const layer of stack) {
			if (layer.route) {
				for (const route of [layer.route.path].flat()) for (const method of Object.keys(layer.route.methods)) routes.push(`${method.toUpperCase()} ${route}`);
			} else if (layer.handle?.stack) {
				// Every router of the receiver is mounted at the root; one under a prefix would need the prefix added here.
				if (!layer.slash) throw new Error('A router is mounted under a path prefix: add the prefix to its routes in this walk');
				walk(layer.handle.stack);
			}
		}
	};
	walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
	return routes;
}

/** An Express path in OpenAPI's form: `/e/o/:token` is `/e/o/{token}`. */
function openApiPath(route: string): string {
	if (/[*?(){}]/.test(route)) throw new Error(`${route}: wildcards and optional parts are not translated; extend openApiPath`);
	return route.replace(/:(\w+)/g, '{$1}');
}

/**
 * The receiver's Express app, as its own request handler sees it: Express sets `req.app` when it
 * takes a request, and a second 'request' listener runs after the receiver's, on the same request.
 */
async function expressAppOf(receiver: Receiver): Promise<Application> {
	let app: Application | undefined;
	const capture = (req: IncomingMessage) => {
		app = (req as IncomingMessage & { app?: Application }).app;
	};
	receiver.server.on('request', capture);
	try {
		await (await fetch(`${receiver.url}/tracking-crm`)).text();
	} finally {
		receiver.server.off('request', capture);
	}
	if (!app) throw new Error('The receiver did not hand /tracking-crm to Express');
	return app;
}

interface Recorded {
	method: string;
	/** The status the call is meant to get. */
	expected: number;
	/** The path as the document names it. */
	operation: string;
	url: string;
	status: number;
	contentType: string | null;
	text: string;
}

/**
 * A lead with a visitor, a session, its page views and a conversion, as the workflows leave them
 * today, so the reports' rows (breakdowns, pipeline, goals) are filled and checked too.
 */
async function seedHistory(prisma: PrismaClient, siteId: string, email: string, anonymousId: string): Promise<void> {
	const now = Date.now();
	const lead = await prisma.lead.create({ data: { siteId, email, emailHash: emailHash(email), score: 35, lifecycleStage: 'lead', source: 'contact-form' } });
	const visitor = await prisma.visitor.create({ data: { siteId, anonymousId, leadId: lead.id, firstSeenAt: new Date(now - 3_600_000), lastSeenAt: new Date(now) } });
	const startedAt = new Date(now - 3_600_000);
	const session = await prisma.visitorSession.create({
		data: { siteId, visitorId: visitor.id, sessionKey: uuidv7(), startedAt, lastActivityAt: new Date(now - 3_000_000), pageviews: 2, entryPage: '/', durationSeconds: 600, isBounce: false, engagementLevel: 'high', channel: 'Direct' },
	});
	await storeEvents(
		prisma,
		['/', '/pricing'].map((path, index) => ({ siteId, eventId: uuidv7(), anonymousId, visitorId: visitor.id, sessionId: session.id, type: 'pageview', path, occurredAt: new Date(startedAt.getTime() + index * 60_000) })),
	);
	await prisma.conversion.create({ data: { siteId, visitorId: visitor.id, leadId: lead.id, sessionId: session.id, goal: 'signup', eventId: uuidv7(), occurredAt: new Date(now - 3_000_000), value: 49, currency: 'EUR' } });
}

describe('the OpenAPI document', () => {
	const prisma = testPrisma();
	const site = testSiteConfig();
	const origin = site.tracking.allowedOrigins[0];
	let receiver: Receiver;
	let reference: OpenApiDocument;
	let readKey: string;
	let adminKey: string;
	/** A key of a site that exists in the database but has no config on this receiver. */
	let strayKey: string;
	const email = `openapi.${randomUUID().slice(0, 8)}@example.com`;
	const anonymousId = `openapi-${randomUUID().slice(0, 8)}`;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', EMAIL_TOKEN_SECRET: TOKEN_SECRET });
		const siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		readKey = await createApiKey(prisma, siteId, 'read', 'openapi-read');
		adminKey = await createApiKey(prisma, siteId, 'admin', 'openapi-admin');
		strayKey = await createApiKey(prisma, (await createTestSite(prisma, 'stray')).id, 'read', 'stray');
		await seedHistory(prisma, siteId, email, anonymousId);
		reference = openApiDocument({ version: VERSION, scriptPaths: [site.tracking.scriptPath] });
	});

	afterAll(async () => {
		await receiver?.close();
		await prisma.$disconnect();
	});

	it('describes every route the receiver registers, and no route it does not', async () => {
		const app = await expressAppOf(receiver);
		const registered = registeredRoutes(app).map((route) => {
			const [method, express] = route.split(' ');
			return { method, express, documented: `${method} ${openApiPath(express)}` };
		});
		const api = registered.filter(({ method, express }) => !isWebPage(method, express)).map(({ documented }) => documented);
		const documented = Object.entries(reference.paths).flatMap(([route, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${route}`));

		expect([...new Set([...api, ...OUTSIDE_EXPRESS])].sort()).toEqual([...documented].sort());
		// The list of pages stays true: each entry is a route the receiver has, and none is documented.
		for (const [method, page] of WEB_PAGES) {
			expect({ page, registered: registered.some((route) => isWebPage(route.method, route.express) && (method === '*' || method === route.method) && route.express.startsWith(page.replace(/\*$/, ''))) }).toEqual({ page, registered: true });
		}
		expect(documented.filter((route) => isWebPage(route.split(' ')[0], route.split(' ')[1]))).toEqual([]);
	});

	it('passes the OpenAPI linter’s recommended rules without an error', async () => {
		const { createConfig, lintFromString } = await import('@redocly/openapi-core');
		const config = await createConfig({ extends: ['recommended'] });
		const problems = await lintFromString({ source: JSON.stringify(reference, null, 2), absoluteRef: path.join(OUTPUT, 'openapi.json'), config });
		const errors = problems.filter((problem) => problem.severity === 'error');
		const warnings = problems.filter((problem) => problem.severity === 'warn');
		console.log(
			`@redocly/openapi-core recommended rules: ${errors.length} errors, ${warnings.length} warnings\n` +
				warnings.map((problem) => `  ${problem.ruleId}: ${problem.location[0]?.pointer ?? ''}`).join('\n'),
		);
		expect(errors.map((problem) => `${problem.ruleId}: ${problem.message} at ${problem.location[0]?.pointer}`)).toEqual([]);
	});

	describe('the receiver’s real answers', () => {
		const recorded: Recorded[] = [];

		/** Calls the receiver and keeps the answer, to be checked against the document below. */
		async function call(expected: number, method: string, operation: string, url: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<void> {
			const response = await fetch(`${receiver.url}${url}`, { method, redirect: 'manual', headers: { 'user-agent': BROWSER_UA, connection: 'close', ...init.headers }, body: init.body });
			recorded.push({ method, expected, operation, url, status: response.status, contentType: response.headers.get('content-type'), text: await response.text() });
		}
		const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
		const withKey = (key: string, init: { headers?: Record<string, string>; body?: string } = {}) => ({ ...init, headers: { ...init.headers, authorization: `Bearer ${key}` } });

		beforeAll(async () => {
			const key = site.site.key;
			const event = () => pageview(key, anonymousId);
			const lead = { site: key, email, eventId: randomUUID(), anonymousId, firstName: 'Ada', consent: true, timezone: 'Europe/Berlin' };
			const preflight = { headers: { origin, 'access-control-request-method': 'POST' } };

			// Tracking
			await call(200, 'GET', site.tracking.scriptPath, site.tracking.scriptPath);
			await call(200, 'GET', '/api/track', `/api/track?site=${key}`, { headers: { origin } });
			await call(204, 'GET', '/api/track', `/api/track?site=${key}`, { headers: { 'sec-gpc': '1' } });
			await call(404, 'GET', '/api/track', '/api/track?site=no-such-site');
			await call(400, 'GET', '/api/track', `/api/track?site=${key}&site=${key}`);
			await call(403, 'GET', '/api/track', `/api/track?site=${key}`, { headers: { origin: 'https://elsewhere.example' } });
			await call(204, 'OPTIONS', '/api/track', '/api/track', preflight);
			await call(202, 'POST', '/api/track', '/api/track', { headers: { 'content-type': 'text/plain', origin }, body: JSON.stringify(batch(key, [event(), event()])) });
			await call(202, 'POST', '/api/track', '/api/track', json(batch(key, [event()], { consent: 'denied' })));
			await call(400, 'POST', '/api/track', '/api/track', json(batch(key, [{ ...event(), id: 'not-a-uuid' }])));
			await call(400, 'POST', '/api/track', '/api/track', { body: '{"site":' });
			await call(400, 'POST', '/api/track', '/api/track', json(batch('no-such-site', [event()])));
			await call(403, 'POST', '/api/track', '/api/track', { headers: { origin: 'https://elsewhere.example' }, body: JSON.stringify(batch(key, [event()])) });

			// Leads: the second post is a retry of the first; curl is an automated client.
			await call(202, 'POST', '/api/lead', '/api/lead', json(lead));
			await call(202, 'POST', '/api/lead', '/api/lead', json(lead));
			await call(202, 'POST', '/api/lead', '/api/lead', { ...json({ ...lead, eventId: randomUUID() }), headers: { 'content-type': 'application/json', 'user-agent': 'curl/8.5.0' } });
			await call(400, 'POST', '/api/lead', '/api/lead', json({ ...lead, email: 'not an address' }));
			await call(403, 'POST', '/api/lead', '/api/lead', withKey(readKey, json(lead)));
			await call(401, 'POST', '/api/lead', '/api/lead', withKey('tcrm_admin_not-a-real-key-0000000000', json(lead)));
			await call(204, 'OPTIONS', '/api/lead', '/api/lead', preflight);

			// Receiver: degraded (503), since the site's n8n (127.0.0.1:9) does not answer.
			await call(503, 'GET', '/health', '/health');
			await call(503, 'GET', '/health', '/health', withKey(adminKey));
			await call(403, 'GET', '/health', '/health', withKey(readKey));
			await call(200, 'GET', '/tracking-crm', '/tracking-crm');
			await call(200, 'GET', '/api/openapi.json', '/api/openapi.json');

			// Analytics
			await call(200, 'GET', '/api/stats', '/api/stats', withKey(readKey));
			await call(401, 'GET', '/api/stats', '/api/stats');
			await call(401, 'GET', '/api/stats', '/api/stats', withKey('tcrm_read_not-a-real-key-0000000000'));
			await call(403, 'GET', '/api/stats', '/api/stats?site=another-site', withKey(readKey));
			await call(404, 'GET', '/api/stats', '/api/stats', withKey(strayKey));
			for (const report of ['visitors', 'leads', 'campaigns', 'conversion']) {
				const operation = `/api/analytics/${report}`;
				await call(200, 'GET', operation, `${operation}?from=2026-01-01&to=2026-12-31`, withKey(readKey));
				await call(200, 'GET', operation, `${operation}?interval=hour`, withKey(adminKey));
				await call(400, 'GET', operation, `${operation}?interval=week&colour=blue`, withKey(readKey));
			}

			// Privacy: the erasure last, since it removes what the export reads.
			await call(200, 'GET', '/api/privacy/export', `/api/privacy/export?email=${encodeURIComponent(email)}`, withKey(adminKey));
			await call(404, 'GET', '/api/privacy/export', '/api/privacy/export?email=nobody%40example.com', withKey(adminKey));
			await call(400, 'GET', '/api/privacy/export', '/api/privacy/export', withKey(adminKey));
			await call(403, 'GET', '/api/privacy/export', `/api/privacy/export?email=${encodeURIComponent(email)}`, withKey(readKey));
			await call(400, 'POST', '/api/privacy/erase', '/api/privacy/erase', withKey(adminKey, { body: '{"email":' }));
			await call(200, 'POST', '/api/privacy/erase', '/api/privacy/erase', withKey(adminKey, json({ email })));

			// Workflows: the site's n8n (127.0.0.1:9) does not answer, and no site runs on the embedded engine.
			await call(502, 'POST', '/api/test-microworkflow', '/api/test-microworkflow', withKey(adminKey, json({ workflow: 'visitor-processor' })));
			await call(400, 'POST', '/api/test-microworkflow', '/api/test-microworkflow', withKey(adminKey, json({ workflow: 'no-such-workflow' })));
			await call(404, 'POST', '/webhook/{path}', '/webhook/visitor', json({ site: key, events: [] }));

			// Email links, with tokens of messages this receiver never sent.
			await call(200, 'GET', '/e/o/{token}', `/e/o/${signEmailToken(TOKEN_SECRET, randomUUID(), 'open')}`);
			await call(204, 'HEAD', '/e/o/{token}', `/e/o/${signEmailToken(TOKEN_SECRET, randomUUID(), 'open')}`);
			await call(404, 'GET', '/e/c/{token}', `/e/c/${signEmailToken(TOKEN_SECRET, randomUUID(), 'click', 0)}`);
			await call(400, 'GET', '/e/c/{token}', '/e/c/not-a-token');
			await call(204, 'HEAD', '/e/c/{token}', '/e/c/not-a-token');
			await call(404, 'GET', '/e/u/{token}', `/e/u/${signEmailToken(TOKEN_SECRET, randomUUID(), 'unsubscribe')}`);
			await call(400, 'POST', '/e/u/{token}', '/e/u/not-a-token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'List-Unsubscribe=One-Click' });
			await call(404, 'GET', '/e/v/{token}', `/e/v/${signEmailToken(TOKEN_SECRET, randomUUID(), 'confirm')}`);
			await call(400, 'POST', '/e/v/{token}', '/e/v/not-a-token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });

			// Mailbox: this test runs on the receiver's machine.
			await call(200, 'GET', '/mailbox/api/messages', '/mailbox/api/messages?limit=5');
			await call(400, 'GET', '/mailbox/api/messages', '/mailbox/api/messages?limit=0');
			await call(404, 'GET', '/mailbox/api/messages/{id}', `/mailbox/api/messages/${randomUUID()}`);
			await call(400, 'GET', '/mailbox/api/messages/{id}', '/mailbox/api/messages/42');
		});

		it('each has a documented status, media type and body', () => {
			const ajv = new Ajv2020({ strict: false, allErrors: true });
			addFormats(ajv as never);
			ajv.addSchema(reference, 'openapi.json');
			const mismatches: string[] = [];
			for (const answer of recorded) {
				const where = `${answer.method} ${answer.url} → ${answer.status}`;
				if (answer.status !== answer.expected) mismatches.push(`${where}: expected ${answer.expected} (${answer.text.slice(0, 200)})`);
				const response = reference.paths[answer.operation]?.[answer.method.toLowerCase()]?.responses[String(answer.status)];
				if (!response) {
					mismatches.push(`${where}: the document has no ${answer.status} for ${answer.method} ${answer.operation}`);
					continue;
				}
				const media = answer.contentType?.split(';')[0].trim();
				if (!response.content) {
					if (answer.text !== '' || media) mismatches.push(`${where}: documented without a body, answered ${media} "${answer.text.slice(0, 80)}"`);
					continue;
				}
				if (!media || !(media in response.content)) {
					mismatches.push(`${where}: answered ${media}, documented ${Object.keys(response.content).join(', ')}`);
					continue;
				}
				if (!response.content[media].schema || !media.endsWith('json')) continue;
				const pointer = ['paths', answer.operation, answer.method.toLowerCase(), 'responses', String(answer.status), 'content', media, 'schema']
					.map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1'))
					.join('/');
				const validate = ajv.compile({ $ref: `openapi.json#/${pointer}` });
				if (!validate(JSON.parse(answer.text))) mismatches.push(`${where}: ${ajv.errorsText(validate.errors, { separator: '; ' })} in ${answer.text.slice(0, 300)}`);
			}
			expect(mismatches).toEqual([]);
			// Every documented operation was called.
			const called = new Set(recorded.map((answer) => `${answer.method} ${answer.operation}`));
			const documented = Object.entries(reference.paths).flatMap(([route, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${route}`));
			expect(documented.filter((operation) => !called.has(operation))).toEqual([]);
			console.log(`${recorded.length} answers of ${called.size} operations checked against the document`);
		});

		it('answers the document at /api/openapi.json', () => {
			const answer = recorded.find((recorded) => recorded.url === '/api/openapi.json')!;
			expect(JSON.parse(answer.text)).toEqual(reference);
		});
	});

	describe('the reference page', () => {
		let browser: Browser;
		beforeAll(async () => {
			browser = await launchChromium();
			mkdirSync(OUTPUT, { recursive: true });
		});
		afterAll(() => browser?.close());

		it('renders every operation at /docs/api without console errors, on a desktop and a phone', async () => {
			const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
			const consoleErrors: string[] = [];
			page.on('console', (message) => {
				if (message.type() === 'error') consoleErrors.push(message.text());
			});
			page.on('pageerror', (error) => consoleErrors.push(error.message));
			const response = await page.goto(`${receiver.url}/docs/api`);
			expect(response?.status()).toBe(200);
			expect(await page.title()).toBe('Tracking CRM receiver — API reference');
			const operationIds = Object.values(reference.paths).flatMap((item) => Object.values(item).map((operation) => operation.operationId));
			const shown = await page.locator('section.operation').evaluateAll((sections) => sections.map((section) => section.id));
			expect([...shown].sort()).toEqual([...operationIds].sort());
			// Each operation says who may call it and lists every answer it documents.
			const batchSection = page.locator('#trackEvents');
			await expect(batchSection.locator('.auth').innerText()).resolves.toContain('Anyone: no authentication.');
			expect(await batchSection.locator('.answer .status').allInnerTexts()).toEqual(Object.keys(reference.paths['/api/track'].post.responses));
			await expect(page.locator('#getStats .auth').innerText()).resolves.toContain('A read or admin key of the site');
			// Keyboard: the first Tab reaches a link.
			await page.keyboard.press('Tab');
			expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('A');

			await page.screenshot({ path: path.join(OUTPUT, 'api-reference.png') });
			await batchSection.locator('details').evaluateAll((details) => details.forEach((element) => ((element as HTMLDetailsElement).open = true)));
			await batchSection.screenshot({ path: path.join(OUTPUT, 'api-reference-track.png') });

			await page.setViewportSize({ width: 390, height: 844 });
			await page.goto(`${receiver.url}/docs/api#getVisitorsReport`);
			expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
			await page.screenshot({ path: path.join(OUTPUT, 'api-reference-phone.png') });
			expect(consoleErrors).toEqual([]);
			await page.close();
		});
	});
});
