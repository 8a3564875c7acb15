import type { Interval } from '../analytics/queries';
import type { ReportFilter } from '../analytics/filters';
import type { DashboardAssets } from './assets';
import { CHANNEL_OPTIONS, filterQuery, type ChosenFilter } from './filters';
import { dateFieldValue, describeRange, periodQuery, PRESETS, type DashboardRange } from './range';
import { displayCell, formatCount, formatTime, nounOf, type Table } from './tables';
import { change, headlineFigures, visitorTables, type Figure, type VisitorReport, type VisitorTableName } from './visitors';

/**
 * The dashboards' HTML, drawn on the server: every figure is in the page as text (tables beside
 * the charts), and the only scripts are the receiver's own files, so the pages' policy allows no
 * inline script or style and no other origin.
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

export interface SiteHeading {
	key: string;
	name: string;
}

export const PAGES = [
	{ path: '/dashboard/visitors', title: 'Visitor Analytics' },
	{ path: '/dashboard/leads', title: 'Lead Intelligence' },
	{ path: '/dashboard/campaigns', title: 'Campaign Performance' },
] as const;
export type DashboardPage = (typeof PAGES)[number];

function htmlDocument(title: string, assets: DashboardAssets, body: string, charts: boolean): string {
	const scripts = charts ? `<script defer src="${assets.chart.url}"></script>` : '';
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><link rel="icon" href="data:,"><title>${escape(title)} · Tracking CRM</title>
<link rel="stylesheet" href="${assets.css.url}">${scripts}<script defer src="${assets.js.url}"></script>
</head><body><a class="skip" href="#content">Skip to content</a>
${body}</body></html>`;
}

/** The sign-in form; `message` says why it is shown again (a wrong key, a session that ended). */
export function signInPage(assets: DashboardAssets, notice?: { kind: 'error' | 'ok'; text: string }): string {
	const noticeHtml = notice ? `<p class="${notice.kind}" id="notice" role="${notice.kind === 'error' ? 'alert' : 'status'}">${escape(notice.text)}</p>` : '';
	return htmlDocument(
		'Sign in',
		assets,
		`<main id="content" class="signin"><h1>Sign in to the dashboards</h1>
<p>Use a read or admin API key of your site. The key decides which site you see.</p>
${noticeHtml}
<form method="post" action="/dashboard/sign-in">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" spellcheck="false" required maxlength="200" aria-describedby="key-help${notice?.kind === 'error' ? ' notice' : ''}">
<p id="key-help" class="hint">It starts with <code>tcrm_read_</code> or <code>tcrm_admin_</code>. On the embedded default the receiver printed a read key the first time it started; otherwise create one with <code>scripts/api-key create --site &lt;site&gt; --scope read --name dashboard</code>.</p>
<button class="primary" type="submit">Sign in</button>
</form></main>`,
		false,
	);
}

function header(site: SiteHeading, active: DashboardPage, query: string): string {
	const links = PAGES.map((page) => {
		const current = page.path === active.path ? ' aria-current="page"' : '';
		return `<li><a href="${page.path}${query ? `?${escape(query)}` : ''}"${current}>${page.title}</a></li>`;
	}).join('');
	return `<header class="top"><div class="brand"><span class="site">${escape(site.name)}</span><span class="product">Tracking CRM · ${escape(site.key)}</span></div>
<nav aria-label="Dashboards"><ul>${links}</ul></nav>
<form class="signout" method="post" action="/dashboard/sign-out"><button type="submit">Sign out</button></form></header>`;
}

/** The channel, campaign and page fields of the form, on the pages whose figures they narrow. */
function filterFields(filter: ChosenFilter): string {
	const channels = ['', ...CHANNEL_OPTIONS].map((channel) => `<option value="${escape(channel)}"${channel === filter.channel ? ' selected' : ''}>${channel ? escape(channel) : 'All channels'}</option>`).join('');
	return `<div class="field"><label for="channel">Channel</label><select id="channel" name="channel">${channels}</select></div>
<div class="field"><label for="campaign">Campaign (UTM)</label><input id="campaign" name="campaign" value="${escape(filter.campaign)}" maxlength="200" placeholder="All campaigns"></div>
<div class="field"><label for="page">Page</label><input id="page" name="page" value="${escape(filter.page)}" maxlength="2000" placeholder="All pages, or a path"></div>`;
}

function filters(action: string, chosen: DashboardRange['chosen'], filter?: ChosenFilter): string {
	const option = (value: string, label: string, selected: string) => `<option value="${value}"${value === selected ? ' selected' : ''}>${label}</option>`;
	const presets = [...Object.entries(PRESETS).map(([value, spec]) => option(value, spec.label, chosen.range)), option('custom', 'Custom…', chosen.range)].join('');
	const intervals = [option('', 'Automatic', chosen.interval), option('hour', 'Hour', chosen.interval), option('day', 'Day', chosen.interval), option('week', 'Week', chosen.interval)].join('');
	// A period given with times (by a link or the JSON routes' form) shows as its dates; Apply then asks for whole days, and says so.
	const from = dateFieldValue(chosen.from, false);
	const to = dateFieldValue(chosen.to, true);
	const timed = chosen.range === 'custom' && (from.timed || to.timed) ? '<p class="note" id="custom-times">This period was given with times; the dates show the UTC days they fall on, and Apply uses those whole days.</p>' : '';
	const timedNote = timed ? ' aria-describedby="custom-times"' : '';
	return `<form class="filters" method="get" action="${action}" aria-label="${filter ? 'Period and filters' : 'Period'}">
<div class="field"><label for="range">Period</label><select id="range" name="range">${presets}</select></div>
<div class="field-group" id="custom-dates"><div class="field"><label for="from">From (UTC)</label><input type="date" id="from" name="from" value="${escape(from.date)}"${timedNote}></div>
<div class="field"><label for="to">To (UTC, included)</label><input type="date" id="to" name="to" value="${escape(to.date)}"${timedNote}></div>${timed}</div>
<div class="field"><label for="interval">Interval</label><select id="interval" name="interval">${intervals}</select></div>
${filter ? filterFields(filter) : ''}<button type="submit">Apply</button></form>`;
}

/**
 * The page around a dashboard: header, navigation, sign-out and the period form; with `filter`, the
 * form has the channel, campaign and page filters too, and the links to the other pages keep them.
 * A page whose content no period narrows (a lead list, one lead) has no form (`periodForm` false),
 * and its links still carry the period to the other pages.
 */
export function shell(
	site: SiteHeading,
	active: DashboardPage,
	chosen: DashboardRange['chosen'],
	assets: DashboardAssets,
	content: string,
	charts: boolean,
	filter?: ChosenFilter,
	periodForm = true,
): string {
	const query = [periodQuery(chosen), filter ? filterQuery(filter) : ''].filter(Boolean).join('&');
	return htmlDocument(
		`${active.title} · ${site.name}`,
		assets,
		`${header(site, active, query)}
<main id="content"><h1>${active.title}</h1>
${periodForm ? filters(active.path, chosen, filter) : ''}
${content}</main>`,
		charts,
	);
}

/** The shell with only a message where the figures would be: the period could not be read. */
export function invalidPeriodPage(
	site: SiteHeading,
	active: DashboardPage,
	chosen: DashboardRange['chosen'],
	assets: DashboardAssets,
	field: string,
	message: string,
	filter?: ChosenFilter,
): string {
	return shell(site, active, chosen, assets, `<p class="error" role="alert">${escape(`${field} ${message}.`)}</p>`, false, filter);
}

export const time = (at: Date, bound: string) => `<time datetime="${at.toISOString()}" data-bound="${bound}">${formatTime(at, true)}</time>`;

/** Figures this many seconds behind the page are said to be (a quiet site's never are: see rollupsForRead). */
const SAID_BEHIND_FROM_SECONDS = 2;

/**
 * Where a busy site's figures are behind its latest visits (its rollups are folded by the receiver
 * every few seconds, not by the read), the page says up to when they count.
 */
export function countedUpToNote(asOf: Date, now = new Date()): string {
	const behindSeconds = Math.floor((now.getTime() - asOf.getTime()) / 1000);
	if (behindSeconds < SAID_BEHIND_FROM_SECONDS) return '';
	return `<p class="note" id="counted-up-to">Visits and conversions are counted up to <time datetime="${asOf.toISOString()}">${asOf.toISOString().slice(11, 19)}</time> UTC: the last ${formatCount(behindSeconds)} seconds are still being added, and show on the next load.</p>`;
}

/** Numeric columns beyond which a table is drawn with closer columns. */
const DENSE_FROM_COLUMNS = 6;

/** A table as HTML; with `hrefs`, each row's first cell links to the page of that row (a lead, say). */
export function tableHtml(table: Table, withHour: boolean, hrefs?: readonly string[]): string {
	if (!table.rows.length) return `<p class="empty">${escape(table.empty)}</p>`;
	const numeric = (index: number) => table.columns[index].kind !== 'text' && table.columns[index].kind !== 'time';
	const head = table.columns.map((column, index) => `<th scope="col"${numeric(index) ? ' class="num"' : ''}>${escape(column.label)}</th>`).join('');
	const body = table.rows
		.map(
			(row, rowIndex) =>
				`<tr>${row
					.map((cell, index) => {
						const text = escape(displayCell(cell, table.columns[index].kind, withHour));
						const first = hrefs ? `<a href="${escape(hrefs[rowIndex])}">${text}</a>` : text;
						const align = numeric(index) ? 'num' : 'text';
						return index === 0 ? `<th scope="row" class="${align}">${first}</th>` : `<td class="${align}">${text}</td>`;
					})
					.join('')}</tr>`,
		)
		.join('\n');
	// Many figures side by side (an email step's rates and counts) need the card's whole width: closer columns give it to them.
	const dense = table.columns.filter((_column, index) => numeric(index)).length > DENSE_FROM_COLUMNS ? ' class="dense"' : '';
	return `<div class="scroll" tabindex="0" role="region" aria-label="${escape(table.title)}"><table id="table-${table.name}"${dense}><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table></div>`;
}

export interface ChartSpec {
	type: 'line' | 'bar';
	horizontal?: boolean;
	labels: string[];
	datasets: Array<{ label: string; data: number[] }>;
}

/** A chart is a picture of the table beside it: screen readers get its name and the table. */
export function chartHtml(spec: ChartSpec, description: string, short = false): string {
	return `<div class="chart${short ? ' short' : ''}"><canvas role="img" aria-label="${escape(description)}" data-chart="${escape(JSON.stringify(spec))}"></canvas></div>`;
}

/** A table's section with its CSV link: `csvPath` is the page's download route, `csvQuery` the rest of its query (the period, filters). */
export function panel(table: Table, csvPath: string, csvQuery: string, content: string): string {
	return `<section class="panel" aria-labelledby="h-${table.name}"><div class="panel-head"><h2 id="h-${table.name}">${escape(table.title)}</h2>
<a class="csv" href="${csvPath}?table=${table.name}&amp;${escape(csvQuery)}" download>Download CSV<span class="visually-hidden"> of ${escape(table.title.toLowerCase())}</span></a></div>
${content}</section>`;
}

/**
 * One headline figure as a card: its value, how it moved and the previous period's value. `text`
 * formats a value where the column kind's way will not do.
 */
export function figureCard(figure: Figure, text = (value: number) => displayCell(value, figure.kind, false)): string {
	const previous = figure.previous === null ? '' : ` <span class="previous">(previous period: ${escape(text(figure.previous))})</span>`;
	return `<li class="figure"><span class="label" id="label-${figure.name}">${escape(figure.label)}</span>
<span class="value" data-figure="${figure.name}" data-value="${figure.value ?? ''}" data-previous="${figure.previous ?? ''}" aria-describedby="label-${figure.name}">${escape(figure.value === null ? '—' : text(figure.value))}</span>
<span class="change" data-change="${figure.name}">${escape(change(figure))}${previous}</span></li>`;
}

function figuresHtml(report: VisitorReport): string {
	const cards = headlineFigures(report.current, report.before).map((figure) => figureCard(figure));
	const now = report.current;
	const live = `<li class="figure"><span class="label">Visitors now</span><span class="value" data-figure="visitorsNow" data-value="${now.visitorsNow}">${formatCount(now.visitorsNow)}</span><span class="change">active in the last 5 minutes</span></li>
<li class="figure"><span class="label">Active sessions</span><span class="value" data-figure="activeSessions" data-value="${now.activeSessions}">${formatCount(now.activeSessions)}</span><span class="change">with activity in the last 30 minutes</span></li>`;
	return `<section aria-labelledby="h-figures"><h2 id="h-figures" class="visually-hidden">Headline figures</h2><ul class="figures">${cards.join('\n')}\n${live}</ul></section>`;
}

function totalsHtml(report: VisitorReport): string {
	const { stats } = report;
	const last = stats.lastEventAt ? `last event <time datetime="${stats.lastEventAt.toISOString()}">${formatTime(stats.lastEventAt, true)} UTC</time>` : 'no event yet';
	const unprocessed =
		stats.eventsTotal > 0 && report.current.summary.sessions === 0 && report.current.topPages.length > 0
			? `<p class="note" id="no-sessions">Page views arrived in this period, but no sessions were built from them yet: visitors, sessions and bounce rate count the sessions the Visitor Processor workflow builds (is the engine or n8n running?). Top pages count the page views themselves.</p>`
			: '';
	return `<p class="note" id="totals">All time: ${formatCount(stats.visitors)} ${nounOf(stats.visitors, 'visitor')}, ${formatCount(stats.sessions)} ${nounOf(stats.sessions, 'session')}, ${formatCount(stats.eventsTotal)} ${nounOf(stats.eventsTotal, 'event')} (${formatCount(stats.eventsToday)} today, UTC); ${last}.</p>${unprocessed}`;
}

const VISITORS_CSV = '/dashboard/visitors.csv';

/** A bar chart of one column of a table (the second unless told) by its first, beside the table; none for an empty table. */
export function barChart(table: Table, description: string, { column = 1, label = table.columns[column].label, horizontal = true }: { column?: number; label?: string; horizontal?: boolean } = {}): string {
	return table.rows.length
		? chartHtml(
				{ type: 'bar', horizontal, labels: table.rows.map((row) => String(row[0])), datasets: [{ label, data: table.rows.map((row) => Number(row[column])) }] },
				`${description}; the figures are in the table that follows`,
				true,
			)
		: '';
}

/** What the filters narrow, in words, so a figure is never read as the whole site's by mistake. */
function filterNote(filter: ReportFilter): string {
	const parts = [filter.channel && `channel ${filter.channel}`, filter.campaign && `UTM campaign “${filter.campaign}”`, filter.page && `sessions that viewed ${filter.page}`].filter(Boolean);
	return parts.length ? `<p class="note" id="filtered">Only sessions of ${escape(parts.join(', '))}: every figure, chart and download below, and the previous period, are narrowed alike. The all-time line above is the whole site.</p>` : '';
}

const BY: Record<Interval, string> = { hour: 'hour', day: 'day', week: 'week (from Monday, UTC)' };

/** The Visitor Analytics page. */
export function visitorsPage(site: SiteHeading, report: VisitorReport, chosenFilter: ChosenFilter, assets: DashboardAssets): string {
	const { range, previous, current } = report;
	const withHour = range.interval === 'hour';
	const tables = visitorTables(current);
	const csvQuery = [periodQuery(range.chosen), filterQuery(chosenFilter)].filter(Boolean).join('&');
	const by = BY[range.interval];
	// The axis has little room: hours as "12-04 10:00", days in full; the table beside keeps full times.
	const labels = current.series.map((point) => (withHour ? formatTime(point.at, true).slice(5) : formatTime(point.at, false)));
	const overTime = chartHtml(
		{
			type: 'line',
			labels,
			datasets: [
				{ label: 'Visitors', data: current.series.map((point) => point.visitors) },
				{ label: 'Sessions', data: current.series.map((point) => point.sessions) },
				{ label: 'Page views', data: current.series.map((point) => point.pageviews) },
			],
		},
		`Line chart of visitors, sessions and page views by ${range.interval}; the figures are in the table that follows`,
	);
	const withTable = (name: VisitorTableName, chart = '') => panel(tables[name], VISITORS_CSV, csvQuery, `${chart}${tableHtml(tables[name], withHour)}`);
	const content = `<p class="period" id="period">${describeRange(range)}: ${time(range.from, 'from')} to ${time(range.to, 'to')} UTC, by ${by}. Compared with the period before: ${time(previous.from, 'previous-from')} to ${time(previous.to, 'previous-to')}.</p>
${range.note ? `<p class="note">${escape(range.note)}</p>` : ''}
${countedUpToNote(current.asOf)}
${totalsHtml(report)}
${filterNote(report.filter)}
${figuresHtml(report)}
${panel(tables['over-time'], VISITORS_CSV, csvQuery, `${overTime}<details><summary>Figures by ${range.interval} as a table</summary>${tableHtml(tables['over-time'], withHour)}</details>`)}
<div class="grid">
${withTable('top-pages')}
${withTable('entry-pages')}
${withTable('exit-pages')}
${withTable('channels', barChart(tables.channels, 'Bar chart of sessions by channel'))}
${withTable('referrers')}
${withTable('campaigns')}
${withTable('sources')}
${withTable('mediums')}
${withTable('devices', barChart(tables.devices, 'Bar chart of sessions by device'))}
${withTable('browsers')}
${withTable('os')}
${withTable('countries')}
${withTable('scroll-depth', barChart(tables['scroll-depth'], 'Bar chart of sessions by their deepest scroll', { horizontal: false }))}
${withTable('engagement', barChart(tables.engagement, 'Bar chart of sessions by engagement level', { horizontal: false }))}
</div>`;
	return shell(site, PAGES[0], range.chosen, assets, content, true, chosenFilter);
}
