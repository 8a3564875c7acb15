/**
 * What a lead's marketing consent allows the Email Orchestrator, under the site's
 * privacy.requireMarketingConsent and privacy.doubleOptIn: pure rules for Send Due (before every
 * step), enrolling (when the first run is) and Handle Email Event (when a confirmed sequence starts).
 */
import { CONFIRMATION_KEY_PREFIX, type MarketingStanding } from '../../lib/consent';
import { DEFAULT_CONFIRMATION_EMAIL, type SiteConfig } from '../../lib/contracts/siteConfig';
import type { SendWindow } from './schedule';
import { DELIVERY_UNKNOWN, stepDueAt } from './steps';

const DAY_MS = 86_400_000;

/** The one confirmation email of a grant: a lead asked to confirm is asked once, whatever the number of its sequences. */
export function confirmationKey(leadId: string, grantId: string): string {
	return `${CONFIRMATION_KEY_PREFIX}${leadId}:${grantId}`;
}

export interface ConsentSettings {
	requireMarketingConsent: boolean;
	doubleOptIn: boolean;
	/** Days a confirmation link may be confirmed in (privacy.confirmationEmail.validForDays). */
	validForDays: number;
}

/** The consent settings of a site's privacy config. */
export function consentSettingsOf(privacy: SiteConfig['privacy']): ConsentSettings {
	const { requireMarketingConsent, doubleOptIn, confirmationEmail } = privacy;
	return { requireMarketingConsent, doubleOptIn, validForDays: (confirmationEmail ?? DEFAULT_CONFIRMATION_EMAIL).validForDays };
}

/**
 * The reserved confirmation email as the gate weighs it: when it was reserved, and whether it must
 * go out again (the server refused it for certain, not a delivery left unknown).
 */
export function reservedConfirmation(reserved: { status: string; error: string | null; createdAt: Date } | null | undefined): ConsentFacts['confirmation'] {
	return reserved ? { reservedAt: reserved.createdAt, resend: reserved.status === 'failed' && !reserved.error?.startsWith(DELIVERY_UNKNOWN) } : null;
}

export interface ConsentFacts {
	settings: ConsentSettings;
	standing: MarketingStanding;
	/**
	 * The confirmation email of the grant waiting for confirmation, when one was reserved: when,
	 * and whether it must be sent again (the server refused it for certain).
	 */
	confirmation: { reservedAt: Date; resend: boolean } | null;
	now: Date;
}

export type ConsentGate =
	| { do: 'proceed' }
	| { do: 'unenroll'; outcome: 'no-consent' | 'unconfirmed'; reason: string }
	/** Send the confirmation email of `grantId`, then wait. */
	| { do: 'confirm'; grantId: string }
	/** Wait for the confirmation until the link's time is up: then the enrollment is looked at again. */
	| { do: 'await'; until: Date; reason: string };

/**
 * Without requireMarketingConsent every lead may be mailed. With it, a lead whose latest
 * marketing record is a grant may; one who never gave it or took it back leaves the sequence.
 * With doubleOptIn a grant counts once confirmed: until then the confirmation email goes out
 * (again only if the server refused it), and the enrollment waits for the link until its days are
 * over, and then leaves the sequence unconfirmed.
 */
export function consentGate(facts: ConsentFacts): ConsentGate {
	const { settings, standing, confirmation, now } = facts;
	if (!settings.requireMarketingConsent) return { do: 'proceed' };
	switch (standing.status) {
		case 'granted':
			return { do: 'proceed' };
		case 'missing':
			return { do: 'unenroll', outcome: 'no-consent', reason: 'no marketing consent: the site requires it (privacy.requireMarketingConsent) and the lead never gave it' };
		case 'withdrawn':
			return { do: 'unenroll', outcome: 'no-consent', reason: 'no marketing consent: the lead withdrew it (privacy.requireMarketingConsent)' };
		case 'unconfirmed': {
			if (!confirmation || confirmation.resend) return { do: 'confirm', grantId: standing.grantId };
			const until = new Date(confirmation.reservedAt.getTime() + settings.validForDays * DAY_MS);
			if (now >= until) return { do: 'unenroll', outcome: 'unconfirmed', reason: `double opt-in not confirmed within ${settings.validForDays} days (privacy.doubleOptIn)` };
			return { do: 'await', until, reason: 'awaiting the double opt-in confirmation (privacy.doubleOptIn)' };
		}
	}
}

/** Whether a lead's enrollment must first ask for a confirmation: then its first run is at once, whatever its first step's delay. */
export function confirmsFirst(settings: ConsentSettings, standing: MarketingStanding): boolean {
	return settings.requireMarketingConsent && settings.doubleOptIn && standing.status === 'unconfirmed';
}

/**
 * When an enrollment starts once its lead confirmed at `confirmedAt`: the sequence begins with the
 * confirmation, so its first step is timed from it. Null for an enrollment that needs no start: one
 * made after the confirmation (it was timed as usual), or one that already sent a step.
 */
export function startAfterConfirmation(
	enrollment: { nextStep: number; enrolledAt: Date; begun: boolean },
	steps: ReadonlyArray<{ position: number; delayMinutes: number }>,
	confirmedAt: Date,
	window: SendWindow,
	timezone: string | null,
): Date | null {
	const first = [...steps].sort((a, b) => a.position - b.position)[0];
	if (!first || enrollment.begun || enrollment.nextStep !== first.position || enrollment.enrolledAt > confirmedAt) return null;
	return stepDueAt(first.delayMinutes, confirmedAt, window, timezone);
}
