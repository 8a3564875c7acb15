/**
 * The CRM rows of one site as a canonical dump, free of anything that differs between two runs of
 * the same input: row ids are replaced by what identifies the row (a visitor by its anonymous id,
 * a lead by its email, a session by its key, a conversion by goal and event, an event by its
 * index in the input), times of writing (created_at, updated_at, scored_at, and the activity times
 * the nodes stamp "now") are left out, and rows are sorted by those identities. Two runs that
 * store the same CRM state give equal dumps, whatever ids and order their writes had.
 */
import type { PrismaClient } from '../../../lib/db/generated/client';

export type DumpRow = unknown[];
export type ChainDump = Record<string, DumpRow[]>;

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

const iso = (value: Date | null) => (value === null ? null : value.toISOString());
const compare = (a: DumpRow, b: DumpRow) => {
	const x = JSON.stringify(a);
	const y = JSON.stringify(b);
	return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * Dumps the site's visitors, sessions (each with its events, in time order), conversions and
 * their attribution, activities, leads, score rows, stage moves, tags and businesses.
 * `eventIds` names events: the input's ids in order, as `e<index>`.
 */
export async function dumpChain(prisma: PrismaClient, siteId: string, eventIds: readonly string[]): Promise<ChainDump> {
	const names = new Map<string, string>(eventIds.map((id, index) => [id.toLowerCase(), `e${index}`]));
	const query = <T>(sql: string) => prisma.$queryRawUnsafe<T[]>(sql, siteId);

	const leads = await query<Record<string, unknown> & { id: string; email: string; business_domain: string | null }>(
		`SELECT l.*, b.domain AS business_domain FROM leads l LEFT JOIN businesses b ON b.id = l.business_id WHERE l.site_id = $1::uuid`,
	);
	for (const lead of leads) names.set(lead.id, `lead:${lead.email}`);
	const visitors = await query<Record<string, unknown> & { id: string; anonymous_id: string; lead_id: string | null }>(`SELECT * FROM visitors WHERE site_id = $1::uuid`);
	for (const visitor of visitors) names.set(visitor.id, `visitor:${visitor.anonymous_id}`);
	const events = await query<{ event_id: string; anonymous_id: string; type: string; visitor_id: string | null; session_id: string | null }>(
		`SELECT e.event_id::text, e.anonymous_id, e.type, l.visitor_id, l.session_id FROM visitor_events e LEFT JOIN visitor_event_links l ON l.site_id = e.site_id AND l.event_id = e.event_id
		WHERE e.site_id = $1::uuid ORDER BY e.occurred_at, e.event_id`,
	);
	// Events the input did not hold (the identify events stored for lead submissions) are named in time order.
	let extra = 0;
	for (const event of events) if (!names.has(event.event_id)) names.set(event.event_id, `${event.type}${++extra}`);
	const sessions = await query<Record<string, unknown> & { id: string; session_key: string; visitor_id: string }>(`SELECT * FROM visitor_sessions WHERE site_id = $1::uuid`);
	/** A session key is `<anonymous id>:<id of its first event>`. */
	const sessionName = (key: string) => {
		const cut = key.lastIndexOf(':');
		return `session:${key.slice(0, cut)}:${names.get(key.slice(cut + 1).toLowerCase()) ?? key.slice(cut + 1)}`;
	};
	for (const session of sessions) names.set(session.id, sessionName(session.session_key));
	const conversions = await query<Record<string, unknown> & { id: string; goal: string; event_id: string }>(`SELECT * FROM conversions WHERE site_id = $1::uuid`);
	for (const conversion of conversions) names.set(conversion.id, `conversion:${conversion.goal}@${names.get(conversion.event_id.toLowerCase()) ?? conversion.event_id}`);

	/** Any id inside a text or JSON value, replaced by its name; an id the dump cannot name would differ between runs, so it says so. */
	const canonical = (value: unknown): unknown => {
		if (value === null || value === undefined) return null;
		if (typeof value === 'string') return value.replace(UUID, (id) => names.get(id.toLowerCase()) ?? '<unnamed id>');
		if (value instanceof Date) return value.toISOString();
		if (Array.isArray(value)) return value.map(canonical);
		if (typeof value === 'object') {
			if (typeof (value as { toFixed?: unknown }).toFixed === 'function' && !(typeof value === 'number')) return String(value);
			return Object.fromEntries(
				Object.entries(value as Record<string, unknown>)
					.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
					.map(([key, inner]) => [key, canonical(inner)]),
			);
		}
		return value;
	};
	const name = (id: unknown) => (typeof id === 'string' ? (names.get(id.toLowerCase()) ?? '<unnamed id>') : null);

	const eventsOfSession = new Map<string, string[]>();
	const unsessioned: DumpRow[] = [];
	for (const event of events) {
		if (event.session_id) eventsOfSession.set(event.session_id, [...(eventsOfSession.get(event.session_id) ?? []), names.get(event.event_id)!]);
		else unsessioned.push([names.get(event.event_id), event.anonymous_id, event.type, name(event.visitor_id)]);
	}

	const dump: ChainDump = {
		visitors: visitors.map((v) => [
			v.anonymous_id,
			name(v.lead_id),
			iso(v.first_seen_at as Date),
			iso(v.last_seen_at as Date),
			v.device_type,
			v.browser,
			v.os,
			v.country,
			v.is_bot,
			v.session_count,
			canonical(v.first_touch),
		]),
		sessions: sessions.map((s) => [
			names.get(s.id),
			name(s.visitor_id),
			iso(s.started_at as Date),
			iso(s.last_activity_at as Date),
			iso(s.ended_at as Date | null),
			s.pageviews,
			s.event_count,
			s.duration_seconds,
			s.engaged_time_ms,
			s.max_scroll_depth,
			s.is_bounce,
			s.entry_page,
			s.exit_page,
			s.engagement_score,
			s.engagement_level,
			s.channel,
			s.source,
			s.medium,
			s.campaign,
			s.term,
			s.content,
			s.referrer,
			s.referrer_domain,
			s.click_id_type,
			s.landing_page,
			s.device_type,
			s.browser,
			s.os,
			s.country,
			eventsOfSession.get(s.id) ?? [],
		]),
		eventsWithoutSession: unsessioned,
		conversions: conversions.map((c) => [names.get(c.id), name(c.visitor_id), name(c.lead_id), name(c.session_id), String(c.value), c.currency, iso(c.occurred_at as Date)]),
		attribution: (
			await query<Record<string, unknown>>(`SELECT * FROM attribution_data WHERE site_id = $1::uuid`)
		).map((a) => [name(a.conversion_id), a.model, a.touchpoint_index, name(a.session_id), a.channel, a.source, a.medium, a.campaign, iso(a.touched_at as Date), a.credit, String(a.value)]),
		activities: (await query<Record<string, unknown>>(`SELECT * FROM activities WHERE site_id = $1::uuid`)).map((a) => [
			name(a.lead_id),
			name(a.visitor_id),
			a.type,
			canonical(a.description),
			canonical(a.data),
			canonical(a.dedupe_key),
		]),
		leads: leads.map((l) => [
			l.email,
			l.email_hash,
			l.first_name,
			l.last_name,
			l.phone,
			l.company,
			l.job_title,
			l.country,
			l.timezone,
			l.source,
			l.lifecycle_stage,
			l.score,
			l.engagement_score,
			l.fit_score,
			canonical(l.first_touch),
			canonical(l.properties),
			l.consent_given,
			l.business_domain,
			iso(l.converted_at as Date | null),
		]),
		leadScores: (await query<Record<string, unknown>>(`SELECT * FROM lead_scores WHERE site_id = $1::uuid`)).map((r) => [
			name(r.lead_id),
			r.rule,
			r.delta,
			r.score_after,
			canonical(r.cause),
			canonical(r.cause_key),
		]),
		stageChanges: (await query<Record<string, unknown>>(`SELECT * FROM lead_stage_changes WHERE site_id = $1::uuid`)).map((r) => [name(r.lead_id), r.from_stage, r.to_stage, r.score_at]),
		leadTags: (await query<Record<string, unknown>>(`SELECT * FROM lead_tags WHERE site_id = $1::uuid`)).map((r) => [name(r.lead_id), r.tag, r.source]),
		businesses: (await query<Record<string, unknown>>(`SELECT * FROM businesses WHERE site_id = $1::uuid`)).map((b) => [b.domain, b.name, b.country]),
	};
	for (const rows of Object.values(dump)) rows.sort(compare);
	return dump;
}

/** A dump as text: one row per line, so a changed row shows as a changed line. */
export function formatDump(dump: ChainDump): string {
	const sections = Object.entries(dump).map(([section, rows]) => `"${section}": [\n${rows.map((row) => `\t${JSON.stringify(row)}`).join(',\n')}\n]`);
	return `{\n${sections.join(',\n')}\n}\n`;
}

/** The rows of each section that one dump has and the other has not, at most `limit` of each. */
export function dumpDifferences(actual: ChainDump, expected: ChainDump, limit = 10): string[] {
	const differences: string[] = [];
	for (const section of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
		const mine = new Set((actual[section] ?? []).map((row) => JSON.stringify(row)));
		const theirs = new Set((expected[section] ?? []).map((row) => JSON.stringify(row)));
		const missing = [...theirs].filter((row) => !mine.has(row));
		const added = [...mine].filter((row) => !theirs.has(row));
		for (const row of missing.slice(0, limit)) differences.push(`${section}: expected ${row}`);
		for (const row of added.slice(0, limit)) differences.push(`${section}: got      ${row}`);
		if (missing.length > limit || added.length > limit) differences.push(`${section}: … ${missing.length} rows missing, ${added.length} rows not expected in all`);
	}
	return differences;
}
