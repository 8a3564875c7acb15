/**
 * Leads in the database: upsert by normalized email, merge of the visitors' anonymous history,
 * and a recomputed score written as explainable per-rule deltas. Every write is keyed so that a
 * replayed item writes nothing new.
 */
import type { LeadPayload } from '../../lib/contracts/lead';
import type { SiteConfig } from '../../lib/contracts/siteConfig';
import { emailHash } from '../../lib/email';
import type { Prisma } from '../../lib/db/generated/client';
import { emailFacts, phoneFacts } from '../Enricher/enrich';
import { SubjectNotFoundError } from '../shared/subjects';
import { normalizeEmail } from '../../lib/mailbox';
import { scoreLead, type CompiledRules, type ScoreResult, type ScoringEvent } from './scoring';
import { nextStage } from './stages';

/** An item field that cannot be used as a lead; `field` names it. */
export class LeadInputError extends Error {
	constructor(
		readonly field: string,
		message: string,
	) {
		super(message);
	}
}

export interface ScoredLead {
	id: string;
	email: string;
	emailHash: string;
	firstName: string | null;
	lastName: string | null;
	company: string | null;
	jobTitle: string | null;
	country: string | null;
	lifecycleStage: string;
	score: number;
	engagementScore: number;
	fitScore: number;
	firstTouch: Prisma.JsonValue;
	/** Visitors (anonymous ids) whose history the lead holds. */
	visitors: string[];
	/** Events of those visitors the score was computed from. */
	events: number;
}

export interface ScoringOutcome {
	lead: ScoredLead;
	score: ScoreResult;
	/** Rows written to `lead_scores` by this call (0 on a replay). */
	scoreRows: number;
	/** The transition this call recorded; null when the stage stayed or a replay had recorded it already. */
	stageChange: { from: string; to: string } | null;
	/** The visitor was already linked to another lead and kept that link. */
	visitorOfOtherLead?: string;
}

/** Scores are stored rounded to this many decimals: float noise is no score change. */
const round = (value: number) => Math.round(value * 100) / 100;

interface FirstTouch {
	at?: string;
}

function earlier(a: Prisma.JsonValue | null, b: Prisma.JsonValue | null): Prisma.JsonValue | null {
	const at = (touch: Prisma.JsonValue | null) => {
		const value = touch && typeof touch === 'object' && !Array.isArray(touch) ? (touch as FirstTouch).at : undefined;
		const time = value ? Date.parse(value) : NaN;
		return Number.isNaN(time) ? Infinity : time;
	};
	if (a === null) return b;
	if (b === null) return a;
	return at(b) < at(a) ? b : a;
}

export interface ScoringContext {
	siteId: string;
	config: SiteConfig;
	rules: CompiledRules;
	/** Scoring time, epoch ms. */
	now: number;
}

/**
 * Reads and writes of one item run in one transaction: the lead, its visitor link, score rows and
 * stage move commit together, so a crash mid-item leaves nothing half-recorded for the retry.
 */
type Db = Prisma.TransactionClient;

/** Creates or updates the lead of a submission or identify call, links its visitor and rescores it. */
export async function upsertLead(prisma: Db, context: ScoringContext, payload: LeadPayload, receivedAt: Date): Promise<ScoringOutcome> {
	const email = normalizeEmail(payload.email);
	if (!email) throw new LeadInputError('lead.email', `"${payload.email}" is not an email address`);
	const phone = payload.phone ? phoneFacts(payload.phone, payload.country ?? null) : null;
	const fields = {
		firstName: payload.firstName,
		lastName: payload.lastName,
		// E.164 as the Enricher stores it, so a replayed form does not undo its normalization.
		phone: phone ? (phone.valid && phone.e164 ? phone.e164 : phone.input) : undefined,
		company: payload.company,
		jobTitle: payload.jobTitle,
		country: payload.country?.toUpperCase(),
		timezone: payload.timezone,
	};
	const lead = await prisma.lead.upsert({
		where: { siteId_email: { siteId: context.siteId, email: email.key } },
		create: {
			siteId: context.siteId,
			email: email.key,
			emailHash: emailHash(email.key),
			...fields,
			source: payload.source,
			consentGiven: payload.consent,
			properties: payload.properties as Prisma.InputJsonValue | undefined,
		},
		// A later form with fewer fields must not blank what an earlier one told us; the first
		// source is the lead's acquisition source, and consent once given is withdrawn by unsubscribing only.
		update: { ...fields, ...(payload.consent ? { consentGiven: true } : {}) },
		select: { id: true },
	});

	let visitorOfOtherLead: string | undefined;
	if (payload.anonymousId) {
		const visitor = await prisma.visitor.upsert({
			where: { siteId_anonymousId: { siteId: context.siteId, anonymousId: payload.anonymousId } },
			create: { siteId: context.siteId, anonymousId: payload.anonymousId, leadId: lead.id, firstSeenAt: receivedAt, lastSeenAt: receivedAt },
			update: {},
			select: { id: true, leadId: true },
		});
		if (visitor.leadId === null) {
			// Conditional, so two leads submitted from one browser at once cannot both take the visitor.
			await prisma.visitor.updateMany({ where: { id: visitor.id, leadId: null }, data: { leadId: lead.id } });
		} else if (visitor.leadId !== lead.id) {
			// A shared browser: merging two people's histories would be wrong and irreversible.
			visitorOfOtherLead = visitor.leadId;
		}
	}
	const outcome = await rescoreLead(prisma, context, lead.id);
	return visitorOfOtherLead ? { ...outcome, visitorOfOtherLead } : outcome;
}

/** Recomputes a lead's score from its whole merged history and records what changed. */
export async function rescoreLead(prisma: Db, context: ScoringContext, leadId: string): Promise<ScoringOutcome> {
	const lead = await prisma.lead.findFirstOrThrow({ where: { id: leadId, siteId: context.siteId } });
	const visitors = await prisma.visitor.findMany({ where: { leadId }, select: { id: true, anonymousId: true, firstTouch: true } });
	const anonymousIds = visitors.map((visitor) => visitor.anonymousId);
	// By anonymous id as well as visitor id: events the Visitor Processor has not attached yet
	// belong to the history too.
	const rows =
		visitors.length === 0
			? []
			: await prisma.visitorEvent.findMany({
					where: { siteId: context.siteId, OR: [{ anonymousId: { in: anonymousIds } }, { visitorId: { in: visitors.map((visitor) => visitor.id) } }] },
					select: { eventId: true, type: true, name: true, url: true, occurredAt: true, sessionKey: true, anonymousId: true },
				});
	const events: ScoringEvent[] = rows.map((row) => ({ eventId: row.eventId, type: row.type, name: row.name, url: row.url, occurredAt: row.occurredAt.getTime(), sessionKey: row.sessionKey, anonymousId: row.anonymousId }));
	const tags = await prisma.leadTag.findMany({ where: { leadId }, select: { tag: true } });
	const mail = emailFacts(lead.email);
	const score = scoreLead(
		context.rules,
		events,
		{
			emailDomain: mail.domain,
			company: lead.company,
			jobTitle: lead.jobTitle,
			country: lead.country,
			source: lead.source,
			phone: lead.phone,
			freeMail: mail.freeMail,
			disposableEmail: mail.disposable,
			tags: tags.map((row) => row.tag),
		},
		context.now,
	);
	const total = round(score.total);

	const recorded = new Map<string, { sum: number; rows: number; evidence: string }>();
	const history = await prisma.leadScore.findMany({ where: { leadId }, orderBy: [{ occurredAt: 'asc' }, { createdAt: 'asc' }], select: { rule: true, delta: true, causeKey: true } });
	for (const row of history) {
		const entry = recorded.get(row.rule);
		recorded.set(row.rule, { sum: (entry?.sum ?? 0) + row.delta, rows: (entry?.rows ?? 0) + 1, evidence: row.causeKey.slice(row.causeKey.indexOf(':') + 1) });
	}
	const scoredAt = new Date(context.now);
	const scoreRows: Prisma.LeadScoreCreateManyInput[] = [];
	for (const rule of score.rules) {
		const before = recorded.get(rule.rule);
		const delta = round(round(rule.points) - round(before?.sum ?? 0));
		if (delta === 0) continue;
		const sameEvidence = before !== undefined && before.evidence === rule.causeKey;
		scoreRows.push({
			siteId: context.siteId,
			leadId,
			rule: rule.rule,
			delta,
			scoreAfter: total,
			cause: sameEvidence ? `recomputed (decay or changed rules): ${rule.cause}` : rule.cause,
			// The rule's row count makes the key: a replay sees the rows it wrote and finds no delta,
			// and two concurrent scorings of the same change collide on the key instead of both counting.
			causeKey: `${before?.rows ?? 0}:${rule.causeKey}`,
			occurredAt: scoredAt,
		});
	}

	let firstTouch = lead.firstTouch;
	for (const visitor of visitors) firstTouch = earlier(firstTouch, visitor.firstTouch);
	const stage = nextStage(context.config.crm.lifecycleStages, lead.lifecycleStage, total);

	const written = scoreRows.length === 0 ? 0 : (await prisma.leadScore.createMany({ data: scoreRows, skipDuplicates: true })).count;
	const transitions =
		stage === lead.lifecycleStage
			? 0
			: (
					await prisma.leadStageChange.createMany({
						data: [{ siteId: context.siteId, leadId, fromStage: lead.lifecycleStage, toStage: stage, scoreAt: total, occurredAt: scoredAt }],
						skipDuplicates: true,
					})
				).count;
	const updated = await prisma.lead.update({
		where: { id: leadId },
		data: {
			score: total,
			engagementScore: round(score.engagement),
			fitScore: round(score.fit),
			scoredAt,
			lifecycleStage: stage,
			firstTouch: firstTouch ?? undefined,
		},
	});
	return {
		lead: {
			id: updated.id,
			email: updated.email,
			emailHash: updated.emailHash,
			firstName: updated.firstName,
			lastName: updated.lastName,
			company: updated.company,
			jobTitle: updated.jobTitle,
			country: updated.country,
			lifecycleStage: updated.lifecycleStage,
			score: updated.score,
			engagementScore: updated.engagementScore,
			fitScore: updated.fitScore,
			firstTouch: updated.firstTouch,
			visitors: anonymousIds,
			events: events.length,
		},
		score,
		scoreRows: written,
		stageChange: transitions > 0 ? { from: lead.lifecycleStage, to: stage } : null,
	};
}

/** A lead by id or by (any variant of) its email address, within one site. */
export async function findLead(prisma: Db, siteId: string, reference: string): Promise<string> {
	const value = reference.trim();
	const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
	const key = isId ? null : normalizeEmail(value)?.key;
	if (!isId && !key) throw new SubjectNotFoundError('lead', `"${value}" is neither a lead id nor an email address`);
	const lead = await prisma.lead.findFirst({ where: isId ? { id: value, siteId } : { siteId, email: key as string }, select: { id: true } });
	if (!lead) throw new SubjectNotFoundError('lead', `No lead "${value}" on this site; give the lead's id or email address`);
	return lead.id;
}
