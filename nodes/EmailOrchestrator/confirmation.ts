/**
 * The glue of the consent rules (consent.ts): a lead's consent records read, its double opt-in
 * confirmation email sent once, and its waiting enrollments started when it confirms. The records
 * are the receiver's to write (server/consent/records.ts); the nodes only read them.
 */
import { randomUUID } from 'node:crypto';

import type { IDataObject } from 'n8n-workflow';

import { marketingStanding, type MarketingStanding } from '../../lib/consent';
import { DEFAULT_CONFIRMATION_EMAIL } from '../../lib/contracts/siteConfig';
import type { PrismaClient } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { confirmationUrl } from '../../lib/emailTokens';
import { openLead, storedRecipient, type PiiCipher } from '../../lib/pii';
import type { ResolvedSite } from '../shared/subjects';
import type { Sender } from './actions/sendDue.operation';
import { cipherOf } from './helpers/pii';
import { confirmationKey, consentGate, consentSettingsOf, confirmsFirst, reservedConfirmation, startAfterConfirmation, type ConsentGate } from './consent';
import { renderConfirmation } from './render';
import { windowOf } from './sequences';
import { sendFailure, senderAddress, type Outcome } from './steps';
import { certainlyNotDelivered } from './transport';

const DAY_MS = 86_400_000;

interface LeadAddress {
	id: string;
	email: string;
	emailHash: string;
}

/** The lead's marketing records (by the stored hash and the hash of its address now, as suppressions are read) and where they leave it. */
async function standingOf(prisma: PrismaClient, site: ResolvedSite, lead: LeadAddress): Promise<MarketingStanding> {
	const hashes = [...new Set([lead.emailHash, emailHash(lead.email)])];
	const records = await prisma.consentRecord.findMany({
		where: { siteId: site.id, emailHash: { in: hashes }, purpose: 'marketing' },
		orderBy: [{ occurredAt: 'asc' }, { createdAt: 'asc' }],
		select: { id: true, state: true, source: true, occurredAt: true },
	});
	return marketingStanding(records, site.config.privacy.doubleOptIn);
}

/** The consent verdict before a step ({@link consentGate}); no query where the site requires no consent. */
export async function consentGateFor(prisma: PrismaClient, site: ResolvedSite, lead: LeadAddress, now: Date): Promise<ConsentGate> {
	const settings = consentSettingsOf(site.config.privacy);
	if (!settings.requireMarketingConsent) return { do: 'proceed' };
	const standing = await standingOf(prisma, site, lead);
	const reserved =
		standing.status === 'unconfirmed'
			? await prisma.emailMessage.findUnique({
					where: { siteId_idempotencyKey: { siteId: site.id, idempotencyKey: confirmationKey(lead.id, standing.grantId) } },
					select: { status: true, error: true, createdAt: true },
				})
			: null;
	return consentGate({ settings, standing, confirmation: reservedConfirmation(reserved), now });
}

/** Whether a new enrollment of the lead must first ask for its confirmation ({@link confirmsFirst}). */
export async function awaitsConfirmation(prisma: PrismaClient, site: ResolvedSite, leadId: string, cipher: PiiCipher | null): Promise<boolean> {
	const settings = consentSettingsOf(site.config.privacy);
	if (!settings.requireMarketingConsent || !settings.doubleOptIn) return false;
	// Opened: records written before the site sealed addresses carry the SHA-256 of the address itself.
	const lead = openLead(cipher, await prisma.lead.findUniqueOrThrow({ where: { id: leadId }, select: { id: true, email: true, emailHash: true } }));
	return confirmsFirst(settings, await standingOf(prisma, site, lead));
}

export interface WaitingEnrollment {
	id: string;
	nextStep: number;
	lead: LeadAddress & { firstName: string | null; lastName: string | null; company: string | null; jobTitle: string | null; country: string | null; phone: string | null };
	sequence: { campaign: { fromEmail: string | null; fromName: string | null; replyTo: string | null } | null };
}

/**
 * Sends the confirmation email of the lead's grant `grantId` once, and parks the enrollment until
 * the link's days are over (a confirmation starts it sooner). The message is reserved under
 * {@link confirmationKey} before the SMTP conversation, as steps are: another enrollment of the
 * lead, or a replayed run, finds the reservation and only waits. A send the server refused for
 * certain is tried again after the retry delay; one that may have been delivered is not.
 */
export async function sendConfirmation(
	prisma: PrismaClient,
	site: ResolvedSite,
	enrollment: WaitingEnrollment,
	grantId: string,
	sender: Sender,
	now: Date,
	report: (outcome: Outcome, extra?: IDataObject) => IDataObject,
): Promise<IDataObject> {
	const { lead } = enrollment;
	const templates = site.config.privacy.confirmationEmail ?? DEFAULT_CONFIRMATION_EMAIL;
	const address = lead.email;
	// The lead holds every field of the confirmation's template but the site's name; renderConfirmation takes only those.
	const fields = { ...lead, siteName: site.config.site.name };
	const render = (messageId: string) => renderConfirmation(templates, fields, confirmationUrl(sender.receiverUrl, sender.tokenSecret, messageId));
	const park = async (until: Date) => {
		await prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, status: 'active', nextStep: enrollment.nextStep }, data: { nextRunAt: until } });
		return until.toISOString();
	};
	const deadline = (from: Date) => new Date(from.getTime() + consentSettingsOf(site.config.privacy).validForDays * DAY_MS);
	const idempotencyKey = confirmationKey(lead.id, grantId);
	const cipher = cipherOf(site, sender);

	let messageId: string = randomUUID();
	let rendered = render(messageId);
	const { count } = await prisma.emailMessage.createMany({
		data: [{ id: messageId, siteId: site.id, leadId: lead.id, idempotencyKey, ...storedRecipient(cipher, address, rendered.subject), links: [], status: 'sending', createdAt: now }],
		skipDuplicates: true,
	});
	if (count === 0) {
		const existing = await prisma.emailMessage.findUniqueOrThrow({ where: { siteId_idempotencyKey: { siteId: site.id, idempotencyKey } }, select: { id: true, createdAt: true } });
		messageId = existing.id;
		rendered = render(messageId);
		const taken = await prisma.emailMessage.updateMany({ where: { id: messageId, status: 'failed' }, data: { status: 'sending', error: null, ...storedRecipient(cipher, address, rendered.subject), createdAt: now } });
		if (taken.count === 0) return report('awaiting-confirmation', { messageId, reason: 'another run sent the confirmation email', nextRunAt: await park(deadline(existing.createdAt)) });
	}

	try {
		const from = senderAddress(enrollment.sequence.campaign, sender.from);
		const info = await sender.transport.sendMail({
			from,
			...(enrollment.sequence.campaign?.replyTo ? { replyTo: enrollment.sequence.campaign.replyTo } : {}),
			to: address,
			subject: rendered.subject,
			html: rendered.html,
			text: rendered.text,
			messageId: `<${messageId}@${from.address.split('@')[1]}>`,
		});
		await prisma.emailMessage.update({ where: { id: messageId }, data: { status: 'sent', sentAt: now, smtpMessageId: info.messageId } });
		return report('confirmation-sent', { messageId, smtpMessageId: info.messageId, nextRunAt: await park(deadline(now)) });
	} catch (error) {
		const failure = sendFailure((error as Error).message, certainlyNotDelivered(error), now);
		await prisma.emailMessage.update({ where: { id: messageId }, data: { status: 'failed', error: failure.error } });
		const until = failure.do === 'retry' ? failure.until : deadline(now);
		return report(failure.outcome, { messageId, error: failure.error, nextRunAt: await park(until) });
	}
}

/**
 * Starts the lead's enrollments that waited for its confirmation at `confirmedAt`
 * ({@link startAfterConfirmation}); each still only if it is active at the same step. The number started.
 */
export async function startConfirmed(prisma: PrismaClient, site: ResolvedSite, leadId: string, confirmedAt: Date): Promise<number> {
	const enrollments = await prisma.sequenceEnrollment.findMany({
		where: { siteId: site.id, leadId, status: 'active' },
		select: {
			id: true,
			nextStep: true,
			enrolledAt: true,
			_count: { select: { messages: true } },
			lead: { select: { timezone: true } },
			sequence: { select: { settings: true, steps: { select: { position: true, delayMinutes: true } } } },
		},
	});
	let started = 0;
	for (const enrollment of enrollments) {
		const begun = enrollment._count.messages > 0;
		const at = startAfterConfirmation({ ...enrollment, begun }, enrollment.sequence.steps, confirmedAt, windowOf(enrollment.sequence.settings), enrollment.lead.timezone);
		if (!at) continue;
		const { count } = await prisma.sequenceEnrollment.updateMany({ where: { id: enrollment.id, status: 'active', nextStep: enrollment.nextStep }, data: { nextRunAt: at } });
		started += count;
	}
	return started;
}
