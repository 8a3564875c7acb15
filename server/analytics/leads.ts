import type { RecordedConsent } from '../../lib/consent';
import { emailHash } from '../../lib/email';
import { normalizeEmail } from '../../lib/mailbox';
import { MESSAGE_SUBJECT_FIELD, openLead, type PiiCipher } from '../../lib/pii';
import { isConversionOfLead } from './conversionLeads';
import { bounds, BUCKETS, IN_RANGE, ratio, type Queryable, type TimeRange } from './queries';
import { rollupsForRead, visitorCounts } from './rollup';

/**
 * The read side of Lead Intelligence: the figures of the JSON route /api/analytics/leads and of the
 * dashboard's lead pages (the overview, the lead list, one lead), from one query layer. Every
 * statement takes the site id as $1 and filters every table it reads on it, so no statement can
 * read another site's rows, whatever lead id or filter it is given. Counts are cast to int so no
 * bigint reaches JSON.
 */

// ---------------------------------------------------------------------------------------------
// The SQL conventions of ./queries.ts (the same ratio, half-open ranges and UTC buckets)

/** New leads per bucket of the range's interval. */
const LEAD_SERIES = `WITH ${BUCKETS},
	data AS (SELECT date_trunc($4::text, created_at AT TIME ZONE 'UTC') AS bucket, count(*)::int AS leads FROM leads WHERE ${IN_RANGE('created_at')} GROUP BY 1)
	SELECT bucket AT TIME ZONE 'UTC' AS "at", coalesce(data.leads, 0) AS leads
	FROM buckets LEFT JOIN data USING (bucket) ORDER BY bucket`;

// ---------------------------------------------------------------------------------------------
// Lead intelligence over a range: visitor→lead conversion, score distribution, sources, pipeline

const LEAD_SUMMARY = `SELECT count(*)::int AS "newLeads", avg(score)::float8 AS "avgScore",
	percentile_cont(0.5) WITHIN GROUP (ORDER BY score)::float8 AS "medianScore"
	FROM leads WHERE ${IN_RANGE('created_at')}`;

/**
 * Visitors seen in the range, and those of them whose lead was created in the range: the ones
 * that converted in this period (a visitor identified long ago is not a new conversion). The
 * second count starts from the range's new leads, the smaller side; the lateral subquery keeps
 * it a lookup per lead through the lead_id and (visitor_id, started_at) indexes, whatever the
 * planner guesses about the visitors table.
 */
const visitorToLead = (range: TimeRange) => `SELECT
	coalesce((SELECT visitors FROM (${visitorCounts(range.from, range.to, 'visitor')}) v), 0)::int AS visitors,
	(SELECT coalesce(sum(seen.visitors), 0) FROM leads l
		CROSS JOIN LATERAL (
			SELECT count(*) AS visitors FROM visitors v
			WHERE v.lead_id = l.id AND v.site_id = $1::uuid
				AND EXISTS (SELECT 1 FROM visitor_sessions s WHERE s.visitor_id = v.id AND s.started_at >= $2::timestamptz AND s.started_at < $3::timestamptz)) seen
		WHERE l.site_id = $1::uuid AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz)::int AS "convertedVisitors"`;

/** Ten-point buckets; bucket -1 holds negative scores (negative rules exist) and 10 holds 100 and over. */
const SCORE_BUCKETS = `SELECT CASE WHEN score < 0 THEN -1 WHEN score >= 100 THEN 10 ELSE floor(score / 10)::int END AS bucket, count(*)::int AS leads
	FROM leads WHERE ${IN_RANGE('created_at')} GROUP BY 1`;

/** Capped because `source` is free text from forms; the long tail is not a dashboard row. */
const LEAD_SOURCES = `SELECT source, count(*)::int AS leads FROM leads WHERE ${IN_RANGE('created_at')}
	GROUP BY source ORDER BY leads DESC, source NULLS LAST LIMIT 25`;

/** A pipeline is a snapshot: every lead of the site at its current stage, whenever it was created. */
const PIPELINE = `SELECT lifecycle_stage AS stage, count(*)::int AS leads FROM leads WHERE site_id = $1::uuid GROUP BY lifecycle_stage`;

const STAGE_CHANGES = `SELECT from_stage AS "from", to_stage AS "to", count(*)::int AS leads
	FROM lead_stage_changes WHERE ${IN_RANGE('occurred_at')}
	GROUP BY from_stage, to_stage ORDER BY leads DESC, from_stage, to_stage`;

export interface ScoreBucket {
	/** Inclusive lower bound; null for the negative bucket. */
	min: number | null;
	/** Exclusive upper bound; null for the open top bucket. */
	max: number | null;
	leads: number;
}

export interface LeadSummary {
	newLeads: number;
	avgScore: number | null;
	medianScore: number | null;
	visitors: number;
	convertedVisitors: number;
	visitorToLeadRate: number | null;
}

export interface LeadAnalytics {
	/** Every change to the site's sessions noted before this instant is counted (see rollupsForRead). */
	asOf: Date;
	summary: LeadSummary;
	scoreDistribution: ScoreBucket[];
	sources: Array<{ source: string | null; leads: number; share: number | null }>;
	pipeline: Array<{ stage: string; leads: number }>;
	stageChanges: Array<{ from: string; to: string; leads: number }>;
	series: Array<{ at: Date; leads: number }>;
}

function scoreDistribution(rows: Array<{ bucket: number; leads: number }>): ScoreBucket[] {
	const counts = new Map(rows.map((row) => [row.bucket, row.leads]));
	return Array.from({ length: 12 }, (_, index) => {
		const bucket = index - 1;
		return { min: bucket < 0 ? null : bucket * 10, max: bucket >= 10 ? null : (bucket + 1) * 10, leads: counts.get(bucket) ?? 0 };
	});
}

/** The configured stages in their order (empty ones included), then any stage only the data knows. */
export function orderStages(stages: readonly string[], known: readonly string[]): string[] {
	return [...stages, ...[...new Set(known)].filter((stage) => !stages.includes(stage)).sort()];
}

function orderPipeline(stages: readonly string[], rows: Array<{ stage: string; leads: number }>): LeadAnalytics['pipeline'] {
	const counts = new Map(rows.map((row) => [row.stage, row.leads]));
	return orderStages(
		stages,
		rows.map((row) => row.stage),
	).map((stage) => ({ stage, leads: counts.get(stage) ?? 0 }));
}

/** New leads, their scores and the visitor→lead conversion of a range (from rollups made ready by the caller). */
async function leadSummary(prisma: Queryable, siteId: string, range: TimeRange): Promise<LeadSummary> {
	const [[summary], [conversion]] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ newLeads: number; avgScore: number | null; medianScore: number | null }>>(LEAD_SUMMARY, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ visitors: number; convertedVisitors: number }>>(visitorToLead(range), ...bounds(siteId, range)),
	]);
	return { ...summary, ...conversion, visitorToLeadRate: ratio(conversion.convertedVisitors, conversion.visitors) };
}

export async function leadAnalytics(prisma: Queryable, siteId: string, range: TimeRange, stages: readonly string[]): Promise<LeadAnalytics> {
	const asOf = await rollupsForRead(prisma, siteId);
	const [summary, buckets, sources, pipeline, stageChanges, points] = await Promise.all([
		leadSummary(prisma, siteId, range),
		prisma.$queryRawUnsafe<Array<{ bucket: number; leads: number }>>(SCORE_BUCKETS, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ source: string | null; leads: number }>>(LEAD_SOURCES, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<Array<{ stage: string; leads: number }>>(PIPELINE, siteId),
		prisma.$queryRawUnsafe<LeadAnalytics['stageChanges']>(STAGE_CHANGES, ...bounds(siteId, range)),
		prisma.$queryRawUnsafe<LeadAnalytics['series']>(LEAD_SERIES, ...bounds(siteId, range), range.interval),
	]);
	return {
		asOf,
		summary,
		scoreDistribution: scoreDistribution(buckets),
		sources: sources.map((row) => ({ ...row, share: ratio(row.leads, summary.newLeads) })),
		pipeline: orderPipeline(stages, pipeline),
		stageChanges,
		series: points,
	};
}

// ---------------------------------------------------------------------------------------------
// Channels: where the range's new leads first came from

/**
 * A lead's channel is that of its first touch: the one the Lead Scorer keeps on the lead (the
 * earliest of its visitors' first sessions), else its earliest visitor's own, for a lead not
 * rescored since its visitor's first session was built. Null: no tracked visit.
 */
const LEAD_CHANNELS = `SELECT nullif(coalesce(l.first_touch ->> 'channel', first_visitor.channel), '') AS channel, count(*)::int AS leads
	FROM leads l
	LEFT JOIN LATERAL (
		SELECT v.first_touch ->> 'channel' AS channel FROM visitors v
		WHERE v.site_id = $1::uuid AND v.lead_id = l.id AND v.first_touch ? 'channel'
		ORDER BY v.first_seen_at, v.id LIMIT 1) first_visitor ON true
	WHERE l.site_id = $1::uuid AND l.created_at >= $2::timestamptz AND l.created_at < $3::timestamptz
	GROUP BY 1 ORDER BY leads DESC, channel NULLS LAST`;

export interface LeadChannel {
	channel: string | null;
	leads: number;
	share: number | null;
}

export async function leadChannels(prisma: Queryable, siteId: string, range: TimeRange): Promise<LeadChannel[]> {
	const rows = await prisma.$queryRawUnsafe<Array<{ channel: string | null; leads: number }>>(LEAD_CHANNELS, ...bounds(siteId, range));
	const total = rows.reduce((sum, row) => sum + row.leads, 0);
	return rows.map((row) => ({ ...row, share: ratio(row.leads, total) }));
}

// ---------------------------------------------------------------------------------------------
// The pipeline over time: how many leads were at each stage at the end of each hour, day or week

export type PipelineUnit = 'hour' | 'day' | 'week';

/** Points as the range's interval gives them, but weeks beyond a month: a quarter of daily points of every stage is noise. */
export function pipelineUnit(range: TimeRange): PipelineUnit {
	return range.interval === 'day' && range.to.getTime() - range.from.getTime() > 31 * 86_400_000 ? 'week' : range.interval;
}

/**
 * Rebuilt from the lead rows and the stage ledger (lead_stage_changes, written by the Lead Scorer
 * with every stage it sets): a lead enters its first stage when it is created (the first recorded
 * move's from-stage, or its stage now if it never moved), and each move takes it out of the stage
 * the previous move put it in, into the next. Each lead and move is read once: a running sum of
 * these +1/−1 steps, on top of the counts before the range, gives every point. A move is dated no
 * earlier than its lead's creation (both are written in one transaction, by two clocks).
 * $4 is the unit.
 */
const PIPELINE_SERIES = `WITH ${BUCKETS},
	points AS (SELECT bucket, least((bucket + ('1 ' || $4::text)::interval) AT TIME ZONE 'UTC', $3::timestamptz) AS "end" FROM buckets),
	created AS (
		SELECT l.id, l.created_at, coalesce(first_move.from_stage, l.lifecycle_stage) AS stage
		FROM leads l
		LEFT JOIN (SELECT DISTINCT ON (lead_id) lead_id, from_stage FROM lead_stage_changes WHERE site_id = $1::uuid ORDER BY lead_id, occurred_at, id) first_move
			ON first_move.lead_id = l.id
		WHERE l.site_id = $1::uuid AND l.created_at < $3::timestamptz),
	moves AS (
		SELECT c.lead_id, greatest(c.occurred_at, created.created_at) AS at, c.to_stage,
			coalesce(lag(c.to_stage) OVER (PARTITION BY c.lead_id ORDER BY c.occurred_at, c.id), created.stage) AS left_stage
		FROM lead_stage_changes c JOIN created ON created.id = c.lead_id
		WHERE c.site_id = $1::uuid AND c.occurred_at < $3::timestamptz),
	steps AS (
		SELECT created_at AS at, stage, 1 AS n FROM created
		UNION ALL SELECT at, to_stage, 1 FROM moves
		UNION ALL SELECT at, left_stage, -1 FROM moves),
	before AS (SELECT stage, sum(n) AS leads FROM steps WHERE at < $2::timestamptz GROUP BY stage),
	within AS (SELECT date_trunc($4::text, at AT TIME ZONE 'UTC') AS bucket, stage, sum(n) AS leads FROM steps WHERE at >= $2::timestamptz GROUP BY 1, 2),
	-- Without any lead there is no stage: each point still comes, once, with a null stage.
	grid AS (SELECT points.bucket, points."end", stages.stage FROM points LEFT JOIN (SELECT DISTINCT stage FROM steps) stages ON true)
	SELECT grid.bucket AT TIME ZONE 'UTC' AS "at", grid."end", grid.stage,
		(coalesce(before.leads, 0) + sum(coalesce(within.leads, 0)) OVER (PARTITION BY grid.stage ORDER BY grid.bucket))::int AS leads
	FROM grid LEFT JOIN within USING (bucket, stage) LEFT JOIN before USING (stage)
	ORDER BY grid.bucket, grid.stage`;

export interface PipelineSeries {
	unit: PipelineUnit;
	/** The configured stages in order, then any stage only the data knows. */
	stages: string[];
	/** One point per hour, day or week: when it starts, the instant its counts hold at, and the leads at each stage then. */
	points: Array<{ at: Date; end: Date; leads: Record<string, number> }>;
}

export async function pipelineSeries(prisma: Queryable, siteId: string, range: TimeRange, configured: readonly string[]): Promise<PipelineSeries> {
	const unit = pipelineUnit(range);
	const rows = await prisma.$queryRawUnsafe<Array<{ at: Date; end: Date; stage: string | null; leads: number }>>(PIPELINE_SERIES, ...bounds(siteId, range), unit);
	const stages = orderStages(
		configured,
		rows.flatMap((row) => (row.stage === null ? [] : [row.stage])),
	);
	const points = new Map<number, PipelineSeries['points'][number]>();
	for (const row of rows) {
		const point = points.get(row.at.getTime()) ?? { at: row.at, end: row.end, leads: Object.fromEntries(stages.map((stage) => [stage, 0])) };
		if (row.stage !== null) point.leads[row.stage] = row.leads;
		points.set(row.at.getTime(), point);
	}
	return { unit, stages, points: [...points.values()] };
}

// ---------------------------------------------------------------------------------------------
// The lead list

export const LEAD_SORTS = ['score', 'created', 'activity'] as const;
export type LeadSort = (typeof LEAD_SORTS)[number];

export interface LeadListQuery {
	/**
	 * Part of the email, the name or the company (the lead's or its business's), any case. On a site
	 * with privacy.encryptPii: an exact address (any spelling of it), part of the business's name, or
	 * part of the email, name or company among the newest SEALED_SEARCH_WINDOW leads.
	 */
	search?: string;
	stage?: string;
	/** Inclusive bounds of the score. */
	minScore?: number;
	maxScore?: number;
	tag?: string;
	sort: LeadSort;
	order: 'asc' | 'desc';
	limit: number;
	offset: number;
}

export interface LeadListRow {
	id: string;
	email: string;
	name: string | null;
	company: string | null;
	stage: string;
	score: number;
	tags: string[];
	createdAt: Date;
	lastActivityAt: Date;
}

/**
 * A lead's last activity: the latest of its visits (its visitors' last events), the activities
 * logged for it, its conversions, the emails sent to it and their first open and click, and its
 * creation. Each is an index lookup per lead.
 */
const LAST_ACTIVITY = `greatest(l.created_at,
	(SELECT max(v.last_seen_at) FROM visitors v WHERE v.lead_id = l.id AND v.site_id = $1::uuid),
	(SELECT max(a.occurred_at) FROM activities a WHERE a.site_id = $1::uuid AND a.lead_id = l.id),
	(SELECT max(c.occurred_at) FROM conversions c WHERE ${isConversionOfLead('l.id')}),
	(SELECT max(greatest(m.sent_at, m.first_opened_at, m.first_clicked_at)) FROM email_messages m WHERE m.lead_id = l.id AND m.site_id = $1::uuid))`;

/** Escapes LIKE's wildcards, so a search for "50%" or "a_b" finds those characters. */
const likePattern = (text: string) => `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;

/**
 * Leads of a site with privacy.encryptPii whose sealed email, name and company a search opens and
 * reads, newest first: a sealed value matches no pattern in SQL. An exact address is found among
 * all leads by its keyed hash; other text only among these.
 */
export const SEALED_SEARCH_WINDOW = 5000;

/**
 * $2 search pattern, $3 stage, $4 and $5 score bounds, $6 tag; null does not filter. $7: the lead's
 * own columns are sealed, so the pattern is tried on the business's name only, and a lead matches
 * by $8 (the hashes of the address searched for) or $9 (the ids whose opened values match).
 */
const LIST_WHERE = `l.site_id = $1::uuid
	AND ($2::text IS NULL OR b.name ILIKE $2 ESCAPE '\\'
		OR (NOT $7::boolean AND (l.email ILIKE $2 ESCAPE '\\' OR concat_ws(' ', l.first_name, l.last_name) ILIKE $2 ESCAPE '\\' OR l.company ILIKE $2 ESCAPE '\\'))
		OR l.email_hash = ANY($8::text[]) OR l.id = ANY($9::uuid[]))
	AND ($3::text IS NULL OR l.lifecycle_stage = $3)
	AND ($4::float8 IS NULL OR l.score >= $4)
	AND ($5::float8 IS NULL OR l.score <= $5)
	AND ($6::text IS NULL OR EXISTS (SELECT 1 FROM lead_tags t WHERE t.lead_id = l.id AND t.site_id = $1::uuid AND t.tag = $6))`;

const LIST_FROM = `FROM leads l LEFT JOIN businesses b ON b.id = l.business_id AND b.site_id = $1::uuid WHERE ${LIST_WHERE}`;

/** Every ordering ends on the id, so pages never share or skip a row. */
const ORDER_BY: Record<LeadSort, string> = {
	score: 'l.score',
	created: 'l.created_at',
	activity: '"lastActivityAt"',
};

const listSql = (sort: LeadSort, order: 'asc' | 'desc') => `SELECT l.id, l.email, l.first_name AS "firstName", l.last_name AS "lastName",
		l.company, b.name AS "businessName", l.lifecycle_stage AS stage, l.score, l.created_at AS "createdAt", ${LAST_ACTIVITY} AS "lastActivityAt",
		coalesce((SELECT array_agg(t.tag ORDER BY t.tag) FROM lead_tags t WHERE t.lead_id = l.id AND t.site_id = $1::uuid), '{}') AS tags
	${LIST_FROM}
	ORDER BY ${ORDER_BY[sort]} ${order === 'asc' ? 'ASC' : 'DESC'}, l.id ${order === 'asc' ? 'ASC' : 'DESC'}
	LIMIT $10 OFFSET $11`;

type NameFields = { firstName: string | null; lastName: string | null };

/** The name as the list shows it: first and last name joined, as SQL's concat_ws joins them; null when neither is set. */
const nameOf = ({ firstName, lastName }: NameFields) => [firstName, lastName].filter((part) => part !== null).join(' ') || null;

/** The newest leads of the window whose opened email, name or company holds `search`, any case. */
async function sealedMatches(prisma: Queryable, siteId: string, search: string, cipher: PiiCipher): Promise<string[]> {
	const rows = await prisma.$queryRawUnsafe<Array<{ id: string; email: string; company: string | null } & NameFields>>(
		`SELECT id, email, first_name AS "firstName", last_name AS "lastName", company FROM leads WHERE site_id = $1::uuid ORDER BY created_at DESC, id DESC LIMIT $2`,
		siteId,
		SEALED_SEARCH_WINDOW,
	);
	const needle = search.toLowerCase();
	const holds = (value: string | null) => value !== null && value.toLowerCase().includes(needle);
	return rows
		.filter((row) => {
			const lead = openLead(cipher, row);
			return holds(lead.email) || holds(nameOf(lead)) || holds(lead.company);
		})
		.map((row) => row.id);
}

/** The list's SQL parameters $1 to $9; `cipher` is the site's on a site with privacy.encryptPii. */
async function listFilters(prisma: Queryable, siteId: string, query: LeadListQuery, cipher: PiiCipher | null): Promise<unknown[]> {
	const { search } = query;
	// A lead written before the site sealed keeps its SHA-256 hash: both are looked for.
	const hashes = cipher && search && normalizeEmail(search) ? [...new Set([emailHash(search, cipher), emailHash(search)])] : [];
	const opened = cipher && search ? await sealedMatches(prisma, siteId, search, cipher) : [];
	return [siteId, search ? likePattern(search) : null, query.stage ?? null, query.minScore ?? null, query.maxScore ?? null, query.tag ?? null, cipher !== null, hashes, opened];
}

/** One page of the leads the query matches, and how many match in all; sealed values opened with the site's `cipher`. */
export async function leadList(prisma: Queryable, siteId: string, query: LeadListQuery, cipher: PiiCipher | null = null): Promise<{ total: number; rows: LeadListRow[] }> {
	const filters = await listFilters(prisma, siteId, query, cipher);
	type Row = Omit<LeadListRow, 'name' | 'company'> & NameFields & { company: string | null; businessName: string | null };
	const [[count], rows] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ total: number }>>(`SELECT count(*)::int AS total ${LIST_FROM}`, ...filters),
		prisma.$queryRawUnsafe<Row[]>(listSql(query.sort, query.order), ...filters, query.limit, query.offset),
	]);
	return {
		total: count.total,
		rows: rows.map((row) => {
			const { firstName, lastName, businessName, ...lead } = openLead(cipher, row);
			return { ...lead, name: nameOf({ firstName, lastName }), company: lead.company ?? businessName };
		}),
	};
}

/** What the list's filters offer: the stages the leads are at (beside the configured ones) and the site's tags, with how many leads carry each. */
export async function leadFilterOptions(prisma: Queryable, siteId: string): Promise<{ stages: string[]; tags: Array<{ tag: string; leads: number }> }> {
	const [stages, tags] = await Promise.all([
		prisma.$queryRawUnsafe<Array<{ stage: string }>>(`SELECT DISTINCT lifecycle_stage AS stage FROM leads WHERE site_id = $1::uuid`, siteId),
		// Tags are few per site (the enricher's, the forms'); the bound keeps a runaway tagger from filling the form.
		prisma.$queryRawUnsafe<Array<{ tag: string; leads: number }>>(`SELECT tag, count(*)::int AS leads FROM lead_tags WHERE site_id = $1::uuid GROUP BY tag ORDER BY tag LIMIT 500`, siteId),
	]);
	return { stages: stages.map((row) => row.stage), tags };
}

// ---------------------------------------------------------------------------------------------
// One lead: profile, enrichment, score explanation, timeline, sequences

export interface LeadProfile {
	id: string;
	email: string;
	firstName: string | null;
	lastName: string | null;
	phone: string | null;
	company: string | null;
	jobTitle: string | null;
	country: string | null;
	timezone: string | null;
	source: string | null;
	stage: string;
	score: number;
	engagementScore: number;
	fitScore: number;
	scoredAt: Date | null;
	firstTouch: Record<string, unknown> | null;
	properties: unknown;
	consentGiven: boolean;
	convertedAt: Date | null;
	createdAt: Date;
	lastActivityAt: Date;
	business: { name: string | null; domain: string; industry: string | null; size: string | null; country: string | null; properties: unknown } | null;
	contact: { jobTitle: string | null; phone: string | null } | null;
	tags: Array<{ tag: string; source: string | null; createdAt: Date }>;
	channels: Array<{ channel: string; status: string; reason: string | null; changedAt: Date }>;
	/** The browsers (visitors) linked to the lead. */
	visitors: number;
}

const LEAD_PROFILE = `SELECT l.id, l.email, l.first_name AS "firstName", l.last_name AS "lastName", l.phone, l.company, l.job_title AS "jobTitle",
		l.country, l.timezone, l.source, l.lifecycle_stage AS stage, l.score, l.engagement_score AS "engagementScore", l.fit_score AS "fitScore",
		l.scored_at AS "scoredAt", l.first_touch AS "firstTouch", l.properties, l.consent_given AS "consentGiven",
		least(l.converted_at, (SELECT min(c.occurred_at) FROM conversions c WHERE ${isConversionOfLead('l.id')})) AS "convertedAt",
		l.created_at AS "createdAt", ${LAST_ACTIVITY} AS "lastActivityAt",
		(SELECT jsonb_build_object('name', b.name, 'domain', b.domain, 'industry', b.industry, 'size', b.size, 'country', b.country, 'properties', b.properties)
			FROM businesses b WHERE b.id = l.business_id AND b.site_id = $1::uuid) AS business,
		(SELECT jsonb_build_object('jobTitle', c.job_title, 'phone', c.phone) FROM contacts c WHERE c.lead_id = l.id AND c.site_id = $1::uuid) AS contact,
		coalesce((SELECT jsonb_agg(jsonb_build_object('tag', t.tag, 'source', t.source, 'createdAt', t.created_at) ORDER BY t.tag)
			FROM lead_tags t WHERE t.lead_id = l.id AND t.site_id = $1::uuid), '[]') AS tags,
		coalesce((SELECT jsonb_agg(jsonb_build_object('channel', s.channel, 'status', s.status, 'reason', s.reason, 'changedAt', s.changed_at) ORDER BY s.channel)
			FROM channel_statuses s WHERE s.lead_id = l.id AND s.site_id = $1::uuid), '[]') AS channels,
		(SELECT count(*) FROM visitors v WHERE v.lead_id = l.id AND v.site_id = $1::uuid)::int AS visitors
	FROM leads l WHERE l.site_id = $1::uuid AND l.id = $2::uuid`;

type JsonDates<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] };

/** The lead of this site with this id, sealed values opened with the site's `cipher`; undefined when the site has none (another site's lead included). */
export async function leadProfile(prisma: Queryable, siteId: string, leadId: string, cipher: PiiCipher | null = null): Promise<LeadProfile | undefined> {
	type Row = Omit<LeadProfile, 'tags' | 'channels'> & { tags: Array<JsonDates<LeadProfile['tags'][number]>>; channels: Array<JsonDates<LeadProfile['channels'][number]>> };
	const [row] = await prisma.$queryRawUnsafe<Row[]>(LEAD_PROFILE, siteId, leadId);
	if (!row) return undefined;
	return {
		...openLead(cipher, row),
		tags: row.tags.map((tag) => ({ ...tag, createdAt: new Date(tag.createdAt) })),
		channels: row.channels.map((channel) => ({ ...channel, changedAt: new Date(channel.changedAt) })),
	};
}

/**
 * How the Lead Scorer words a ledger row written while a rule's evidence stayed the same, so the
 * change is decay, a group or total cap shared with other rules, or an edited rule
 * (nodes/LeadScorer/rescore.ts, scoreRowsOf).
 */
export const RECOMPUTED_CAUSE = 'recomputed (decay or changed rules)';

export interface RuleExplanation {
	rule: string;
	/** What the rule's rows add up to: its points now. */
	points: number;
	/** Added by new evidence (a matched event, visit or field). */
	evidence: number;
	/** Changed with the same evidence: decay, caps, edited rules. */
	recomputed: number;
	/** The cause of the rule's latest row: why it has its points now. */
	latestCause: string;
}

/** Each rule's rows of the score ledger (lead_scores), summed; the largest contribution first. */
const SCORE_EXPLANATION = `SELECT rule, sum(delta)::float8 AS points,
		coalesce(sum(delta) FILTER (WHERE NOT starts_with(cause, $3)), 0)::float8 AS evidence,
		coalesce(sum(delta) FILTER (WHERE starts_with(cause, $3)), 0)::float8 AS recomputed,
		(array_agg(cause ORDER BY occurred_at DESC, created_at DESC, id DESC))[1] AS "latestCause"
	FROM lead_scores WHERE site_id = $1::uuid AND lead_id = $2::uuid
	GROUP BY rule`;

/** Ledger deltas carry two decimals; their float sum is rounded back to them. */
export const hundredths = (value: number) => Math.round(value * 100) / 100;

export async function scoreExplanation(prisma: Queryable, siteId: string, leadId: string): Promise<RuleExplanation[]> {
	const rows = await prisma.$queryRawUnsafe<RuleExplanation[]>(SCORE_EXPLANATION, siteId, leadId, RECOMPUTED_CAUSE);
	return rows
		.map((row) => ({ ...row, points: hundredths(row.points), evidence: hundredths(row.evidence), recomputed: hundredths(row.recomputed) }))
		.sort((a, b) => Math.abs(b.points) - Math.abs(a.points) || a.rule.localeCompare(b.rule));
}

export interface LedgerRow {
	at: Date;
	rule: string;
	delta: number;
	scoreAfter: number;
	cause: string;
}

/** The lead's score ledger itself, newest first: the newest `$3` rows and how many there are. */
const SCORE_LEDGER = `SELECT occurred_at AS at, rule, delta, score_after AS "scoreAfter", cause, count(*) OVER ()::int AS total
	FROM lead_scores WHERE site_id = $1::uuid AND lead_id = $2::uuid
	ORDER BY occurred_at DESC, created_at DESC, id DESC LIMIT $3`;

export async function scoreLedger(prisma: Queryable, siteId: string, leadId: string, limit: number): Promise<{ total: number; rows: LedgerRow[] }> {
	const rows = await prisma.$queryRawUnsafe<Array<LedgerRow & { total: number }>>(SCORE_LEDGER, siteId, leadId, limit);
	return { total: rows[0]?.total ?? 0, rows: rows.map(({ total: _total, ...row }) => row) };
}

export type TimelineKind = 'visit' | 'conversion' | 'activity' | 'email' | 'email-event' | 'stage';

export interface TimelineEntry {
	at: Date;
	kind: TimelineKind;
	/** What the entry's kind gives (see TIMELINE): read by the page, never shown raw. */
	data: Record<string, unknown>;
}

/**
 * Everything that happened to a lead, from each table through its per-lead index: the sessions of
 * its visitors, its conversions (its own, or its visitors' before it was known), the activities
 * logged for it or its visitors, the emails sent to it and their events, its stage moves. The
 * newest `$3` entries, and how many there are in all.
 */
const TIMELINE = `WITH linked AS (SELECT id FROM visitors WHERE site_id = $1::uuid AND lead_id = $2::uuid),
	messages AS (SELECT id, subject, status, sent_at, created_at, error FROM email_messages WHERE site_id = $1::uuid AND lead_id = $2::uuid),
	entries AS (
		SELECT s.started_at AS at, 'visit' AS kind, jsonb_build_object('channel', s.channel, 'pages', s.pageviews, 'seconds', s.duration_seconds,
			'entryPage', s.entry_page, 'engagement', s.engagement_level, 'campaign', s.campaign) AS data
		FROM visitor_sessions s WHERE s.site_id = $1::uuid AND s.visitor_id IN (SELECT id FROM linked)
		UNION ALL
		SELECT c.occurred_at, 'conversion', jsonb_build_object('goal', c.goal, 'value', c.value, 'currency', c.currency)
		FROM conversions c WHERE ${isConversionOfLead('$2::uuid')}
		UNION ALL
		SELECT a.occurred_at, 'activity', jsonb_build_object('type', a.type, 'description', a.description)
		FROM activities a WHERE a.site_id = $1::uuid AND (a.lead_id = $2::uuid OR (a.lead_id IS NULL AND a.visitor_id IN (SELECT id FROM linked)))
		UNION ALL
		SELECT coalesce(m.sent_at, m.created_at), 'email', jsonb_build_object('subject', m.subject, 'status', m.status, 'error', m.error)
		FROM messages m
		UNION ALL
		SELECT e.occurred_at, 'email-event', jsonb_build_object('type', e.type, 'url', e.url, 'subject', m.subject)
		FROM email_events e JOIN messages m ON m.id = e.message_id WHERE e.site_id = $1::uuid
		UNION ALL
		SELECT g.occurred_at, 'stage', jsonb_build_object('from', g.from_stage, 'to', g.to_stage, 'score', g.score_at)
		FROM lead_stage_changes g WHERE g.site_id = $1::uuid AND g.lead_id = $2::uuid)
	SELECT at, kind, data, count(*) OVER ()::int AS total FROM entries ORDER BY at DESC, kind LIMIT $3`;

/** An email entry's subject opened: email_messages seals it on a site with privacy.encryptPii, since it may greet the lead by name. */
function openSubject(cipher: PiiCipher | null, entry: TimelineEntry): TimelineEntry {
	const { subject } = entry.data;
	return cipher && typeof subject === 'string' ? { ...entry, data: { ...entry.data, subject: cipher.open(subject, MESSAGE_SUBJECT_FIELD) } } : entry;
}

export async function leadTimeline(prisma: Queryable, siteId: string, leadId: string, limit: number, cipher: PiiCipher | null = null): Promise<{ total: number; entries: TimelineEntry[] }> {
	const rows = await prisma.$queryRawUnsafe<Array<TimelineEntry & { total: number }>>(TIMELINE, siteId, leadId, limit);
	return { total: rows[0]?.total ?? 0, entries: rows.map(({ total: _total, ...entry }) => openSubject(cipher, entry)) };
}

export interface EnrollmentSteps {
	sequence: string;
	/** The status of the sequence's campaign; null for a sequence without one. */
	campaignStatus: string | null;
	status: 'active' | 'completed' | 'unenrolled';
	enrolledAt: Date;
	nextStep: number;
	nextRunAt: Date | null;
	completedAt: Date | null;
	unenrolledAt: Date | null;
	unenrollReason: string | null;
	steps: Array<{
		position: number;
		delayMinutes: number;
		subject: string;
		/** The step's one message (the Email Orchestrator's key lead:sequence:position), if it made one. */
		/** `subject`: as the message was rendered (sealed on a site with privacy.encryptPii). */
		message: { status: 'sending' | 'sent' | 'failed' | 'suppressed'; subject: string; sentAt: Date | null; openedAt: Date | null; clickedAt: Date | null; error: string | null } | null;
	}>;
}

/** The lead's enrollments, the active ones first, each with its sequence's steps as defined now and the message each step made. */
const SEQUENCES = `SELECT q.name AS sequence, (SELECT c.status::text FROM email_campaigns c WHERE c.id = q.campaign_id AND c.site_id = $1::uuid) AS "campaignStatus",
		e.status, e.enrolled_at AS "enrolledAt", e.next_step AS "nextStep", e.next_run_at AS "nextRunAt",
		e.completed_at AS "completedAt", e.unenrolled_at AS "unenrolledAt", e.unenroll_reason AS "unenrollReason",
		coalesce((SELECT jsonb_agg(jsonb_build_object('position', s.position, 'delayMinutes', s.delay_minutes, 'subject', s.subject,
				'message', (SELECT jsonb_build_object('status', m.status, 'subject', m.subject, 'sentAt', m.sent_at, 'openedAt', m.first_opened_at, 'clickedAt', m.first_clicked_at, 'error', m.error)
					FROM email_messages m WHERE m.site_id = $1::uuid AND m.idempotency_key = e.lead_id || ':' || e.sequence_id || ':' || s.position))
				ORDER BY s.position)
			FROM email_sequence_steps s WHERE s.sequence_id = e.sequence_id AND s.site_id = $1::uuid), '[]') AS steps
	FROM sequence_enrollments e JOIN email_sequences q ON q.id = e.sequence_id AND q.site_id = $1::uuid
	WHERE e.site_id = $1::uuid AND e.lead_id = $2::uuid
	ORDER BY e.status = 'active' DESC, e.enrolled_at DESC, q.name`;

const dateOrNull = (value: unknown) => (typeof value === 'string' ? new Date(value) : null);

export async function leadSequences(prisma: Queryable, siteId: string, leadId: string): Promise<EnrollmentSteps[]> {
	const rows = await prisma.$queryRawUnsafe<EnrollmentSteps[]>(SEQUENCES, siteId, leadId);
	// Dates inside jsonb arrive as text.
	return rows.map((row) => ({
		...row,
		steps: row.steps.map((step) => ({
			...step,
			message: step.message && {
				...step.message,
				sentAt: dateOrNull(step.message.sentAt),
				openedAt: dateOrNull(step.message.openedAt),
				clickedAt: dateOrNull(step.message.clickedAt),
			},
		})),
	}));
}

/**
 * What the Email Orchestrator reads about a lead before each of its steps (nodes/EmailOrchestrator:
 * findSuppression, and the records consentGateFor weighs), looked up as it looks them up: by the
 * hash the lead row stores and by `addressHash`, the plain SHA-256 of the address, which rows
 * written before the site sealed addresses carry.
 */
export interface LeadMailFacts {
	/** The lead's email channel status, if one was recorded. */
	channelStatus: string | null;
	/** The reasons its address is suppressed on email. */
	suppressions: string[];
	/** Its marketing consent records, oldest first. */
	marketing: RecordedConsent[];
}

const MAIL_FACTS = `WITH hashes AS (SELECT unnest(ARRAY[l.email_hash, $3]) AS hash FROM leads l WHERE l.site_id = $1::uuid AND l.id = $2::uuid)
	SELECT (SELECT s.status::text FROM channel_statuses s WHERE s.site_id = $1::uuid AND s.lead_id = $2::uuid AND s.channel = 'email') AS "channelStatus",
		coalesce((SELECT array_agg(p.reason::text) FROM suppressions p WHERE p.site_id = $1::uuid AND p.channel = 'email' AND p.email_hash IN (SELECT hash FROM hashes)), '{}') AS suppressions,
		coalesce((SELECT jsonb_agg(jsonb_build_object('id', r.id, 'state', r.state, 'source', r.source, 'occurredAt', r.occurred_at) ORDER BY r.occurred_at, r.created_at)
			FROM consent_records r WHERE r.site_id = $1::uuid AND r.purpose = 'marketing' AND r.email_hash IN (SELECT hash FROM hashes)), '[]') AS marketing`;

export async function leadMailFacts(prisma: Queryable, siteId: string, leadId: string, addressHash: string): Promise<LeadMailFacts> {
	type Row = Omit<LeadMailFacts, 'marketing'> & { marketing: Array<JsonDates<RecordedConsent>> };
	const [row] = await prisma.$queryRawUnsafe<Row[]>(MAIL_FACTS, siteId, leadId, addressHash);
	return { ...row, marketing: row.marketing.map((record) => ({ ...record, occurredAt: new Date(record.occurredAt) })) };
}

/** The email reserved under an idempotency key (a double opt-in confirmation's, from confirmationKey), if there is one. */
export async function reservedMessage(prisma: Queryable, siteId: string, idempotencyKey: string): Promise<{ status: string; error: string | null; createdAt: Date } | undefined> {
	const [row] = await prisma.$queryRawUnsafe<Array<{ status: string; error: string | null; createdAt: Date }>>(
		`SELECT status::text AS status, error, created_at AS "createdAt" FROM email_messages WHERE site_id = $1::uuid AND idempotency_key = $2`,
		siteId,
		idempotencyKey,
	);
	return row;
}
