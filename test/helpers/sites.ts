import { randomBytes } from 'node:crypto';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import type { SiteConfig, SiteConfigInput } from '../../lib/contracts';

/** A valid site config with a unique key; consent is not required unless a test says so. */
export function testSiteConfig(overrides: { n8nUrl?: string; consent?: boolean; secretEnv?: string; endpoints?: boolean } = {}): SiteConfig {
	const key = `site-${randomBytes(5).toString('hex')}`;
	const input: SiteConfigInput = {
		site: { key, name: `Test ${key}`, domain: `${key}.example` },
		tracking: { allowedOrigins: [`https://${key}.example`] },
		privacy: { cookieConsent: overrides.consent ?? false },
		integrations: {
			n8nUrl: overrides.n8nUrl ?? 'http://127.0.0.1:9',
			webhookSecretEnv: overrides.secretEnv ?? 'TEST_WEBHOOK_SECRET',
			webhookEndpoints:
				overrides.endpoints === false
					? []
					: [
							{ workflow: 'visitor-processor', url: '/webhook/visitor' },
							{ workflow: 'lead-processor', url: '/webhook/lead' },
						],
		},
	};
	return parseSiteConfig(input);
}
