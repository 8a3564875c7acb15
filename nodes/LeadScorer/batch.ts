/**
 * How the lead items of one batch act as if they ran one after the other, although the store
 * writes them with one statement per table: which row each address gets, which lead claims each
 * browser, and which item reports what the batch recorded.
 */

/** The lead columns a submission can fill. */
export const LEAD_FIELDS = ['firstName', 'lastName', 'phone', 'company', 'jobTitle', 'country', 'timezone'] as const;

export type LeadFields = { [K in (typeof LEAD_FIELDS)[number]]?: string };

/** A checked submission or identify call, as far as batching reads it. */
export interface LeadEntry {
	/** The mailbox key the lead is stored under. */
	email: string;
	fields: LeadFields;
	receivedAt: Date;
	payload: { consent: boolean; anonymousId?: string; properties?: LeadProperties };
}

/** What a form told beyond the lead's columns: its other fields, by name. */
export type LeadProperties = Record<string, unknown>;

/** The one row an address gets from all entries of a batch. */
export interface MergedLead<E extends LeadEntry> {
	email: string;
	fields: LeadFields;
	/** The first entry: its source is the lead's acquisition source. */
	first: E;
	consent: boolean;
	/** The entries' properties, a later value of a name replacing an earlier one; undefined when none gave any. */
	properties?: LeadProperties;
}

const isProperties = (value: unknown): value is LeadProperties => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A lead's properties after a submission: what it had, each name the submission gives set to the
 * submission's value. A later form's answers update the lead, as they do its columns.
 */
export function mergeProperties(stored: unknown, given: LeadProperties | undefined): LeadProperties | undefined {
	if (!isProperties(stored)) return given;
	return given ? { ...stored, ...given } : stored;
}

/**
 * One row per address, sorted by address so concurrent batches lock rows in one order and never
 * deadlock on each other. A later form with fewer fields does not blank what an earlier one told
 * us, its properties update the earlier ones', and consent once given stays.
 */
export function mergeEntries<E extends LeadEntry>(entries: readonly E[]): Array<MergedLead<E>> {
	const merged = new Map<string, MergedLead<E>>();
	for (const entry of entries) {
		const current = merged.get(entry.email);
		if (!current) merged.set(entry.email, { email: entry.email, fields: { ...entry.fields }, first: entry, consent: entry.payload.consent, properties: entry.payload.properties });
		else {
			for (const key of LEAD_FIELDS) if (entry.fields[key] !== undefined) current.fields[key] = entry.fields[key];
			current.consent ||= entry.payload.consent;
			current.properties = mergeProperties(current.properties, entry.payload.properties);
		}
	}
	return [...merged.values()].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0));
}

/** A browser (anonymous id) to link to a lead, and when it was seen. */
export interface BrowserClaim {
	anonymousId: string;
	leadId: string;
	at: Date;
}

/** The first entry naming a browser claims it for its lead; sorted by anonymous id, for the lock order. */
export function browserClaims(entries: readonly LeadEntry[], leadOf: (email: string) => string): BrowserClaim[] {
	const claims = new Map<string, BrowserClaim>();
	for (const entry of entries) {
		const anonymousId = entry.payload.anonymousId;
		if (anonymousId && !claims.has(anonymousId)) claims.set(anonymousId, { anonymousId, leadId: leadOf(entry.email), at: entry.receivedAt });
	}
	return [...claims.values()].sort((a, b) => (a.anonymousId < b.anonymousId ? -1 : a.anonymousId > b.anonymousId ? 1 : 0));
}

interface Recorded {
	scoreRows: number;
	stageChange: { from: string; to: string } | null;
}

/**
 * One outcome per item, in order: several items of one lead see what the batch recorded only on
 * the first of them, the others as already recorded, as a replay would.
 */
export function reportOnce<T extends Recorded>(leadIds: readonly string[], outcomeOf: (leadId: string) => T): T[] {
	const reported = new Set<string>();
	return leadIds.map((leadId) => {
		const outcome = outcomeOf(leadId);
		if (reported.has(leadId)) return { ...outcome, scoreRows: 0, stageChange: null };
		reported.add(leadId);
		return outcome;
	});
}

/**
 * The other lead a browser stays with when an item of `leadId` named it: a shared browser's
 * history is not merged, since merging two people's histories would be wrong and irreversible.
 */
export function otherOwner(leadId: string, owner: string | null | undefined): string | undefined {
	return owner && owner !== leadId ? owner : undefined;
}
