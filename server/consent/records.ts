import { leadChoice, trackerChoices, type ConsentChoice } from '../../lib/consent';
import type { LeadPayload, TrackBatch } from '../../lib/contracts';
import type { Prisma } from '../../lib/db';
import { withFormFields } from '../ingest/normalize';

/**
 * The one writer of consent_records. Every record goes in through {@link consentInsertStatement}:
 * the tracker's choices and a lead's consent as statements of their own, a confirmation or an
 * unsubscribe composed into the statement that records the email link (server/routes/email.ts).
 */

type Db = Pick<Prisma.TransactionClient, '$executeRawUnsafe'>;

/** SQL expressions for a record's columns, evaluated per row of the SELECT they are put into. */
export interface ConsentColumns {
	siteId: string;
	anonymousId: string;
	emailHash: string;
	purpose: string;
	state: string;
	source: string;
	pageUrl: string;
	formId: string;
	policyVersion: string;
	messageId: string;
	dedupeKey: string;
}

/**
 * The INSERT of consent records, as a statement or a data-modifying CTE: `from` is the rest of the
 * SELECT the columns are read from. A record whose dedupe key the site already holds is skipped,
 * so a retried request records nothing twice. Returns the new records' id, site_id and occurred_at.
 */
export function consentInsertStatement(columns: ConsentColumns, from: string): string {
	const c = columns;
	return `INSERT INTO consent_records (id, site_id, anonymous_id, email_hash, purpose, state, source, page_url, form_id, policy_version, message_id, dedupe_key, occurred_at, created_at)
	SELECT gen_random_uuid(), ${c.siteId}, ${c.anonymousId}, ${c.emailHash}, (${c.purpose})::consent_purpose, (${c.state})::consent_state, (${c.source})::consent_source,
		${c.pageUrl}, ${c.formId}, ${c.policyVersion}, ${c.messageId}, ${c.dedupeKey}, now(), now()
	${from}
	ON CONFLICT (site_id, dedupe_key) DO NOTHING
	RETURNING id, site_id, occurred_at`;
}

/** Choices as rows of jsonb_to_recordset($2): one JSON parameter, whatever their number. */
const CHOICES = `FROM jsonb_to_recordset($2::jsonb) AS c(anonymous_id text, email_hash text, purpose text, state text, source text, page_url text, form_id text, policy_version text, dedupe_key text)`;

const choiceColumns: ConsentColumns = {
	siteId: '$1::uuid',
	anonymousId: 'c.anonymous_id',
	emailHash: 'c.email_hash',
	purpose: 'c.purpose',
	state: 'c.state',
	source: 'c.source',
	pageUrl: 'c.page_url',
	formId: 'c.form_id',
	policyVersion: 'c.policy_version',
	messageId: 'NULL::uuid',
	dedupeKey: 'c.dedupe_key',
};

const RECORD_CHOICES = consentInsertStatement(choiceColumns, CHOICES);

/**
 * A browser's choice only when it differs from the latest record of its purpose (state or policy
 * version): every batch carries the choice, and only a change is one. Two batches of one browser
 * that race may both record the same change; the latest record still says what holds.
 */
const RECORD_CHANGED_CHOICES = consentInsertStatement(
	choiceColumns,
	`${CHOICES}
	WHERE (
		SELECT ROW(r.state::text, r.policy_version) FROM consent_records r
		WHERE r.site_id = $1::uuid AND r.anonymous_id = c.anonymous_id AND r.purpose = (c.purpose)::consent_purpose
		ORDER BY r.occurred_at DESC, r.created_at DESC LIMIT 1
	) IS DISTINCT FROM ROW(c.state, c.policy_version)`,
);

const asRows = (choices: readonly ConsentChoice[]) =>
	JSON.stringify(
		choices.map((choice) => ({
			anonymous_id: choice.anonymousId,
			email_hash: choice.emailHash,
			purpose: choice.purpose,
			state: choice.state,
			source: choice.source,
			page_url: choice.pageUrl,
			form_id: choice.formId,
			policy_version: choice.policyVersion,
			dedupe_key: choice.dedupeKey,
		})),
	);

/** Records the choices (a lead's consent) as they are; the number recorded. */
export async function recordChoices(db: Db, siteId: string, choices: readonly ConsentChoice[]): Promise<number> {
	if (choices.length === 0) return 0;
	return await db.$executeRawUnsafe(RECORD_CHOICES, siteId, asRows(choices));
}

/**
 * The marketing consent of a lead submission, with its form fields mapped as the lead's are (a
 * ticked consent box counts), before the lead is stored: the Email Orchestrator, which the lead
 * reaches next, finds it. `referer` is the page the browser posted from, if it said.
 */
export async function recordLeadConsent(db: Db, siteId: string, lead: LeadPayload, emailHash: string, referer: string | undefined): Promise<number> {
	const choice = leadChoice({ ...lead, consent: withFormFields(lead).consent }, emailHash, referer);
	return await recordChoices(db, siteId, choice ? [choice] : []);
}

/** Browsers whose choice this process knew at most this long ago are not looked up again. */
const KNOWN_FOR_MS = 60_000;
/** Bounded like the ingest limiters: a flood of new browsers costs no memory beyond it. */
const MAX_KNOWN = 100_000;

/**
 * The tracker's choices, from the `consent` every batch carries. A browser's choice is looked up
 * in the database at most once a minute per receiver while it stays the same: the lookup is a
 * statement of its own, and batches come every few seconds. What another receiver (or an erasure)
 * changed meanwhile is seen once the minute is over, so no change is missed for longer.
 */
export class TrackerConsent {
	private known = new Map<string, string>();
	private window = 0;

	constructor(private readonly db: Db) {}

	/** Records what changed; a failure is thrown, so that the batch is refused and retried. */
	async record(siteId: string, batch: Pick<TrackBatch, 'consent' | 'consentVersion' | 'events'>, now = Date.now()): Promise<void> {
		const window = Math.floor(now / KNOWN_FOR_MS);
		if (window !== this.window || this.known.size >= MAX_KNOWN) {
			this.window = window;
			this.known.clear();
		}
		const key = (choice: ConsentChoice) => `${siteId} ${choice.anonymousId}`;
		const value = (choice: ConsentChoice) => JSON.stringify([choice.state, choice.policyVersion]);
		const choices = trackerChoices(batch).filter((choice) => this.known.get(key(choice)) !== value(choice));
		if (choices.length === 0) return;
		await this.db.$executeRawUnsafe(RECORD_CHANGED_CHOICES, siteId, asRows(choices));
		for (const choice of choices) this.known.set(key(choice), value(choice));
	}
}
