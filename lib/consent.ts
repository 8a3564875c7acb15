/**
 * Consent as records: which choices a tracking batch or a lead submission makes, and what a
 * person's records say now. Pure rules for the receiver, which writes the records
 * (server/consent/records.ts), and the Email Orchestrator, which reads them.
 */

export type ConsentPurpose = 'analytics' | 'marketing';
export type ConsentState = 'granted' | 'withdrawn';
export type ConsentSource = 'tracker' | 'form' | 'api' | 'confirmation' | 'unsubscribe';

/**
 * How the idempotency key of a double opt-in confirmation email begins: the Email Orchestrator
 * keys them so, and the receiver's confirmation link records consent only for such a message.
 */
export const CONFIRMATION_KEY_PREFIX = 'confirm:';

/** One choice as the writer takes it; the writer adds the site, an id and the time. */
export interface ConsentChoice {
	anonymousId: string | null;
	emailHash: string | null;
	purpose: ConsentPurpose;
	state: ConsentState;
	source: ConsentSource;
	pageUrl: string | null;
	formId: string | null;
	policyVersion: string | null;
	/** Set where a retried request must record nothing twice. */
	dedupeKey: string | null;
}

/**
 * Where a choice was made, as it is kept: the page's origin and path. The query and fragment go,
 * since a page's URL may carry an address, a name or a token in them.
 */
export function consentPage(url: string | null | undefined): string | null {
	if (!url) return null;
	try {
		const page = new URL(url);
		return page.protocol === 'http:' || page.protocol === 'https:' ? `${page.origin}${page.pathname}` : null;
	} catch {
		return null;
	}
}

interface BatchFacts {
	consent?: 'granted' | 'denied' | 'unknown';
	consentVersion?: string;
	events: ReadonlyArray<{ anonymousId: string; url: string }>;
}

/**
 * The tracker's consent choice a batch carries, once per browser in it (a batch is one browser's;
 * after a reset() it may name two ids): granted, or denied as withdrawn. The page is the first
 * event's of that browser. `unknown`, or no consent field, is no choice.
 */
export function trackerChoices(batch: BatchFacts): ConsentChoice[] {
	if (batch.consent !== 'granted' && batch.consent !== 'denied') return [];
	const firstPage = new Map<string, string>();
	for (const event of batch.events) if (!firstPage.has(event.anonymousId)) firstPage.set(event.anonymousId, event.url);
	return [...firstPage].map(([anonymousId, url]) => ({
		anonymousId,
		emailHash: null,
		purpose: 'analytics',
		state: batch.consent === 'granted' ? 'granted' : 'withdrawn',
		source: 'tracker',
		pageUrl: consentPage(url),
		formId: null,
		policyVersion: batch.consentVersion ?? null,
		dedupeKey: null,
	}));
}

interface LeadFacts {
	consent: boolean;
	consentVersion?: string;
	anonymousId?: string;
	formId?: string;
	eventId?: string;
	fields?: unknown[];
}

/**
 * The marketing consent a lead submission gives: a grant when its consent is true (after its form
 * fields are mapped), nothing otherwise, since an unticked box takes back nothing given before.
 * From a form when it names one or sends its fields, else through the API. `page` is where the
 * browser posted from (its Referer), if it said.
 */
export function leadChoice(lead: LeadFacts, emailHash: string, page: string | undefined): ConsentChoice | null {
	if (!lead.consent) return null;
	const fromForm = lead.formId !== undefined || (lead.fields?.length ?? 0) > 0;
	return {
		anonymousId: lead.anonymousId ?? null,
		emailHash,
		purpose: 'marketing',
		state: 'granted',
		source: fromForm ? 'form' : 'api',
		pageUrl: consentPage(page),
		formId: lead.formId ?? null,
		policyVersion: lead.consentVersion ?? null,
		dedupeKey: lead.eventId ? `lead:${lead.eventId.toLowerCase()}` : null,
	};
}

/** A stored record as the rules read it. */
export interface RecordedConsent {
	id: string;
	state: ConsentState;
	source: ConsentSource;
	occurredAt: Date;
}

/**
 * Where a lead stands on marketing email:
 * - `granted`: the latest record is a grant (with double opt-in: one confirmed since the last withdrawal);
 * - `unconfirmed` (double opt-in only): granted, not yet confirmed; `grantId` is the first grant
 *   since the last withdrawal, the one a confirmation email asks about, however often it is repeated;
 * - `withdrawn`: the latest record takes it back;
 * - `missing`: the lead never gave it.
 */
export type MarketingStanding = { status: 'granted' } | { status: 'unconfirmed'; grantId: string } | { status: 'withdrawn' } | { status: 'missing' };

/** One purpose's records, oldest first: the latest decides. */
export function marketingStanding(records: readonly RecordedConsent[], doubleOptIn: boolean): MarketingStanding {
	if (records.length === 0) return { status: 'missing' };
	const lastWithdrawal = records.findLastIndex((record) => record.state === 'withdrawn');
	const since = records.slice(lastWithdrawal + 1);
	if (since.length === 0) return { status: 'withdrawn' };
	if (!doubleOptIn || since.some((record) => record.source === 'confirmation')) return { status: 'granted' };
	return { status: 'unconfirmed', grantId: since[0].id };
}
