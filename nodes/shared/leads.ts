/**
 * The one way a node finds a lead from what a workflow builder typed into its Lead parameter:
 * the lead's id, or any variant of its email address, always within one site.
 */
import type { Prisma } from '../../lib/db/generated/client';
import { emailHash } from '../../lib/email';
import { isUuid } from '../../lib/ids';
import { normalizeEmail } from '../../lib/mailbox';
import type { PiiCipher } from '../../lib/pii';
import { InputError } from './inputError';

/** The node parameter every lead reference comes from; the errors name it. */
const FIELD = 'lead';

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

function notFound(reference: string): InputError {
	return new InputError(FIELD, `No lead "${reference.trim()}" on this site; give the lead's id or email address`);
}

type Leads = Pick<Prisma.TransactionClient, 'lead'>;

/**
 * Several leads in one query; each reference maps to its lead's id or to why there is none. On a
 * site with `privacy.encryptPii` (`cipher` given) addresses are sealed, so a lead is found by the
 * keyed hash of its address, or by its SHA-256 while it is still stored in clear.
 */
export async function findLeads(prisma: Leads, siteId: string, references: readonly string[], cipher?: PiiCipher | null): Promise<Map<string, string | InputError>> {
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
	const found = new Map<string, string | InputError>();
	for (const [reference, named] of parsed) {
		const id = 'id' in named ? (byId.has(named.id) ? named.id : undefined) : 'email' in named ? byEmail.get(named.email) : undefined;
		found.set(reference, 'error' in named ? named.error : (id ?? notFound(reference)));
	}
	return found;
}

/** One lead's id; a reference that names no lead of the site throws, naming the Lead parameter. */
export async function findLeadId(prisma: Leads, siteId: string, reference: string, cipher?: PiiCipher | null): Promise<string> {
	const found = (await findLeads(prisma, siteId, [reference], cipher)).get(reference);
	if (typeof found !== 'string') throw found as InputError;
	return found;
}
