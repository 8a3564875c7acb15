/**
 * Key rotation of sealed personal data (scripts/rotate-pii-key): every table that holds sealed
 * values of a site with privacy.encryptPii is read in bounded batches, in id order, each batch one
 * short transaction, and what is sealed with an older key is resealed under the current key, so
 * the older key can be removed once a run finished. Leads still in clear are sealed too (how a site
 * that turned encryption on gets its older leads sealed); in the other tables a value written in
 * clear stays so, as the README's "Turning it on" says: erasure finds such an email_messages row by
 * its recipient, /mailbox such a caught mail by its address.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import type { PrismaClient } from '../lib/db';
import { emailHash } from '../lib/email';
import { isSealed, LEAD_PII_COLUMNS, leadField, openLeadProperties, PiiCipher, sealLeadProperties, sealSubmission, storedRecipient, type LeadPiiField, type PiiKeyring } from '../lib/pii';
import type { HeaderField } from '../server/mail/caught';
import { sealCaught } from '../server/mail/sealed';
import { databaseFailure } from '../server/routes/problems';

export const DEFAULT_BATCH_SIZE = 200;
export const MAX_BATCH_SIZE = 5000;

/** The tables a rotation reseals, in the order it walks them. */
export const SEALED_TABLES = ['leads', 'email_messages', 'mailbox_messages', 'outbox'] as const;
export type SealedTableName = (typeof SEALED_TABLES)[number];

export interface TableRotation {
	/** Rows read: the site's rows (of the outbox, those carrying a lead submission). */
	read: number;
	/** Rows whose values were resealed (of leads, also those whose hash was replaced). */
	resealed: number;
	batches: number;
}

export interface RotationResult {
	site: string;
	tables: Record<SealedTableName, TableRotation>;
}

/**
 * How long a batch waits for a row another writer holds before it lets go of the rows it has locked
 * and is tried again: a writer that holds a row for long keeps the batch waiting, not the writers of
 * the batch's other rows. Shorter than Postgres' deadlock_timeout (1 s by default), so where a
 * writer that locks rows in another order than id order (the dispatcher's outbox updates, an
 * erasure's deletes) and a batch wait for each other, the batch gives way before Postgres cancels
 * either.
 */
const LOCK_WAIT_MS = 250;
/** Tries of one batch before the site's run stops; the pause before each grows by LOCK_WAIT_MS. */
const BATCH_TRIES = 10;

type Tx = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe'>;

/** One table as the rotation walks it. */
interface SealedTable<Row extends { id: string }> {
	name: SealedTableName;
	/** An id below every id of the table: where the first batch starts. */
	start: string;
	/**
	 * Up to $3 rows of the site $1 after the id $2, in id order, locked; `id` as text, so uuid and
	 * bigint ids page alike (ordered by the column, not by that text).
	 */
	batch: string;
	/** The row resealed under the current key; null when nothing of it needs resealing. */
	reseal(row: Row): Row | null;
	/** Writes resealed rows back, nothing else of them. */
	write(tx: Tx, rows: Row[]): Promise<unknown>;
}

/**
 * A cipher whose `seal` reseals: a value sealed under an older key comes back sealed under the
 * current one, anything else (a clear value, a value sealed under the current key) as it is.
 * Handed to the helper that seals a stored shape (storedRecipient, sealCaught, sealSubmission), it
 * reseals exactly the values that helper seals, each under the column it binds.
 */
class Resealer extends PiiCipher {
	override seal(value: string, field: string): string {
		return isSealed(value) && this.isStale(value) ? super.seal(this.open(value, field), field) : value;
	}
}

/** `next` when a resealing helper changed anything of `row`; those helpers return unchanged values as they were. */
const ifChanged = <Row>(row: Row, next: Row): Row | null => (JSON.stringify(next) === JSON.stringify(row) ? null : next);

type LeadRow = { id: string; emailHash: string; properties: unknown } & Record<LeadPiiField, string | null>;

const FIELDS = Object.keys(LEAD_PII_COLUMNS) as LeadPiiField[];

/** The lead resealed under the current key, or null when nothing of it needs resealing. */
export function resealed(cipher: PiiCipher, lead: LeadRow): LeadRow | null {
	const next = { ...lead };
	let changed = false;
	for (const field of FIELDS) {
		const value = lead[field];
		if (value === null || !cipher.isStale(value)) continue;
		next[field] = cipher.seal(cipher.open(value, leadField(field)), leadField(field));
		changed = true;
	}
	// Sealed properties are a string; anything else not null is an object stored in clear.
	if (lead.properties !== null && (typeof lead.properties !== 'string' || cipher.isStale(lead.properties))) {
		next.properties = sealLeadProperties(cipher, openLeadProperties(cipher, lead.properties));
		changed = true;
	}
	const hash = emailHash(cipher.open(lead.email as string, leadField('email')), cipher);
	if (hash !== lead.emailHash) {
		next.emailHash = hash;
		changed = true;
	}
	return changed ? next : null;
}

/** Leads are locked in id order, the order every writer of leads locks them in. */
const leads = (cipher: PiiCipher): SealedTable<LeadRow> => ({
	name: 'leads',
	start: '00000000-0000-0000-0000-000000000000',
	batch: `SELECT id::text AS id, email_hash AS "emailHash", email, first_name AS "firstName", last_name AS "lastName", phone, company, job_title AS "jobTitle", properties
		FROM leads WHERE site_id = $1::uuid AND id > $2::uuid ORDER BY leads.id LIMIT $3 FOR UPDATE`,
	reseal: (lead) => resealed(cipher, lead),
	// updated_at stays: the lead's content is what it was.
	write: (tx, rows) =>
		tx.$executeRawUnsafe(
			`UPDATE leads SET email_hash = v.email_hash, email = v.email, first_name = v.first_name, last_name = v.last_name, phone = v.phone, company = v.company, job_title = v.job_title,
				properties = v.properties::jsonb
			FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS v(id, email_hash, email, first_name, last_name, phone, company, job_title, properties)
			WHERE leads.id = v.id`,
			rows.map((lead) => lead.id),
			rows.map((lead) => lead.emailHash),
			...FIELDS.map((field) => rows.map((lead) => lead[field])),
			rows.map((lead) => (lead.properties === null ? null : JSON.stringify(lead.properties))),
		),
});

type MessageRow = { id: string; toEmail: string; subject: string };

// The other tables' batches take FOR NO KEY UPDATE, the lock their UPDATE needs: a row referring
// to a message (email_events) can still be written meanwhile.
const emailMessages = (resealer: Resealer): SealedTable<MessageRow> => ({
	name: 'email_messages',
	start: '00000000-0000-0000-0000-000000000000',
	batch: `SELECT id::text AS id, to_email AS "toEmail", subject FROM email_messages
		WHERE site_id = $1::uuid AND id > $2::uuid ORDER BY email_messages.id LIMIT $3 FOR NO KEY UPDATE`,
	reseal: (row) => ifChanged(row, { ...row, ...storedRecipient(resealer, row.toEmail, row.subject) }),
	write: (tx, rows) =>
		tx.$executeRawUnsafe(
			`UPDATE email_messages m SET to_email = v."toEmail", subject = v.subject
			FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, "toEmail" text, subject text) WHERE m.id = v.id`,
			JSON.stringify(rows),
		),
});

type CaughtRow = { id: string; toAddresses: string[]; subject: string; html: string | null; text: string | null; headers: HeaderField[] };

const mailboxMessages = (resealer: Resealer): SealedTable<CaughtRow> => ({
	name: 'mailbox_messages',
	start: '00000000-0000-0000-0000-000000000000',
	batch: `SELECT id::text AS id, to_addresses AS "toAddresses", subject, html, text, headers FROM mailbox_messages
		WHERE site_id = $1::uuid AND id > $2::uuid ORDER BY mailbox_messages.id LIMIT $3 FOR NO KEY UPDATE`,
	reseal: (row) => ifChanged(row, sealCaught(resealer, row)),
	write: (tx, rows) =>
		tx.$executeRawUnsafe(
			`UPDATE mailbox_messages m SET to_addresses = v."toAddresses", subject = v.subject, html = v.html, text = v.text, headers = v.headers
			FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, "toAddresses" text[], subject text, html text, text text, headers jsonb) WHERE m.id = v.id`,
			JSON.stringify(rows),
		),
});

type SubmissionRow = { id: string; lead: Record<string, unknown> };

/**
 * Lead submissions of every status: pending and dead ones are still to be delivered, and delivered
 * ones are kept until retention deletes them and are what the privacy export answers as the
 * person's form posts. The batch waits for a row the dispatcher is claiming; the dispatcher skips
 * a row the batch holds (SKIP LOCKED) and takes it in its next round, so a partition keeps its order.
 */
const outbox = (resealer: Resealer): SealedTable<SubmissionRow> => ({
	name: 'outbox',
	start: '0',
	batch: `SELECT id::text AS id, payload->'lead' AS lead FROM outbox
		WHERE site_id = $1::uuid AND id > $2::bigint AND payload->>'kind' = 'lead' ORDER BY outbox.id LIMIT $3 FOR NO KEY UPDATE`,
	reseal: (row) => ifChanged(row, { ...row, lead: sealSubmission(resealer, row.lead) }),
	write: (tx, rows) =>
		tx.$executeRawUnsafe(
			`UPDATE outbox o SET payload = jsonb_set(o.payload, '{lead}', v.lead)
			FROM jsonb_to_recordset($1::jsonb) AS v(id bigint, lead jsonb) WHERE o.id = v.id`,
			JSON.stringify(rows),
		),
});

/**
 * One batch's transaction, with row-lock waits bounded by LOCK_WAIT_MS. A batch the database could
 * not serve (a lock wait that ran out, a deadlock, a connection lost) is tried again after a pause,
 * up to BATCH_TRIES times: one that committed unseen is read again and finds nothing left to reseal.
 */
async function batchTransaction<T>(prisma: PrismaClient, table: SealedTableName, work: (tx: Tx) => Promise<T>): Promise<T> {
	for (let attempt = 1; ; attempt += 1) {
		try {
			return await prisma.$transaction(async (tx) => {
				await tx.$executeRawUnsafe(`SET LOCAL lock_timeout = '${LOCK_WAIT_MS}ms'`);
				return work(tx);
			});
		} catch (error) {
			if (databaseFailure(error) !== 'unavailable') throw error;
			if (attempt === BATCH_TRIES) throw new Error(`a batch of ${table} failed ${BATCH_TRIES} times, its rows held by other writers or the database busy; run the command again (it reseals only what is left): ${(error as Error).message.trim().split('\n').at(-1)}`);
			await sleep(LOCK_WAIT_MS * attempt);
		}
	}
}

/** Reseals one table of the site, batch after batch, until every row was read once or `signal` stops it. */
async function rotateTable<Row extends { id: string }>(prisma: PrismaClient, table: SealedTable<Row>, siteId: string, batchSize: number, signal?: AbortSignal): Promise<TableRotation> {
	const result: TableRotation = { read: 0, resealed: 0, batches: 0 };
	let after = table.start;
	for (;;) {
		signal?.throwIfAborted();
		const read = await batchTransaction(prisma, table.name, async (tx) => {
			const rows = await tx.$queryRawUnsafe<Row[]>(table.batch, siteId, after, batchSize);
			const resealedRows = rows.flatMap((row) => table.reseal(row) ?? []);
			if (resealedRows.length > 0) await table.write(tx, resealedRows);
			return { rows: rows.length, last: rows.at(-1)?.id, resealed: resealedRows.length };
		});
		result.batches += 1;
		result.read += read.rows;
		result.resealed += read.resealed;
		if (read.rows < batchSize || read.last === undefined) return result;
		after = read.last;
	}
}

/** Reseals every sealed table of one site (SEALED_TABLES, in that order) under the keyring's current key. */
export async function rotateSite(prisma: PrismaClient, site: { id: string; key: string }, keyring: PiiKeyring, options: { batchSize?: number; signal?: AbortSignal } = {}): Promise<RotationResult> {
	const cipher = new PiiCipher(keyring, site.id);
	const resealer = new Resealer(keyring, site.id);
	const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
	const rotate = <Row extends { id: string }>(table: SealedTable<Row>) => rotateTable(prisma, table, site.id, batchSize, options.signal);
	// In the order of SEALED_TABLES.
	return {
		site: site.key,
		tables: {
			leads: await rotate(leads(cipher)),
			email_messages: await rotate(emailMessages(resealer)),
			mailbox_messages: await rotate(mailboxMessages(resealer)),
			outbox: await rotate(outbox(resealer)),
		},
	};
}

/** What each table's rows are called in the command's report. */
const ROWS_OF: Record<SealedTableName, string> = {
	leads: 'leads',
	email_messages: 'email_messages',
	mailbox_messages: 'mailbox_messages (caught mail)',
	outbox: 'outbox lead submissions',
};

/** The command's line for one site: how many rows of each table were resealed of how many read. */
export function rotationSummary(result: RotationResult, keyId: string): string {
	const batches = SEALED_TABLES.reduce((sum, name) => sum + result.tables[name].batches, 0);
	const counts = SEALED_TABLES.map((name) => `${result.tables[name].resealed} of ${result.tables[name].read} ${ROWS_OF[name]}`);
	return `${result.site}: resealed under key "${keyId}" in ${batches} batches: ${counts.join(', ')}`;
}

/** The sites whose stored config seals personal data; one site by its key with `only`. */
export async function encryptingSites(prisma: PrismaClient, only?: string): Promise<Array<{ id: string; key: string }>> {
	const sites = await prisma.site.findMany({ where: only ? { key: only } : {}, select: { id: true, key: true, config: true }, orderBy: { key: 'asc' } });
	return sites.filter((site) => (site.config as { privacy?: { encryptPii?: unknown } } | null)?.privacy?.encryptPii === true).map(({ id, key }) => ({ id, key }));
}
