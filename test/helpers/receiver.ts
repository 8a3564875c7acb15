import type { SiteConfig } from '../../lib/contracts';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import type { ReceiverSettings } from '../../server/settings';
import { testDbUrl } from './db';

export const TEST_SECRET = 'test-webhook-secret-0123456789abcdef';

/** The real receiver, in-process, on the run's test database and a free port. */
export async function startTestReceiver(sites: SiteConfig[], settings: Partial<ReceiverSettings> = {}): Promise<Receiver> {
	return startReceiver({
		sites,
		database: { url: testDbUrl(), migrate: false },
		settings: { PORT: 0, DISPATCH_INTERVAL_MS: 50, DISPATCH_BACKOFF_BASE_MS: 50, DISPATCH_BACKOFF_MAX_MS: 400, ...settings },
		env: { TEST_WEBHOOK_SECRET: TEST_SECRET },
		logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
	});
}
