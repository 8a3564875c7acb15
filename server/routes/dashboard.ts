import { Router, type NextFunction, type Request, type Response } from 'express';

import type { PrismaClient } from '../../lib/db';
import { dashboardAssets, type DashboardAssets } from '../dashboard/assets';
import { visitorAnalytics } from '../analytics/queries';
import { fromOwnOrigin, ownOrigins } from '../dashboard/csrf';
import { resolveFilter, type FilterQuery } from '../dashboard/filters';
import { invalidPeriodPage, PAGE_CSP, PAGES, signInPage, visitorsPage, type SiteHeading } from '../dashboard/pages';
import { resolveRange, type PeriodQuery } from '../dashboard/range';
import { cookieValue, endSessions, keyForSignIn, sessionOf, SESSION_COOKIE, SESSION_HOURS, startSession, type DashboardSession } from '../dashboard/session';
import { SignInLimit } from '../dashboard/signInLimit';
import { toCsv } from '../dashboard/tables';
import { isVisitorTable, loadVisitorReport, VISITOR_TABLES, visitorTables } from '../dashboard/visitors';
import { clientOf } from '../ingest/normalize';
import type { Logger } from '../logger';
import type { ReceiverSettings } from '../settings';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';

import { readBodyFor } from './body';
import { registerCampaignRoutes } from './dashboardCampaigns';
import { registerLeadRoutes } from './dashboardLeads';

/** What a dashboard's routes get: they are registered behind the sign-in, so req.dashboard is set. */
export interface DashboardRouteContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
	assets: DashboardAssets;
	logger: Logger;
}

export interface DashboardContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
	settings?: Pick<ReceiverSettings, 'PUBLIC_URL'>;
	logger: Logger;
}

interface SignedIn {
	session: DashboardSession;
	site: RegisteredSite;
}

declare module 'express-serve-static-core' {
	interface Request {
		dashboard?: SignedIn;
	}
}

const SIGN_IN = '/dashboard/sign-in';
/** Assets are named by their content's hash: a year in any cache, never revalidated. */
const ASSET_CACHE = 'public, max-age=31536000, immutable';

/** Why the sign-in form shows again, by the fixed word in its URL (never text from the URL itself). */
const ENDED: Record<string, { kind: 'error' | 'ok'; text: string }> = {
	'signed-out': { kind: 'ok', text: 'You are signed out. Every dashboard session of that key has ended.' },
	session: { kind: 'error', text: 'Your session ended (it expired, someone signed out with this key, or the key was revoked). Sign in again.' },
};

/** One value of a query parameter; a repeated one counts as its first (refusedRepeats has refused it before any page reads it). */
export const single = (value: unknown): string | undefined => (typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : undefined);

/** The labels the pages' forms show for their parameters; any other is named as it is in the URL. */
const PARAMETER_LABELS: Record<string, string> = { range: 'Period', from: 'From', to: 'To', interval: 'Interval', channel: 'Channel', campaign: 'Campaign', page: 'Page' };

/**
 * The first parameter the URL gives more than once, as the notice names it. The JSON API refuses
 * a repeated parameter; a page that showed one of the values would show figures for a period or
 * filter the person may not have meant, with no word that the other was dropped.
 */
export function repeatedParameter(query: Request['query'], path: string): { field: string; message: string } | undefined {
	const found = Object.entries(query).find(([, value]) => typeof value !== 'string');
	if (!found) return undefined;
	const [name, value] = found;
	// On the lead list, page is the list's page number, not the filter.
	const label = (name === 'page' && path.startsWith('/dashboard/leads') ? undefined : PARAMETER_LABELS[name]) ?? name.slice(0, 60);
	const values = Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
	const shown = values.length ? ` (${values.slice(0, 3).map((item) => JSON.stringify(item.slice(0, 40))).join(', ')}${values.length > 3 ? ', …' : ''})` : '';
	return { field: label, message: `is given more than once in the address${shown}; keep one value, or choose again in the form` };
}

export function periodOf(req: Request): PeriodQuery {
	return { range: single(req.query.range), from: single(req.query.from), to: single(req.query.to), interval: single(req.query.interval) };
}

export function filterOf(req: Request): FilterQuery {
	return { channel: single(req.query.channel), campaign: single(req.query.campaign), page: single(req.query.page) };
}

export const headingOf = (site: RegisteredSite): SiteHeading => ({ key: site.key, name: site.config.site.name });

/**
 * The dashboards: web pages for a site's owner and marketers, signed in with one of the site's
 * read or admin keys. Every page and download reads the site from the session, never from the
 * URL, so a key sees its own site only. The pages carry their own Content-Security-Policy: only
 * this router's script and stylesheet files, nothing inline, nothing from another origin.
 */
export function dashboardRouter({ prisma, sites, settings, logger }: DashboardContext): Router {
	const router = Router();
	const assets = dashboardAssets();
	const limit = new SignInLimit();

	router.get('/dashboard/assets/:file', (req, res, next) => {
		const asset = assets.byUrl.get(req.path);
		if (!asset) {
			next();
			return;
		}
		res.set({ 'Content-Type': asset.type, 'Cache-Control': ASSET_CACHE }).send(asset.body);
	});

	router.use('/dashboard', (_req, res, next) => {
		// Figures of one site, behind a cookie: never in a shared cache, never indexed. The referrer
		// policy lets the pages' own form posts carry their Origin (helmet's no-referrer makes it "null").
		res.set({ 'Cache-Control': 'no-store', 'X-Robots-Tag': 'noindex', 'Referrer-Policy': 'same-origin', 'Content-Security-Policy': PAGE_CSP });
		next();
	});

	const page = (res: Response, status: number, html: string) => res.status(status).type('html').send(html);
	const network = (req: Request) => clientOf(req.ip).limitKey;
	const cookieOptions = (req: Request) => ({ httpOnly: true, secure: req.secure, sameSite: 'strict' as const, path: '/dashboard' });
	const fromThisSite = (req: Request) => fromOwnOrigin(req.headers, ownOrigins(req.protocol, req.host, settings?.PUBLIC_URL));
	const refuseCrossSite = (res: Response) =>
		res.status(403).type('text/plain').send('This form must be sent from the dashboard page of this receiver (its Origin or Referer header names another site, or none). Open the dashboard and try again.');

	async function signedIn(req: Request): Promise<SignedIn | undefined> {
		const session = await sessionOf(prisma, cookieValue(req.headers.cookie, SESSION_COOKIE), new Date());
		const site = session && sites.byDatabaseId(session.siteId);
		return session && site ? { session, site } : undefined;
	}

	router.get(SIGN_IN, async (req, res) => {
		if (await signedIn(req)) {
			res.redirect(303, PAGES[0].path);
			return;
		}
		page(res, 200, signInPage(assets, ENDED[single(req.query.ended) ?? '']));
	});

	// A form the browser could not send is answered as the sign-in page answers every other mistake.
	const readForm = readBodyFor('form', { limitBytes: 4 * 1024, send: 'the sign-in form with just the key' }, (res, status, _type, message) =>
		page(res, status, signInPage(assets, { kind: 'error', text: `${message}.` })),
	);

	/**
	 * A body that carries no key the way the form sends one: the reader skips a body of another
	 * type, and a key sent twice or under another name would otherwise read as none at all, so
	 * "Enter an API key" would answer someone who did. Not counted as a wrong key: no key was tried.
	 */
	function misfitForm(req: Request): { status: number; text: string } | undefined {
		const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
		if (hasBody && !req.is('application/x-www-form-urlencoded')) {
			const type = (req.headers['content-type'] ?? 'none').split(';')[0].trim().slice(0, 60) || 'none';
			return { status: 415, text: `The sign-in takes the key as one form field named key (application/x-www-form-urlencoded, as this page’s form sends it), not a body of type ${type}.` };
		}
		const body: Record<string, unknown> = req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : {};
		if (Array.isArray(body.key)) return { status: 400, text: `Send one key: the form field named key was sent ${body.key.length} times.` };
		const others = Object.keys(body).filter((name) => name !== 'key');
		if (body.key === undefined && others.length) {
			return { status: 400, text: `Send the key in the form field named key; the form sent ${others.slice(0, 3).map((name) => name.slice(0, 30)).join(', ')}${others.length > 3 ? ', …' : ''} instead.` };
		}
		return undefined;
	}

	router.post(SIGN_IN, readForm, async (req, res) => {
		if (!fromThisSite(req)) {
			refuseCrossSite(res);
			return;
		}
		const wait = limit.blocked(network(req));
		if (wait !== undefined) {
			res.setHeader('Retry-After', String(wait));
			page(res, 429, signInPage(assets, { kind: 'error', text: `Too many wrong keys from your network. Wait ${wait} seconds, then try again.` }));
			return;
		}
		const misfit = misfitForm(req);
		if (misfit) {
			page(res, misfit.status, signInPage(assets, { kind: 'error', text: misfit.text }));
			return;
		}
		const typed = typeof req.body?.key === 'string' ? req.body.key.trim() : '';
		const key = typed && typed.length <= 200 ? await keyForSignIn(prisma, typed) : undefined;
		const site = key && sites.byDatabaseId(key.siteId);
		if (!key || !site) {
			limit.fail(network(req));
			const text = !typed
				? 'Enter an API key.'
				: key
					? 'This key belongs to a site this receiver does not serve; add the site’s config file, or use a key of a site it serves.'
					: 'This key is not valid or was revoked. Check that you copied all of it (it starts with tcrm_read_ or tcrm_admin_).';
			page(res, 401, signInPage(assets, { kind: 'error', text }));
			return;
		}
		const session = await startSession(prisma, key.id, new Date());
		res.cookie(SESSION_COOKIE, session.value, { ...cookieOptions(req), maxAge: SESSION_HOURS * 3_600_000 });
		logger.info({ site: site.key, keyName: key.name }, 'dashboard sign-in');
		res.redirect(303, PAGES[0].path);
	});

	router.post('/dashboard/sign-out', async (req, res) => {
		if (!fromThisSite(req)) {
			refuseCrossSite(res);
			return;
		}
		const current = await signedIn(req);
		if (current) {
			await endSessions(prisma, current.session.keyId);
			logger.info({ site: current.site.key, keyName: current.session.keyName }, 'dashboard sign-out');
		}
		res.clearCookie(SESSION_COOKIE, cookieOptions(req));
		res.redirect(303, `${SIGN_IN}?ended=signed-out`);
	});

	/** Everything past here needs a session; without one, the sign-in form (saying why, if a cookie was there). */
	router.use('/dashboard', async (req: Request, res: Response, next: NextFunction) => {
		const current = await signedIn(req);
		if (!current) {
			const hadCookie = cookieValue(req.headers.cookie, SESSION_COOKIE) !== undefined;
			if (hadCookie) res.clearCookie(SESSION_COOKIE, cookieOptions(req));
			res.redirect(303, hadCookie ? `${SIGN_IN}?ended=session` : SIGN_IN);
			return;
		}
		req.dashboard = current;
		next();
	});

	router.use('/dashboard', (req: Request, res: Response, next: NextFunction) => {
		const path = req.originalUrl.split('?')[0];
		const repeated = repeatedParameter(req.query, path);
		if (!repeated) {
			next();
			return;
		}
		// A download answers its mistakes in plain text, as its own checks do; a page shows its form with the notice.
		if (path.endsWith('.csv')) {
			res.status(400).type('text/plain').send(`${repeated.field} ${repeated.message}.`);
			return;
		}
		const active = [...PAGES].reverse().find((candidate) => path === candidate.path || path.startsWith(`${candidate.path}/`)) ?? PAGES[0];
		const period = resolveRange(periodOf(req), new Date());
		page(res, 400, invalidPeriodPage(headingOf(req.dashboard!.site), active, period.ok ? period.range.chosen : period.chosen, assets, repeated.field, repeated.message, resolveFilter(filterOf(req)).chosen));
	});

	router.get('/dashboard', (req, res) => {
		const query = req.url.indexOf('?');
		res.redirect(302, `${PAGES[0].path}${query >= 0 ? req.url.slice(query) : ''}`);
	});

	router.get(PAGES[0].path, async (req, res) => {
		const { site } = req.dashboard!;
		const now = new Date();
		const period = resolveRange(periodOf(req), now);
		const filter = resolveFilter(filterOf(req));
		if (!period.ok || !filter.ok) {
			const [field, message] = !period.ok ? [period.field, period.message] : !filter.ok ? [filter.field, filter.message] : ['', ''];
			page(res, 400, invalidPeriodPage(headingOf(site), PAGES[0], period.ok ? period.range.chosen : period.chosen, assets, field, message, filter.chosen));
			return;
		}
		const report = await loadVisitorReport(prisma, site.id, period.range, filter.filter, now);
		page(res, 200, visitorsPage(headingOf(site), report, filter.chosen, assets));
	});

	router.get('/dashboard/visitors.csv', async (req, res) => {
		const { site } = req.dashboard!;
		const period = resolveRange(periodOf(req), new Date());
		if (!period.ok) {
			res.status(400).type('text/plain').send(`${period.field} ${period.message}.`);
			return;
		}
		const filter = resolveFilter(filterOf(req));
		if (!filter.ok) {
			res.status(400).type('text/plain').send(`${filter.field} ${filter.message}.`);
			return;
		}
		const name = single(req.query.table) ?? '';
		if (!isVisitorTable(name)) {
			res.status(400).type('text/plain').send(`table must be one of ${VISITOR_TABLES.join(', ')}.`);
			return;
		}
		const table = visitorTables(await visitorAnalytics(prisma, site.id, period.range, filter.filter))[name];
		const day = (at: Date) => at.toISOString().slice(0, 10);
		const file = `${site.key.replace(/[^\w.-]/g, '_')}-${name}-${day(period.range.from)}-to-${day(new Date(period.range.to.getTime() - 1))}.csv`;
		res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${file}"` }).send(toCsv(table));
	});

	const routeContext: DashboardRouteContext = { prisma, sites, assets, logger };
	registerLeadRoutes(router, routeContext);
	registerCampaignRoutes(router, routeContext);

	return router;
}
