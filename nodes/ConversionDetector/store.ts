import type { ConversionRule } from '../../lib/contracts/siteConfig';
import type { Prisma, PrismaClient } from '../../lib/db/generated/client';
import { attributeConversion, type AttributionOptions, type AttributionRow, type Touchpoint } from './attribution';
import { matchConversionRules } from './rules';
import { InputError } from '../shared/inputError';

export interface DetectInput {
	eventId: string;
	type: string;
	name?: string | null;
	url?: string | null;
}

export interface RecordedConversion {
	conversionId: string;
	goal: string;
	value: string;
	currency: string | null;
	duplicate: boolean;
	/** The lead the converting visitor was at the time (null for an anonymous visitor): its email sequences end with the conversion. */
	leadId: string | null;
	/** Credits per model: the channel of each touch and its share of the value. */
	attribution: Record<string, Array<{ channel: string; source: string | null; campaign: string | null; credit: number; value: string }>>;
}

interface EventFacts {
	visitor_id: string | null;
	session_id: string | null;
	lead_id: string | null;
	occurred_at: Date;
	engagement_score: number | null;
}

/**
 * Checks one event against the goals and records each goal it reaches, once: the conversion is
 * unique per (site, goal, event) and its attribution rows per (conversion, model, touch), so a
 * replayed event records nothing new and returns what was recorded the first time.
 */
export async function detectConversions(
	prisma: PrismaClient,
	siteId: string,
	event: DetectInput,
	rules: readonly ConversionRule[],
	options: AttributionOptions & { hashRouting?: boolean } = {},
): Promise<RecordedConversion[]> {
	const [facts] = await prisma.$queryRawUnsafe<EventFacts[]>(
		`SELECT e.visitor_id, e.session_id, v.lead_id, e.occurred_at, s.engagement_score
		FROM visitor_events e LEFT JOIN visitors v ON v.id = e.visitor_id LEFT JOIN visitor_sessions s ON s.id = e.session_id
		WHERE e.site_id = $1::uuid AND e.event_id = $2::uuid`,
		siteId,
		event.eventId,
	);
	if (!facts?.visitor_id) {
		throw new InputError('eventId', `Event ${event.eventId} has no visitor yet; run the CRM Visitor Processor on it before this node`);
	}
	const matched = matchConversionRules({ type: event.type, name: event.name, url: event.url }, { engagementScore: facts.engagement_score ?? 0 }, rules, { hashRouting: options.hashRouting });
	if (matched.length === 0) return [];

	const sessions = await prisma.visitorSession.findMany({
		where: { siteId, visitorId: facts.visitor_id, startedAt: { lte: facts.occurred_at } },
		orderBy: { startedAt: 'asc' },
		select: { id: true, channel: true, source: true, medium: true, campaign: true, startedAt: true },
	});
	const touchpoints: Touchpoint[] = sessions.map((session, index) => ({
		index,
		sessionId: session.id,
		channel: session.channel ?? 'Direct',
		source: session.source,
		medium: session.medium,
		campaign: session.campaign,
		touchedAt: session.startedAt,
	}));

	const recorded: RecordedConversion[] = [];
	for (const rule of matched) {
		const result = attributeConversion({ value: rule.value, occurredAt: facts.occurred_at, sessionId: facts.session_id }, touchpoints, options);
		const touchOf = new Map(result.touchpoints.map((touch) => [touch.index, touch]));
		recorded.push(
			await prisma.$transaction(async (tx: Prisma.TransactionClient) => {
				const [inserted] = await tx.conversion.createManyAndReturn({
					data: [
						{
							siteId,
							visitorId: facts.visitor_id!,
							leadId: facts.lead_id,
							sessionId: facts.session_id,
							goal: rule.name,
							eventId: event.eventId,
							value: result.value,
							currency: rule.currency ?? null,
							occurredAt: facts.occurred_at,
						},
					],
					skipDuplicates: true,
					select: { id: true },
				});
				const conversion = inserted ?? (await tx.conversion.findUniqueOrThrow({ where: { siteId_goal_eventId: { siteId, goal: rule.name, eventId: event.eventId } }, select: { id: true } }));
				if (inserted) {
					await tx.attributionData.createMany({
						data: result.rows.map((row: AttributionRow) => {
							const touch = touchOf.get(row.touchpointIndex)!;
							return {
								siteId,
								conversionId: conversion.id,
								model: row.model,
								touchpointIndex: row.touchpointIndex,
								sessionId: touch.sessionId ?? null,
								channel: touch.channel,
								source: touch.source ?? null,
								medium: touch.medium ?? null,
								campaign: touch.campaign ?? null,
								touchedAt: touch.touchedAt,
								credit: row.credit,
								value: row.value,
							};
						}),
						skipDuplicates: true,
					});
					if (facts.lead_id) await tx.lead.updateMany({ where: { id: facts.lead_id, convertedAt: null }, data: { convertedAt: facts.occurred_at } });
				}
				const rows = await tx.attributionData.findMany({ where: { conversionId: conversion.id }, orderBy: [{ model: 'asc' }, { touchpointIndex: 'asc' }] });
				const attribution: RecordedConversion['attribution'] = {};
				for (const row of rows) {
					(attribution[row.model] ??= []).push({ channel: row.channel, source: row.source, campaign: row.campaign, credit: row.credit, value: row.value.toFixed(4) });
				}
				return { conversionId: conversion.id, goal: rule.name, value: result.value, currency: rule.currency ?? null, duplicate: !inserted, leadId: facts.lead_id, attribution };
			}),
		);
	}
	return recorded;
}
