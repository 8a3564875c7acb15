/**
 * Whether a lead post may join a visitor's anonymous history to the lead.
 *
 * The tracker's anonymous id is no secret: it travels in every batch, can be read in the page,
 * and is shown in debug mode. Whoever learns it could post a lead naming it with their own
 * address, take over that visitor's history, and then export or erase it by email. So the id
 * alone proves nothing. What proves it is one of:
 * - the same browser: the visitor's history began on the client that posts the lead (its first
 *   received event came from the same anonymized network with the same user agent). The first
 *   event is the one nobody can forge later: a stranger learns an id only after the visitor's
 *   browser has used it, and any event the stranger sends under it arrives after that one
 *   (occurred_at is the client's word, received_at is ours). A visitor who first came from
 *   another network keeps the history anonymous: a lost attribution, never a stolen history.
 * - a server that holds an admin key of the site, which vouches for the id (a backend that
 *   knows its logged-in users).
 * An id with no stored history has nothing to take over and may be claimed (its first events
 * may still be on their way). Everything else is stored as a lead without the history.
 *
 * Whatever the proof, a browser whose latest analytics choice withdrew consent keeps its history
 * anonymous: joining it to a person would be new processing of what the visitor has objected to.
 */
export type HistoryClaim =
	| { merge: true; proof: 'same-client' | 'no-history' | 'site-key' }
	| { merge: false; reason: 'other-client' | 'consent-withdrawn' };

export interface ClientFacts {
	ipAnonymized: string | null;
	userAgent: string | null;
}

/** What the receiver holds about an anonymous id: its first received event's client, and its latest analytics consent choice. */
export interface StoredHistory {
	firstEvent: ClientFacts | undefined;
	analyticsConsent: 'granted' | 'withdrawn' | undefined;
}

export function historyClaim(request: ClientFacts, { firstEvent, analyticsConsent }: StoredHistory, vouchedBySiteKey: boolean): HistoryClaim {
	if (analyticsConsent === 'withdrawn') return { merge: false, reason: 'consent-withdrawn' };
	if (vouchedBySiteKey) return { merge: true, proof: 'site-key' };
	if (!firstEvent) return { merge: true, proof: 'no-history' };
	const sameClient = request.ipAnonymized !== null && request.userAgent !== null && request.ipAnonymized === firstEvent.ipAnonymized && request.userAgent === firstEvent.userAgent;
	return sameClient ? { merge: true, proof: 'same-client' } : { merge: false, reason: 'other-client' };
}
