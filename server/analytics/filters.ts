/**
 * The dashboards' filters: each narrows a report to the sessions (and what they led to) of one
 * channel, one UTM campaign, or that viewed one page. Unset fields do not filter.
 */
export interface ReportFilter {
	/** A GA4 channel group as the sessions store it ("Organic Search", "Direct", …). */
	channel?: string;
	/** A session's UTM campaign. */
	campaign?: string;
	/** A path the session viewed ("/pricing"). */
	page?: string;
}

export const isFiltered = (filter: ReportFilter | undefined): boolean => Boolean(filter && (filter.channel || filter.campaign || filter.page));

/**
 * A text as an SQL string literal. The read layer builds its statements as text with the site id as
 * the only parameter, so a filter value is quoted here: an escape-string literal with its quotes and
 * backslashes doubled means the same whatever standard_conforming_strings says.
 */
export function sqlText(value: string): string {
	if (value.includes('\0')) throw new Error('A filter value cannot hold a NUL character');
	return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/**
 * Rollup segment keys: '' for every session of the site, then "channel:<name>", "campaign:<name>",
 * "page:<path>" joined by "|" in that order for the sessions that match each of them. A value is
 * written with its backslashes and bars escaped (\\ and \|), so no campaign or path, whatever it
 * holds, names another segment. The fold writes the keys in SQL (segmentKeySql) and a read looks
 * them up from TypeScript (segmentKey): both escape alike.
 */
const SEGMENT_PARTS = ['channel', 'campaign', 'page'] as const;
type SegmentPart = (typeof SEGMENT_PARTS)[number];

const escapeKeyValue = (value: string) => value.replaceAll('\\', '\\\\').replaceAll('|', '\\|');

export function segmentKey(filter: ReportFilter | undefined): string {
	return SEGMENT_PARTS.filter((part) => filter?.[part])
		.map((part) => `${part}:${escapeKeyValue(filter![part]!)}`)
		.join('|');
}

/** The same key from SQL expressions (null where a part does not filter; the key is null when a part's value is null). */
export function segmentKeySql(parts: Partial<Record<SegmentPart, string>>): string {
	const escaped = (value: string) => `replace(replace(${value}, chr(92), chr(92) || chr(92)), '|', chr(92) || '|')`;
	const present = SEGMENT_PARTS.filter((part) => parts[part] !== undefined);
	if (present.length === 0) return `''`;
	return present.map((part) => `'${part}:' || ${escaped(parts[part]!)}`).join(` || '|' || `);
}

/**
 * Where a filtered report reads: `base` is the segment of the channel and campaign filters ('' for
 * none), kept whole (hour, day and week rows, like the site's). A page filter adds `page`: its
 * totals are the base segment's row of that page (dimension "page" counts the sessions that viewed
 * it), its other figures are read from `pageSegment` where a day or week holds enough sessions to be
 * kept (see rollup.ts) and from analytics_page_sessions elsewhere.
 */
export interface ReportScope {
	base: string;
	page?: string;
	pageSegment?: string;
}

export function reportScope(filter: ReportFilter | undefined): ReportScope {
	const base = segmentKey({ channel: filter?.channel, campaign: filter?.campaign });
	return filter?.page ? { base, page: filter.page, pageSegment: segmentKey(filter) } : { base };
}

/**
 * The filter as a condition on a visitor_sessions row named s of the site ($1). The page condition
 * finds the sessions through their page views (the (site_id, path, occurred_at) index of pageviews):
 * `viewedFrom` and `viewedTo` bound when those may have happened, as SQL timestamptz expressions.
 */
export function sessionCondition(filter: ReportFilter | undefined, viewedFrom: string, viewedTo?: string): string {
	const conditions: string[] = [];
	if (filter?.channel) conditions.push(`s.channel = ${sqlText(filter.channel)}`);
	if (filter?.campaign) conditions.push(`s.campaign = ${sqlText(filter.campaign)}`);
	if (filter?.page) {
		conditions.push(`s.id IN (SELECT l.session_id FROM visitor_events e JOIN visitor_event_links l ON l.site_id = e.site_id AND l.event_id = e.event_id WHERE e.site_id = $1::uuid AND e.type = 'pageview' AND e.path = ${sqlText(filter.page)}
			AND e.occurred_at >= ${viewedFrom}${viewedTo ? ` AND e.occurred_at < ${viewedTo}` : ''})`);
	}
	return conditions.length === 0 ? 'true' : conditions.join(' AND ');
}

/** The channel and campaign filters as a condition on a row named `row` of analytics_page_sessions or visitor_sessions. */
export function baseCondition(filter: ReportFilter | undefined, row: string): string {
	const conditions = ['true'];
	if (filter?.channel) conditions.push(`${row}.channel = ${sqlText(filter.channel)}`);
	if (filter?.campaign) conditions.push(`${row}.campaign = ${sqlText(filter.campaign)}`);
	return conditions.join(' AND ');
}
