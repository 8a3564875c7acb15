import { randomUUID } from 'node:crypto';

import type { Transporter } from 'nodemailer';
import { z } from 'zod/v4';
import { updateDisplayOptions, type ICredentialDataDecryptedObject, type IDataObject, type IExecuteFunctions, type INodeExecutionData, type INodeProperties } from 'n8n-workflow';

import type { Prisma, PrismaClient } from '../../../lib/db/generated/client';
import { openLead, storedRecipient, type PiiKeyring } from '../../../lib/pii';
import type { ResolvedSite } from '../../shared/subjects';
import { siteKeyOf } from '../../shared/descriptions';
import { forEachItem, InputError } from '../../shared/items';
import { piiKeyringOf } from '../../shared/leads';
import { CONFIRMATION_KEY_PREFIX } from '../../../lib/consent';
import { MIN_EMAIL_TOKEN_SECRET_LENGTH } from '../../../lib/emailTokens';
import { checkedText, collectionParameter, numberParameter } from '../../shared/parameters';
import { consentGateFor, sendConfirmation } from '../confirmation';
import { apiCredentialOf, clockOf, type OperationContext } from '../helpers/context';
import { cipherOf } from '../helpers/pii';
import { missedEnrollments, recoveryWindow } from '../recovery';
import { renderEmail, TemplateError } from '../render';
import { windowOf, type SequenceResolver } from '../sequences';
import { advanceFrom, messageKey, senderAddress, sendFailure, settleReserved, stepAction, type Outcome } from '../steps';
import { findSuppression } from '../suppression';
import { certainlyNotDelivered, smtpTransport } from '../transport';
import { movesEntering } from '../triggers';
import { enrollLead, type EnrollmentSummary } from './enroll.operation';

const properties: INodeProperties[] = [
	{
		displayName: 'Batch Size',
		name: 'batchSize',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 1000, numberPrecision: 0 },
		default: 50,
		description: 'Most due enrollments to handle, and most missed enrollments to make up, per site and input item; the rest wait for the next run',
	},
	{
		displayName: 'Options',
		name: 'options',
		type: 'collection',
		placeholder: 'Add option',
		default: {},
		options: [
			{
				displayName: 'As Of',
				name: 'asOf',
				type: 'dateTime',
				default: '',
				description: 'The time treated as now when picking due steps; empty for now. For backfills.',
			},
			{
				displayName: 'From Email',
				name: 'fromEmail',
				type: 'string',
				placeholder: 'name@email.com',
				default: '',
				description: 'Sender address; integrations.emailProvider.fromEmail of the site config when empty',
			},
			{
				displayName: 'From Name',
				name: 'fromName',
				type: 'string',
				default: '',
				description: 'Sender name; integrations.emailProvider.fromName of the site config when empty',
			},
		],
	},
];

export const description = updateDisplayOptions({ show: { operation: ['sendDue'] } }, properties);

/**
 * How long a claimed enrollment stays invisible to other runs. A run that dies mid-way leaves the
 * one enrollment it was handling to be picked up again after this, and the message reservation
 * then decides ({@link settleReserved}); a run that is only slow is not doubled by that either.
 */
const CLAIM_LEASE_MS = 60_000;
const DAY_MS = 86_400_000;

export interface Sender {
	transport: Transporter;
	receiverUrl: string;
	tokenSecret: string;
	from: { address: string; name?: string };
	/** The credential's PII keys, for sites with privacy.encryptPii; null: the environment's. */
	keyring: PiiKeyring | null;
}

const ENROLLMENT_SELECT = {
	id: true,
	nextStep: true,
	lead: { select: { id: true, email: true, emailHash: true, firstName: true, lastName: true, company: true, jobTitle: true, country: true, phone: true, timezone: true, lifecycleStage: true, properties: true } },
	sequence: {
		select: {
			id: true,
			name: true,
			campaignId: true,
			campaign: { select: { status: true, fromEmail: true, fromName: true, replyTo: true } },
			settings: true,
			steps: { orderBy: { position: 'asc' }, select: { id: true, position: true, delayMinutes: true, subject: true, htmlTemplate: true, textTemplate: true } },
		},
	},
} as const satisfies Prisma.SequenceEnrollmentSelect;

type Enrollment = Prisma.SequenceEnrollmentGetPayload<{ select: typeof ENROLLMENT_SELECT }>;

/**
 * Takes the next due enrollment this run has not handled yet. SKIP LOCKED lets parallel runs share
 * the queue, and moving `next_run_at` forward by the lease in the same transaction keeps it
 * claimed after it commits, without holding a transaction open across SMTP. One at a time, so a
 * run that dies strands only the enrollment it was on.
 */
async function claimNext(prisma: PrismaClient, siteId: string, now: Date, only: string[] | null, handled: string[]): Promise<string | null> {
	return await prisma.$transaction(async (tx) => {
		const [row] = await tx.$queryRawUnsafe<Array<{ id: string }>>(
			`SELECT id FROM sequence_enrollments
			WHERE site_id = $1::uuid AND status = 'active' AND next_run_at <= $2 AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[])) AND NOT (id = ANY($4::uuid[]))
			ORDER BY next_run_at, enrolled_at, id LIMIT 1
			FOR UPDATE SKIP LOCKED`,
			siteId,
			now,
			only,
			handled,
		);
		if (row) await tx.sequenceEnrollment.update({ where: { id: row.id }, data: { nextRunAt: new Date(now.getTime() + CLAIM_LEASE_MS) } });
		return row?.id ?? null;
	});
}

/**
 * Moves the enrollment past the step at `position` ({@link advanceFrom}). Guarded by the
 * position, so a second caller cannot skip a step.
 */
async function advance(tx: Prisma.TransactionClient, enrollment: Enrollment, position: number, sentAt: Date): Promise<Date | null> {
	const data = advanceFrom(enrollment.sequence.steps, position, sentAt, windowOf(enrollment.sequence.settings), enrollment.lead.timezone);
	await tx.sequenceEnrollment.updateMany({ where: { id: enrollment.id, nextStep: position }, data });
	return data.nextRunAt;
}

/** The lead's sequence emails of the last day, for the frequency cap: a double opt-in confirmation is no marketing email and does not count. */
async function recentSends(prisma: PrismaClient, leadId: string, now: Date): Promise<Date[]> {
	const since = new Date(now.getTime() - DAY_MS);
	const rows = await prisma.emailMessage.findMany({
		where: {
			leadId,
			NOT: { idempotencyKey: { startsWith: CONFIRMATION_KEY_PREFIX } },
			OR: [{ status: 'sent', sentAt: { gt: since } }, { status: 'sending', createdAt: { gt: since } }],
		},
		select: { sentAt: true, createdAt: true },
	});
	return rows.map((row) => row.sentAt ?? row.createdAt);
}

type Report = (outcome: Outcome, extra?: IDataObject) => IDataObject;

/** One due enrollment: what it does next is {@link stepAction}'s; one output item says what happened. */
async function processEnrollment(prisma: PrismaClient, site: ResolvedSite, stored: Enrollment, sender: Sender, now: Date): Promise<IDataObject> {
	// The lead as it is addressed and greeted: opened on a site that seals personal data.
	const enrollment = { ...stored, lead: openLead(cipherOf(site, sender), stored.lead) };
	const { lead, sequence } = enrollment;
	const report: Report = (outcome, extra = {}) => ({
		site: site.key,
		enrollmentId: enrollment.id,
		leadId: lead.id,
		sequence: sequence.name,
		step: enrollment.nextStep,
		outcome,
		...extra,
	});
	const campaign = sequence.campaign;
	const action = stepAction({
		step: sequence.steps.find((candidate) => candidate.position === enrollment.nextStep),
		campaignStatus: campaign?.status ?? null,
		suppression: await findSuppression(prisma, site.id, lead),
		recentSends: await recentSends(prisma, lead.id, now),
		maxPerDay: site.config.crm.maxEmailsPerDay,
		window: windowOf(sequence.settings),
		timezone: lead.timezone,
		now,
		consent: await consentGateFor(prisma, site, lead, now),
	});
	if (action.do === 'complete') {
		await prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, status: 'active' }, data: { status: 'completed', completedAt: now, nextRunAt: null } });
		return report(action.outcome);
	}
	if (action.do === 'unenroll') {
		await prisma.sequenceEnrollment.updateMany({
			where: { id: enrollment.id, status: 'active' },
			data: { status: 'unenrolled', unenrolledAt: now, unenrollReason: action.unenrollReason, nextRunAt: null },
		});
		return report(action.outcome, { reason: action.reason });
	}
	if (action.do === 'defer') {
		await prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, nextStep: enrollment.nextStep }, data: { nextRunAt: action.until } });
		return report(action.outcome, { reason: action.reason, nextRunAt: action.until.toISOString() });
	}
	if (action.do === 'confirm') return await sendConfirmation(prisma, site, enrollment, action.grantId, sender, now, report);
	return await sendStep(prisma, site, enrollment, action.step, sender, now, report);
}

/**
 * Sends one step exactly once. Its message is reserved (status `sending`, unique on
 * {@link messageKey}) and committed BEFORE the SMTP conversation, and marked `sent` together with
 * the enrollment's advance after it; a later run that finds the reservation settles it by
 * {@link settleReserved} instead of mailing twice.
 */
async function sendStep(
	prisma: PrismaClient,
	site: ResolvedSite,
	enrollment: Enrollment,
	step: Enrollment['sequence']['steps'][number],
	sender: Sender,
	now: Date,
	report: Report,
): Promise<IDataObject> {
	const { lead, sequence } = enrollment;
	const campaign = sequence.campaign;
	const cipher = cipherOf(site, sender);
	const idempotencyKey = messageKey(lead.id, sequence.id, step.position);
	let messageId: string = randomUUID();
	// The lead's row holds every field of a step's template but the sequence; renderEmail takes only those.
	const fields = { ...lead, sequence: sequence.name };
	const tracking = { baseUrl: sender.receiverUrl, secret: sender.tokenSecret };
	let email = renderEmail({ subject: step.subject, html: step.htmlTemplate, text: step.textTemplate }, fields, { ...tracking, messageId });
	const { count } = await prisma.emailMessage.createMany({
		data: [
			{
				id: messageId,
				siteId: site.id,
				leadId: lead.id,
				campaignId: sequence.campaignId,
				sequenceId: sequence.id,
				stepId: step.id,
				enrollmentId: enrollment.id,
				idempotencyKey,
				...storedRecipient(cipher, lead.email, email.subject),
				links: email.links,
				status: 'sending',
				createdAt: now,
			},
		],
		skipDuplicates: true,
	});
	if (count === 0) {
		const existing = await prisma.emailMessage.findUniqueOrThrow({ where: { siteId_idempotencyKey: { siteId: site.id, idempotencyKey } }, select: { id: true, status: true, createdAt: true } });
		const settled = settleReserved(existing.status, existing.createdAt, now);
		if (settled.do === 'wait') {
			await prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, nextStep: step.position }, data: { nextRunAt: settled.until } });
			return report(settled.outcome, { messageId: existing.id, nextRunAt: settled.until.toISOString() });
		}
		if (settled.do !== 'take-over') {
			const nextRunAt = await prisma.$transaction(async (tx) => {
				if (settled.do === 'abandon') await tx.emailMessage.updateMany({ where: { id: existing.id, status: 'sending' }, data: { status: 'failed', error: settled.error } });
				return await advance(tx, enrollment, step.position, now);
			});
			return report(settled.outcome, { messageId: existing.id, nextRunAt: nextRunAt?.toISOString() ?? null });
		}
		messageId = existing.id;
		email = renderEmail({ subject: step.subject, html: step.htmlTemplate, text: step.textTemplate }, fields, { ...tracking, messageId });
		const taken = await prisma.emailMessage.updateMany({
			where: { id: messageId, status: 'failed' },
			data: { status: 'sending', error: null, ...storedRecipient(cipher, lead.email, email.subject), links: email.links, createdAt: now },
		});
		if (taken.count === 0) return report('skipped', { messageId, reason: 'another run took over this message' });
	}

	try {
		const from = senderAddress(campaign, sender.from);
		const info = await sender.transport.sendMail({
			from,
			...(campaign?.replyTo ? { replyTo: campaign.replyTo } : {}),
			to: lead.email,
			subject: email.subject,
			html: email.html,
			text: email.text,
			headers: email.headers,
			messageId: `<${messageId}@${from.address.split('@')[1]}>`,
		});
		const nextRunAt = await prisma.$transaction(async (tx) => {
			await tx.emailMessage.update({ where: { id: messageId }, data: { status: 'sent', sentAt: now, smtpMessageId: info.messageId } });
			return await advance(tx, enrollment, step.position, now);
		});
		return report('sent', { messageId, smtpMessageId: info.messageId, nextRunAt: nextRunAt?.toISOString() ?? null });
	} catch (error) {
		const failure = sendFailure((error as Error).message, certainlyNotDelivered(error), now);
		if (failure.do === 'retry') {
			await prisma.$transaction([
				prisma.emailMessage.update({ where: { id: messageId }, data: { status: 'failed', error: failure.error } }),
				prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, nextStep: step.position }, data: { nextRunAt: failure.until } }),
			]);
			return report(failure.outcome, { messageId, error: failure.error, nextRunAt: failure.until.toISOString() });
		}
		const nextRunAt = await prisma.$transaction(async (tx) => {
			await tx.emailMessage.update({ where: { id: messageId }, data: { status: 'failed', error: failure.error } });
			return await advance(tx, enrollment, step.position, now);
		});
		return report(failure.outcome, { messageId, error: (error as Error).message, nextRunAt: nextRunAt?.toISOString() ?? null });
	}
}

/**
 * Sends the due steps of the site's sequences (or only of the enrollments `only` names), each
 * once; one report per enrollment handled. Each is claimed, reserved and sent at `clock`'s time
 * when the run reaches it: a run that mails for minutes and stamped every lease and reservation
 * with its start would leave them looking lapsed to another run while it is still on them.
 */
export async function sendDueSteps(prisma: PrismaClient, site: ResolvedSite, sender: Sender, clock: () => Date, limit: number, only: string[] | null = null): Promise<IDataObject[]> {
	if (only !== null && only.length === 0) return [];
	const handled: string[] = [];
	const results: IDataObject[] = [];
	while (handled.length < limit) {
		const now = clock();
		const id = await claimNext(prisma, site.id, now, only, handled);
		if (id === null) break;
		handled.push(id);
		const enrollment = await prisma.sequenceEnrollment.findUniqueOrThrow({ where: { id }, select: ENROLLMENT_SELECT });
		try {
			results.push(await processEnrollment(prisma, site, enrollment, sender, now));
		} catch (error) {
			if (!(error instanceof TemplateError)) throw error;
			results.push(await holdBrokenStep(prisma, site, enrollment, error, now));
		}
	}
	return results;
}

/** How long a step whose template does not render waits before it is tried again. */
const BROKEN_TEMPLATE_RETRY_MS = 60 * 60 * 1000;

/**
 * Holds an enrollment whose due step does not render, so the run goes on with the others and the
 * next runs do not stumble on it every minute; it is tried again an hour later, after the template
 * is corrected, and reported as failed until then.
 */
async function holdBrokenStep(prisma: PrismaClient, site: ResolvedSite, enrollment: Enrollment, error: TemplateError, now: Date): Promise<IDataObject> {
	const until = new Date(now.getTime() + BROKEN_TEMPLATE_RETRY_MS);
	await prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, nextStep: enrollment.nextStep, status: 'active' }, data: { nextRunAt: until } });
	return {
		site: site.key,
		enrollmentId: enrollment.id,
		leadId: enrollment.lead.id,
		sequence: enrollment.sequence.name,
		step: enrollment.nextStep,
		outcome: 'failed' satisfies Outcome,
		error: `Sequence "${enrollment.sequence.name}", steps[${enrollment.nextStep}]: ${error.message}. Correct it in the site config or the Sequence Definition; the step is tried again at ${until.toISOString()}.`,
		nextRunAt: until.toISOString(),
	};
}

/** The sender of one site: the From Email / From Name options, else the site config's email provider. */
export function senderOf(site: ResolvedSite, options: IDataObject, api: ICredentialDataDecryptedObject, transport: Transporter): Sender {
	const provider = site.config.integrations.emailProvider;
	const given = checkedText('options.fromEmail', options.fromEmail).trim();
	const address = given || provider?.fromEmail || '';
	if (!address) throw new InputError('options.fromEmail', 'is empty, and the site config sets no integrations.emailProvider.fromEmail: set one of them to the sender address');
	if (!z.email().safeParse(address).success) {
		throw new InputError('options.fromEmail', `"${address}" is not an email address: give the sender address, such as news@example.com`);
	}
	const name = checkedText('options.fromName', options.fromName).trim() || provider?.fromName || undefined;
	const sender: Sender = { transport, receiverUrl: String(api.receiverUrl ?? ''), tokenSecret: String(api.emailTokenSecret ?? ''), from: { address, name }, keyring: piiKeyringOf(api, site.config.privacy.encryptPii) };
	if (!sender.tokenSecret) throw new InputError('credentials.trackingCrmApi', 'The Tracking CRM API credential has no Email Token Secret, so no tracking or unsubscribe link can be signed');
	if (sender.tokenSecret.length < MIN_EMAIL_TOKEN_SECRET_LENGTH) {
		throw new InputError(
			'credentials.trackingCrmApi',
			`The Tracking CRM API credential’s Email Token Secret is ${sender.tokenSecret.length} characters: it must be at least ${MIN_EMAIL_TOKEN_SECRET_LENGTH}, the same value as the receiver’s EMAIL_TOKEN_SECRET`,
		);
	}
	return sender;
}

/**
 * Makes up the stage-triggered enrollments the live path missed ({@link missedEnrollments}): one
 * query for at most `limit` of the site's recorded moves that may still owe one, then
 * {@link enrollLead} for each, so the enrollment is the row, with the key, the live path would
 * have written, and its steps go out through the same checks. A live enrollment made meanwhile
 * is found, not doubled. Returns the enrollments this call created.
 */
async function recoverEnrollments(prisma: PrismaClient, sequences: SequenceResolver, site: ResolvedSite, keyring: PiiKeyring | null, now: Date, limit: number): Promise<EnrollmentSummary[]> {
	const staged = (await sequences.withTriggers(site)).flatMap((sequence) => (sequence.trigger && 'stage' in sequence.trigger ? [{ sequence, stage: sequence.trigger.stage }] : []));
	if (staged.length === 0) return [];
	const stages = site.config.crm.lifecycleStages;
	const { since, until } = recoveryWindow(now);
	const rows = await prisma.leadStageChange.findMany({
		where: {
			siteId: site.id,
			occurredAt: { gte: since, lte: until },
			// Only moves that may still owe an enrollment, so settled ones never fill a batch; missedEnrollments decides.
			OR: staged.map(({ sequence, stage }) => {
				const moves = movesEntering(stages, stage);
				return { occurredAt: { gte: sequence.createdAt }, toStage: { in: moves.to }, fromStage: { notIn: moves.fromNot }, lead: { enrollments: { none: { sequenceId: sequence.id } } } };
			}),
		},
		orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
		take: limit,
		select: {
			leadId: true,
			fromStage: true,
			toStage: true,
			occurredAt: true,
			lead: { select: { timezone: true, enrollments: { where: { sequenceId: { in: staged.map(({ sequence }) => sequence.id) } }, select: { sequenceId: true } } } },
		},
	});
	const missed = missedEnrollments({
		stages,
		sequences: staged.map(({ sequence }) => sequence),
		moves: rows.map((row) => ({ leadId: row.leadId, from: row.fromStage, to: row.toStage, occurredAt: row.occurredAt })),
		enrolled: rows.flatMap((row) => row.lead.enrollments.map(({ sequenceId }) => ({ leadId: row.leadId, sequenceId }))),
		now,
	});
	const timezones = new Map(rows.map((row) => [row.leadId, row.lead.timezone]));
	const created: EnrollmentSummary[] = [];
	for (const { leadId, sequence, at } of missed) {
		const enrollment = await enrollLead(prisma, site, sequence, { id: leadId, timezone: timezones.get(leadId) ?? null }, at, cipherOf(site, { keyring }));
		if (enrollment.created) created.push(enrollment);
	}
	return created;
}

/** The sites with stage moves inside the recovery window: the only ones where any can be missed. */
async function sitesWithRecentMoves(prisma: PrismaClient, now: Date): Promise<string[]> {
	const { since, until } = recoveryWindow(now);
	const sites = await prisma.site.findMany({ where: { leadStageChanges: { some: { occurredAt: { gte: since, lte: until } } } }, orderBy: { key: 'asc' }, select: { key: true } });
	return sites.map((site) => site.key);
}

async function sitesWithDueSteps(prisma: OperationContext['prisma'], now: Date): Promise<string[]> {
	const due = await prisma.sequenceEnrollment.findMany({ where: { status: 'active', nextRunAt: { lte: now } }, distinct: ['siteId'], select: { site: { select: { key: true } } } });
	return due.map((enrollment) => enrollment.site.key).sort();
}

/**
 * Makes up the enrollments the live path missed, then sends every due step of the site's
 * sequences (or of every site, for "*"). One output item per site that made some up (`recovered`),
 * then one per enrollment handled.
 */
export async function execute(this: IExecuteFunctions, { prisma, glue, sites, sequences }: OperationContext): Promise<INodeExecutionData[]> {
	const api = await apiCredentialOf(this);
	const transport = smtpTransport(await this.getCredentials('smtp'));
	try {
		return await forEachItem.call(this, glue, async (i) => {
			const siteKey = siteKeyOf(this, i);
			const options = collectionParameter(this, 'options', i);
			const clock = clockOf(options.asOf);
			const now = clock();
			const batchSize = numberParameter(this, glue.properties, 'batchSize', i);
			const results: IDataObject[] = [];
			for (const key of siteKey === '*' ? await sitesWithRecentMoves(prisma, now) : [siteKey]) {
				const site = await sites.siteOf(key);
				const enrollments = await recoverEnrollments(prisma, sequences, site, piiKeyringOf(api, site.config.privacy.encryptPii), now, batchSize);
				if (enrollments.length > 0) results.push({ site: key, outcome: 'recovered', recovered: enrollments.length, enrollments });
			}
			// One schedule for every site: "*" sends for each site that has steps due now, those just made up included.
			const keys = siteKey === '*' ? await sitesWithDueSteps(prisma, now) : [siteKey];
			for (const key of keys) {
				const site = await sites.siteOf(key);
				results.push(...(await sendDueSteps(prisma, site, senderOf(site, options, api, transport), clock, batchSize)));
			}
			return results;
		});
	} finally {
		transport.close();
	}
}
