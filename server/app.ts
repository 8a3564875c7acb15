import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import helmet from 'helmet';
import type { Pool } from 'pg';

import type { Database } from '../lib/db';
import { SITE_HEADER, verifySignature } from '../lib/signing';
import { siteOutbox } from './analytics/queries';
import { presentsApiKey, requireApiKey } from './auth';
import type { EmbeddedEngine } from './engine/engine';
import type { Logger } from './logger';
import type { MailCatcher } from './mail/catcher';
import { deadLetterAdvice } from './outbox/deadLetters';
import { outboxLag, type OutboxDispatcher, type OutboxLag } from './outbox/dispatcher';
import { RepeatedFailure, SUMMARY_INTERVAL_MS } from './repeatedFailure';
import { analyticsRouter } from './routes/analytics';
import { demoRouter } from './routes/demo';
import { apiReferenceRouter } from './routes/apiReference';
import { dashboardRouter } from './routes/dashboard';
import { emailRouter } from './routes/email';
import { mailboxRouter } from './routes/mailbox';
import { ingestRoutes } from './routes/ingest';
import { testWorkflowRouter } from './routes/testWorkflow';
import { trackerRouter } from './routes/tracker';
import { privacyRouter } from './routes/privacy';
import { requestLog } from './requestLog';
import { readBodyFor } from './routes/body';
import { databaseFailure, PROBLEM_TYPE, quotedPath, RETRY_AFTER_SECONDS, sendNoRoute, sendProblem, sendUnavailable } from './routes/problems';
import { trustProxyValue, type ReceiverSettings } from './settings';
import type { SiteRegistry } from './siteRegistry';

export interface AppContext {
	db: Database;
	sites: SiteRegistry;
	settings: ReceiverSettings;
	logger: Logger;
	dispatcher?: OutboxDispatcher;
	version: string;
	/** See IngestContext.ingestPool. */
	ingestPool?: Pool;
	/** The embedded engine once it runs (it starts after the receiver listens); absent when every site names an n8n. */
	engine?: () => EmbeddedEngine | undefined;
	mailCatcher?: MailCatcher;
}

export interface App {
	/** The receiver's request listener. */
	handle: RequestListener;
	/** Stops the timers of the rate limits. */
	close(): void;
}

/**
 * helmet's headers are the same for every answer, so they are recorded once for the ingest
 * route, which runs outside Express.
 */
function recordHeaders(middleware: RequestHandler): Array<[string, string]> {
	const headers: Array<[string, string]> = [];
	const recorder = { setHeader: (name: string, value: unknown) => headers.push([name, String(value)]), removeHeader: () => undefined };
	void middleware({} as never, recorder as never, () => undefined);
	return headers;
}

/** POST /api/track, as Express would route it (any case, an optional trailing slash, a query string). */
const isTrack = (req: IncomingMessage) => req.method === 'POST' && /^\/api\/track\/?(\?|$)/i.test(req.url ?? '');

/** Outbox rows older than this mean n8n is not keeping up (or not reachable): the receiver is degraded. */
const MAX_HEALTHY_LAG_SECONDS = 300;

async function n8nReachable(urls: string[]): Promise<{ url: string; ok: boolean; error?: string }[]> {
	return Promise.all(
		urls.map(async (url) => {
			try {
				await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(2000) });
				return { url, ok: true };
			} catch (error) {
				return { url, ok: false, error: (error as Error).message };
			}
		}),
	);
}

/**
 * What runs the workflows: the embedded engine (n8n-core in this process), a real n8n at the
 * sites' URLs, or both when some sites name an n8n and others do not.
 */
function engineName(context: AppContext): string {
	const sites = context.sites.all();
	const toN8n = sites.some((site) => site.n8nUrl);
	const embedded = sites.some((site) => !site.n8nUrl);
	const parts = [...(embedded ? [context.engine?.() ? 'embedded n8n engine' : 'embedded n8n engine (not running: DISPATCHER=off)'] : []), ...(toN8n ? ['n8n'] : [])];
	return parts.join(' + ') || 'none';
}

/** A layer of Express's router, as far as the 405 reads it: a route, a router, or a middleware. */
interface RouterLayer {
	match(path: string): { path: string } | false;
	route?: { methods: Record<string, boolean | undefined> };
	handle?: { stack?: RouterLayer[] };
}

/**
 * The methods the routes of `stack` answer at `path`, read from the router itself, so a path
 * that exists answers a wrong method with 405 and its methods, whoever registered them.
 */
function methodsAt(stack: RouterLayer[], path: string, methods = new Set<string>()): Set<string> {
	for (const layer of stack) {
		const router = layer.handle?.stack;
		if (!layer.route && !router) continue;
		let matched: { path: string } | false;
		try {
			matched = layer.match(path);
		} catch {
			// A parameter that is not valid percent-encoding matches nothing here; the 404 says so.
			continue;
		}
		if (!matched) continue;
		if (layer.route) {
			for (const [method, registered] of Object.entries(layer.route.methods)) if (registered && method !== '_all') methods.add(method.toUpperCase());
		} else if (router) {
			methodsAt(router, path.slice(matched.path.length) || '/', methods);
		}
	}
	// Express answers HEAD with a GET route.
	if (methods.has('GET')) methods.add('HEAD');
	return methods;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

function landingPage({ engine, demo, mailbox }: { engine: string; demo: boolean; mailbox: boolean }): string {
	const links = [
		...(demo ? [['/demo/', 'Demo site', 'browse it and send the contact form: the CRM sees it']] : []),
		...(mailbox ? [['/mailbox', 'Mailbox', 'the emails the CRM sent, caught here instead of delivered']] : []),
		['/dashboard', 'Dashboards', 'visitors, leads and campaigns of a site: sign in with its read or admin key'],
		['/health', 'Health', 'whether the receiver, its database and its engine are well'],
		['/docs/api', 'API reference', 'every HTTP route with its authentication, parameters and answers (OpenAPI at /api/openapi.json)'],
	];
	return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Tracking CRM</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1f2330}li{margin:.5rem 0}a{font-weight:600}</style></head><body>
<h1>Tracking CRM</h1><p>Workflows run by: ${escapeHtml(engine)}.</p><ul>
${links.map(([href, name, what]) => `<li><a href="${href}">${name}</a>: ${what}</li>`).join('\n')}
</ul></body></html>`;
}

/** What to do while the database does not answer, and what happens to requests meanwhile. */
function databaseFix(db: Database): string {
	const check =
		db.kind === 'postgres'
			? `check that Postgres at ${db.location} runs and accepts connections (DATABASE_URL)`
			: `the embedded database in ${db.location} failed: check the disk it is on (free space, permissions)`;
	return (
		`${check}. Meanwhile requests are answered 503 with Retry-After, trackers keep their batches and send them again, and nothing already accepted is lost; ` +
		`further failures are counted in one line every ${SUMMARY_INTERVAL_MS / 1000} s until the database works again`
	);
}

export function createApp(context: AppContext): App {
	const { db, sites, settings, logger } = context;
	/** Every request fails while the database is away: the log says so once, then counts, then says when it is back. */
	const databaseFailures = new RepeatedFailure(logger, { failed: 'the database failed', fix: databaseFix(db), recovered: 'the database works again' });
	const app = express();
	app.disable('x-powered-by');
	app.set('trust proxy', trustProxyValue(settings.TRUST_PROXY));
	const securityHeaders = helmet({ crossOriginResourcePolicy: { policy: 'cross-origin' } });
	app.use(requestLog(logger));
	app.use(securityHeaders);

	const ingest = ingestRoutes({
		prisma: db.prisma,
		sites,
		settings,
		logger,
		ingestPool: context.ingestPool,
		sql: db.sql,
		trustProxy: app.get('trust proxy fn') as (address: string, hop: number) => boolean,
		securityHeaders: recordHeaders(securityHeaders),
		databaseFailures,
	});
	app.use(ingest.router);
	app.use(trackerRouter({ sites }));
	app.use(analyticsRouter({ prisma: db.prisma, sites }));
	app.use(emailRouter({ prisma: db.prisma, sites, logger, tokenSecret: settings.EMAIL_TOKEN_SECRET }));
	app.use(privacyRouter({ prisma: db.prisma, logger }));
	app.use(testWorkflowRouter({ prisma: db.prisma, sites, settings, engine: context.engine }));
	app.use(demoRouter({ prisma: db.prisma, sites, siteKey: settings.DEMO_SITE }));
	app.use(mailboxRouter({ prisma: db.prisma, sites, catcher: context.mailCatcher }));
	app.use(dashboardRouter({ prisma: db.prisma, sites, settings, logger }));
	app.use(apiReferenceRouter({ sites, version: context.version }));

	/**
	 * Where the embedded engine's CRM Hand Off nodes reach the next workflow, as they would reach
	 * n8n's /webhook/<path>: the workflow's CRM Tracker Trigger checks the signature and the
	 * delivery, so this route is as closed as n8n's own webhook.
	 */
	const readDelivery = readBodyFor('raw', { limitBytes: 16 * 1024 * 1024, send: 'one signed delivery as JSON' });
	app.post('/webhook/:path', readDelivery, async (req, res, next) => {
		const body: unknown = req.body;
		const raw = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
		const running = context.engine?.();
		if (!running) {
			refuseWithoutEngine(raw, req.headers, res);
			return;
		}
		try {
			const answer = await running.deliver(String(req.params.path), raw, req.headers);
			if (answer.problem) res.type(PROBLEM_TYPE);
			res.status(answer.status).json(answer.body);
		} catch (error) {
			next(error);
		}
	});

	/**
	 * A delivery posted here while no embedded engine runs. Senders retry a 503, so only an engine
	 * still starting answers one with Retry-After; a receiver whose sites all name an n8n never
	 * runs one, and one with DISPATCHER=off runs none until it is restarted. Which n8n runs a
	 * site's workflows is said only to a sender that signed with the site's secret, as /health
	 * names it only to the site's admin key.
	 */
	function refuseWithoutEngine(raw: Buffer, headers: IncomingMessage['headers'], res: express.Response): void {
		if (sites.all().every((site) => site.n8nUrl)) {
			const claimed = headers[SITE_HEADER];
			const site = typeof claimed === 'string' ? sites.byPublicKey(claimed) : undefined;
			const n8nUrl = site?.webhookSecret !== undefined && verifySignature(site.webhookSecret, raw, headers).valid ? site.n8nUrl : undefined;
			const where = n8nUrl ? `the n8n at ${n8nUrl}` : "the n8n each site's integrations.n8nUrl names";
			sendProblem(res, 404, 'workflows_run_in_n8n', `No workflow runs in this receiver: they run in ${where}; post deliveries to its /webhook/<path>, not the receiver's`, {
				issues: [{ field: 'path', message: `is a webhook of ${where}, not of this receiver` }],
			});
			return;
		}
		if (settings.DISPATCHER === 'off') {
			sendProblem(res, 503, 'engine_not_running', 'The embedded engine does not run in this receiver (DISPATCHER=off), so no workflow takes deliveries; unset DISPATCHER and restart the receiver');
			return;
		}
		res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
		sendProblem(res, 503, 'engine_starting', 'The embedded engine is starting and runs no workflow yet; retry in a few seconds');
	}

	/** The first page a newcomer opens: where everything is. */
	app.get('/', (_req, res) => {
		res.setHeader('Cache-Control', 'no-store');
		res.type('html').send(landingPage({ engine: engineName(context), demo: sites.all().length > 0, mailbox: Boolean(context.mailCatcher) }));
	});

	/**
	 * Says "this is a Tracking CRM receiver", whatever its health: the Tracking CRM API credential's
	 * test in n8n asks here, so a URL of anything else (n8n itself, a web page, a 404) fails it.
	 */
	app.get('/tracking-crm', (_req, res) => {
		res.setHeader('Cache-Control', 'no-store');
		res.json({ trackingCrmReceiver: context.version });
	});

	/**
	 * Anyone may ask whether the receiver is up: the answer is only `ok` or `degraded` (200 or
	 * 503). The details (database, outbox, deliveries, n8n) are for an admin key of a site and
	 * cover that site only: no other site's keys, rows, webhooks or delivery errors, which is why
	 * the dispatcher's global counters and last error stay in the logs. Dead-lettered rows keep it
	 * degraded until someone decides about them (scripts/dead-letters): they are CRM work that
	 * will not happen by itself.
	 */
	const adminKey = requireApiKey(db.prisma, 'admin');
	/** A key cannot be checked while the database is away; the answer then says that, with the database's state. */
	const adminKeyUnlessDatabaseDown: RequestHandler = (req, res, next) => {
		if (!presentsApiKey(req)) {
			next();
			return;
		}
		return adminKey(req, res, (error?: unknown) => {
			if (error !== undefined && databaseFailure(error) === 'unavailable') {
				res.locals.keyUnchecked = true;
				next();
				return;
			}
			next(error);
		});
	};
	app.get('/health', adminKeyUnlessDatabaseDown, async (req, res) => {
		const started = Date.now();
		let database: { ok: boolean; kind: string; latencyMs?: number } = { ok: false, kind: db.kind };
		let lag: OutboxLag | undefined;
		try {
			await db.prisma.$queryRawUnsafe('SELECT 1');
			database = { ok: true, kind: db.kind, latencyMs: Date.now() - started };
			lag = await outboxLag(db.sql);
			databaseFailures.succeeded();
		} catch (error) {
			databaseFailures.failed(error);
		}
		const n8nUrls = [...new Set(sites.all().flatMap((site) => (site.endpoints.size > 0 && site.n8nUrl ? [site.n8nUrl] : [])))];
		const n8n = await n8nReachable(n8nUrls);
		const healthy = database.ok && (lag?.oldestPendingAgeSeconds ?? 0) <= MAX_HEALTHY_LAG_SECONDS && lag?.dead === 0 && n8n.every((target) => target.ok);
		const status = healthy ? 'ok' : 'degraded';
		res.setHeader('Cache-Control', 'no-store');
		const engine = engineName(context);
		if (res.locals.keyUnchecked) {
			res.status(healthy ? 200 : 503).json({
				status,
				version: context.version,
				engine,
				database,
				message: 'The database did not answer, so the API key could not be checked: the site’s details come back with the database',
			});
			return;
		}
		const site = req.auth && sites.byDatabaseId(req.auth.siteId);
		if (!site) {
			res.status(healthy ? 200 : 503).json({ status, version: context.version, engine });
			return;
		}
		const siteRows = database.ok ? await siteOutbox(db.prisma, site.id) : null;
		const outbox = siteRows && { ...siteRows, maxHealthyLagSeconds: MAX_HEALTHY_LAG_SECONDS, ...(siteRows.dead > 0 && { action: deadLetterAdvice(siteRows.dead, site.key) }) };
		const forwarding = site.endpoints.size > 0;
		res.status(healthy ? 200 : 503).json({
			status,
			version: context.version,
			engine,
			site: { key: site.key, forwarding: [...site.endpoints.keys()], signed: Boolean(site.webhookSecret) },
			database,
			outbox,
			dispatcher: { enabled: settings.DISPATCHER === 'on', lastSuccessAt: context.dispatcher?.metrics.lastSuccessAt ?? null },
			n8n: forwarding ? n8n.filter((target) => target.url === site.config.integrations.n8nUrl) : [],
		});
	});

	app.use((req, res) => {
		const allowed = [...methodsAt((app as unknown as { router: { stack: RouterLayer[] } }).router.stack, req.path)].sort();
		// A route of the method that passed the request on (an asset not found) makes it a 404, not a 405.
		if (allowed.length && !allowed.includes(req.method)) {
			res.setHeader('Allow', allowed.join(', '));
			sendProblem(res, 405, 'method_not_allowed', `${req.method} is not a method of ${quotedPath(req.path)}; use ${allowed.join(', ')}`, { issues: [{ field: 'method', message: `must be one of ${allowed.join(', ')}` }] });
			return;
		}
		sendNoRoute(req, res);
	});

	const onError: ErrorRequestHandler = (error, _req, res, _next) => {
		const failure = databaseFailure(error);
		if (failure === 'unavailable') {
			databaseFailures.failed(error);
			sendUnavailable(res, 'request');
			return;
		}
		if (failure === 'input') {
			// Every route's schema should have refused the value first; this is the net under it.
			logger.warn({ err: error }, 'the database refused a value of the request');
			sendProblem(res, 400, 'invalid_parameter', 'A value of the request is outside what the database can hold; check the dates, numbers and text sent', {
				issues: [{ field: '(request)', message: 'holds a value the database cannot store or compare' }],
			});
			return;
		}
		// The router could not percent-decode a path segment (e.g. /e/o/%ZZ).
		if (error instanceof URIError && (error as URIError & { status?: number }).status === 400) {
			sendProblem(res, 400, 'invalid_path', 'The path is not valid percent-encoding; copy the link again', { issues: [{ field: 'path', message: 'has a malformed %-escape' }] });
			return;
		}
		const status = typeof error?.status === 'number' && error.status >= 400 && error.status < 500 ? error.status : 500;
		if (status === 500) {
			logger.error({ err: error }, 'unhandled error');
			sendProblem(res, 500, 'internal', 'The request could not be processed; nothing was stored');
			return;
		}
		// Every route reads its body through readBodyFor, which answers its own refusals: this is the net under it.
		sendProblem(res, status, String(error.type ?? 'bad_request'), 'The request could not be read; check its body and headers against the API reference at /docs/api', {
			issues: [{ field: 'body', message: 'could not be read' }],
		});
	};
	app.use(onError);
	return {
		handle: (req: IncomingMessage, res: ServerResponse) => (isTrack(req) ? ingest.track(req, res) : app(req, res)),
		close: ingest.close,
	};
}
