/**
 * What a due enrollment does next, decided from what the database holds: finish, leave the
 * sequence, wait, or send its step; after a send, where the enrollment moves; and how a reserved
 * message left by an earlier run is settled. The Send Due Steps operation reads the inputs and
 * writes the answers.
 */
import type { ConsentGate } from './consent';
import { nextSendTime, scheduleSend, frequencyCapTime, type SendWindow } from './schedule';

/** When the steps of a draft or paused campaign are looked at again. */
export const CAMPAIGN_RECHECK_MS = 60 * 60_000;
/** When a send the server refused is tried again. */
export const RETRY_AFTER_MS = 15 * 60_000;
/**
 * How long a reserved message may be in its SMTP conversation: the transport's timeouts
 * (transport.ts) end any conversation well before, so a reservation older than this belongs to a
 * run that died.
 */
export const SEND_GIVE_UP_MS = 5 * 60_000;

/** What handling one due enrollment came to; the operation's output names it. */
export type Outcome =
	| 'sent'
	| 'already-sent'
	| 'interrupted'
	| 'in-flight'
	| 'suppressed'
	| 'deferred'
	| 'completed'
	| 'failed'
	| 'retry'
	| 'skipped'
	| 'unenrolled'
	| 'no-consent'
	| 'unconfirmed'
	| 'confirmation-sent'
	| 'awaiting-confirmation';

/** Everything the decision before a send reads about one due enrollment. */
export interface DueStep<S> {
	/** The step at the enrollment's position; absent when the sequence has no step there (any more). */
	step: S | undefined;
	/** The campaign's status; null when the sequence has no campaign. */
	campaignStatus: string | null;
	/** Why the lead may not be mailed (e.g. unsubscribed), or null. */
	suppression: string | null;
	/** When the lead was sent email in the last day, by any sequence. */
	recentSends: readonly Date[];
	maxPerDay: number;
	window: SendWindow;
	/** The lead's time zone, as stored. */
	timezone: string | null;
	now: Date;
	/** What the lead's marketing consent allows ({@link consentGate}); absent where the site requires none. */
	consent?: ConsentGate;
}

export type StepAction<S> =
	/** No step is left: the enrollment is completed. */
	| { do: 'complete'; outcome: 'completed' }
	/** The enrollment leaves the sequence for good. */
	| { do: 'unenroll'; outcome: 'unenrolled' | 'suppressed' | 'no-consent' | 'unconfirmed'; reason: string; unenrollReason: string }
	/** The step waits until `until`, on the same position. */
	| { do: 'defer'; outcome: 'deferred' | 'awaiting-confirmation'; reason: string; until: Date }
	/** The lead's double opt-in confirmation email goes out first; the step waits for the confirmation. */
	| { do: 'confirm'; grantId: string }
	| { do: 'send'; step: S };

/**
 * In order: a missing step completes, an archived campaign unenrolls, a campaign not active
 * waits for its recheck, a suppressed lead unenrolls, a lead without the marketing consent the
 * site requires unenrolls, confirms first or waits for its confirmation, and a step outside the
 * frequency cap or send window waits until both allow it.
 */
export function stepAction<S>(due: DueStep<S>): StepAction<S> {
	const { now, step } = due;
	if (step === undefined) return { do: 'complete', outcome: 'completed' };
	if (due.campaignStatus === 'archived') return { do: 'unenroll', outcome: 'unenrolled', reason: 'campaign archived', unenrollReason: 'campaign archived' };
	if (due.campaignStatus !== null && due.campaignStatus !== 'active') {
		return { do: 'defer', outcome: 'deferred', reason: `campaign ${due.campaignStatus}`, until: new Date(now.getTime() + CAMPAIGN_RECHECK_MS) };
	}
	if (due.suppression) return { do: 'unenroll', outcome: 'suppressed', reason: due.suppression, unenrollReason: `suppressed: ${due.suppression}` };
	const consent = due.consent ?? { do: 'proceed' };
	if (consent.do === 'unenroll') return { do: 'unenroll', outcome: consent.outcome, reason: consent.reason, unenrollReason: consent.reason };
	if (consent.do === 'await') return { do: 'defer', outcome: 'awaiting-confirmation', reason: consent.reason, until: consent.until };
	if (consent.do === 'confirm') return consent;
	const sendAt = scheduleSend(now, due.window, due.timezone, { recentSends: due.recentSends, maxPerDay: due.maxPerDay, now });
	if (sendAt > now) {
		const reason = frequencyCapTime(due.recentSends, due.maxPerDay, now) > now ? 'frequency cap' : 'outside the send window';
		return { do: 'defer', outcome: 'deferred', reason, until: sendAt };
	}
	return { do: 'send', step };
}

/**
 * The key of the one message a step may produce for a lead: its reservation is unique on it, so
 * a replayed or concurrent run finds the earlier reservation instead of mailing twice.
 */
export function messageKey(leadId: string, sequenceId: string, position: number): string {
	return `${leadId}:${sequenceId}:${position}`;
}

/**
 * How a reservation found under the step's key is settled (the exactly-once rule):
 * - `sent`: the crash came after the send was recorded; only the advance is repeated.
 * - `sending`, reserved less than {@link SEND_GIVE_UP_MS} ago: another run may still be talking
 *   to the server; the enrollment waits until that run must have ended.
 * - `sending`, older: the run died between reserving and recording; the server may or may not
 *   have accepted the message, and we cannot ask it. It is marked failed and the enrollment moves
 *   on: a possibly lost email is preferred to a certainly doubled one.
 * - otherwise (`failed`): the server refused it, so it certainly never went out; it is taken
 *   over and sent, if no other run took it first.
 */
export type Reserved =
	| { do: 'advance'; outcome: 'already-sent' }
	| { do: 'wait'; outcome: 'in-flight'; until: Date }
	| { do: 'abandon'; outcome: 'interrupted'; error: string }
	| { do: 'take-over' };

export function settleReserved(status: string, reservedAt: Date, now: Date): Reserved {
	if (status === 'sent') return { do: 'advance', outcome: 'already-sent' };
	if (status === 'sending') {
		const givenUpAt = reservedAt.getTime() + SEND_GIVE_UP_MS;
		if (now.getTime() < givenUpAt) return { do: 'wait', outcome: 'in-flight', until: new Date(givenUpAt) };
		return { do: 'abandon', outcome: 'interrupted', error: 'interrupted mid-send; not sent again because the SMTP server may already have accepted it' };
	}
	return { do: 'take-over' };
}

/**
 * After a send failed: refused for certain, it is retried later on the same step; otherwise it
 * may have been delivered, so it is recorded as failed and the enrollment moves on like a send.
 */
export type SendFailure = { do: 'retry'; outcome: 'retry'; error: string; until: Date } | { do: 'advance'; outcome: 'failed'; error: string };

/** How the error of a failed message that may have been delivered begins: such a message is never sent again. */
export const DELIVERY_UNKNOWN = 'delivery unknown, not sent again: ';

export function sendFailure(message: string, certainlyNotDelivered: boolean, now: Date): SendFailure {
	const error = withoutAddresses(message);
	if (certainlyNotDelivered) return { do: 'retry', outcome: 'retry', error, until: new Date(now.getTime() + RETRY_AFTER_MS) };
	return { do: 'advance', outcome: 'failed', error: `${DELIVERY_UNKNOWN}${error}` };
}

const ADDRESS = /[^\s<>"'(),;:[\]]+@[^\s<>"'(),;:[\]]+/g;

/**
 * An SMTP server's refusal often quotes the recipient ("550 5.1.1 <jane@example.org>: Recipient
 * address rejected"). The stored error (email_messages.error, in clear on every site) keeps the
 * code and the reason; the address is the message's own recipient, kept where it belongs.
 */
function withoutAddresses(message: string): string {
	return message.replace(ADDRESS, '<address>');
}

/**
 * When a step `delayMinutes` after `from` goes out: the delay on the clock, then the first moment
 * the send window allows on the lead's wall clock. Enrolling times the first step with it, every
 * advance the next one.
 */
export function stepDueAt(delayMinutes: number, from: Date, window: SendWindow, timezone: string | null): Date {
	return nextSendTime(new Date(from.getTime() + delayMinutes * 60_000), window, timezone);
}

/** Where an enrollment moves once the step at `position` went out (or will never go out) at `sentAt`. */
export type Advance = { nextStep: number; nextRunAt: Date } | { nextStep: number; nextRunAt: null; status: 'completed'; completedAt: Date };

/** To the next step, timed from `sentAt` on the lead's wall clock, or to completed after the last. */
export function advanceFrom(
	steps: ReadonlyArray<{ position: number; delayMinutes: number }>,
	position: number,
	sentAt: Date,
	window: SendWindow,
	timezone: string | null,
): Advance {
	const next = steps.filter((step) => step.position > position).sort((a, b) => a.position - b.position)[0];
	if (!next) return { nextStep: position + 1, nextRunAt: null, status: 'completed', completedAt: sentAt };
	return { nextStep: next.position, nextRunAt: stepDueAt(next.delayMinutes, sentAt, window, timezone) };
}

/** The sender of a step: the campaign's address when it has one, else the operation's. */
export function senderAddress(
	campaign: { fromEmail: string | null; fromName: string | null } | null,
	fallback: { address: string; name?: string },
): { address: string; name?: string } {
	return campaign?.fromEmail ? { address: campaign.fromEmail, name: campaign.fromName ?? fallback.name } : fallback;
}
