import { type Request, type Response, Router } from 'express';

import type { PrismaClient } from '../../lib/db';
import { campaignAnalytics, conversionAnalytics, leadAnalytics, siteStats, visitorAnalytics, type Interval, type TimeRange } from '../analytics/queries';
import { requireApiKey } from '../auth';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
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
const INTERVALS: readonly Interval[] = ['day', 'hour'];

const INSTANT_FORMAT = 'an ISO 8601 date or date-time with a zone, such as 2026-11-01 or 2026-11-01T09:30:00Z';
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3})\d*)?)?(Z|([+-])(\d{2}):(\d{2})))?$/;

interface Issue {
	field: string;
	message: string;
}

/**
 * Strict on purpose: Date.parse reads 2026-02-30 as March 2 and a time without a zone in the
 * server's zone, so the same URL would mean different ranges on different machines.
 */
function parseInstant(text: string): { at: Date; dateOnly: boolean } | undefined {
	const match = INSTANT.exec(text);
	if (!match) return undefined;
	const [year, month, day, hour, minute, second] = match.slice(1, 7).map((part) => Number(part ?? 0));
	const millisecond = Number((match[7] ?? '0').padEnd(3, '0'));
	const wallClock = new Date(Date.UTC(year, month - 1, day, hour, minute, second, millisecond));
	// Date.UTC rolls invalid parts over (day 30 of February is March 2); a roll-over shows as a changed part.
	const valid = wallClock.getUTCFullYear() === year && wallClock.getUTCMonth() === month - 1 && wallClock.getUTCDate() === day && hour < 24 && minute < 60 && second < 60;
	const [sign, zoneHours, zoneMinutes] = [match[9], Number(match[10] ?? 0), Number(match[11] ?? 0)];
	if (!valid || zoneHours > 23 || zoneMinutes > 59) return undefined;
	const offsetMs = (sign === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes) * 60_000;
	return { at: new Date(wallClock.getTime() - offsetMs), dateOnly: match[4] === undefined };
}

function singleValue(query: Request['query'], name: string): string | undefined | Issue {
	const value = query[name];
	if (value === undefined || typeof value === 'string') return value;
	return { field: name, message: 'must be given once, as a single value' };
}

const isIssue = (value: unknown): value is Issue => typeof value === 'object' && value !== null && 'field' in value;

/**
 * `from` and `to` bound a half-open range; a date-only `to` includes that whole (UTC) day, so
 * from=2026-11-01&to=2026-11-30 is all of November. Defaults: the 30 days up to now, by day.
 */
function readRange(query: Request['query'], now: Date): TimeRange | Issue {
	const texts = { from: singleValue(query, 'from'), to: singleValue(query, 'to'), interval: singleValue(query, 'interval') };
	for (const text of Object.values(texts)) if (isIssue(text)) return text;
	const parsed: Partial<Record<'from' | 'to', { at: Date; dateOnly: boolean }>> = {};
	for (const field of ['from', 'to'] as const) {
		const text = texts[field] as string | undefined;
		if (text === undefined) continue;
		parsed[field] = parseInstant(text);
		if (!parsed[field]) return { field, message: `must be ${INSTANT_FORMAT} (got "${text.slice(0, 60)}")` };
	}
	const to = parsed.to ? new Date(parsed.to.at.getTime() + (parsed.to.dateOnly ? DAY_MS : 0)) : now;
	const from = parsed.from?.at ?? new Date(to.getTime() - DEFAULT_RANGE_DAYS * DAY_MS);
	if (from >= to) return { field: 'from', message: `must be before to (from ${from.toISOString()}, to ${to.toISOString()})` };
	const days = (to.getTime() - from.getTime()) / DAY_MS;
	if (days > MAX_RANGE_DAYS) return { field: 'from', message: `and to may be at most ${MAX_RANGE_DAYS} days apart (they are ${Math.ceil(days)} days apart)` };
	const interval = (texts.interval ?? 'day') as Interval;
	if (!INTERVALS.includes(interval)) return { field: 'interval', message: `must be day or hour (got "${String(texts.interval).slice(0, 60)}")` };
	if (interval === 'hour' && days > MAX_HOURLY_RANGE_DAYS) {
		return { field: 'interval', message: `hour covers at most ${MAX_HOURLY_RANGE_DAYS} days; use interval=day or a shorter range` };
	}
	return { from, to, interval };
}

function invalidParameter(res: Response, issue: Issue): void {
	sendProblem(res, 400, 'invalid_parameter', `${issue.field} ${issue.message}`, { issues: [issue] });
}

/**
 * Read endpoints: a read (or admin) key, whose site is the only one answered for. The `site`
 * parameter lets a dashboard say which site it expects; asking for any other is refused, never
 * answered with the key's site or the other one.
 */
export function analyticsRouter({ prisma, sites }: AnalyticsContext): Router {
	const router = Router();
	const readKey = requireApiKey(prisma, 'read');

	function siteOf(req: Request, res: Response): RegisteredSite | undefined {
		const site = sites.byDatabaseId(req.auth!.siteId);
		if (!site) {
			sendProblem(res, 404, 'site_not_served', 'The site of this API key is not configured on this receiver; add its config file');
			return undefined;
		}
		const asked = req.query.site;
		if (asked !== undefined && asked !== site.key) {
			sendProblem(res, 403, 'site_not_allowed', 'This API key belongs to another site; use a key of the site you ask for, or leave out the site parameter');
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
		const site = siteOf(req, res);
		if (!site) return;
		const now = new Date();
		const todayStartedAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
		const stats = await siteStats(prisma, site.id, todayStartedAt);
		answer(res, {
			site: site.key,
			generatedAt: now.toISOString(),
			events: { total: stats.eventsTotal, today: stats.eventsToday, todayStartedAt: todayStartedAt.toISOString(), lastAt: stats.lastEventAt },
			visitors: stats.visitors,
			sessions: stats.sessions,
			leads: stats.leads,
			outbox: { pending: stats.outboxPending, dead: stats.outboxDead },
		});
	});

	const stagesOf = (site: RegisteredSite) => site.config.crm.lifecycleStages.map((stage) => stage.name);
	const reports: Record<string, (site: RegisteredSite, range: TimeRange) => Promise<object>> = {
		visitors: (site, range) => visitorAnalytics(prisma, site.id, range),
		leads: (site, range) => leadAnalytics(prisma, site.id, range, stagesOf(site)),
		campaigns: (site, range) => campaignAnalytics(prisma, site.id, range),
		conversion: (site, range) => conversionAnalytics(prisma, site.id, range, stagesOf(site)),
	};
	for (const [name, report] of Object.entries(reports)) {
		router.get(`/api/analytics/${name}`, readKey, async (req, res) => {
			const site = siteOf(req, res);
			if (!site) return;
			const range = readRange(req.query, new Date());
			if (isIssue(range)) {
				invalidParameter(res, range);
				return;
			}
			const body = await report(site, range);
			answer(res, { site: site.key, range: { from: range.from.toISOString(), to: range.to.toISOString(), interval: range.interval }, ...body });
		});
	}
	return router;
}
