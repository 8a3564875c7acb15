import { EMAIL_CONVERSION_WINDOW_DAYS } from '../analytics/campaigns';
import type { DashboardAssets } from './assets';
import { campaignTables, conversionHeadline, emailHeadline, valueCurrencies, type CampaignReport } from './campaigns';
import { filterQuery, type ChosenFilter } from './filters';
import { chartHtml, countedUpToNote, escape, figureCard, panel, PAGES, shell, tableHtml, time, type SiteHeading } from './pages';
import { describeRange, periodQuery } from './range';
import { formatTime } from './tables';
import type { Figure } from './visitors';

/** The Campaign Performance page: email sequences and their steps, then conversions by channel, UTM campaign and goal. */

const PAGE = PAGES[2];
const CAMPAIGNS_CSV = '/dashboard/campaigns.csv';

function figuresHtml(id: string, title: string, figures: Figure[]): string {
	const cards = figures.map((figure) => figureCard(figure));
	return `<h3 id="${id}" class="visually-hidden">${escape(title)}</h3><ul class="figures" aria-labelledby="${id}">${cards.join('\n')}</ul>`;
}

/** What the filter narrows: the sessions and their conversions, never the emails. */
function filterNote(filter: ChosenFilter): string {
	const parts = [filter.channel && `from channel “${filter.channel}”`, filter.campaign && `of UTM campaign “${filter.campaign}”`, filter.page && `that viewed ${filter.page}`].filter(Boolean);
	return parts.length ? `<p class="note" id="filtered">Only the sessions ${escape(parts.join(', '))} and their conversions; the email figures are not filtered.</p>` : '';
}

/** The Campaign Performance page. */
export function campaignsPage(site: SiteHeading, report: CampaignReport, filter: ChosenFilter, goals: readonly string[], assets: DashboardAssets): string {
	const { range, previous, conversions } = report;
	const withHour = range.interval === 'hour';
	const by = range.interval;
	const tables = campaignTables(report);
	const csvQuery = [periodQuery(range.chosen), filterQuery(filter)].filter(Boolean).join('&');
	const currencies = valueCurrencies(conversions);

	const labels = report.series.map((point) => (withHour ? formatTime(point.at, true).slice(5) : formatTime(point.at, false)));
	const emailChart = chartHtml(
		{
			type: 'line',
			labels,
			datasets: [
				{ label: 'Sent', data: report.series.map((point) => point.sent) },
				{ label: 'Opened', data: report.series.map((point) => point.opened) },
				{ label: 'Clicked', data: report.series.map((point) => point.clicked) },
			],
		},
		`Line chart of emails sent, opened and clicked by the ${by} they were sent; the figures are in the table that follows`,
	);
	const converting = conversions.channels.filter((row) => row.conversions > 0);
	const channelChart = converting.length
		? chartHtml(
				{ type: 'bar', horizontal: true, labels: converting.map((row) => row.channel ?? '(not set)'), datasets: [{ label: 'Conversions', data: converting.map((row) => row.conversions) }] },
				'Bar chart of conversions by channel; the figures are in the table that follows',
				true,
			)
		: '';
	const funnelChart = chartHtml(
		{ type: 'bar', horizontal: true, labels: report.funnel.map((step) => step.goal ?? 'Visitors'), datasets: [{ label: 'Visitors', data: report.funnel.map((step) => step.visitors) }] },
		'Bar chart of the goal funnel: visitors, then the visitors who reached each goal; the figures are in the table that follows',
		true,
	);
	const noGoals = goals.length
		? ''
		: '<p class="note" id="no-goals">This site has no conversion goals yet: add them to the site config as <code>crm.conversionRules</code>, and each becomes a step of this funnel in its order.</p>';

	const content = `<p class="period" id="period">${describeRange(range)}: ${time(range.from, 'from')} to ${time(range.to, 'to')} UTC, by ${by}. Compared with the period before: ${time(previous.from, 'previous-from')} to ${time(previous.to, 'previous-to')}.</p>
${range.note ? `<p class="note">${escape(range.note)}</p>` : ''}
${countedUpToNote(report.conversions.asOf)}
<section aria-labelledby="h-email"><h2 id="h-email">Email</h2>
<p class="note">Emails sent in this period, whatever the filter. An email counts as converted when its recipient reached a goal within ${EMAIL_CONVERSION_WINDOW_DAYS} days after it was sent. Opens are counted when a mail client loads the email’s images: some clients block them, some load them unread.</p>
${figuresHtml('h-email-figures', 'Email headline figures', emailHeadline(report.email.total, report.emailBefore))}
</section>
${panel(tables['email-over-time'], CAMPAIGNS_CSV, csvQuery, `${emailChart}<details><summary>Figures by ${by} as a table</summary>${tableHtml(tables['email-over-time'], withHour)}</details>`)}
${panel(tables.sequences, CAMPAIGNS_CSV, csvQuery, tableHtml(tables.sequences, withHour))}
${panel(tables.steps, CAMPAIGNS_CSV, csvQuery, tableHtml(tables.steps, withHour))}
<section aria-labelledby="h-conversions"><h2 id="h-conversions">Conversions</h2>
<p class="note">Conversions of the sessions that started in this period, by the channel and UTM campaign of the session they happened in. Values are summed per currency, never across currencies.</p>
${filterNote(filter)}
${figuresHtml('h-conversion-figures', 'Conversion headline figures', conversionHeadline(conversions.total, report.conversionsBefore, currencies))}
</section>
${panel(tables.channels, CAMPAIGNS_CSV, csvQuery, `${channelChart}${tableHtml(tables.channels, withHour)}`)}
${panel(tables.campaigns, CAMPAIGNS_CSV, csvQuery, tableHtml(tables.campaigns, withHour))}
${panel(tables.funnel, CAMPAIGNS_CSV, csvQuery, `${noGoals}${funnelChart}${tableHtml(tables.funnel, withHour)}`)}`;
	return shell(site, PAGE, range.chosen, assets, content, true, filter);
}
