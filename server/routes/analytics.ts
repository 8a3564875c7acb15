import { type Request, type Response, Router } from 'express';
import { z } from 'zod/v4';

import type { PrismaClient } from '../../lib/db';
import { campaignAnalytics, conversionAnalytics } from '../analytics/campaigns';
import type { ReportFilter } from '../analytics/filters';
import { leadAnalytics } from '../analytics/leads';
import { siteStats, visitorAnalytics, type Interval, type TimeRange } from '../analytics/queries';
import { requireApiKey } from '../auth';
import { FILTER_SCHEMAS } from '../dashboard/filters';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
import { instant, parseQuery, quoted, text } from './inputs';
import { sendProblem } from './problems';

interface AnalyticsContext {
	prisma: PrismaClient;
	sites: SiteRegistry;
}

const DAY_MS = 86_400_000;
const DEFAULT_RANGE_DAYS = 30;
const MAX_RANGE_DAYS = 366;
/** Beyond a month, hourly buckets are thousands of points per chart: days serve better. */
const MAX_HOURLY_RANGE_DAYS = 31;
const INTERVALS = ['day', 'hour', 'week'] as const satisfies readonly Interval[];

/** A dashboard may name the site it expects; the key decides which site is answered. An empty name is a mistake, not "any site". */
const site = text(64).min(1, { error: 'must not be empty: name the key’s site, or leave the parameter out' }).optional();


/**
 * `from` and `to` bound a half-open range; a date-only `to` includes that whole (UTC) day, so
 * from=2026-11-01&to=2026-11-30 is all of November. Defaults: the 30 days up to now, by day.
 */
const rangeFields = {
	site,
	from: instant.optional(),
	to: instant.optional(),
	interval: z.enum(INTERVALS, { error: (issue) => `must be day, hour or week (got ${quoted(issue.input)})` }).default('day'),
};

function checkedRange(query: z.infer<z.ZodObject<typeof rangeFields>>, context: z.RefinementCtx): (TimeRange & { site?: string }) | typeof z.NEVER {
	const to = query.to ? new Date(query.to.at.getTime() + (query.to.dateOnly ? DAY_MS : 0)) : new Date();
	const from = query.from?.at ?? new Date(to.getTime() - DEFAULT_RANGE_DAYS * DAY_MS);
	const issue = (field: string, message: string) => {
		context.issues.push({ code: 'custom', path: [field], input: query, message });
		return z.NEVER;
	};
	if (from >= to) return issue('from', `must be before to (from ${from.toISOString()}, to ${to.toISOString()})`);
	const days = (to.getTime() - from.getTime()) / DAY_MS;
	if (days > MAX_RANGE_DAYS) return issue('from', `and to may be at most ${MAX_RANGE_DAYS} days apart (they are ${Math.ceil(days)} days apart)`);
	if (query.interval === 'hour' && days > MAX_HOURLY_RANGE_DAYS) {
		return issue('interval', `hour covers at most ${MAX_HOURLY_RANGE_DAYS} days; use interval=day or a shorter range`);
	}
	return { site: query.site, from, to, interval: query.interval };
}

export const rangeQuery = z.strictObject(rangeFields).transform(checkedRange);

/**
 * Stats are all-time totals and today's counts, never narrowed by a range. A dashboard may still
 * send them the range it sends every report; it is checked as the reports check it, so a range
 * that is wrong there is wrong here too, and any other parameter is refused.
 */
export const statsQuery = rangeQuery;

/** The visitors report also takes the dashboards' filters (a channel, a UTM campaign, a page viewed), checked as the pages check them. */
export const visitorsQuery = z
	.strictObject({ ...rangeFields, channel: FILTER_SCHEMAS.channel.optional(), campaign: FILTER_SCHEMAS.campaign.optional(), page: FILTER_SCHEMAS.page.optional() })
	.transform((query, context): (TimeRange & { site?: string; filter: ReportFilter }) | typeof z.NEVER => {
		const range = checkedRange(query, context);
		if (range === z.NEVER) return z.NEVER;
		return { ...range, filter: { channel: query.channel, campaign: query.campaign, page: query.page } };
	});

/**
 * Read endpoints: a read (or admin) key, whose site is the only one answered for. The `site`
 * parameter lets a dashboard say which site it expects; asking for any other is refused, never
 * answered with the key's site or the other one.
 */
export function analyticsRouter({ prisma, sites }: AnalyticsContext): Router {
	const router = Router();
	const readKey = requireApiKey(prisma, 'read');

	function siteOf(req: Request, res: Response, asked: string | undefined): RegisteredSite | undefined {
		const site = sites.byDatabaseId(req.auth!.siteId);
		if (!site) {
			sendProblem(res, 404, 'site_not_served', 'The site of this API key is not configured on this receiver; add its config file', {
				issues: [{ field: 'API key', message: 'belongs to a site this receiver does not serve' }],
			});
			return undefined;
		}
		if (asked !== undefined && asked !== site.key) {
			sendProblem(res, 403, 'site_not_allowed', 'This API key belongs to another site; use a key of the site you ask for, or leave out the site parameter', {
				issues: [{ field: 'site', message: 'is not the site of this API key' }],
			});
			return undefined;
		}
		return site;
	}

	function answer(res: Response, body: object): void {
		// Per-key figures must not land in a shared cache.
		res.setHeader('Cache-Control', 'private, no-store');
		res.json(body);
	}

	router.get('/api/stats', readKey, async (req, res) => {
		const query = parseQuery(statsQuery, req, res, 'invalid_parameter');
		if (!query) return;
		const site = siteOf(req, res, query.site);
		if (!site) return;
		const now = new Date();
		const todayStartedAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
		const stats = await siteStats(prisma, site.id, todayStartedAt);
		answer(res, {
			site: site.key,
			generatedAt: now.toISOString(),
			asOf: stats.asOf.toISOString(),
			events: { total: stats.eventsTotal, today: stats.eventsToday, todayStartedAt: todayStartedAt.toISOString(), lastAt: stats.lastEventAt },
			visitors: stats.visitors,
			sessions: stats.sessions,
			leads: stats.leads,
			outbox: { pending: stats.outboxPending, dead: stats.outboxDead },
		});
	});

	const stagesOf = (site: RegisteredSite) => site.config.crm.lifecycleStages.map((stage) => stage.name);
	const reports: Array<{ name: string; query: z.ZodType<TimeRange & { site?: string; filter?: ReportFilter }>; run: (site: RegisteredSite, range: TimeRange & { filter?: ReportFilter }) => Promise<object> }> = [
		{ name: 'visitors', query: visitorsQuery, run: (site, range) => visitorAnalytics(prisma, site.id, range, range.filter) },
		{ name: 'leads', query: rangeQuery, run: (site, range) => leadAnalytics(prisma, site.id, range, stagesOf(site)) },
		{ name: 'campaigns', query: rangeQuery, run: (site, range) => campaignAnalytics(prisma, site.id, range) },
		{ name: 'conversion', query: rangeQuery, run: (site, range) => conversionAnalytics(prisma, site.id, range, stagesOf(site)) },
	];
	for (const report of reports) {
		router.get(`/api/analytics/${report.name}`, readKey, async (req, res) => {
			const range = parseQuery(report.query, req, res, 'invalid_parameter');
			if (!range) return;
			const site = siteOf(req, res, range.site);
			if (!site) return;
			const body = await report.run(site, range);
			answer(res, { site: site.key, range: { from: range.from.toISOString(), to: range.to.toISOString(), interval: range.interval }, ...body });
		});
	}
	return router;
}
