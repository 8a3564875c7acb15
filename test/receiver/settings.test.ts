import { startReceiver } from '../../server/receiver';
import { checkDemoSite, readSettings, SettingsError } from '../../server/settings';
import { testDbUrl } from '../helpers/db';
import { settingsRefusal } from '../helpers/refusals';
import { testSiteConfig } from '../helpers/sites';

/** Every variable readSettings reads. */
const SETTINGS = [
	'PORT',
	'HOST',
	'TRUST_PROXY',
	'LOG_LEVEL',
	'COUNTRY_HEADER',
	'DEMO_SITE',
	'PUBLIC_URL',
	'DISPATCH_INTERVAL_MS',
	'DISPATCH_BATCH_SIZE',
	'DISPATCH_CONCURRENCY',
	'DISPATCH_MAX_ATTEMPTS',
	'DISPATCH_TIMEOUT_MS',
	'DISPATCH_BACKOFF_BASE_MS',
	'DISPATCH_BACKOFF_MAX_MS',
	'DISPATCH_GIVE_UP_AFTER_MS',
	'RATE_LIMIT_PER_IP',
	'RATE_LIMIT_PER_SITE',
	'DISPATCHER',
	'RETENTION_INTERVAL_MS',
	'SHUTDOWN_GRACE_MS',
	'SMTP_URL',
	'EMAIL_TOKEN_SECRET',
];

describe('PUBLIC_URL', () => {
	it.each(['file:///srv/crm', 'data:text/html,hi', 'mailto:crm@example.com', 'urn:isbn:0451450523', 'javascript:alert(1)'])(
		'refuses %s, whose origin is "null" (what sandboxed frames and file: pages send), naming the variable and the fix',
		(url) => {
			expect(settingsRefusal({ PUBLIC_URL: url })).toBe(
				`Invalid receiver environment:\n  - PUBLIC_URL: must be the http:// or https:// URL the receiver is reached at, e.g. https://crm.example.com; got ${JSON.stringify(url)} (string)`,
			);
		},
	);

	it('stops the receiver before its origins are given to the demo site or the dashboards', async () => {
		const start = startReceiver({ sites: [testSiteConfig()], database: { url: testDbUrl(), migrate: false }, env: { PUBLIC_URL: 'file:///srv/crm' } });
		await expect(start).rejects.toThrow(SettingsError);
		await expect(start).rejects.toThrow(/PUBLIC_URL: must be the http:\/\/ or https:\/\/ URL/);
	});

	it('takes an http(s) URL, with a path too, whose origin is never "null"', () => {
		const origins = ['https://crm.example.com', 'http://127.0.0.1:3000/crm/', 'HTTPS://CRM.example.com:8443'].map((url) => new URL(readSettings({ PUBLIC_URL: url }).PUBLIC_URL!).origin);
		expect(origins).toEqual(['https://crm.example.com', 'http://127.0.0.1:3000', 'https://crm.example.com:8443']);
	});
});

describe('blank and mistyped values', () => {
	it.each(SETTINGS)('refuses %s holding only whitespace, naming it, rather than reading it as 0 or as a value that does nothing', (name) => {
		for (const blank of [' ', '   ', '\t', ' '.repeat(32)]) {
			expect(settingsRefusal({ [name]: blank })).toBe(`Invalid receiver environment:\n  - ${name}: holds only whitespace; give it a value, or leave ${name} unset for its default`);
		}
	});

	it('reads an empty variable as unset, as compose writes one it has no value for', () => {
		const settings = readSettings({ PORT: '', RETENTION_INTERVAL_MS: '', EMAIL_TOKEN_SECRET: '' });
		expect(settings).toMatchObject({ PORT: 3000, RETENTION_INTERVAL_MS: 3_600_000 });
		expect(settings).not.toHaveProperty('EMAIL_TOKEN_SECRET');
	});

	it('lists every refused variable at once, blank or not', () => {
		expect(settingsRefusal({ RETENTION_INTERVAL_MS: ' ', PORT: 'http' })).toBe(
			'Invalid receiver environment:\n  - RETENTION_INTERVAL_MS: holds only whitespace; give it a value, or leave RETENTION_INTERVAL_MS unset for its default\n  - PORT: must be a whole number from 0 to 65535; got "http" (string)',
		);
	});

	it.each(['abc', '0x10', '1e3', '-1', '3.5', 'Infinity', '3000ms', '65536'])('refuses PORT=%s: a whole number in decimal digits, within its bounds, or nothing', (value) => {
		expect(settingsRefusal({ PORT: value })).toBe(`Invalid receiver environment:\n  - PORT: must be a whole number from 0 to 65535; got ${JSON.stringify(value)} (string)`);
	});

	it('reads numbers in decimal digits, around spaces too, and keeps the other bounds', () => {
		expect(readSettings({ PORT: ' 3001 ', RETENTION_INTERVAL_MS: '0', DISPATCH_TIMEOUT_MS: '100' })).toMatchObject({ PORT: 3001, RETENTION_INTERVAL_MS: 0, DISPATCH_TIMEOUT_MS: 100 });
		expect(settingsRefusal({ RETENTION_INTERVAL_MS: 'hourly' })).toMatch(/^Invalid receiver environment:\n {2}- RETENTION_INTERVAL_MS: must be a whole number from 0 to 604800000; got "hourly"/);
		expect(settingsRefusal({ RETENTION_INTERVAL_MS: '500' })).toMatch(/RETENTION_INTERVAL_MS: must be 0 \(no retention job in the receiver\) or at least 1000 ms/);
	});
});

describe('EMAIL_TOKEN_SECRET', () => {
	it('needs 32 characters besides spaces, and a refusal never quotes the secret', () => {
		for (const secret of [`${' '.repeat(31)}x`, `short ${' '.repeat(40)}`, 'x'.repeat(31)]) {
			const message = settingsRefusal({ EMAIL_TOKEN_SECRET: secret });
			expect(message).toBe('Invalid receiver environment:\n  - EMAIL_TOKEN_SECRET: must be at least 32 characters besides spaces (e.g. openssl rand -base64 48)');
		}
		expect(readSettings({ EMAIL_TOKEN_SECRET: 'x'.repeat(32) }).EMAIL_TOKEN_SECRET).toBe('x'.repeat(32));
	});
});

describe('COUNTRY_HEADER', () => {
	it.each(['cf ipcountry', 'cf-ipcountry:', 'x-country "code"', 'länder'])('refuses %s, which no request can carry as a header name', (name) => {
		expect(settingsRefusal({ COUNTRY_HEADER: name })).toBe(
			`Invalid receiver environment:\n  - COUNTRY_HEADER: must be an HTTP header name such as cf-ipcountry: letters, digits and hyphens, without spaces or a colon; got ${JSON.stringify(name)} (string)`,
		);
	});

	it('takes a header name in any case, as Node gives it: in lower case', () => {
		expect(readSettings({ COUNTRY_HEADER: 'CF-IPCountry' }).COUNTRY_HEADER).toBe('cf-ipcountry');
		expect(readSettings({ COUNTRY_HEADER: 'x_country' }).COUNTRY_HEADER).toBe('x_country');
	});
});

describe('checkDemoSite', () => {
	it('refuses a DEMO_SITE that names no loaded site, listing their keys', () => {
		expect(() => checkDemoSite('nope', ['nat-pets', 'shop'])).toThrow(SettingsError);
		expect(() => checkDemoSite('nope', ['nat-pets', 'shop'])).toThrow(
			'Invalid receiver environment:\n  - DEMO_SITE: names no loaded site; set it to the key of one (nat-pets, shop), or unset it for the first; got "nope" (string)',
		);
	});

	it('takes a loaded site, or none (the first site)', () => {
		expect(() => checkDemoSite('shop', ['nat-pets', 'shop'])).not.toThrow();
		expect(() => checkDemoSite(undefined, ['nat-pets'])).not.toThrow();
	});
});
