import {
	conversionBreakdown,
	emailPerformance,
	emailSeries,
	goalFunnel,
	type Amount,
	type ConversionBreakdown,
	type ConversionRow,
	type EmailFigures,
	type EmailPerformance,
	type EmailSeries,
	type GoalFunnelStep,
} from '../analytics/campaigns';
import type { ReportFilter } from '../analytics/filters';
import type { Queryable, TimeRange } from '../analytics/queries';
import { previousRange, type DashboardRange } from './range';
import type { Cell, Column, Table } from './tables';
import type { Figure } from './visitors';

/** Everything the Campaign Performance tables show, for one period and filter. */
export interface CampaignFigures {
	email: EmailPerformance;
	series: EmailSeries;
	conversions: ConversionBreakdown;
	funnel: GoalFunnelStep[];
}

/** The page: the tables' figures, and the headline figures of the period before. */
export interface CampaignReport extends CampaignFigures {
	range: DashboardRange;
	previous: TimeRange;
	emailBefore: EmailFigures;
	conversionsBefore: ConversionBreakdown['total'];
}

/** `goals`: the site's conversion goals (crm.conversionRules names) in their configured order. */
export async function campaignFigures(prisma: Queryable, siteId: string, range: TimeRange, filter: ReportFilter, goals: readonly string[]): Promise<CampaignFigures> {
	const [email, series, conversions] = await Promise.all([emailPerformance(prisma, siteId, range), emailSeries(prisma, siteId, range), conversionBreakdown(prisma, siteId, range, filter)]);
	return { email, series, conversions, funnel: goalFunnel(conversions, goals) };
}

export async function loadCampaignReport(prisma: Queryable, siteId: string, range: DashboardRange, filter: ReportFilter, goals: readonly string[]): Promise<CampaignReport> {
	const previous = previousRange(range);
	const [figures, emailBefore, conversionsBefore] = await Promise.all([
		campaignFigures(prisma, siteId, range, filter, goals),
		emailPerformance(prisma, siteId, previous),
		conversionBreakdown(prisma, siteId, previous, filter),
	]);
	return { ...figures, range, previous, emailBefore: emailBefore.total, conversionsBefore: conversionsBefore.total };
}

const currencyLabel = (currency: string | null) => currency ?? 'no currency';

/**
 * The currencies the value columns show: each one a conversion of the period has a value in (a goal
 * without a value adds no column). Amounts are never added across currencies.
 */
export function valueCurrencies(conversions: ConversionBreakdown): Array<string | null> {
	return conversions.total.amounts.map((amount) => amount.currency);
}

const amountIn = (amounts: Amount[], currency: string | null) => amounts.find((amount) => amount.currency === currency)?.value ?? 0;

/** Headline email figures, each with the previous period's value. */
export function emailHeadline(current: EmailFigures, before: EmailFigures): Figure[] {
	const figure = (name: string, label: string, kind: Figure['kind'], read: (figures: EmailFigures) => number | null): Figure => ({ name, label, kind, value: read(current), previous: read(before) });
	return [
		figure('sent', 'Emails sent', 'count', (figures) => figures.sent),
		figure('openRate', 'Open rate', 'percent', (figures) => figures.openRate),
		figure('clickRate', 'Click rate', 'percent', (figures) => figures.clickRate),
		figure('clickToOpenRate', 'Click-to-open rate', 'percent', (figures) => figures.clickToOpenRate),
		figure('emailConversionRate', 'Converted after the email', 'percent', (figures) => figures.conversionRate),
		figure('unsubscribeRate', 'Unsubscribe rate', 'percent', (figures) => figures.unsubscribeRate),
		figure('bounceRate', 'Bounce rate', 'percent', (figures) => figures.bounceRate),
	];
}

/** Headline conversion figures (the filter applies), with one value figure per currency. */
export function conversionHeadline(current: ConversionBreakdown['total'], before: ConversionBreakdown['total'], currencies: Array<string | null>): Figure[] {
	return [
		{ name: 'conversions', label: 'Conversions', kind: 'count', value: current.conversions, previous: before.conversions },
		{ name: 'convertingSessions', label: 'Converting sessions', kind: 'count', value: current.convertingSessions, previous: before.convertingSessions },
		{ name: 'sessionConversionRate', label: 'Session conversion rate', kind: 'percent', value: current.conversionRate, previous: before.conversionRate },
		...currencies.map((currency): Figure => ({
			name: `value-${currency ?? 'none'}`,
			label: `Conversion value (${currencyLabel(currency)})`,
			kind: 'money',
			value: amountIn(current.amounts, currency),
			previous: amountIn(before.amounts, currency),
		})),
	];
}

/** The page's tables in the order it shows them; each downloads as /dashboard/campaigns.csv?table=<name>. */
export const CAMPAIGN_TABLES = ['email-over-time', 'sequences', 'steps', 'channels', 'campaigns', 'funnel'] as const;
export type CampaignTableName = (typeof CAMPAIGN_TABLES)[number];
export const isCampaignTable = (name: string): name is CampaignTableName => (CAMPAIGN_TABLES as readonly string[]).includes(name);

/** Rates first (what a marketer compares across steps), then the counts behind them. */
const EMAIL_COLUMNS: Column[] = [
	{ label: 'Sent', kind: 'count' },
	{ label: 'Open rate', kind: 'percent' },
	{ label: 'Click rate', kind: 'percent' },
	{ label: 'Click-to-open rate', kind: 'percent' },
	{ label: 'Conversion rate', kind: 'percent' },
	{ label: 'Unsubscribe rate', kind: 'percent' },
	{ label: 'Bounce rate', kind: 'percent' },
	{ label: 'Opened', kind: 'count' },
	{ label: 'Clicked', kind: 'count' },
	{ label: 'Converted', kind: 'count' },
	{ label: 'Unsubscribed', kind: 'count' },
	{ label: 'Bounced', kind: 'count' },
];

const emailCells = (row: EmailFigures): Cell[] => [
	row.sent,
	row.openRate,
	row.clickRate,
	row.clickToOpenRate,
	row.conversionRate,
	row.unsubscribeRate,
	row.bounceRate,
	row.opened,
	row.clicked,
	row.converted,
	row.unsubscribed,
	row.bounced,
];

const sequenceName = (name: string | null) => name ?? '(not in a sequence)';

/** "Onboarding · 2. Your first week"; a step removed since its sends says so. */
function stepName(sequence: string | null, position: number | null, subject: string | null): string {
	return `${sequenceName(sequence)} · ${position === null ? '(removed step)' : `${position + 1}. ${subject ?? ''}`}`;
}

function conversionColumns(first: string, currencies: Array<string | null>): Column[] {
	return [
		{ label: first, kind: 'text' },
		{ label: 'Sessions', kind: 'count' },
		{ label: 'Converting sessions', kind: 'count' },
		{ label: 'Conversion rate', kind: 'percent' },
		{ label: 'Conversions', kind: 'count' },
		...currencies.map((currency): Column => ({ label: `Value (${currencyLabel(currency)})`, kind: 'money' })),
	];
}

const conversionCells = (name: string, row: ConversionRow, currencies: Array<string | null>): Cell[] => [
	name,
	row.sessions,
	row.convertingSessions,
	row.conversionRate,
	row.conversions,
	...currencies.map((currency) => amountIn(row.amounts, currency)),
];

/** Every table of the page, by its name in the CSV link. */
export function campaignTables({ email, series, conversions, funnel }: CampaignFigures): Record<CampaignTableName, Table> {
	const currencies = valueCurrencies(conversions);
	const tables: Array<Table & { name: CampaignTableName }> = [
		{
			name: 'email-over-time',
			title: 'Emails sent, opened and clicked over time',
			columns: [
				{ label: 'Period start (UTC)', kind: 'time' },
				{ label: 'Sent', kind: 'count' },
				{ label: 'Opened', kind: 'count' },
				{ label: 'Clicked', kind: 'count' },
			],
			rows: series.map((point) => [point.at, point.sent, point.opened, point.clicked]),
			empty: 'No emails sent in this period.',
		},
		{
			name: 'sequences',
			title: 'Sequences',
			columns: [{ label: 'Sequence', kind: 'text' }, ...EMAIL_COLUMNS],
			rows: email.sequences.map((sequence) => [sequenceName(sequence.name), ...emailCells(sequence)]),
			empty: 'No emails sent in this period.',
		},
		{
			name: 'steps',
			title: 'Sequence steps',
			// One row stands for every lead's email of the step, each rendered with its own {{…}} values: the row names the step by its template.
			columns: [{ label: 'Step (subject template)', kind: 'text' }, ...EMAIL_COLUMNS],
			rows: email.sequences.flatMap((sequence) => sequence.steps.map((step) => [stepName(sequence.name, step.position, step.subject), ...emailCells(step)])),
			empty: 'No sequence emails sent in this period.',
		},
		{
			name: 'channels',
			title: 'Conversions by channel',
			columns: conversionColumns('Channel', currencies),
			rows: conversions.channels.map((row) => conversionCells(row.channel ?? '(not set)', row, currencies)),
			empty: 'No sessions in this period.',
		},
		{
			name: 'campaigns',
			title: 'Conversions by UTM campaign',
			columns: conversionColumns('UTM campaign', currencies),
			rows: conversions.campaigns.map((row) => conversionCells(row.campaign ?? '(not set)', row, currencies)),
			empty: 'No sessions in this period.',
		},
		{
			name: 'funnel',
			title: 'Goal funnel',
			columns: [
				{ label: 'Step', kind: 'text' },
				{ label: 'Visitors', kind: 'count' },
				{ label: 'Share of visitors', kind: 'percent' },
				{ label: 'Conversions', kind: 'count' },
				...currencies.map((currency): Column => ({ label: `Value (${currencyLabel(currency)})`, kind: 'money' })),
			],
			rows: funnel.map((step) =>
				step.goal === null
					? ['Visitors', step.visitors, step.rateFromFirst, null, ...currencies.map(() => null)]
					: [step.goal, step.visitors, step.rateFromFirst, step.conversions, ...currencies.map((currency) => amountIn(step.amounts, currency))],
			),
			empty: 'No visitors in this period.',
		},
	];
	return Object.fromEntries(tables.map((table) => [table.name, table])) as Record<CampaignTableName, Table>;
}
