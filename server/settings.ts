import { z } from 'zod/v4';

import { formatIssues, toFieldIssues } from '../lib/contracts';

const integer = (min: number, max: number, fallback: number) => z.coerce.number().int().min(min).max(max).default(fallback);

/** Receiver settings from the environment; a bad value stops the start with its name and the fix. */
const settingsSchema = z.object({
	PORT: integer(0, 65_535, 3000),
	HOST: z.string().min(1).default('127.0.0.1'),
	/** Express "trust proxy": false, true, a hop count, or addresses/subnets of the proxies. */
	TRUST_PROXY: z.string().default('false'),
	/** Header a trusted proxy sets with the visitor's ISO country code (e.g. cf-ipcountry). */
	COUNTRY_HEADER: z.string().toLowerCase().optional(),
	/** Site whose tracker the demo pages at /demo/ carry; default: the first configured site. */
	DEMO_SITE: z.string().min(1).optional(),
	PUBLIC_URL: z.url({ error: 'must be the absolute URL the receiver is reached at, e.g. https://crm.example.com' }).optional(),
	DISPATCH_INTERVAL_MS: integer(10, 60_000, 500),
	DISPATCH_BATCH_SIZE: integer(1, 5000, 5000),
	DISPATCH_CONCURRENCY: integer(1, 64, 4),
	DISPATCH_MAX_ATTEMPTS: integer(1, 100, 12),
	DISPATCH_TIMEOUT_MS: integer(100, 120_000, 10_000),
	DISPATCH_BACKOFF_BASE_MS: integer(10, 600_000, 1000),
	DISPATCH_BACKOFF_MAX_MS: integer(100, 86_400_000, 3_600_000),
	RATE_LIMIT_PER_IP: integer(1, 1_000_000, 600),
	RATE_LIMIT_PER_SITE: integer(1, 10_000_000, 60_000),
	DISPATCHER: z.enum(['on', 'off']).default('on'),
	/**
	 * How often the retention job deletes the raw rows older than each site's privacy.dataRetention
	 * (server/retention); the first run comes a minute after the start, or after one interval if that
	 * is shorter. 0: the receiver runs no retention job (run scripts/retention from a scheduler instead).
	 */
	RETENTION_INTERVAL_MS: integer(0, 604_800_000, 3_600_000).refine((ms) => ms === 0 || ms >= 1000, { error: 'must be 0 (no retention job in the receiver) or at least 1000 ms' }),
	/** On SIGTERM, how long requests in flight may take before their connections are cut. */
	SHUTDOWN_GRACE_MS: integer(0, 600_000, 10_000),
	/**
	 * Where the embedded engine sends mail (smtp://user:password@host:587 or smtps://…:465); unset: the
	 * built-in catcher, shown at /mailbox. Checked by smtpCredentialFromUrl when the receiver starts,
	 * whose errors never quote the value (it holds a password), unlike a schema's.
	 */
	SMTP_URL: z.string().optional(),
	/** Signs the open, click and unsubscribe URLs of emails; the Email Orchestrator node needs the same value. */
	EMAIL_TOKEN_SECRET: z.string().min(32, { error: 'must be at least 32 characters (e.g. openssl rand -base64 48)' }).optional(),
});

export type ReceiverSettings = z.infer<typeof settingsSchema>;

export class SettingsError extends Error {}

export function readSettings(env: NodeJS.ProcessEnv = process.env): ReceiverSettings {
	const relevant = Object.fromEntries(Object.keys(settingsSchema.shape).filter((key) => env[key] !== undefined && env[key] !== '').map((key) => [key, env[key]]));
	const parsed = settingsSchema.safeParse(relevant);
	if (!parsed.success) throw new SettingsError(`Invalid receiver environment:\n${formatIssues(toFieldIssues(parsed.error, relevant))}`);
	return parsed.data;
}

/** Express's own parsing of the trust-proxy setting, given the string form of the variable. */
export function trustProxyValue(setting: string): boolean | number | string {
	if (setting === 'true') return true;
	if (setting === 'false') return false;
	if (/^\d+$/.test(setting)) return Number(setting);
	return setting;
}
