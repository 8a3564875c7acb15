import { campaignAnalytics, siteStats, visitorAnalytics, type CampaignAnalytics, type Queryable, type SiteStats, type TimeRange, type VisitorAnalytics } from '../analytics/queries';
import { previousRange, type DashboardRange } from './range';
import type { ColumnKind, Table } from './tables';

/** What the Visitor Analytics page shows: the period, the period before it, the channels and the site's totals. */
export interface VisitorReport {
	range: DashboardRange;
	previous: TimeRange;
	current: VisitorAnalytics;
	before: VisitorAnalytics;
	channels: CampaignAnalytics['channels'];
	stats: SiteStats;
	todayStartsAt: Date;
}

/** The period's figures and what the tables need, from the query layer (the JSON routes' functions). */
export async function periodFigures(prisma: Queryable, siteId: string, range: TimeRange): Promise<{ current: VisitorAnalytics; channels: CampaignAnalytics['channels'] }> {
	// Channels come with the campaign report today; only its channel rows are shown here.
	const [current, campaigns] = await Promise.all([visitorAnalytics(prisma, siteId, range), campaignAnalytics(prisma, siteId, range)]);
	return { current, channels: campaigns.channels };
}

export async function loadVisitorReport(prisma: Queryable, siteId: string, range: DashboardRange, now: Date): Promise<VisitorReport> {
	const previous = previousRange(range);
	const todayStartsAt = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
	const [{ current, channels }, before, stats] = await Promise.all([
		periodFigures(prisma, siteId, range),
		visitorAnalytics(prisma, siteId, previous),
		siteStats(prisma, siteId, todayStartsAt),
	]);
	return { range, previous, current, before, channels, stats, todayStartsAt };
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

/** The page's tables in the order it shows them; each downloads as /dashboard/visitors.csv?table=<name>. */
export const VISITOR_TABLES = ['over-time', 'top-pages', 'entry-pages', 'channels', 'engagement'] as const;
export type VisitorTableName = (typeof VISITOR_TABLES)[number];
export const isVisitorTable = (name: string): name is VisitorTableName => (VISITOR_TABLES as readonly string[]).includes(name);

/** Every table of the page, by its name in the CSV link. */
export function visitorTables(current: VisitorAnalytics, channels: CampaignAnalytics['channels']): Record<VisitorTableName, Table> {
	const sessions = current.summary.sessions;
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
				{ label: 'Visitors', kind: 'count' },
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
				{ label: 'Conversion rate', kind: 'percent' },
			],
			rows: channels.map((row) => [row.channel ?? '(not set)', row.sessions, row.conversions, row.conversionRate]),
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
