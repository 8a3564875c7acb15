import type { Request, Response, Router } from 'express';

import { isUuid } from '../../lib/ids';
import { siteCipher } from '../../lib/pii';
import { leadFilterOptions, leadList, orderStages } from '../analytics/leads';
import { leadListPage, leadNotFoundPage, leadPage, leadsOverviewPage, invalidListPage, LEADS_CSV, type ListView } from '../dashboard/leadPages';
import {
	LEAD_PAGE_TABLES,
	LEAD_TABLES,
	ledgerTable,
	leadListTable,
	leadTables,
	LIST_CSV_ROWS,
	listQuery,
	loadLead,
	loadLeadReport,
	resolveListQuery,
	scoreTable,
	sequencesTable,
	LONG_CSV_ROWS,
	SHOWN_ROWS,
	timelineTable,
	type LeadPageTableName,
	type LeadTableName,
	type ListParams,
	type ListResult,
} from '../dashboard/leads';
import { invalidPeriodPage, PAGES } from '../dashboard/pages';
import { periodQuery, resolveRange, type RangeResult } from '../dashboard/range';
import { toCsv, type Table } from '../dashboard/tables';
import type { RegisteredSite } from '../siteRegistry';
import { headingOf, periodOf, single, type DashboardRouteContext } from './dashboard';

const PAGE = PAGES[1];
const LIST_PARAMS = ['search', 'stage', 'minScore', 'maxScore', 'tag', 'sort', 'order', 'size', 'page'] as const;

const listParams = (req: Request): ListParams => Object.fromEntries(LIST_PARAMS.map((name) => [name, single(req.query[name])]));
const stagesOf = (site: RegisteredSite) => site.config.crm.lifecycleStages.map((stage) => stage.name);
/** Opens the site's sealed names, addresses and subjects (privacy.encryptPii) with the receiver's keys; null on a site that stores in clear. */
const cipherOf = (site: RegisteredSite) => siteCipher(site.id, site.config.privacy.encryptPii);
const fileSafe = (text: string) => text.replace(/[^\w.-]/g, '_');
const day = (at: Date) => at.toISOString().slice(0, 10);

/**
 * Lead Intelligence: the overview, the lead list, a lead's page and their CSV downloads. Every
 * query is given the signed-in site's id (req.dashboard, from the session); a lead id from the URL
 * is only ever looked up within that site, so another site's lead answers as a missing one.
 */
export function registerLeadRoutes(router: Router, { prisma, assets }: DashboardRouteContext): void {
	const page = (res: Response, status: number, html: string) => res.status(status).type('html').send(html);
	const csv = (res: Response, file: string, table: Table) =>
		res.set({ 'Content-Type': 'text/csv; charset=utf-8', 'Content-Disposition': `attachment; filename="${file}"` }).send(toCsv(table));
	const refuseCsv = (res: Response, status: number, message: string) => res.status(status).type('text/plain').send(message);

	/** The period of a page, or false once its 400 page went out. */
	function periodOrRefuse(req: Request, res: Response, now = new Date()): Extract<RangeResult, { ok: true }> | false {
		const period = resolveRange(periodOf(req), now);
		if (period.ok) return period;
		page(res, 400, invalidPeriodPage(headingOf(req.dashboard!.site), PAGE, period.chosen, assets, period.field, period.message));
		return false;
	}

	/** The list's form choices checked against the stages it offers. */
	async function listOf(req: Request, site: RegisteredSite): Promise<{ result: ListResult; view: Omit<ListView, 'chosen'> }> {
		const options = await leadFilterOptions(prisma, site.id);
		const stages = orderStages(stagesOf(site), options.stages);
		return { result: resolveListQuery(listParams(req), stages), view: { stages, tags: options.tags, sealed: site.config.privacy.encryptPii } };
	}

	router.get(PAGE.path, async (req, res) => {
		const period = periodOrRefuse(req, res);
		if (!period) return;
		const { site } = req.dashboard!;
		const report = await loadLeadReport(prisma, site.id, period.range, stagesOf(site));
		page(res, 200, leadsOverviewPage(headingOf(site), report, assets));
	});

	router.get('/dashboard/leads/list', async (req, res) => {
		const period = periodOrRefuse(req, res);
		if (!period) return;
		const { site } = req.dashboard!;
		const { result, view } = await listOf(req, site);
		if (!result.ok) {
			page(res, 400, invalidListPage(headingOf(site), period.range.chosen, assets, { ...view, chosen: result.chosen }, result.field, result.message));
			return;
		}
		const list = await leadList(prisma, site.id, result.query, cipherOf(site));
		page(res, 200, leadListPage(headingOf(site), period.range.chosen, assets, { ...view, chosen: result.chosen }, { ...list, page: result.page, size: result.size }));
	});

	router.get('/dashboard/leads/:id', async (req, res) => {
		const now = new Date();
		const period = periodOrRefuse(req, res, now);
		if (!period) return;
		const { site } = req.dashboard!;
		const id = String(req.params.id);
		const detail = isUuid(id) ? await loadLead(prisma, site, id, SHOWN_ROWS, now, cipherOf(site)) : undefined;
		if (!detail) {
			page(res, 404, leadNotFoundPage(headingOf(site), period.range.chosen, assets));
			return;
		}
		const backToList = `/dashboard/leads/list?${periodQuery(period.range.chosen)}`;
		page(res, 200, leadPage(headingOf(site), period.range.chosen, assets, detail, backToList, now));
	});

	router.get(LEADS_CSV, async (req, res) => {
		const { site } = req.dashboard!;
		const name = single(req.query.table) ?? '';
		const prefix = fileSafe(site.key);

		if (name === 'leads') {
			const { result } = await listOf(req, site);
			if (!result.ok) {
				refuseCsv(res, 400, `${result.field} ${result.message}.`);
				return;
			}
			const { rows } = await leadList(prisma, site.id, { ...result.query, limit: LIST_CSV_ROWS, offset: 0 }, cipherOf(site));
			const filtered = listQuery({ ...result.chosen, page: '1', size: '' }) ? '-filtered' : '';
			csv(res, `${prefix}-leads${filtered}.csv`, leadListTable(rows, ''));
			return;
		}

		if ((LEAD_PAGE_TABLES as readonly string[]).includes(name)) {
			const id = single(req.query.lead) ?? '';
			const detail = isUuid(id) ? await loadLead(prisma, site, id, name === 'timeline' || name === 'ledger' ? LONG_CSV_ROWS : 0, new Date(), cipherOf(site)) : undefined;
			if (!detail) {
				refuseCsv(res, 404, 'lead must be the id of a lead of the site you are signed in to (this site has no lead with this id).');
				return;
			}
			const tables: Record<LeadPageTableName, () => Table> = {
				score: () => scoreTable(detail.explanation),
				ledger: () => ledgerTable(detail.ledger.rows),
				timeline: () => timelineTable(detail.timeline.entries),
				sequences: () => sequencesTable(detail.sequences),
			};
			csv(res, `${prefix}-lead-${id}-${name}.csv`, tables[name as LeadPageTableName]());
			return;
		}

		if (!(LEAD_TABLES as readonly string[]).includes(name)) {
			refuseCsv(res, 400, `table must be one of ${[...LEAD_TABLES, 'leads', ...LEAD_PAGE_TABLES].join(', ')}.`);
			return;
		}
		const period = resolveRange(periodOf(req), new Date());
		if (!period.ok) {
			refuseCsv(res, 400, `${period.field} ${period.message}.`);
			return;
		}
		const report = await loadLeadReport(prisma, site.id, period.range, stagesOf(site));
		const table = leadTables(report)[name as LeadTableName];
		csv(res, `${prefix}-${name}-${day(period.range.from)}-to-${day(new Date(period.range.to.getTime() - 1))}.csv`, table);
	});
}
