import type { Response, Router } from 'express';

import { campaignsPage } from '../dashboard/campaignPages';
import { campaignFigures, campaignTables, CAMPAIGN_TABLES, isCampaignTable, loadCampaignReport } from '../dashboard/campaigns';
import { resolveFilter } from '../dashboard/filters';
import { invalidPeriodPage, PAGES } from '../dashboard/pages';
import { resolveRange } from '../dashboard/range';
import { toCsv } from '../dashboard/tables';
import type { RegisteredSite } from '../siteRegistry';
import { filterOf, headingOf, periodOf, single, type DashboardRouteContext } from './dashboard';

/** The site's conversion goals in their configured order: the funnel's steps. */
const goalsOf = (site: RegisteredSite) => site.config.crm.conversionRules.map((rule) => rule.name);

/**
 * Campaign Performance: the page and its CSV downloads. Registered behind the sign-in, so the site
 * is the session's (req.dashboard), never one the URL names.
 */
export function registerCampaignRoutes(router: Router, { prisma, assets }: DashboardRouteContext): void {
	const page = (res: Response, status: number, html: string) => res.status(status).type('html').send(html);

	router.get(PAGES[2].path, async (req, res) => {
		const { site } = req.dashboard!;
		const period = resolveRange(periodOf(req), new Date());
		const filter = resolveFilter(filterOf(req));
		const refuse = (field: string, message: string) => page(res, 400, invalidPeriodPage(headingOf(site), PAGES[2], period.ok ? period.range.chosen : period.chosen, assets, field, message, filter.chosen));
		if (!period.ok) {
			refuse(period.field, period.message);
			return;
		}
		if (!filter.ok) {
			refuse(filter.field, filter.message);
			return;
		}
		const report = await loadCampaignReport(prisma, site.id, period.range, filter.filter, goalsOf(site));
		page(res, 200, campaignsPage(headingOf(site), report, filter.chosen, goalsOf(site), assets));
	});

	router.get('/dashboard/campaigns.csv', async (req, res) => {
		const { site } = req.dashboard!;
		const period = resolveRange(periodOf(req), new Date());
		const filter = resolveFilter(filterOf(req));
		const name = single(req.query.table) ?? '';
		const refuse = (text: string) => res.status(400).type('text/plain').send(text);
		if (!period.ok) {
			refuse(`${period.field} ${period.message}.`);
			return;
		}
		if (!filter.ok) {
			refuse(`${filter.field} ${filter.message}.`);
			return;
		}
		if (!isCampaignTable(name)) {
			refuse(`table must be one of ${CAMPAIGN_TABLES.join(', ')}.`);
			return;
		}
		const table = campaignTables(await campaignFigures(prisma, site.id, period.range, filter.filter, goalsOf(site)))[name];
		const day = (at: Date) => at.toISOString().slice(0, 10);
		const file = `${site.key.replace(/[^\w.-]/g, '_')}-${name}-${day(period.range.from)}-to-${day(new Date(period.range.to.getTime() - 1))}.csv`;
		res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${file}"` }).send(toCsv(table));
	});
}
