import { siteCipher, type PiiCipher, type PiiKeyring } from '../../../lib/pii';
import type { ResolvedSite } from '../../shared/subjects';

/** The cipher of the site's personal data, with the credential's keys (the environment's when it has none); null on a site that stores in clear. */
export const cipherOf = (site: ResolvedSite, keys: { keyring?: PiiKeyring | null } = {}): PiiCipher | null => siteCipher(site.id, site.config.privacy.encryptPii, keys.keyring);
