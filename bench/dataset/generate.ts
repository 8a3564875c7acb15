/**
 * A realistic dataset for one site, written straight into the schema's tables with set-based SQL
 * (one INSERT … SELECT over generate_series per table), so a million events take seconds and ten
 * million a few minutes. It is what the dashboards bench measures and what the analytics tests
 * compare the rollups against.
 *
 * Shape, over `days` days ending at `end`: sessions of about ten events each, visitors of about two
 * sessions each (a few visitors return often), pages with a long tail, GA4 channels with their
 * referrers and UTM campaigns, devices / browsers / OS / countries per visitor, leads (a few % of
 * visitors) with scores, a score ledger that adds up to the score, stages and stage changes,
 * conversions inside sessions, sequences with steps, enrollments, email messages and email events.
 *
 * Every value is a pure function of a row number and a salt (`hashint8extended`), so a dataset is
 * the same on every run, needs no temporary tables (any connection of a pool may run any
 * statement) and each table's rows can name rows of another by recomputing their ids. Each
 * session's figures (pageviews, entry and exit page, duration, bounce) are the ones its events
 * give, as the Visitor Processor would have stored them.
 */
import { createHash } from 'node:crypto';

/** Runs one statement and gives its rows: `(sql) => client.query(sql).then((result) => result.rows)` for a pg Client, or Prisma's $queryRawUnsafe. */
export type Execute = (sql: string) => Promise<unknown[]>;

export interface DatasetOptions {
	siteId: string;
	/** About this many events are written (the exact count is returned). */
	events: number;
	days?: number;
	/** The dataset's last instant (default: now), so "the last 24 hours" of a dashboard holds data. */
	end?: Date;
	/** Different seeds give different datasets of the same shape. */
	seed?: number;
}

export interface DatasetCounts {
	visitors: number;
	sessions: number;
	events: number;
	leads: number;
	conversions: number;
	emailMessages: number;
	emailEvents: number;
	stageChanges: number;
	seconds: Record<string, number>;
}

const EVENTS_PER_SESSION = 10;
const SESSIONS_PER_VISITOR = 2;
/** Sessions written by one statement (and a tenth of that for events, about as many rows). */
const SESSIONS_PER_STATEMENT = 200_000;
/** One visitor in this many becomes a lead. */
const LEAD_EVERY = 33;

/** A uniform number in [0, 1) drawn from row number `n` and a salt: the same inputs give the same number. */
const rand = (n: string, salt: number) => `((hashint8extended(${n}, :seed * 1000 + ${salt}) & 1048575)::float8 / 1048576)`;

/** A picked element of a weighted list: `choices` as [value, weight] pairs, weights summing to anything. */
function weighted(n: string, salt: number, choices: Array<[string | null, number]>): string {
	const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
	let upTo = 0;
	const arms = choices.map(([value, weight]) => {
		upTo += weight / total;
		return `WHEN r < ${upTo.toFixed(6)} THEN ${value === null ? 'NULL' : `'${value}'`}`;
	});
	return `(SELECT CASE ${arms.slice(0, -1).join(' ')} ELSE ${choices[choices.length - 1][0] === null ? 'NULL' : `'${choices[choices.length - 1][0]}'`} END FROM (SELECT ${rand(n, salt)} AS r) pick)`;
}

/** Ids: 8 hex digits of (site, table, seed), then the row number, so tables can name each other's rows. */
function idPrefix(siteId: string, table: string, seed: number): string {
	return createHash('sha256').update(`${siteId}:${table}:${seed}`).digest('hex').slice(0, 8);
}
const uuidOf = (prefix: string, n: string) => `('${prefix}' || lpad(to_hex(${n}), 24, '0'))::uuid`;

/**
 * Pages: a few well-known ones, then a long tail of blog and docs pages, drawn log-uniformly so
 * the head pages take most views and a thousand pages share the rest.
 */
const PAGE_COUNT = 1500;
const HEAD_PAGES = ['/', '/pricing', '/features', '/blog', '/docs', '/contact', '/about', '/signup', '/login', '/integrations'];
function pathOf(n: string, salt: number): string {
	const index = `floor(exp(${rand(n, salt)} * ln(${PAGE_COUNT})))::int - 1`;
	return `(SELECT CASE WHEN i < ${HEAD_PAGES.length} THEN (ARRAY[${HEAD_PAGES.map((page) => `'${page}'`).join(', ')}])[i + 1]
		WHEN i % 3 = 0 THEN '/docs/page-' || i ELSE '/blog/post-' || i END FROM (SELECT ${index} AS i) page)`;
}

/** GA4 default channel groups with a referrer domain, source, medium and campaign each. */
const CHANNELS: Array<{ channel: string; weight: number; source: string | null; medium: string | null; domain: string | null; campaigns: string[] }> = [
	{ channel: 'Direct', weight: 30, source: null, medium: null, domain: null, campaigns: [] },
	{ channel: 'Organic Search', weight: 34, source: 'google', medium: 'organic', domain: 'www.google.com', campaigns: [] },
	{ channel: 'Paid Search', weight: 8, source: 'google', medium: 'cpc', domain: 'www.google.com', campaigns: ['brand', 'competitors', 'spring-sale'] },
	{ channel: 'Organic Social', weight: 8, source: 'linkedin', medium: 'social', domain: 'www.linkedin.com', campaigns: [] },
	{ channel: 'Paid Social', weight: 4, source: 'facebook', medium: 'paid_social', domain: 'l.facebook.com', campaigns: ['retarget', 'lookalike'] },
	{ channel: 'Referral', weight: 9, source: 'news.ycombinator.com', medium: 'referral', domain: 'news.ycombinator.com', campaigns: [] },
	{ channel: 'Email', weight: 7, source: 'newsletter', medium: 'email', domain: null, campaigns: ['weekly-digest', 'product-update', 'onboarding'] },
];

const sqlText = (value: string | null) => (value === null ? 'NULL' : `'${value}'`);

/** The per-session parameters every table derives from session number `j` (1-based), as a subquery's columns. */
function sessionParams([first, last]: [number, number], visitors: number, days: number): string {
	const channelArms = (() => {
		const total = CHANNELS.reduce((sum, channel) => sum + channel.weight, 0);
		let upTo = 0;
		return CHANNELS.map((channel, index) => {
			upTo += channel.weight / total;
			return index === CHANNELS.length - 1 ? `ELSE ${index}` : `WHEN ${rand('j', 20)} < ${upTo.toFixed(6)} THEN ${index}`;
		}).join(' ');
	})();
	return `SELECT j,
		-- Every visitor has a first session, the other sessions go mostly to a smaller set of returning visitors.
		CASE WHEN j <= ${visitors} THEN j ELSE 1 + floor(${visitors} * power(${rand('j', 1)}, 2))::bigint END AS v,
		-- Days uniform, hours of the day weighted towards the working day.
		END_AT - (${days} * 86400 - floor(${rand('j', 2)} * ${days})::int * 86400
			- (CASE WHEN ${rand('j', 3)} < 0.7 THEN 28800 + ${rand('j', 4)} * 50400 ELSE ${rand('j', 4)} * 86400 END)::int) * interval '1 second' AS started_at,
		CASE WHEN ${rand('j', 5)} < 0.35 THEN 1 ELSE 2 + floor(-ln(1 - ${rand('j', 6)}) * ${((EVENTS_PER_SESSION - 0.35) / 0.65 - 2).toFixed(3)})::int END AS n,
		CASE ${channelArms} END AS c
		FROM generate_series(${first}, ${last}) j`;
}

/** Derived session figures, from the parameters above (needs columns j, n, started_at). */
const SESSION_FIGURES = `
	CASE WHEN p.n = 1 THEN 1 ELSE greatest(1, round(p.n * (0.3 + 0.4 * ${rand('p.j', 7)}))::int) END AS pv,
	CASE WHEN p.n = 1 THEN 0 ELSE least(p.n * (15 + floor(${rand('p.j', 8)} * 70))::int, 20000) END AS duration,
	${pathOf('p.j', 9)} AS entry_page,
	${pathOf('p.j', 10)} AS exit_page`;

export async function generateDataset(execute: Execute, options: DatasetOptions): Promise<DatasetCounts> {
	const days = options.days ?? 30;
	const end = options.end ?? new Date();
	const seed = options.seed ?? 1;
	const sessions = Math.max(1, Math.round(options.events / EVENTS_PER_SESSION));
	const visitors = Math.max(1, Math.round(sessions / SESSIONS_PER_VISITOR));
	const prefix = (table: string) => idPrefix(options.siteId, table, seed);
	const [V, S, E, L, M, C, Q, T, N] = ['visitors', 'sessions', 'events', 'leads', 'messages', 'campaigns', 'sequences', 'steps', 'enrollments'].map(prefix);
	const site = `'${options.siteId}'::uuid`;
	const seconds: Record<string, number> = {};
	const step = async (name: string, sql: string) => {
		const started = process.hrtime.bigint();
		await execute(sql.replaceAll('END_AT', `timestamptz '${end.toISOString()}'`).replaceAll(':seed', String(seed)));
		seconds[name] = (seconds[name] ?? 0) + Number(process.hrtime.bigint() - started) / 1e9;
	};
	// Sessions and their events are written a slice of session numbers per statement: one statement of
	// ten million rows holds them all in its trigger's transition table and its sort at once.
	const steps = async (name: string, size: number, sql: (batch: [number, number]) => string) => {
		for (let first = 1; first <= sessions; first += size) await step(name, sql([first, Math.min(sessions, first + size - 1)]));
	};
	// Compiling these statements took longer than running them at a hundred thousand events.
	await execute('SET jit = off');
	// A site may hold several datasets (other seeds): each statement reads back only its own rows.
	const ownLeads = `'lead%.${seed}@example.com'`;
	const anonymousId = (v: string) => `'g${seed}-' || ${v}`;

	await step(
		'visitors',
		`INSERT INTO visitors (id, site_id, anonymous_id, first_seen_at, last_seen_at, device_type, browser, os, country, created_at, updated_at)
		SELECT ${uuidOf(V, 'v')}, ${site}, ${anonymousId('v')}, END_AT, END_AT, d.device,
			CASE WHEN d.device = 'mobile' THEN ${weighted('v', 31, [['Mobile Safari', 45], ['Chrome', 45], ['Samsung Internet', 10]])}
				ELSE ${weighted('v', 32, [['Chrome', 62], ['Safari', 14], ['Firefox', 10], ['Edge', 14]])} END,
			CASE WHEN d.device = 'mobile' THEN ${weighted('v', 33, [['iOS', 48], ['Android', 52]])}
				ELSE ${weighted('v', 34, [['Windows', 55], ['Mac OS', 35], ['Linux', 10]])} END,
			${weighted('v', 35, [['US', 30], ['DE', 12], ['GB', 10], ['FR', 8], ['ES', 7], ['IN', 7], ['BR', 5], ['CA', 5], ['NL', 4], ['IT', 4], ['JP', 3], ['AU', 3], [null, 2]])},
			END_AT, END_AT
		FROM (SELECT v, ${weighted('v', 30, [['desktop', 58], ['mobile', 38], ['tablet', 4]])} AS device FROM generate_series(1, ${visitors}) v) d`,
	);

	const channelOf = (field: 'channel' | 'source' | 'medium' | 'domain') =>
		`(ARRAY[${CHANNELS.map((channel) => sqlText(channel[field])).join(', ')}]::text[])[p.c + 1]`;
	const campaignOf = `(CASE p.c ${CHANNELS.map((channel, index) =>
		channel.campaigns.length === 0 ? '' : `WHEN ${index} THEN (ARRAY[${channel.campaigns.map(sqlText).join(', ')}])[1 + floor(${rand('p.j', 21)} * ${channel.campaigns.length})::int]`,
	).join(' ')} END)`;
	await steps(
		'sessions',
		SESSIONS_PER_STATEMENT,
		(batch) => `INSERT INTO visitor_sessions (id, site_id, visitor_id, session_key, started_at, last_activity_at, ended_at, pageviews, event_count,
			duration_seconds, engaged_time_ms, max_scroll_depth, is_bounce, entry_page, exit_page, engagement_score, engagement_level,
			channel, source, medium, campaign, referrer, referrer_domain, landing_page, device_type, browser, os, country, created_at, updated_at)
		SELECT ${uuidOf(S, 'f.j')}, ${site}, ${uuidOf(V, 'f.v')}, 'g${seed}-' || f.j, f.started_at, f.started_at + f.duration * interval '1 second',
			f.started_at + f.duration * interval '1 second', f.pv, f.n, f.duration, f.duration * 600, least(100, f.pv * 20),
			f.n = 1, f.entry_page, f.exit_page, f.score,
			(CASE WHEN f.n = 1 OR f.score < 20 THEN 'low' WHEN f.score < 60 THEN 'medium' ELSE 'high' END)::engagement_level,
			f.channel, f.source, f.medium, f.campaign, CASE WHEN f.domain IS NULL THEN NULL ELSE 'https://' || f.domain || '/' END, f.domain, f.entry_page,
			vi.device_type, vi.browser, vi.os, vi.country, f.started_at, f.started_at
		FROM (
			SELECT p.*, fig.*, least(100, fig.pv * 8 + fig.duration / 20)::float8 AS score,
				${channelOf('channel')} AS channel, ${channelOf('source')} AS source, ${channelOf('medium')} AS medium,
				${channelOf('domain')} AS domain, ${campaignOf} AS campaign
			FROM (${sessionParams(batch, visitors, days)}) p CROSS JOIN LATERAL (SELECT ${SESSION_FIGURES}) fig
		) f
		JOIN visitors vi ON vi.id = ${uuidOf(V, 'f.v')}`,
	);

	// Event k of a session is a pageview when the k-th step of pv pageviews over n events lands on it, so
	// exactly pv events are pageviews; the first is the entry page and the last pageview the exit page.
	await steps(
		'events',
		SESSIONS_PER_STATEMENT / EVENTS_PER_SESSION,
		(batch) => `WITH stored AS (INSERT INTO visitor_events (id, site_id, event_id, anonymous_id, session_key, type, url, path, title, referrer,
			context, user_agent, country, occurred_at, received_at)
		SELECT ${uuidOf(E, "(f.j::bigint * 4096 + k)")}, ${site}, ${uuidOf(E, "(f.j::bigint * 4096 + k)")}, ${anonymousId('f.v')}, 'g${seed}-' || f.j,
			ev.type, 'https://site.example' || ev.path, ev.path, NULL,
			CASE WHEN k = 1 THEN s.referrer END,
			CASE WHEN k = 1 AND s.campaign IS NOT NULL THEN jsonb_build_object('utm_source', s.source, 'utm_medium', s.medium, 'utm_campaign', s.campaign) END,
			'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', s.country, ev.at, ev.at
		FROM (SELECT p.*, fig.* FROM (${sessionParams(batch, visitors, days)}) p CROSS JOIN LATERAL (SELECT ${SESSION_FIGURES}) fig) f
		JOIN visitor_sessions s ON s.id = ${uuidOf(S, 'f.j')}
		CROSS JOIN LATERAL generate_series(1, f.n) k
		CROSS JOIN LATERAL (SELECT ceil(k * f.pv::numeric / f.n) > ceil((k - 1) * f.pv::numeric / f.n) AS is_pv,
			ceil(k * f.pv::numeric / f.n) = f.pv AND ceil((k - 1) * f.pv::numeric / f.n) = f.pv - 1 AS last_pv) kind
		CROSS JOIN LATERAL (SELECT
			CASE WHEN kind.is_pv THEN 'pageview' ELSE (ARRAY['scroll', 'click', 'engagement', 'scroll'])[1 + (k % 4)::int] END AS type,
			CASE WHEN k = 1 THEN f.entry_page WHEN kind.last_pv THEN f.exit_page ELSE ${pathOf('(f.j::bigint * 4096 + k)', 11)} END AS path,
			f.started_at + CASE WHEN f.n = 1 THEN 0 ELSE f.duration * (k - 1) / (f.n - 1) END * interval '1 second' AS at) ev
		RETURNING site_id, event_id, session_key)
		INSERT INTO visitor_event_links (site_id, event_id, visitor_id, session_id)
		SELECT e.site_id, e.event_id, s.visitor_id, s.id FROM stored e JOIN visitor_sessions s ON s.site_id = e.site_id AND s.session_key = e.session_key`,
	);

	await step(
		'visitor totals',
		`UPDATE visitors v SET first_seen_at = s.first, last_seen_at = s.last, session_count = s.count
		FROM (SELECT visitor_id, min(started_at) AS first, max(last_activity_at) AS last, count(*)::int AS count
			FROM visitor_sessions WHERE site_id = ${site} AND session_key LIKE 'g${seed}-%' GROUP BY visitor_id) s
		WHERE v.id = s.visitor_id`,
	);

	// Leads: every LEAD_EVERY-th visitor, created a few minutes into its first session.
	const stages = ['subscriber', 'lead', 'mql', 'sql', 'customer'];
	await step(
		'leads',
		`INSERT INTO leads (id, site_id, email, email_hash, first_name, company, country, source, lifecycle_stage, score, engagement_score, fit_score,
			scored_at, consent_given, created_at, updated_at)
		SELECT ${uuidOf(L, 'l.i')}, ${site}, 'lead' || l.i || '.${seed}@example.com', md5('lead' || l.i || '.${seed}') || md5(l.i::text),
			'Lead ' || l.i, 'Company ' || (l.i % 400), vi.country,
			${weighted('l.i', 40, [['contact-form', 40], ['newsletter', 30], ['demo-request', 15], ['webinar', 10], [null, 5]])},
			(ARRAY[${stages.map(sqlText).join(', ')}])[1 + least(4, greatest(0, floor(l.score / 30)::int))],
			l.score, l.score * 0.6, l.score * 0.4, vi.first_seen_at + interval '5 minutes', true,
			vi.first_seen_at + interval '5 minutes', vi.first_seen_at + interval '5 minutes'
		FROM (SELECT i, floor(${rand('i', 41)} * 160 - 10)::float8 AS score FROM generate_series(1, ${Math.floor(visitors / LEAD_EVERY)}) i) l
		JOIN visitors vi ON vi.id = ${uuidOf(V, `(l.i * ${LEAD_EVERY})`)}`,
	);
	await step('lead links', `UPDATE visitors SET lead_id = ${uuidOf(L, `(substr(anonymous_id, ${`g${seed}-`.length + 1})::bigint / ${LEAD_EVERY})`)}
		WHERE site_id = ${site} AND anonymous_id LIKE 'g${seed}-%' AND substr(anonymous_id, ${`g${seed}-`.length + 1})::bigint % ${LEAD_EVERY} = 0
			AND substr(anonymous_id, ${`g${seed}-`.length + 1})::bigint / ${LEAD_EVERY} <= ${Math.floor(visitors / LEAD_EVERY)}`);
	// The ledger explains each score: a visit rule and a form rule whose deltas add up to it.
	await step(
		'score ledger',
		`INSERT INTO lead_scores (id, site_id, lead_id, rule, delta, score_after, cause, cause_key, occurred_at)
		SELECT gen_random_uuid(), ${site}, l.id, r.rule, r.delta, r.after, r.cause, r.rule || ':' || l.id, l.created_at + r.offset_minutes * interval '1 minute'
		FROM leads l CROSS JOIN LATERAL (VALUES
			('form_submitted', round(l.score / 2), round(l.score / 2), 'form submitted', 0),
			('visited_pricing', l.score - round(l.score / 2), l.score, 'visited /pricing', 30)) r(rule, delta, after, cause, offset_minutes)
		WHERE l.site_id = ${site} AND l.email LIKE ${ownLeads}`,
	);
	await step(
		'stage changes',
		`INSERT INTO lead_stage_changes (id, site_id, lead_id, from_stage, to_stage, score_at, occurred_at)
		SELECT gen_random_uuid(), ${site}, l.id, (ARRAY[${stages.map(sqlText).join(', ')}])[k], (ARRAY[${stages.map(sqlText).join(', ')}])[k + 1],
			k * 30, l.created_at + k * interval '20 hours'
		FROM leads l CROSS JOIN LATERAL generate_series(1, array_position(ARRAY[${stages.map(sqlText).join(', ')}], l.lifecycle_stage) - 1) k
		WHERE l.site_id = ${site} AND l.email LIKE ${ownLeads}`,
	);
	// Conversions: one session in 40 reaches a goal, halfway through; purchases carry a value.
	await step(
		'conversions',
		`INSERT INTO conversions (id, site_id, visitor_id, lead_id, session_id, goal, event_id, value, currency, occurred_at)
		SELECT gen_random_uuid(), ${site}, s.visitor_id, vi.lead_id, s.id, g.goal, 'g' || s.session_key, CASE WHEN g.goal = 'purchase' THEN 19 + (hashint8extended(s.pageviews, 7) & 7) * 20 ELSE 0 END,
			CASE WHEN g.goal = 'purchase' THEN 'EUR' END, s.started_at + (s.duration_seconds / 2) * interval '1 second'
		FROM visitor_sessions s JOIN visitors vi ON vi.id = s.visitor_id
		CROSS JOIN LATERAL (SELECT ${weighted('hashtext(s.session_key)::bigint', 50, [['signup', 40], ['contact-request', 25], ['newsletter', 20], ['purchase', 15]])} AS goal) g
		WHERE s.site_id = ${site} AND s.session_key LIKE 'g${seed}-%' AND (hashtext(s.session_key) & 1023) < 26`,
	);

	// Email: campaigns, sequences of three or four steps, every lead enrolled in one sequence and sent its steps a day apart.
	const sequences = [
		{ name: 'Onboarding', steps: 4 },
		{ name: 'Nurture', steps: 3 },
		{ name: 'Win-back', steps: 3 },
	];
	await step(
		'campaigns',
		`INSERT INTO email_campaigns (id, site_id, name, status, created_at, updated_at)
		SELECT ${uuidOf(C, 'i')}, ${site}, (ARRAY[${sequences.map((sequence) => sqlText(sequence.name)).join(', ')}])[i]${seed === 1 ? '' : ` || ' ${seed}'`}, 'active', END_AT - interval '90 days', now()
		FROM generate_series(1, ${sequences.length}) i`,
	);
	await step(
		'sequences',
		`INSERT INTO email_sequences (id, site_id, campaign_id, name, status, trigger, created_at, updated_at)
		SELECT ${uuidOf(Q, 'i')}, ${site}, ${uuidOf(C, 'i')}, (ARRAY[${sequences.map((sequence) => sqlText(sequence.name)).join(', ')}])[i]${seed === 1 ? '' : ` || ' ${seed}'`}, 'active', '{"stage": "subscriber"}', END_AT - interval '90 days', now()
		FROM generate_series(1, ${sequences.length}) i`,
	);
	await step(
		'steps',
		`INSERT INTO email_sequence_steps (id, site_id, sequence_id, position, delay_minutes, subject, html_template, created_at, updated_at)
		SELECT ${uuidOf(T, 'i * 16 + k')}, ${site}, ${uuidOf(Q, 'i')}, k, CASE WHEN k = 0 THEN 0 ELSE 1440 END, 'Step ' || (k + 1), '<p>Hello {{firstName}}</p>', now(), now()
		FROM generate_series(1, ${sequences.length}) i CROSS JOIN LATERAL generate_series(0, (ARRAY[${sequences.map((sequence) => sequence.steps).join(', ')}])[i] - 1) k`,
	);
	const leadNumber = `substr(l.email, 5, strpos(l.email, '.') - 5)::bigint`;
	await step(
		'enrollments',
		`INSERT INTO sequence_enrollments (id, site_id, sequence_id, lead_id, status, next_step, enrolled_at)
		SELECT ${uuidOf(N, leadNumber)}, ${site}, ${uuidOf(Q, `(1 + ${leadNumber} % ${sequences.length})`)}, l.id, 'active', 0, l.created_at
		FROM leads l WHERE l.site_id = ${site} AND l.email LIKE ${ownLeads}`,
	);
	await step(
		'messages',
		`INSERT INTO email_messages (id, site_id, lead_id, campaign_id, sequence_id, step_id, enrollment_id, idempotency_key, to_email, subject, status,
			sent_at, first_opened_at, first_clicked_at, created_at)
		SELECT ${uuidOf(M, `(${leadNumber} * 16 + k)`)}, ${site}, l.id, ${uuidOf(C, 'q')}, ${uuidOf(Q, 'q')}, ${uuidOf(T, 'q * 16 + k')}, ${uuidOf(N, leadNumber)},
			l.id || ':' || q || ':' || k, l.email, 'Step ' || (k + 1), 'sent', m.sent_at,
			CASE WHEN m.r < 0.42 THEN m.sent_at + interval '3 hours' END, CASE WHEN m.r < 0.11 THEN m.sent_at + interval '4 hours' END, m.sent_at
		FROM leads l
		CROSS JOIN LATERAL (SELECT 1 + ${leadNumber} % ${sequences.length} AS q) sq
		CROSS JOIN LATERAL generate_series(0, (ARRAY[${sequences.map((sequence) => sequence.steps).join(', ')}])[q] - 1) k
		CROSS JOIN LATERAL (SELECT l.created_at + interval '10 minutes' + k * interval '1 day' AS sent_at, ${rand(`(${leadNumber} * 16 + k)`, 60)} AS r) m
		WHERE l.site_id = ${site} AND l.email LIKE ${ownLeads} AND m.sent_at < END_AT`,
	);
	await step(
		'email events',
		`INSERT INTO email_events (id, site_id, message_id, type, url, occurred_at)
		SELECT gen_random_uuid(), ${site}, m.id, e.type::email_event_type, CASE WHEN e.type = 'click' THEN 'https://site.example/pricing' END, e.at
		FROM email_messages m CROSS JOIN LATERAL (VALUES
			('open', m.first_opened_at), ('click', m.first_clicked_at),
			('bounce', CASE WHEN (hashtext(m.idempotency_key) & 127) < 3 THEN m.sent_at + interval '1 minute' END),
			('unsubscribe', CASE WHEN (hashtext(m.idempotency_key) & 127) BETWEEN 3 AND 4 THEN m.sent_at + interval '5 hours' END)) e(type, at)
		WHERE m.site_id = ${site} AND m.to_email LIKE ${ownLeads} AND e.at IS NOT NULL`,
	);
	// As autovacuum leaves tables some time after a load: planner statistics, and visibility maps so index-only scans read no heap.
	await step('vacuum', 'VACUUM ANALYZE visitors, visitor_sessions, visitor_events, leads, conversions, email_messages, email_events, lead_stage_changes, lead_scores');

	const [counts] = (await execute(
		`SELECT (SELECT count(*) FROM visitors WHERE site_id = ${site})::int AS visitors,
			(SELECT count(*) FROM visitor_sessions WHERE site_id = ${site})::int AS sessions,
			(SELECT count(*) FROM visitor_events WHERE site_id = ${site})::int AS events,
			(SELECT count(*) FROM leads WHERE site_id = ${site})::int AS leads,
			(SELECT count(*) FROM conversions WHERE site_id = ${site})::int AS conversions,
			(SELECT count(*) FROM email_messages WHERE site_id = ${site})::int AS "emailMessages",
			(SELECT count(*) FROM email_events WHERE site_id = ${site})::int AS "emailEvents",
			(SELECT count(*) FROM lead_stage_changes WHERE site_id = ${site})::int AS "stageChanges"`,
	)) as Array<Omit<DatasetCounts, 'seconds'>>;
	return { ...counts, seconds };
}
