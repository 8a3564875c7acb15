import type { ReportFilter } from '../analytics/filters';
import {
	estimatedFigures,
	siteStats,
	visitorAnalytics,
	type BreakdownRow,
	type EstimableFigure,
	type Queryable,
	type SiteStats,
	type TimeRange,
	type VisitorAnalytics,
} from '../analytics/queries';
import { previousRange, type DashboardRange } from './range';
import type { Cell, ColumnKind, Table } from './tables';

/** A period's report and the figures of it that are estimates (the tables say so). */
export type EstimatedReport = VisitorAnalytics & { estimates?: readonly EstimableFigure[] };

/** What the Visitor Analytics page shows: the period and the period before it (both filtered alike), and the site's totals. */
export interface VisitorReport {
	range: DashboardRange;
	previous: TimeRange;
	filter: ReportFilter;
	current: EstimatedReport;
	before: VisitorAnalytics;
	stats: SiteStats;
	todayStartsAt: Date;
}

export async function loadVisitorReport(prisma: Queryable, siteId: string, range: DashboardRange, filter: ReportFilter, now: Date): Promise<VisitorReport> {
	const previous = previousRange(range);
	const todayStartsAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
	const [current, estimates, before, stats] = await Promise.all([
		visitorAnalytics(prisma, siteId, range, filter),
		estimatedFigures(prisma, siteId, range, filter),
		visitorAnalytics(prisma, siteId, previous, filter),
		siteStats(prisma, siteId, todayStartsAt),
	]);
	return { range, previous, filter, current: { ...current, estimates }, before, stats, todayStartsAt };
}

export interface Figure {
	name: string;
	label: string;
	kind: ColumnKind;
	value: number | null;
	previous: number | null;
}

/** The headline figures, each with the previous period's value. */
export function headlineFigures(current: VisitorAnalytics, before: VisitorAnalytics): Figure[] {
	const figure = (name: string, label: string, kind: ColumnKind, read: (report: VisitorAnalytics) => number | null): Figure => ({
		name,
		label,
		kind,
		value: read(current),
		previous: read(before),
	});
	return [
		figure('visitors', 'Visitors', 'count', (report) => report.summary.visitors),
		figure('sessions', 'Sessions', 'count', (report) => report.summary.sessions),
		figure('pageviews', 'Page views', 'count', (report) => report.summary.pageviews),
		figure('pageviewsPerSession', 'Pages per session', 'decimal', (report) => report.summary.pageviewsPerSession),
		figure('bounceRate', 'Bounce rate', 'percent', (report) => report.summary.bounceRate),
		figure('avgDuration', 'Time on site (average)', 'seconds', (report) => report.summary.avgDurationSeconds),
		figure('medianDuration', 'Time on site (median)', 'seconds', (report) => report.summary.medianDurationSeconds),
	];
}

/** How a figure moved: relative for amounts, in percentage points for rates. */
export function change(figure: Figure): string {
	const { value, previous } = figure;
	if (value === null || previous === null) return value === previous ? 'no data in either period' : value === null ? 'no data in this period' : 'no data in the previous period';
	if (value === previous) return 'no change';
	if (figure.kind === 'percent') {
		const points = (value - previous) * 100;
		return `${points > 0 ? '+' : '−'}${Math.abs(points).toFixed(1)} pts`;
	}
	if (previous === 0) return 'new (none before)';
	const relative = ((value - previous) / previous) * 100;
	return `${relative > 0 ? '+' : '−'}${Math.abs(relative).toFixed(1)}%`;
}

const engagementLevels = ['low', 'medium', 'high'] as const;

/** Breakdowns of the range's sessions by one of their attributes, as tables of the same shape. */
const BREAKDOWN_TABLES = {
	'exit-pages': { key: 'exitPages', title: 'Exit pages', label: 'Page', empty: 'No sessions in this period.' },
	referrers: { key: 'referrers', title: 'Referrers', label: 'Referring site', empty: 'No sessions in this period.' },
	sources: { key: 'sources', title: 'UTM sources', label: 'Source', empty: 'No sessions in this period.' },
	mediums: { key: 'mediums', title: 'UTM mediums', label: 'Medium', empty: 'No sessions in this period.' },
	campaigns: { key: 'campaigns', title: 'UTM campaigns', label: 'Campaign', empty: 'No sessions in this period.' },
	devices: { key: 'devices', title: 'Devices', label: 'Device', empty: 'No sessions in this period.' },
	browsers: { key: 'browsers', title: 'Browsers', label: 'Browser', empty: 'No sessions in this period.' },
	os: { key: 'os', title: 'Operating systems', label: 'Operating system', empty: 'No sessions in this period.' },
	countries: { key: 'countries', title: 'Countries', label: 'Country', empty: 'No sessions in this period.' },
} as const satisfies Record<string, { key: keyof VisitorAnalytics['breakdowns']; title: string; label: string; empty: string }>;
type BreakdownTableName = keyof typeof BREAKDOWN_TABLES;

/** The page's tables in the order it shows them; each downloads as /dashboard/visitors.csv?table=<name>. */
export const VISITOR_TABLES = ['over-time', 'top-pages', 'entry-pages', 'channels', ...(Object.keys(BREAKDOWN_TABLES) as BreakdownTableName[]), 'scroll-depth', 'engagement'] as const;
export type VisitorTableName = (typeof VISITOR_TABLES)[number];
export const isVisitorTable = (name: string): name is VisitorTableName => (VISITOR_TABLES as readonly string[]).includes(name);

/** What a breakdown row's value reads as when the sessions had none (no referrer, no campaign, …). */
const NOT_SET = '(not set)';

function breakdownTable(name: BreakdownTableName, rows: readonly BreakdownRow[], sessions: number): Table & { name: VisitorTableName } {
	const spec = BREAKDOWN_TABLES[name];
	return {
		name,
		title: spec.title,
		columns: [
			{ label: spec.label, kind: 'text' },
			{ label: 'Sessions', kind: 'count' },
			{ label: 'Share of sessions', kind: 'percent' },
			{ label: 'Bounce rate', kind: 'percent' },
		],
		rows: rows.map((row): Cell[] => [row.value ?? NOT_SET, row.sessions, sessions ? row.sessions / sessions : null, row.sessions ? row.bounces / row.sessions : null]),
		empty: spec.empty,
	};
}

/** Every table of the page, by its name in the CSV link; a column of estimates says so in its label. */
export function visitorTables(current: EstimatedReport): Record<VisitorTableName, Table> {
	const sessions = current.summary.sessions;
	const { channels, scrollDepth } = current.breakdowns;
	const tables: Array<Table & { name: VisitorTableName }> = [
		{
			name: 'over-time',
			title: 'Visitors, sessions and page views over time',
			columns: [
				{ label: 'Period start (UTC)', kind: 'time' },
				{ label: 'Visitors', kind: 'count' },
				{ label: 'Sessions', kind: 'count' },
				{ label: 'Page views', kind: 'count' },
				{ label: 'Bounce rate', kind: 'percent' },
			],
			rows: current.series.map((point) => [point.at, point.visitors, point.sessions, point.pageviews, point.sessions ? point.bounces / point.sessions : null]),
			empty: 'No sessions in this period.',
		},
		{
			name: 'top-pages',
			title: 'Top pages',
			columns: [
				{ label: 'Page', kind: 'text' },
				{ label: 'Page views', kind: 'count' },
				{ label: current.estimates?.includes('topPages.visitors') ? 'Visitors (estimated)' : 'Visitors', kind: 'count' },
			],
			rows: current.topPages.map((page) => [page.path, page.pageviews, page.visitors]),
			empty: 'No page views in this period.',
		},
		{
			name: 'entry-pages',
			title: 'Entry pages',
			columns: [
				{ label: 'Page', kind: 'text' },
				{ label: 'Sessions', kind: 'count' },
				{ label: 'Bounce rate', kind: 'percent' },
			],
			rows: current.entryPages.map((page) => [page.path, page.sessions, page.bounceRate]),
			empty: 'No sessions in this period.',
		},
		{
			name: 'channels',
			title: 'Channels',
			columns: [
				{ label: 'Channel', kind: 'text' },
				{ label: 'Sessions', kind: 'count' },
				{ label: 'Conversions', kind: 'count' },
				{ label: 'Sessions that converted', kind: 'percent' },
			],
			rows: channels.map((row) => [row.value ?? NOT_SET, row.sessions, row.conversions, row.sessions ? row.convertingSessions / row.sessions : null]),
			empty: 'No sessions in this period.',
		},
		...(Object.keys(BREAKDOWN_TABLES) as BreakdownTableName[]).map((name) => breakdownTable(name, current.breakdowns[BREAKDOWN_TABLES[name].key], sessions)),
		{
			name: 'scroll-depth',
			title: 'Scroll depth',
			columns: [
				{ label: 'Deepest scroll in the session', kind: 'text' },
				{ label: 'Sessions', kind: 'count' },
				{ label: 'Share of sessions', kind: 'percent' },
			],
			rows: sessions ? scrollDepth.map((row) => [row.value, row.sessions, row.sessions / sessions]) : [],
			empty: 'No sessions in this period.',
		},
		{
			name: 'engagement',
			title: 'Engagement levels',
			columns: [
				{ label: 'Engagement', kind: 'text' },
				{ label: 'Sessions', kind: 'count' },
				{ label: 'Share of sessions', kind: 'percent' },
			],
			rows: sessions ? engagementLevels.map((level) => [level[0].toUpperCase() + level.slice(1), current.engagement[level], current.engagement[level] / sessions]) : [],
			empty: 'No sessions in this period.',
		},
	];
	return Object.fromEntries(tables.map((table) => [table.name, table])) as Record<VisitorTableName, Table>;
}
