import { MESSAGE_RECIPIENT_FIELD, MESSAGE_SUBJECT_FIELD, siteCipher, type PiiCipher, type PiiKeyring } from '../../../lib/pii';
import type { ResolvedSite } from '../../shared/subjects';

/** The cipher of the site's personal data, with the credential's keys (the environment's when it has none); null on a site that stores in clear. */
export const cipherOf = (site: ResolvedSite, keys: { keyring?: PiiKeyring | null } = {}): PiiCipher | null => siteCipher(site.id, site.config.privacy.encryptPii, keys.keyring);

/** A message's recipient and subject as email_messages keeps them: sealed on a site with privacy.encryptPii, since a subject may greet the lead by name. */
export function storedRecipient(cipher: PiiCipher | null, toEmail: string, subject: string): { toEmail: string; subject: string } {
	return cipher ? { toEmail: cipher.seal(toEmail, MESSAGE_RECIPIENT_FIELD), subject: cipher.seal(subject, MESSAGE_SUBJECT_FIELD) } : { toEmail, subject };
}
