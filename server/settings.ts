import proxyAddr from 'proxy-addr';
import { z } from 'zod/v4';

import { formatIssues, toFieldIssues, type FieldIssue } from '../lib/contracts';
import { checkedDatabaseUrl } from '../lib/db/databaseUrl';

/**
 * A whole number in decimal digits: Number() would read "0x10" as 16 and "1e3" as 1000, and a
 * mistyped value should be refused, not read as another number.
 */
const integer = (min: number, max: number, fallback: number) => {
	const rule = `must be a whole number from ${min} to ${max}`;
	return z
		.string()
		.trim()
		.regex(/^\d+$/, { error: rule, abort: true })
		.transform(Number)
		.refine((value) => value >= min && value <= max, { error: rule })
		.default(fallback);
};

/** An HTTP header name (RFC 9110 token): a name with a space or a colon is never sent, so it could never match. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Settings whose value a refusal must not quote: it would put a secret in the log. */
const SECRETS = new Set(['EMAIL_TOKEN_SECRET', 'SMTP_URL']);

/** Receiver settings from the environment; a bad value stops the start with its name and the fix. */
const settingsSchema = z.object({
	PORT: integer(0, 65_535, 3000),
	HOST: z.string().min(1).default('127.0.0.1'),
	/** Express "trust proxy": false, true, a hop count, or addresses/subnets of the proxies. */
	TRUST_PROXY: z
		.string()
		.default('false')
		.superRefine((setting, context) => {
			const value = trustProxyValue(setting);
			if (typeof value !== 'string') return;
			try {
				// What Express does with the string form, so a value it would refuse is refused here, before the database is opened.
				proxyAddr.compile(value.split(',').map((part) => part.trim()));
			} catch (error) {
				context.addIssue({
					code: 'custom',
					message: `must be true, false, a number of proxy hops, or the proxies' addresses or subnets, comma-separated (e.g. 172.30.0.10 or loopback, 10.0.0.0/8): ${(error as Error).message}`,
				});
			}
		}),
	/** pino's level names; createLogger would throw on any other. */
	LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'must be one of fatal, error, warn, info, debug, trace, silent' }).default('info'),
	/** Header a trusted proxy sets with the visitor's ISO country code (e.g. cf-ipcountry). */
	COUNTRY_HEADER: z
		.string()
		.regex(HEADER_NAME, { error: 'must be an HTTP header name such as cf-ipcountry: letters, digits and hyphens, without spaces or a colon' })
		.toLowerCase()
		.optional(),
	/** Site whose tracker the demo pages at /demo/ carry; default: the first configured site. Checked against the loaded sites by checkDemoSite. */
	DEMO_SITE: z.string().min(1).optional(),
	/**
	 * Only http(s): the origin of any other URL (file:, data:, mailto:, urn:) is "null", the Origin
	 * sandboxed frames and file: pages send, which the demo site and the dashboards' same-origin
	 * check would then accept.
	 */
	PUBLIC_URL: z
		.url({ protocol: /^https?$/, error: 'must be the http:// or https:// URL the receiver is reached at, e.g. https://crm.example.com' })
		.optional(),
	DISPATCH_INTERVAL_MS: integer(10, 60_000, 500),
	DISPATCH_BATCH_SIZE: integer(1, 5000, 5000),
	DISPATCH_CONCURRENCY: integer(1, 64, 4),
	/**
	 * Retired: a count of tries gave up after 17 to 34 minutes at the defaults, an ordinary n8n
	 * outage. A value left in an environment is refused rather than ignored, since it no longer
	 * means what whoever set it chose.
	 */
	DISPATCH_MAX_ATTEMPTS: z
		.never({ error: 'is no longer read: a failing delivery is retried for DISPATCH_GIVE_UP_AFTER_MS (default 259200000, 3 days), however many tries that takes; delete DISPATCH_MAX_ATTEMPTS and set that instead if 3 days do not suit' })
		.optional(),
	DISPATCH_TIMEOUT_MS: integer(100, 120_000, 10_000),
	/** The first retry's wait; each further retry waits twice as long, up to DISPATCH_BACKOFF_MAX_MS, each with 50–100 % jitter (server/outbox/backoff.ts). */
	DISPATCH_BACKOFF_BASE_MS: integer(10, 600_000, 1000),
	/** The longest wait between two tries: also the longest a delivery waits once n8n is back. */
	DISPATCH_BACKOFF_MAX_MS: integer(100, 86_400_000, 900_000),
	/** How long a delivery may go on failing before it is dead-lettered, counted from its first failure (default 3 days). */
	DISPATCH_GIVE_UP_AFTER_MS: integer(1000, 2_592_000_000, 259_200_000),
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
	EMAIL_TOKEN_SECRET: z
		.string()
		.refine((secret) => secret.replace(/\s/g, '').length >= 32, { error: 'must be at least 32 characters besides spaces (e.g. openssl rand -base64 48)' })
		.optional(),
});

const checkedSettingsSchema = settingsSchema.superRefine((settings, context) => {
	if (settings.DISPATCH_BACKOFF_MAX_MS < settings.DISPATCH_BACKOFF_BASE_MS) {
		context.addIssue({ code: 'custom', path: ['DISPATCH_BACKOFF_MAX_MS'], message: `must be at least DISPATCH_BACKOFF_BASE_MS (${settings.DISPATCH_BACKOFF_BASE_MS}), the first wait` });
	}
});

export type ReceiverSettings = z.infer<typeof settingsSchema>;

export class SettingsError extends Error {}

/**
 * The settings the environment sets. An empty variable is unset (what compose writes for a variable
 * it has no value for); one of only whitespace is a slip (a quoted space, a template that filled in
 * nothing visible) and is refused for every setting alike, since each would read it differently: a
 * number as 0, a host name as itself.
 */
export function readSettings(env: NodeJS.ProcessEnv = process.env): ReceiverSettings {
	const set = Object.keys(settingsSchema.shape).filter((key) => env[key] !== undefined && env[key] !== '');
	const blank = set.filter((key) => env[key]!.trim() === '');
	const relevant = Object.fromEntries(set.filter((key) => !blank.includes(key)).map((key) => [key, env[key]]));
	const parsed = checkedSettingsSchema.safeParse(relevant);
	const issues: FieldIssue[] = blank.map((field) => ({ field, message: `holds only whitespace; give it a value, or leave ${field} unset for its default` }));
	if (!parsed.success) issues.push(...toFieldIssues(parsed.error, quotable(relevant)));
	if (!parsed.success || issues.length > 0) throw new SettingsError(`Invalid receiver environment:\n${formatIssues(issues)}`);
	return parsed.data;
}

/** The settings a refusal may quote the value of: all but the secrets. */
function quotable(settings: Record<string, string | undefined>): Record<string, string | undefined> {
	return Object.fromEntries(Object.entries(settings).filter(([key]) => !SECRETS.has(key)));
}

/**
 * Refuses a DEMO_SITE that names none of the loaded sites: the demo would otherwise answer every
 * page with a 404 and give the receiver's own origins to no site.
 */
export function checkDemoSite(demoSite: string | undefined, siteKeys: readonly string[]): void {
	if (demoSite === undefined || siteKeys.includes(demoSite)) return;
	const issue = { field: 'DEMO_SITE', received: demoSite, message: `names no loaded site; set it to the key of one (${siteKeys.join(', ')}), or unset it for the first` };
	throw new SettingsError(`Invalid receiver environment:\n${formatIssues([issue])}`);
}

/**
 * Refuses a DATABASE_URL that names no database before anything connects: Postgres would take the
 * login's default database (often the shared `postgres`) and the migrations would fill it with
 * the CRM's tables. Also a value that is no postgresql:// URL, which would otherwise reach the
 * driver and come back as a host that cannot be found (lib/db/databaseUrl.ts, as the scripts
 * check it). Unset: the embedded database.
 */
export function checkDatabaseUrl(url: string | undefined): void {
	if (!url) return;
	const checked = checkedDatabaseUrl(url, 'DATABASE_URL');
	if (typeof checked === 'string') {
		throw new SettingsError(`Invalid receiver environment:\n  - ${checked} (the CRM's own database, created first, e.g. with createdb; or unset DATABASE_URL to run on the embedded database)`);
	}
}

/** Express's own parsing of the trust-proxy setting, given the string form of the variable. */
export function trustProxyValue(setting: string): boolean | number | string {
	if (setting === 'true') return true;
	if (setting === 'false') return false;
	if (/^\d+$/.test(setting)) return Number(setting);
	return setting;
}
