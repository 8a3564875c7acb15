import type { z } from 'zod/v4';

import { formatIssues, toFieldIssues, type FieldIssue } from '../../lib/contracts/issues';
import { emailSequenceDefinitionSchema, exitConversionProblem, triggerStageProblem, type EmailSequenceDefinition, type SequenceTrigger } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { type ResolvedSite } from '../shared/subjects';
import type { SendWindow } from './schedule';
import { InputError } from '../shared/inputError';

export interface StoredSequence {
	id: string;
	name: string;
	/** What enrolls a lead automatically; null for sequences only enrolled explicitly. */
	trigger: SequenceTrigger | null;
	/** When its row was first written: what it started can only have happened after. */
	createdAt: Date;
	window: SendWindow;
	steps: Array<{ id: string; position: number; delayMinutes: number; subject: string; htmlTemplate: string; textTemplate: string | null }>;
}

const STEP_SELECT = { id: true, position: true, delayMinutes: true, subject: true, htmlTemplate: true, textTemplate: true } as const;

/** The timing rules kept in `email_sequences.settings` (beside `exitOn`, read by exits.ts); unknown keys are ignored so newer settings never break older nodes. */
export function windowOf(settings: unknown): SendWindow {
	const value = (settings ?? {}) as Record<string, unknown>;
	const quiet = value.quietHours as { start?: unknown; end?: unknown } | undefined;
	const weekdays = Array.isArray(value.weekdays) ? value.weekdays.filter((day): day is number => Number.isInteger(day) && day >= 1 && day <= 7) : undefined;
	return {
		quietHours: quiet && typeof quiet.start === 'string' && typeof quiet.end === 'string' ? { start: quiet.start, end: quiet.end } : undefined,
		weekdays: weekdays && weekdays.length > 0 ? weekdays : undefined,
	};
}

/**
 * Writes a sequence of the site config into `email_sequences` and its steps, so enrollments and
 * messages can reference rows. The config is the source of truth: steps beyond its list go.
 */
async function syncFromConfig(prisma: PrismaClient, siteId: string, sequence: EmailSequenceDefinition): Promise<StoredSequence> {
	const settings = {
		...(sequence.quietHours ? { quietHours: sequence.quietHours } : {}),
		...(sequence.weekdays ? { weekdays: sequence.weekdays } : {}),
		...(sequence.exitOn ? { exitOn: sequence.exitOn } : {}),
	};
	return await prisma.$transaction(async (tx) => {
		const sender = sequence.campaign ? { fromEmail: sequence.campaign.fromEmail ?? null, fromName: sequence.campaign.fromName ?? null, replyTo: sequence.campaign.replyTo ?? null } : null;
		// Created active; its status is the database's to change (pausing holds the sends).
		const campaign =
			sequence.campaign && sender
				? await tx.emailCampaign.upsert({
						where: { siteId_name: { siteId, name: sequence.campaign.name } },
						create: { siteId, name: sequence.campaign.name, status: 'active', ...sender },
						update: sender,
						select: { id: true },
					})
				: null;
		const row = await tx.emailSequence.upsert({
			where: { siteId_name: { siteId, name: sequence.name } },
			create: { siteId, name: sequence.name, trigger: sequence.trigger, settings, campaignId: campaign?.id ?? null },
			update: { trigger: sequence.trigger, settings, campaignId: campaign?.id ?? null },
			select: { id: true, createdAt: true },
		});
		for (const [position, step] of sequence.steps.entries()) {
			const data = { delayMinutes: step.delayMinutes, subject: step.subject, htmlTemplate: step.html, textTemplate: step.text ?? null };
			await tx.emailSequenceStep.upsert({
				where: { sequenceId_position: { sequenceId: row.id, position } },
				create: { siteId, sequenceId: row.id, position, ...data },
				update: data,
			});
		}
		await tx.emailSequenceStep.deleteMany({ where: { sequenceId: row.id, position: { gte: sequence.steps.length } } });
		const steps = await tx.emailSequenceStep.findMany({ where: { sequenceId: row.id }, orderBy: { position: 'asc' }, select: STEP_SELECT });
		return { id: row.id, name: sequence.name, trigger: sequence.trigger ?? null, createdAt: row.createdAt, window: windowOf(settings), steps };
	});
}

/** A stored `trigger` column, or null when it holds no trigger this version understands. */
function triggerOf(value: unknown): SequenceTrigger | null {
	const parsed = emailSequenceDefinitionSchema.shape.trigger.safeParse(value);
	return parsed.success ? (parsed.data ?? null) : null;
}

/** The Sequence Definition parameter, validated like `crm.emailSequences[]`; problems name the field inside it. */
export function parseSequenceDefinition(value: unknown): EmailSequenceDefinition {
	let input = value;
	if (typeof value === 'string') {
		try {
			input = JSON.parse(value);
		} catch (error) {
			throw new InputError('sequenceDefinition', `is not valid JSON (${(error as Error).message}); give an object such as { "name": "welcome", "steps": [{ "delayMinutes": 0, "subject": "Hi", "html": "<p>Hi</p>" }] }`);
		}
	}
	const parsed = emailSequenceDefinitionSchema.safeParse(input);
	if (!parsed.success) {
		const issues = toFieldIssues(parsed.error as z.ZodError, input, emailSequenceDefinitionSchema);
		throw new InputError('sequenceDefinition', `is not a sequence:\n${formatIssues(issues)}`);
	}
	return parsed.data;
}

/**
 * What a Sequence Definition names of the site that the site does not have, checked as the site
 * config checks its own sequences: a trigger stage no lead enters, an exit conversion never detected.
 */
function siteIssuesOf(site: ResolvedSite, definition: EmailSequenceDefinition): FieldIssue[] {
	const { crm } = site.config;
	const issues: FieldIssue[] = [];
	if (definition.trigger && 'stage' in definition.trigger) {
		const problem = triggerStageProblem(definition.trigger.stage, crm.lifecycleStages);
		if (problem) issues.push({ field: 'trigger.stage', message: problem });
	}
	definition.exitOn?.conversions.forEach((name, position) => {
		const problem = exitConversionProblem(name, crm.conversionRules);
		if (problem) issues.push({ field: `exitOn.conversions[${position}]`, message: problem });
	});
	return issues;
}

/** Sequences by name for one execution: each is synced from the config or read from the database once. */
export class SequenceResolver {
	private readonly byName = new Map<string, Promise<StoredSequence>>();

	constructor(private readonly prisma: PrismaClient) {}

	/**
	 * A sequence defined in a node parameter, written into `email_sequences` like a config one. Its
	 * name identifies it: the definition last used is what the database holds.
	 */
	fromDefinition(site: ResolvedSite, definition: EmailSequenceDefinition): Promise<StoredSequence> {
		const issues = siteIssuesOf(site, definition);
		if (issues.length > 0) throw new InputError('sequenceDefinition', `is not a sequence:\n${formatIssues(issues)}`);
		const key = `${site.id}:parameter:${JSON.stringify(definition)}`;
		let sequence = this.byName.get(key);
		if (!sequence) {
			sequence = syncFromConfig(this.prisma, site.id, definition);
			sequence.catch(() => this.byName.delete(key));
			this.byName.set(key, sequence);
		}
		return sequence;
	}

	/**
	 * Every sequence of the site with a trigger: those of the site config, and active ones kept in
	 * the database under another name (created by other means, or from a node parameter).
	 */
	async withTriggers(site: ResolvedSite): Promise<StoredSequence[]> {
		const configured = site.config.crm.emailSequences;
		const fromConfig = await this.configured(site);
		const names = new Set(configured.map((sequence) => sequence.name));
		const stored = await this.prisma.emailSequence.findMany({
			where: { siteId: site.id, status: 'active', name: { notIn: [...names] } },
			orderBy: { createdAt: 'asc' },
			select: { id: true, name: true, trigger: true, settings: true, createdAt: true, steps: { orderBy: { position: 'asc' }, select: STEP_SELECT } },
		});
		const fromDatabase = stored
			.filter((row) => row.steps.length > 0 && triggerOf(row.trigger) !== null)
			.map((row) => ({ id: row.id, name: row.name, trigger: triggerOf(row.trigger), createdAt: row.createdAt, window: windowOf(row.settings), steps: row.steps }));
		return [...fromConfig, ...fromDatabase];
	}

	/**
	 * Every sequence of the site config, written into `email_sequences`. Its row's `created_at` is
	 * when the sequence came to exist for the stage moves Send Due makes up, so the sooner after a
	 * config is loaded this runs, the fewer moves a lost hand-off can cost.
	 */
	async configured(site: ResolvedSite): Promise<StoredSequence[]> {
		// One after the other: each is a transaction, and a burst of them would take every pooled
		// connection (the embedded database has one) from the runs going on beside this one.
		const sequences: StoredSequence[] = [];
		for (const sequence of site.config.crm.emailSequences) sequences.push(await this.byNameIn(site, sequence.name, 'site'));
		return sequences;
	}

	byNameIn(site: ResolvedSite, name: string, source: 'site' | 'database'): Promise<StoredSequence> {
		const key = `${site.id}:${source}:${name}`;
		let sequence = this.byName.get(key);
		if (!sequence) {
			sequence = source === 'site' ? this.fromConfig(site, name) : this.fromDatabase(site.id, name);
			sequence.catch(() => this.byName.delete(key));
			this.byName.set(key, sequence);
		}
		return sequence;
	}

	private async fromConfig(site: ResolvedSite, name: string): Promise<StoredSequence> {
		const sequence = site.config.crm.emailSequences.find((candidate) => candidate.name === name);
		if (!sequence) {
			const known = site.config.crm.emailSequences.map((candidate) => candidate.name);
			throw new InputError('sequence', `No sequence "${name}" in crm.emailSequences of the site config${known.length ? ` (it has: ${known.join(', ')})` : ' (it has none)'}`);
		}
		return await syncFromConfig(this.prisma, site.id, sequence);
	}

	private async fromDatabase(siteId: string, name: string): Promise<StoredSequence> {
		const row = await this.prisma.emailSequence.findUnique({
			where: { siteId_name: { siteId, name } },
			select: { id: true, name: true, status: true, trigger: true, settings: true, createdAt: true, steps: { orderBy: { position: 'asc' }, select: STEP_SELECT } },
		});
		if (!row) throw new InputError('sequence', `No sequence "${name}" in email_sequences of this site`);
		if (row.status !== 'active') throw new InputError('sequence', `Sequence "${name}" is ${row.status}; only active sequences enroll leads`);
		if (row.steps.length === 0) throw new InputError('sequence', `Sequence "${name}" has no steps`);
		return { id: row.id, name: row.name, trigger: triggerOf(row.trigger), createdAt: row.createdAt, window: windowOf(row.settings), steps: row.steps };
	}
}
