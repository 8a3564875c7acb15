/**
 * The one way a node finds a lead from what a workflow builder typed into its Lead parameter:
 * the lead's id, or any variant of its email address, always within one site; and the keys a node
 * finds and opens the leads of a site with `privacy.encryptPii` with.
 */
import type { IExecuteFunctions } from 'n8n-workflow';

import type { Prisma } from '../../lib/db/generated/client';
import type { RawSql } from '../../lib/db/rawSql';
import { emailHash } from '../../lib/email';
import { anonymousIdHash, isUuid } from '../../lib/ids';
import { normalizeEmail } from '../../lib/mailbox';
import { CREDENTIAL_SOURCES, PII_HASH_KEY_ENV, PII_KEYS_ENV, PiiDecryptError, PiiKeyError, piiKeyringFromCredential, piiKeyringFromEnv, siteCipher, type PiiCipher, type PiiKeyring } from '../../lib/pii';
import { sitesPinnedToOtherHashKey } from '../../lib/piiHashKey';
import { crmDatabase } from './database';
import { InputError } from './inputError';

/** The node parameter every lead reference comes from; the errors name it. */
const FIELD = 'lead';

/** Key problems are the credential's: the builder fixes them there (or in n8n's environment). */
const KEYS_FIELD = 'credentials.trackingCrmApi';
const HASH_KEY_SOURCE = `PII Hash Key of its Tracking CRM API credential, or ${PII_HASH_KEY_ENV} in n8n's environment when the credential has no PII keys`;
const RECEIVERS_KEYS = `the receiver's own ${PII_KEYS_ENV} and ${PII_HASH_KEY_ENV}, copied as they are`;

/**
 * What a reference names: a lead id, or the mailbox key leads are stored under (so
 * `Jane.Doe+news@gmail.com` finds the lead of `janedoe@gmail.com`), or why it names neither.
 */
export type LeadReference = { id: string } | { email: string } | { error: InputError };

export function leadReference(reference: string): LeadReference {
	const value = reference.trim();
	if (isUuid(value)) return { id: value.toLowerCase() };
	const key = normalizeEmail(value)?.key;
	if (key) return { email: key };
	return { error: new InputError(FIELD, `"${value}" is neither a lead id nor an email address; give the lead's id or email address`) };
}

/** Whether the reference is an address: on a site that seals addresses, only those need the site's keys to be found. */
export function namesAddress(reference: string): boolean {
	return 'email' in leadReference(reference);
}

/**
 * On a site that seals addresses, a lead is found by the keyed hash of its address; one that is
 * there is not found when the node's hash key is not the receiver's, which the message says.
 */
function notFound(reference: string, sealed: boolean): InputError {
	const keys = sealed && namesAddress(reference) ? `; if it exists, the PII hash key of this node (${HASH_KEY_SOURCE}) is not the receiver's ${PII_HASH_KEY_ENV}` : '';
	return new InputError(FIELD, `No lead "${reference.trim()}" on this site; give the lead's id or email address${keys}`);
}

/**
 * A reference to a lead or a browser that a privacy erasure deleted (POST /api/privacy/erase), by
 * its id, address or anonymous id: an item already on its way when the person was erased. Not an
 * InputError, since there is nothing for the builder to fix: a node leaves such an item out,
 * neither output nor failure, and says how many in n8n's log ({@link logErasedItems}).
 */
export class ErasedPerson extends Error {
	constructor(
		readonly reference: string,
		what: 'lead' | 'visitor' = 'lead',
	) {
		super(`The ${what} "${reference.trim()}" was erased (privacy erasure): nothing of it is stored any more`);
	}
}

/** Says in n8n's log how many items the node left out because their person was erased: nothing else tells the builder where they went. */
export function logErasedItems(context: Pick<IExecuteFunctions, 'logger' | 'getNode'>, count: number): void {
	if (count > 0) context.logger.info(`${context.getNode().name}: ${count} item(s) left out: their person was erased (privacy erasure)`);
}

/**
 * The browsers among `anonymousIds` an erasure deleted, each with when (epoch ms): events of one
 * received by then were erased with it and must not be stored again. One query.
 */
export async function erasedBrowsers(db: Pick<RawSql, '$queryRawUnsafe'>, siteId: string, anonymousIds: readonly string[]): Promise<Map<string, number>> {
	if (anonymousIds.length === 0) return new Map();
	const idOf = new Map(anonymousIds.map((anonymousId) => [anonymousIdHash(anonymousId), anonymousId]));
	const rows = await db.$queryRawUnsafe<Array<{ hash: string; erasedAt: Date }>>(
		`SELECT anonymous_id_hash AS hash, erased_at AS "erasedAt" FROM erased_visitors WHERE site_id = $1::uuid AND anonymous_id_hash = ANY($2::text[])`,
		siteId,
		[...idOf.keys()],
	);
	return new Map(rows.map((row) => [idOf.get(row.hash) as string, row.erasedAt.getTime()]));
}

/**
 * Which of some visitor references (a visitor's id or the tracker's anonymous id) name a browser
 * an erasure deleted, in one query (none when there is nothing to ask): for the references no
 * visitor answers, to tell an item on its way at the erasure from a wrong reference.
 */
export async function erasedVisitorReferences(db: Pick<RawSql, '$queryRawUnsafe'>, siteId: string, references: readonly string[]): Promise<Set<string>> {
	if (references.length === 0) return new Set();
	const referenceOf = new Map(references.map((reference) => [anonymousIdHash(reference), reference]));
	const byVisitorId = new Map(references.filter((reference) => isUuid(reference)).map((reference) => [reference.toLowerCase(), reference]));
	const rows = await db.$queryRawUnsafe<Array<{ hash: string; visitorId: string | null }>>(
		`SELECT anonymous_id_hash AS hash, visitor_id::text AS "visitorId" FROM erased_visitors
		WHERE site_id = $1::uuid AND (anonymous_id_hash = ANY($2::text[]) OR visitor_id = ANY($3::uuid[]))`,
		siteId,
		[...referenceOf.keys()],
		[...byVisitorId.keys()],
	);
	const erased = new Set<string>();
	for (const row of rows) {
		const byAnonymousId = referenceOf.get(row.hash);
		const byId = row.visitorId === null ? undefined : byVisitorId.get(row.visitorId);
		for (const named of [byAnonymousId, byId]) if (named !== undefined) erased.add(named);
	}
	return erased;
}

/**
 * Which of some lead ids ($2) and address hashes ($3) an erasure left behind: the ids in the
 * erasure's tombstones, the hashes it suppressed as erased.
 */
const ERASED = `
SELECT lead_id::text AS key FROM erased_leads WHERE site_id = $1::uuid AND lead_id = ANY($2::uuid[])
UNION ALL
SELECT email_hash FROM suppressions WHERE site_id = $1::uuid AND reason = 'erased' AND email_hash = ANY($3::text[])`;

type Leads = Pick<Prisma.TransactionClient, 'lead' | '$queryRawUnsafe'>;

/**
 * Several leads in one query; each reference maps to its lead's id, to {@link ErasedPerson} when it
 * names a lead an erasure deleted, or to why there is none. On a site with `privacy.encryptPii`
 * (`cipher` given) addresses are sealed, so a lead is found by the keyed hash of its address, or by
 * its SHA-256 while it is still stored in clear. The references no lead answers take one query
 * more, for the erasure's tombstones and suppressions.
 */
export async function findLeads(prisma: Leads, siteId: string, references: readonly string[], cipher?: PiiCipher | null): Promise<Map<string, string | InputError | ErasedPerson>> {
	const parsed = new Map([...new Set(references)].map((reference) => [reference, leadReference(reference)]));
	const ids = new Set<string>();
	const emails = new Set<string>();
	for (const named of parsed.values()) {
		if ('id' in named) ids.add(named.id);
		else if ('email' in named) emails.add(named.email);
	}
	const hashes = cipher ? [...emails].map((email) => [email, emailHash(email, cipher), emailHash(email)] as const) : [];
	const byAddress = cipher ? { emailHash: { in: hashes.flatMap(([, keyed, clear]) => [keyed, clear]) } } : { email: { in: [...emails] } };
	const rows =
		ids.size + emails.size === 0
			? []
			: await prisma.lead.findMany({ where: { siteId, OR: [{ id: { in: [...ids] } }, byAddress] }, select: { id: true, email: true, emailHash: true } });
	const byId = new Set(rows.map((row) => row.id));
	const byHash = new Map(rows.map((row) => [row.emailHash, row.id]));
	const byEmail = cipher
		? new Map(hashes.flatMap(([email, keyed, clear]) => (byHash.has(keyed) || byHash.has(clear) ? [[email, (byHash.get(keyed) ?? byHash.get(clear)) as string]] : [])))
		: new Map(rows.map((row) => [row.email, row.id]));
	const idOf = (named: LeadReference) => ('id' in named ? (byId.has(named.id) ? named.id : undefined) : 'email' in named ? byEmail.get(named.email) : undefined);
	const erased = await erasedOf(prisma, siteId, [...parsed.values()].filter((named) => idOf(named) === undefined), cipher);
	const found = new Map<string, string | InputError | ErasedPerson>();
	for (const [reference, named] of parsed) {
		if ('error' in named) found.set(reference, named.error);
		else if (erased.has('id' in named ? named.id : named.email)) found.set(reference, new ErasedPerson(reference));
		else found.set(reference, idOf(named) ?? notFound(reference, Boolean(cipher)));
	}
	return found;
}

/** The lead ids and addresses (mailbox keys) among `missing` that an erasure left behind. */
async function erasedOf(prisma: Leads, siteId: string, missing: readonly LeadReference[], cipher?: PiiCipher | null): Promise<Set<string>> {
	const ids = missing.flatMap((named) => ('id' in named ? [named.id] : []));
	const emails = missing.flatMap((named) => ('email' in named ? [named.email] : []));
	return await erasedReferences(prisma, siteId, ids, emails, cipher);
}

/**
 * Which of some lead ids and addresses (mailbox keys) an erasure left behind, in one query (none
 * when there is nothing to ask): the ids in its tombstones, the addresses under the hashes it
 * suppressed as erased, the keyed one and the SHA-256 on a site with `privacy.encryptPii`.
 */
export async function erasedReferences(db: Pick<RawSql, '$queryRawUnsafe'>, siteId: string, ids: readonly string[], emails: readonly string[], cipher?: PiiCipher | null): Promise<Set<string>> {
	const addressOf = new Map<string, string>();
	for (const email of emails) {
		if (cipher) addressOf.set(emailHash(email, cipher), email);
		addressOf.set(emailHash(email), email);
	}
	if (ids.length + addressOf.size === 0) return new Set();
	const rows = await db.$queryRawUnsafe<Array<{ key: string }>>(ERASED, siteId, [...ids], [...addressOf.keys()]);
	return new Set(rows.map((row) => addressOf.get(row.key) ?? row.key));
}

/**
 * One lead's id; a reference that names no lead of the site throws, naming the Lead parameter, and
 * one that names an erased lead throws {@link ErasedPerson}.
 */
export async function findLeadId(prisma: Leads, siteId: string, reference: string, cipher?: PiiCipher | null): Promise<string> {
	const found = (await findLeads(prisma, siteId, [reference], cipher)).get(reference);
	if (typeof found !== 'string') throw found as InputError | ErasedPerson;
	return found;
}

/** The Tracking CRM API credential's PII fields, as the receiver's PII_ENCRYPTION_KEYS and PII_HASH_KEY; empty on a node without the credential. */
export interface PiiKeyFields {
	piiEncryptionKeys?: unknown;
	piiHashKey?: unknown;
	/** The sites the receiver recorded another hash key for than the one these fields (or n8n's environment) give ({@link piiCredentialOf}). */
	otherHashKeySites?: ReadonlySet<string>;
}

/**
 * The PII fields of the node's Tracking CRM API credential. Nodes that need the credential for
 * these keys only take it as optional, and n8n refuses to read an optional credential that is not set.
 *
 * When the keys they name (or n8n's environment's) can be used, one query per execution reads which
 * sites' recorded hash key is another, so that {@link piiKeyringOf} makes those sites fail naming
 * the PII Hash Key instead of finding no lead. Keys that cannot be used are left to fail there, on
 * a site that needs them.
 */
export async function piiCredentialOf(context: Pick<IExecuteFunctions, 'getNode' | 'getCredentials'>): Promise<PiiKeyFields> {
	const fields: PiiKeyFields = context.getNode().credentials?.trackingCrmApi ? await context.getCredentials('trackingCrmApi') : {};
	let keyring: PiiKeyring;
	try {
		keyring = piiKeyringFromCredential(fields) ?? piiKeyringFromEnv();
	} catch (error) {
		if (error instanceof PiiKeyError) return fields;
		throw error;
	}
	const { sql } = await crmDatabase(context);
	return { ...fields, otherHashKeySites: await sitesPinnedToOtherHashKey(sql, keyring.hashKey) };
}

/**
 * A key or sealed-value error in the words of a node in n8n, naming where its keys come from and
 * that they must be the receiver's; any other error as it is.
 */
export function piiKeyProblem(error: unknown): unknown {
	if (error instanceof PiiKeyError) {
		const fromEnvironment = error.setting === PII_KEYS_ENV || error.setting === PII_HASH_KEY_ENV;
		const fix = fromEnvironment
			? `in n8n, give ${RECEIVERS_KEYS}, as PII Encryption Keys and PII Hash Key of the node's Tracking CRM API credential, or as those variables of n8n's environment`
			: `the credential holds ${RECEIVERS_KEYS}`;
		return new InputError(KEYS_FIELD, `${error.message} (${fix})`);
	}
	if (error instanceof PiiDecryptError) {
		return new InputError(
			KEYS_FIELD,
			`${error.message}. In n8n the keys are PII Encryption Keys of the node's Tracking CRM API credential (or ${PII_KEYS_ENV} of n8n's environment when the credential has no PII keys); they must be ${RECEIVERS_KEYS}`,
		);
	}
	return error;
}

/**
 * The keys of a site with privacy.encryptPii: the credential's PII fields, else, when both are
 * empty, the n8n process' environment; null for a site that stores in clear, which needs none, so
 * a key problem never stops a node on such a site. A key that cannot be used names its field.
 */
export function piiKeyringOf(credential: PiiKeyFields, encryptPii: boolean): PiiKeyring | null {
	if (!encryptPii) return null;
	try {
		const fromCredential = piiKeyringFromCredential(credential);
		const keyring = fromCredential ?? piiKeyringFromEnv();
		const siteIds = credential.otherHashKeySites;
		return siteIds?.size ? { ...keyring, otherHashKeySites: { siteIds, setting: fromCredential ? CREDENTIAL_SOURCES.hashKey : PII_HASH_KEY_ENV } } : keyring;
	} catch (error) {
		throw piiKeyProblem(error);
	}
}

/** The cipher a node seals, opens and finds a site's leads with ({@link piiKeyringOf}); null for a site that stores in clear. */
export function siteCipherOf(credential: PiiKeyFields, site: { id: string; config: { privacy: { encryptPii: boolean } } }): PiiCipher | null {
	const { encryptPii } = site.config.privacy;
	try {
		return siteCipher(site.id, encryptPii, piiKeyringOf(credential, encryptPii));
	} catch (error) {
		throw piiKeyProblem(error);
	}
}
