import { SEALED_SEARCH_WINDOW, type LeadListRow, type LeadProfile } from '../analytics/leads';
import type { DashboardAssets } from './assets';
import {
	enrollmentSummary,
	enrollmentTable,
	leadFigures,
	leadListTable,
	leadTables,
	ledgerTable,
	LIST_LABELS,
	listQuery,
	ORDER_LABELS,
	PAGE_SIZES,
	scoreCheck,
	scoreTable,
	sequencesTable,
	SORT_LABELS,
	timelineTable,
	type LeadDetail,
	type LeadReport,
	type ListChoice,
} from './leads';
import { barChart, chartHtml, countedUpToNote, escape, figureCard, panel, PAGES, shell, tableHtml, time, type SiteHeading } from './pages';
import { describeRange, periodQuery, type DashboardRange } from './range';
import { formatCount, formatTime, nounOf } from './tables';
import type { Figure } from './visitors';

/**
 * The Lead Intelligence pages: the overview (/dashboard/leads), the lead list (/dashboard/leads/list)
 * and a lead (/dashboard/leads/<id>), inside the dashboards' shell. Every figure is text in the page;
 * charts are pictures of the tables beside them.
 */

const PAGE = PAGES[1];
export const LEADS_CSV = '/dashboard/leads.csv';
const LIST_PATH = '/dashboard/leads/list';

type Chosen = DashboardRange['chosen'];

const withQuery = (path: string, query: string) => (query ? `${path}?${query}` : path);
const join = (...queries: string[]) => queries.filter(Boolean).join('&');

/** The overview and the list, one link each; a lead's page sits under the list. */
function subNav(active: 'overview' | 'list' | 'lead', chosen: Chosen): string {
	const query = periodQuery(chosen);
	const link = (href: string, label: string, current: boolean) => `<li><a href="${escape(withQuery(href, query))}"${current ? ' aria-current="page"' : ''}>${label}</a></li>`;
	return `<nav class="sub" aria-label="Lead Intelligence"><ul>${link(PAGE.path, 'Overview', active === 'overview')}${link(LIST_PATH, 'Lead list', active === 'list')}</ul></nav>`;
}

function figureCards(figures: readonly Figure[]): string {
	return `<section aria-labelledby="h-figures"><h2 id="h-figures" class="visually-hidden">Headline figures</h2><ul class="figures">${figures.map((figure) => figureCard(figure)).join('\n')}</ul></section>`;
}

// ---------------------------------------------------------------------------------------------
// The overview

export function leadsOverviewPage(site: SiteHeading, report: LeadReport, assets: DashboardAssets): string {
	const { range, previous, pipeline } = report;
	const withHour = range.interval === 'hour';
	const tables = leadTables(report);
	const csvQuery = periodQuery(range.chosen);
	const axis = (at: Date, hour: boolean) => (hour ? formatTime(at, true).slice(5) : formatTime(at, false));

	const newLeads = chartHtml(
		{ type: 'line', labels: report.current.series.map((point) => axis(point.at, withHour)), datasets: [{ label: 'New leads', data: report.current.series.map((point) => point.leads) }] },
		`Line chart of new leads by ${range.interval}; the figures are in the table that follows`,
		true,
	);
	const pipelineOverTime = chartHtml(
		{
			type: 'line',
			labels: pipeline.points.map((point) => axis(point.at, pipeline.unit === 'hour')),
			datasets: pipeline.stages.map((stage) => ({ label: stage, data: pipeline.points.map((point) => point.leads[stage]) })),
		},
		`Line chart of the leads at each lifecycle stage at the end of each ${pipeline.unit}; the figures are in the table that follows`,
	);
	const scores = tables['score-distribution'];
	const scoreChart = chartHtml(
		{
			type: 'bar',
			labels: scores.rows.map((row) => String(row[0])),
			datasets: [
				{ label: 'This period', data: scores.rows.map((row) => Number(row[1])) },
				{ label: 'Previous period', data: scores.rows.map((row) => Number(row[2])) },
			],
		},
		'Bar chart of new leads by score, this period and the previous one; the figures are in the table that follows',
		true,
	);
	const channels = tables.channels;
	const allLeads = report.current.pipeline.reduce((sum, row) => sum + row.leads, 0);

	const content = `${subNav('overview', range.chosen)}
<p class="period" id="period">${describeRange(range)}: ${time(range.from, 'from')} to ${time(range.to, 'to')} UTC, by ${range.interval}. Compared with the period before: ${time(previous.from, 'previous-from')} to ${time(previous.to, 'previous-to')}.</p>
${range.note ? `<p class="note">${escape(range.note)}</p>` : ''}
${countedUpToNote(report.current.asOf)}
${figureCards(leadFigures(report))}
<p class="note" id="totals">All time: <span data-figure="allLeads" data-value="${allLeads}">${formatCount(allLeads)}</span> ${nounOf(allLeads, 'lead')}. Visitors are those with a session that started in the period; those who became leads are the ones whose lead was created in it. <a href="${escape(withQuery(LIST_PATH, csvQuery))}">Open the lead list</a>.</p>
${panel(tables['new-leads'], LEADS_CSV, csvQuery, `${newLeads}<details><summary>New leads by ${range.interval} as a table</summary>${tableHtml(tables['new-leads'], withHour)}</details>`)}
${panel(tables['pipeline-over-time'], LEADS_CSV, csvQuery, `<p class="note">Leads at each stage at the end of each ${pipeline.unit}, rebuilt from the stage moves the Lead Scorer recorded.</p>${pipelineOverTime}<details><summary>Stages by ${pipeline.unit} as a table</summary>${tableHtml(tables['pipeline-over-time'], pipeline.unit === 'hour')}</details>`)}
<div class="grid">
${panel(tables.pipeline, LEADS_CSV, csvQuery, `${barChart(tables.pipeline, 'Bar chart of all leads by their lifecycle stage now', { label: 'Leads' })}${tableHtml(tables.pipeline, false)}`)}
${panel(scores, LEADS_CSV, csvQuery, `${scoreChart}${tableHtml(scores, false)}`)}
${panel(channels, LEADS_CSV, csvQuery, `${barChart(channels, 'Bar chart of new leads by first-touch channel', { label: 'New leads' })}${tableHtml(channels, false)}`)}
${panel(tables.sources, LEADS_CSV, csvQuery, `<p class="note">The source the lead's form or import named.</p>${tableHtml(tables.sources, false)}`)}
${panel(tables['stage-changes'], LEADS_CSV, csvQuery, tableHtml(tables['stage-changes'], false))}
</div>`;
	return shell(site, PAGE, range.chosen, assets, content, true);
}

// ---------------------------------------------------------------------------------------------
// The lead list

export interface ListView {
	chosen: ListChoice;
	stages: readonly string[];
	tags: ReadonlyArray<{ tag: string; leads: number }>;
	/** The site keeps names and addresses sealed (privacy.encryptPii): search works differently, and says so. */
	sealed: boolean;
}

function option(value: string, label: string, selected: string): string {
	return `<option value="${escape(value)}"${value === selected ? ' selected' : ''}>${escape(label)}</option>`;
}

/** The period rides along in hidden fields, so the navigation keeps it. */
function periodFields(chosen: Chosen): string {
	return [...new URLSearchParams(periodQuery(chosen))].map(([name, value]) => `<input type="hidden" name="${escape(name)}" value="${escape(value)}">`).join('');
}

function listForm(view: ListView, period: Chosen): string {
	const { chosen } = view;
	const field = (id: string, name: keyof ListChoice, control: string) => `<div class="field"><label for="${id}">${LIST_LABELS[name]}</label>${control}</div>`;
	const stages = [option('', 'Any stage', chosen.stage), ...view.stages.map((stage) => option(stage, stage, chosen.stage))].join('');
	const tags = [option('', 'Any tag', chosen.tag), ...view.tags.map(({ tag, leads }) => option(tag, `${tag} (${formatCount(leads)})`, chosen.tag))].join('');
	const sorts = Object.entries(SORT_LABELS)
		.map(([value, label]) => option(value, label, chosen.sort))
		.join('');
	const orders = Object.entries(ORDER_LABELS)
		.map(([value, label]) => option(value, label, chosen.order))
		.join('');
	const sizes = PAGE_SIZES.map((size) => option(String(size), String(size), chosen.size)).join('');
	return `<form class="filters" id="lead-filters" method="get" action="${LIST_PATH}" aria-label="Find leads">${periodFields(period)}
${field('search', 'search', `<input type="search" id="search" name="search" value="${escape(chosen.search)}" maxlength="200" placeholder="Email, name, company"${view.sealed ? ' aria-describedby="search-note"' : ''}>`)}
${view.sealed ? `<p class="note" id="search-note">Names and addresses are encrypted on this site: Search finds a lead by its exact email address, or by part of its email, name or company among the newest ${formatCount(SEALED_SEARCH_WINDOW)} leads.</p>` : ''}
${field('stage', 'stage', `<select id="stage" name="stage">${stages}</select>`)}
${field('min-score', 'minScore', `<input type="number" step="any" id="min-score" name="minScore" value="${escape(chosen.minScore)}" inputmode="decimal">`)}
${field('max-score', 'maxScore', `<input type="number" step="any" id="max-score" name="maxScore" value="${escape(chosen.maxScore)}" inputmode="decimal">`)}
${field('tag', 'tag', `<select id="tag" name="tag">${tags}</select>`)}
${field('sort', 'sort', `<select id="sort" name="sort">${sorts}</select>`)}
${field('order', 'order', `<select id="order" name="order">${orders}</select>`)}
${field('size', 'size', `<select id="size" name="size">${sizes}</select>`)}
<button type="submit">Apply</button> <a href="${escape(withQuery(LIST_PATH, periodQuery(period)))}">Clear</a></form>`;
}

/**
 * The list's table as tableHtml draws a table, but with each lead's email a link to its page, and
 * no cell wrapped: at phone width the table scrolls sideways in its region instead of breaking
 * every email and date over several lines.
 */
const leadPath = (id: string) => `/dashboard/leads/${id}`;

function pagesNav(chosen: ListChoice, period: Chosen, page: number, pages: number): string {
	if (pages <= 1) return '';
	const href = (to: number) => escape(withQuery(LIST_PATH, join(periodQuery(period), listQuery(chosen, to))));
	const previous = page > 1 ? `<a rel="prev" href="${href(Math.min(page - 1, pages))}">Previous page</a> · ` : '';
	const next = page < pages ? ` · <a rel="next" href="${href(page + 1)}">Next page</a>` : '';
	// Not a <nav>: the dashboards' navigation style would make these links look like plain text.
	return `<p class="pages" role="navigation" aria-label="Pages of the list">${previous}<span aria-current="page">Page ${formatCount(page)} of ${formatCount(pages)}</span>${next}</p>`;
}

export function leadListPage(site: SiteHeading, period: Chosen, assets: DashboardAssets, view: ListView, list: { total: number; rows: LeadListRow[]; page: number; size: number }): string {
	const { chosen } = view;
	const pages = Math.max(1, Math.ceil(list.total / list.size));
	const first = (list.page - 1) * list.size + 1;
	const empty = list.total === 0 ? 'No lead matches these filters.' : `No leads on page ${list.page}: the list has ${pages} ${pages === 1 ? 'page' : 'pages'}.`;
	const table = leadListTable(list.rows, empty);
	const order = chosen.order === 'asc' ? 'lowest or oldest first' : 'highest or newest first';
	const leads = `${formatCount(list.total)} ${nounOf(list.total, 'lead')}`;
	const count = list.rows.length
		? `Showing ${formatCount(first)}–${formatCount(first + list.rows.length - 1)} of ${leads}, by ${SORT_LABELS[chosen.sort as keyof typeof SORT_LABELS].toLowerCase()}, ${order}.`
		: `${leads} ${nounOf(list.total, 'matches', 'match')}.`;
	// The CSV holds the whole filtered list, not one page of it.
	const csvQuery = listQuery({ ...chosen, page: '1', size: '' });
	const content = `${subNav('list', period)}
${listForm(view, period)}
${panel(table, LEADS_CSV, csvQuery, `<p class="note" id="list-count" data-total="${list.total}">${count}</p>${tableHtml(
		table,
		true,
		list.rows.map((row) => leadPath(row.id)),
	)}${pagesNav(chosen, period, list.page, pages)}`)}`;
	return shell(site, PAGE, period, assets, content, false, undefined, false);
}

/** The list's form again, with what is wrong in it named by its label. */
export function invalidListPage(site: SiteHeading, period: Chosen, assets: DashboardAssets, view: ListView, field: string, message: string): string {
	return shell(site, PAGE, period, assets, `${subNav('list', period)}\n${listForm(view, period)}\n<p class="error" role="alert" id="list-error">${escape(`${field} ${message}.`)}</p>`, false, undefined, false);
}

// ---------------------------------------------------------------------------------------------
// A lead

const fullName = (profile: LeadProfile) => [profile.firstName, profile.lastName].filter(Boolean).join(' ');

/** A definition list of the facts that have a value; the rest are left out rather than shown empty. */
function facts(id: string, entries: Array<[string, string | null | undefined]>): string {
	const shown = entries.filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== '');
	if (!shown.length) return `<p class="empty" id="${id}">Nothing known yet.</p>`;
	return `<dl class="facts" id="${id}">${shown.map(([term, value]) => `<dt>${escape(term)}</dt><dd>${escape(value)}</dd>`).join('')}</dl>`;
}

/** A JSON object's top-level fields as facts (at most 50); other values as one. */
function propertyEntries(value: unknown): Array<[string, string]> {
	if (value === null || value === undefined) return [];
	if (typeof value !== 'object' || Array.isArray(value)) return [['Value', JSON.stringify(value)]];
	return Object.entries(value as Record<string, unknown>)
		.slice(0, 50)
		.map(([key, field]) => [key, typeof field === 'string' ? field : JSON.stringify(field)]);
}

/** "just now", "5 minutes ago", "3 hours ago", "2 days ago": whole units, rounded down. */
function ago(at: Date, now: Date): string {
	const minutes = Math.floor((now.getTime() - at.getTime()) / 60_000);
	const unit = (count: number, word: string) => `${formatCount(count)} ${word}${count === 1 ? '' : 's'} ago`;
	if (minutes < 1) return 'just now';
	if (minutes < 60) return unit(minutes, 'minute');
	if (minutes < 1440) return unit(Math.floor(minutes / 60), 'hour');
	return unit(Math.floor(minutes / 1440), 'day');
}

const at = (value: Date | null) => (value ? `${formatTime(value, true)} UTC` : null);
const stringOf = (value: unknown) => (typeof value === 'string' ? value : null);

function profileHtml(profile: LeadProfile): string {
	return facts('profile', [
		['Email', profile.email],
		['Name', fullName(profile)],
		['Phone', profile.phone],
		['Company', profile.company],
		['Job title', profile.jobTitle ?? profile.contact?.jobTitle],
		['Country', profile.country],
		['Time zone', profile.timezone],
		['Source', profile.source],
		['Lifecycle stage', profile.stage],
		['Created', at(profile.createdAt)],
		['First conversion', at(profile.convertedAt)],
		['Last scored', at(profile.scoredAt)],
		['Browsers linked', formatCount(profile.visitors)],
	]);
}

function enrichmentHtml(profile: LeadProfile): string {
	const touch = profile.firstTouch ?? {};
	const business = profile.business;
	const businessFacts = business
		? facts('business', [
				['Company name', business.name],
				['Domain', business.domain],
				['Industry', business.industry],
				['Size', business.size],
				['Country', business.country],
				...propertyEntries(business.properties),
			])
		: '<p class="empty" id="business">No company found for this lead yet.</p>';
	return `<section class="panel" aria-labelledby="h-enrichment"><h2 id="h-enrichment">Company and enrichment</h2>
${businessFacts}
<h3>First touch</h3>
${facts('first-touch', [
	['Channel', stringOf(touch.channel)],
	['Source', stringOf(touch.source)],
	['Medium', stringOf(touch.medium)],
	['Campaign', stringOf(touch.campaign)],
	['Landing page', stringOf(touch.landingPage)],
	['Referrer', stringOf(touch.referrerDomain)],
	['At', typeof touch.at === 'string' ? `${formatTime(new Date(touch.at), true)} UTC` : null],
])}
<h3>Properties</h3>
${facts('properties', propertyEntries(profile.properties))}</section>`;
}

/** Channel states in which the lead has taken back its consent to be contacted there (a bounce is not one). */
const WITHDRAWN_STATES: ReadonlySet<string> = new Set(['unsubscribed', 'complained', 'do_not_contact']);

/** The consent a form gave, and whether the lead has taken it back since on a channel (the channel rows say which and when). */
export function consentText(profile: Pick<LeadProfile, 'consentGiven' | 'channels'>): string {
	if (!profile.consentGiven) return 'Not given';
	return profile.channels.some((channel) => WITHDRAWN_STATES.has(channel.status)) ? 'Given, then withdrawn' : 'Given';
}

function consentHtml(profile: LeadProfile): string {
	const channels = profile.channels.map((channel): [string, string] => [
		`${channel.channel[0].toUpperCase()}${channel.channel.slice(1)}`,
		`${channel.status.replace(/_/g, ' ')}${channel.reason ? ` (${channel.reason})` : ''} since ${formatTime(channel.changedAt, true)} UTC`,
	]);
	const tags = profile.tags.length
		? `<ul class="tags" id="tags">${profile.tags.map((tag) => `<li>${escape(tag.tag)}${tag.source ? ` <span class="note">(${escape(tag.source)})</span>` : ''}</li>`).join('')}</ul>`
		: '<p class="empty" id="tags">No tags.</p>';
	return `<section class="panel" aria-labelledby="h-consent"><h2 id="h-consent">Consent and tags</h2>
${facts('consent', [['Consent to be contacted', consentText(profile)], ...channels])}
<h3>Tags</h3>
${tags}</section>`;
}

/** "Showing all 10 …" or "Showing the newest 100 of 234 …", with both counts for a reader of the page. */
function shownOf(id: string, shown: number, total: number, what: string): string {
	return `<p class="note" id="${id}" data-shown="${shown}" data-total="${total}">${
		shown < total ? `Showing the newest ${formatCount(shown)} of ${formatCount(total)} ${what}; the CSV holds more.` : `Showing ${formatCount(shown)} of ${formatCount(total)} ${what}, newest first.`
	}</p>`;
}

function scoreHtml(detail: LeadDetail): string {
	const { profile, explanation, ledger } = detail;
	const table = scoreTable(explanation);
	const check = scoreCheck(profile.score, explanation);
	const shown = (value: number) => formatCount(value);
	const verdict =
		check.difference === 0
			? `<p class="note" id="score-check" data-sum="${check.sum}" data-score="${check.score}">The rules’ points add up to <strong>${shown(check.sum)}</strong>, which is the lead’s score (${shown(check.score)}).</p>`
			: `<p class="error" role="alert" id="score-check" data-sum="${check.sum}" data-score="${check.score}">The rules’ points add up to ${shown(check.sum)}, but the lead’s score is ${shown(check.score)}: the score ledger does not explain ${shown(Math.abs(check.difference))} points of it${
					check.rounding ? ' (a rounding difference: the Lead Scorer rounds each rule’s points and the total separately)' : ''
				}.</p>`;
	const parts = `<p class="note"><em>From evidence</em>: points a rule gave for what the lead did or is; <em>decay and recomputation</em>: changes the Lead Scorer recorded while the rule’s evidence stayed the same (points fading with time, a cap shared with other rules, an edited rule).</p>`;
	const changes = ledgerTable(ledger.rows);
	const ledgerPanel = panel(
		changes,
		LEADS_CSV,
		`lead=${profile.id}`,
		`<details><summary>Every change of the score</summary>${shownOf('ledger-count', ledger.rows.length, ledger.total, 'changes')}${tableHtml(changes, true)}</details>`,
	);
	return `${panel(table, LEADS_CSV, `lead=${profile.id}`, `${verdict}${parts}${tableHtml(table, true)}`)}\n${ledgerPanel}`;
}

function timelineHtml(detail: LeadDetail): string {
	const { timeline, profile } = detail;
	const table = timelineTable(timeline.entries);
	return panel(table, LEADS_CSV, `lead=${profile.id}`, `${shownOf('timeline-count', timeline.entries.length, timeline.total, 'entries')}${tableHtml(table, true)}`);
}

function sequencesHtml(detail: LeadDetail): string {
	const { sequences, profile } = detail;
	const table = sequencesTable(sequences);
	const content = sequences.length
		? sequences
				.map((enrollment, index) => {
					const steps = enrollmentTable(enrollment, index);
					return `<h3 id="h-${steps.name}">${escape(enrollment.sequence)}</h3><p class="note">${escape(enrollmentSummary(enrollment))}</p>${tableHtml(steps, true)}`;
				})
				.join('\n')
		: `<p class="empty">${escape(table.empty)}</p>`;
	return panel(table, LEADS_CSV, `lead=${profile.id}`, content);
}

export function leadPage(site: SiteHeading, period: Chosen, assets: DashboardAssets, detail: LeadDetail, backToList: string, now: Date): string {
	const { profile } = detail;
	const name = fullName(profile);
	const headline: Array<[string, string, string, string, string]> = [
		['score', 'Score', String(profile.score), formatCount(profile.score), `engagement ${formatCount(profile.engagementScore)} · fit ${formatCount(profile.fitScore)}`],
		['stage', 'Lifecycle stage', profile.stage, profile.stage, ''],
		// How long ago in large type, the time below: a whole date-time does not fit a card.
		['lastActivity', 'Last activity', profile.lastActivityAt.toISOString(), ago(profile.lastActivityAt, now), `${formatTime(profile.lastActivityAt, true)} UTC`],
		['tags', 'Tags', String(profile.tags.length), formatCount(profile.tags.length), ''],
	];
	const cards = headline
		.map(
			([key, label, value, text, note]) =>
				`<li class="figure"><span class="label" id="label-${key}">${label}</span><span class="value" data-figure="${key}" data-value="${escape(value)}" aria-describedby="label-${key}">${escape(text)}</span>${note ? `<span class="change">${escape(note)}</span>` : ''}</li>`,
		)
		.join('');
	const content = `${subNav('lead', period)}
<p><a href="${escape(backToList)}">← Back to the lead list</a></p>
<section aria-labelledby="h-lead"><h2 id="h-lead">${escape(name ? `${name} · ${profile.email}` : profile.email)}</h2>
<ul class="figures">${cards}</ul></section>
<div class="grid">
<section class="panel" aria-labelledby="h-profile"><h2 id="h-profile">Profile</h2>${profileHtml(profile)}</section>
${enrichmentHtml(profile)}
${consentHtml(profile)}
</div>
${scoreHtml(detail)}
${timelineHtml(detail)}
${sequencesHtml(detail)}`;
	return shell(site, PAGE, period, assets, content, false, undefined, false);
}

export function leadNotFoundPage(site: SiteHeading, period: Chosen, assets: DashboardAssets): string {
	return shell(
		site,
		PAGE,
		period,
		assets,
		`${subNav('lead', period)}\n<p class="error" role="alert">This site has no lead with this id. It may have been erased; find the lead in the <a href="${escape(withQuery(LIST_PATH, periodQuery(period)))}">lead list</a>.</p>`,
		false,
		undefined,
		false,
	);
}
