import type { EmailSequenceConfig } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { SubjectNotFoundError, type ResolvedSite } from '../shared/subjects';
import type { SendWindow } from './schedule';

export interface StoredSequence {
	id: string;
	name: string;
	window: SendWindow;
	steps: Array<{ id: string; position: number; delayMinutes: number; subject: string; htmlTemplate: string; textTemplate: string | null }>;
}

const STEP_SELECT = { id: true, position: true, delayMinutes: true, subject: true, htmlTemplate: true, textTemplate: true } as const;

/** The timing rules kept in `email_sequences.settings`; unknown keys are ignored so newer settings never break older nodes. */
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
async function syncFromConfig(prisma: PrismaClient, siteId: string, sequence: EmailSequenceConfig): Promise<StoredSequence> {
	const settings = { ...(sequence.quietHours ? { quietHours: sequence.quietHours } : {}), ...(sequence.weekdays ? { weekdays: sequence.weekdays } : {}) };
	return await prisma.$transaction(async (tx) => {
		const row = await tx.emailSequence.upsert({
			where: { siteId_name: { siteId, name: sequence.name } },
			create: { siteId, name: sequence.name, trigger: sequence.trigger, settings },
			update: { trigger: sequence.trigger, settings },
			select: { id: true },
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
		return { id: row.id, name: sequence.name, window: windowOf(settings), steps };
	});
}

/** Sequences by name for one execution: each is synced from the config or read from the database once. */
export class SequenceResolver {
	private readonly byName = new Map<string, Promise<StoredSequence>>();

	constructor(private readonly prisma: PrismaClient) {}

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
			throw new SubjectNotFoundError('sequence', `No sequence "${name}" in crm.emailSequences of the site config${known.length ? ` (it has: ${known.join(', ')})` : ' (it has none)'}`);
		}
		return await syncFromConfig(this.prisma, site.id, sequence);
	}

	private async fromDatabase(siteId: string, name: string): Promise<StoredSequence> {
		const row = await this.prisma.emailSequence.findUnique({
			where: { siteId_name: { siteId, name } },
			select: { id: true, name: true, status: true, settings: true, steps: { orderBy: { position: 'asc' }, select: STEP_SELECT } },
		});
		if (!row) throw new SubjectNotFoundError('sequence', `No sequence "${name}" in email_sequences of this site`);
		if (row.status !== 'active') throw new SubjectNotFoundError('sequence', `Sequence "${name}" is ${row.status}; only active sequences enroll leads`);
		if (row.steps.length === 0) throw new SubjectNotFoundError('sequence', `Sequence "${name}" has no steps`);
		return { id: row.id, name: row.name, window: windowOf(row.settings), steps: row.steps };
	}
}
