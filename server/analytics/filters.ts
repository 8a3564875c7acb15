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
 * The rollup segment that holds exactly the sessions a filter keeps ('' for no filter), or null when
 * none does: the rollups keep one segment per channel and per UTM campaign, not per page (a session
 * views several pages, so page segments would multiply the rollups by the pages per session) nor per
 * combination. Such a report is computed from the raw sessions (see factRows in ./rollup.ts).
 */
export function rollupSegment(filter: ReportFilter | undefined): string | null {
	if (!isFiltered(filter) || !filter) return '';
	if (filter.page || (filter.channel && filter.campaign)) return null;
	return filter.channel ? `channel:${filter.channel}` : `campaign:${filter.campaign}`;
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
		conditions.push(`s.id IN (SELECT e.session_id FROM visitor_events e WHERE e.site_id = $1::uuid AND e.type = 'pageview' AND e.path = ${sqlText(filter.page)}
			AND e.occurred_at >= ${viewedFrom}${viewedTo ? ` AND e.occurred_at < ${viewedTo}` : ''})`);
	}
	return conditions.length === 0 ? 'true' : conditions.join(' AND ');
}
