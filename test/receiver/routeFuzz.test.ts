import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { WORKFLOW_NAMES } from '../../lib/contracts';
import { signEmailToken } from '../../lib/emailTokens';
import { createApiKey } from '../../server/auth';
import { createLogger } from '../../server/logger';
import { startReceiver, type Receiver } from '../../server/receiver';
import { createTestDatabase, dropTestDatabase } from '../setup/testDatabase';

/**
 * Every read and admin route, and the other routes a stranger can reach without sending events,
 * with hostile values in each parameter: no answer may be a 5xx, and every 4xx must name what
 * to fix (a JSON problem lists the fields in `issues`; the email routes, read by people, answer a
 * page with a heading). The receiver runs on a database of its own, so /health's status depends
 * on this file alone and must be ok.
 *
 * Reproduce a run with FUZZ_SEED=<the seed printed on failure>.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_113);
const TOKEN_SECRET = 'fuzz-email-token-secret-0123456789abcdef';
const WEBHOOK_SECRET = 'fuzz-webhook-secret-0123456789abcdef';

/** mulberry32: a small seeded generator, so a failing run can be repeated exactly. */
function generator(seed: number) {
	let state = seed >>> 0;
	const next = () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
	};
	const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
	const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)];
	const chance = (probability: number) => next() < probability;
	return { int, pick, chance };
}
type Random = ReturnType<typeof generator>;

/** A query or path value: text to percent-encode, or bytes already escaped (malformed escapes, bytes that are not UTF-8). */
type Value = string | { raw: string };

/** Percent-encodes by code point; a lone surrogate (which encodeURIComponent refuses) goes as the UTF-8 bytes of one. */
function encode(value: Value): string {
	if (typeof value !== 'string') return value.raw;
	return [...value]
		.map((char) => {
			try {
				return encodeURIComponent(char);
			} catch {
				return '%ED%A0%80';
			}
		})
		.join('');
}

const TEXT: Value[] = [
	'',
	' ',
	'\u0000',
	'a\u0000b',
	'\u0001',
	'\t',
	'\r\n',
	'\u007f',
	'\u0085',
	'\u202e',
	'\ufeff',
	'\ud800',
	'a\udfffb',
	'😀',
	"' OR 1=1 --",
	'"; DROP TABLE outbox; --',
	'../../etc/passwd',
	'<script>alert(1)</script>',
	'${7*7}',
	'null',
	'undefined',
	'[]',
	'{}',
	'__proto__',
	'constructor',
	'x'.repeat(65),
	'x'.repeat(300),
	'é'.repeat(2000),
	{ raw: '%' },
	{ raw: '%ZZ' },
	{ raw: '%FF' },
	{ raw: '%C0%80' },
	{ raw: '%00' },
	{ raw: '%ED%B0%80' },
];

const NUMBERS: Value[] = ['-1', '0', '1', '1e20', '1e308', '-1e308', 'NaN', 'Infinity', '-0', '0x10', '1.5', '99999999999999999999999', '007'];

const DATES: Value[] = [
	'9999-12-31',
	'0000-01-01',
	'0001-01-01',
	'1899-12-31',
	'1969-12-31',
	'1999-12-31',
	'2000-01-01',
	'2000-01-01T00:00:00+23:59',
	'2099-12-31',
	'2099-12-31T23:59:59-23:59',
	'2100-01-01',
	'275760-09-13',
	'+275760-09-13T00:00:00Z',
	'-000001-01-01',
	'-1',
	'1e20',
	'now',
	'today',
	'2026-02-30',
	'2026-02-29',
	'2024-02-29',
	'2026-13-01',
	'2026-00-10',
	'2026-01-01T24:00:00Z',
	'2026-01-01T23:59:60Z',
	'2026-03-01T10:00:00+99:99',
	'2026-03-01T10:00:00+24:00',
	'2026-03-01T10:00:00.123456789Z',
	'2026-03-01T10:00:00',
	'2026-03-01 10:00:00Z',
	'1772323200000',
	'2026-03-01\u0000',
	'2026-03-01%00',
];

function randomDate(random: Random): string {
	const pad = (value: number, width = 2) => String(value).padStart(width, '0');
	const year = random.pick([0, 1, 999, 1899, 1970, 1999, 2000, 2026, 2099, 2100, 9999, random.int(0, 9999)]);
	let date = `${pad(year, 4)}-${pad(random.int(0, 13))}-${pad(random.int(0, 32))}`;
	if (random.chance(0.5)) {
		date += `T${pad(random.int(0, 25))}:${pad(random.int(0, 61))}`;
		if (random.chance(0.5)) date += `:${pad(random.int(0, 61))}${random.chance(0.3) ? `.${random.int(0, 999_999)}` : ''}`;
		date += random.pick(['Z', '', '+00:00', '-05:30', '+23:59', '-24:00', '+14:00']);
	}
	return date;
}

const INTERVALS: Value[] = ['day', 'hour', 'week', 'month', 'minute', 'DAY', 'Day', ' day', 'day ', 'hour\u0000', '1 day', "day'::text; --", '1000 years', ''];

/** Values for any parameter: mostly of its own kind, sometimes anything. */
function valueFor(random: Random, own: Value[]): Value {
	if (random.chance(0.6)) return random.pick(own);
	return random.pick([...TEXT, ...NUMBERS, ...DATES, randomDate(random)]);
}

/** A query string of some of `params`, some repeated (?to=a&to=b is an array to Express), sometimes one nobody knows. */
function queryOf(random: Random, params: Record<string, () => Value>): string {
	const parts: string[] = [];
	for (const [name, value] of Object.entries(params)) {
		if (!random.chance(0.6)) continue;
		parts.push(`${name}=${encode(value())}`);
		if (random.chance(0.08)) parts.push(`${name}=${encode(value())}`);
	}
	if (random.chance(0.1)) parts.push(`${random.pick(['limit', 'form', 'offset', 'site[]', 'a[b]', '%00', 'x'.repeat(200)])}=${encode(random.pick(NUMBERS))}`);
	return parts.length ? `?${parts.join('&')}` : '';
}

const EMAILS: Value[] = [
	'jane@example.com',
	' Jane.Doe+news@Example.com ',
	'a\u0000@b.example',
	'a@b.example\u0000',
	'\u0001@x.example',
	'a\tb@c.example',
	'a@b\r\n.example',
	'a\ud800@b.example',
	'a@\udfff.example',
	'a\u0085@b.example',
	'a\u007f@b.example',
	'',
	'@',
	'a@',
	'@b',
	'a@@b',
	`${'x'.repeat(250)}@b.example`,
	'a@b.example'.repeat(30),
	"' OR 1=1 --@x.example",
	'%00@x.example',
	'\u202e@x.example',
	'ü@ü.example',
	'a@xn--',
	'a@[127.0.0.1]',
	'a@-.example',
];

interface Probe {
	route: string;
	method: string;
	path: string;
	headers?: Record<string, string>;
	body?: string;
}

interface Answer extends Probe {
	status: number;
	contentType: string;
	text: string;
}

/** What a 4xx must carry so the client knows what to fix; undefined when it does. */
function unnamed(answer: Answer): string | undefined {
	// A HEAD answer has no body by definition.
	if (answer.status < 400 || answer.status >= 500 || answer.method === 'HEAD') return undefined;
	if (answer.contentType.startsWith('text/html')) return /<h1>[^<]+<\/h1>/.test(answer.text) ? undefined : 'an HTML error page without a heading';
	if (!answer.contentType.startsWith('application/problem+json')) return `a ${answer.status} of type ${answer.contentType || 'none'}`;
	let body: { status?: unknown; detail?: unknown; error?: unknown; message?: unknown; issues?: Array<{ field?: unknown; message?: unknown }> };
	try {
		body = JSON.parse(answer.text);
	} catch {
		return 'a JSON answer that does not parse';
	}
	if (typeof body.error !== 'string' || typeof body.message !== 'string') return 'a problem without error and message';
	if (body.status !== answer.status || typeof body.detail !== 'string') return 'a problem document without its status and detail (RFC 9457)';
	if (!Array.isArray(body.issues) || body.issues.length === 0) return 'a problem without issues';
	if (!body.issues.every((issue) => typeof issue.field === 'string' && issue.field.length > 0 && typeof issue.message === 'string')) return 'an issue without a field';
	return undefined;
}

/** A stand-in for the site's n8n, so /health finds it reachable and the workflow test call has someone to post to. */
async function standInN8n(): Promise<Server> {
	const server = createServer((req, res) => {
		req.resume();
		req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
	});
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	return server;
}

describe('receiver: hostile values in every read and admin route', () => {
	let database = { name: '', url: '' };
	let n8n: Server;
	let receiver: Receiver;
	let siteKey = '';
	const keys = { read: '', admin: '', otherSite: '' };

	beforeAll(async () => {
		database = await createTestDatabase('tcrm_route_fuzz');
		n8n = await standInN8n();
		const n8nUrl = `http://127.0.0.1:${(n8n.address() as AddressInfo).port}`;
		const config = (key: string) =>
			parseSiteConfig({
				site: { key, name: key, domain: `${key}.example` },
				tracking: { allowedOrigins: [`https://${key}.example`] },
				privacy: { cookieConsent: false },
				integrations: { n8nUrl, webhookSecretEnv: 'FUZZ_WEBHOOK_SECRET', webhookEndpoints: WORKFLOW_NAMES.map((workflow) => ({ workflow, url: `/webhook/${workflow}` })) },
			});
		siteKey = `fuzz-${randomUUID().slice(0, 8)}`;
		receiver = await startReceiver({
			sites: [config(siteKey), config(`${siteKey}-b`)],
			database: { url: database.url, migrate: true },
			settings: { PORT: 0, DISPATCHER: 'off', EMAIL_TOKEN_SECRET: TOKEN_SECRET },
			env: { FUZZ_WEBHOOK_SECRET: WEBHOOK_SECRET },
			logger: createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
		});
		const [site, other] = [receiver.sites.byPublicKey(siteKey)!, receiver.sites.byPublicKey(`${siteKey}-b`)!];
		keys.read = await createApiKey(receiver.db.prisma, site.id, 'read', 'fuzz read');
		keys.admin = await createApiKey(receiver.db.prisma, site.id, 'admin', 'fuzz admin');
		keys.otherSite = await createApiKey(receiver.db.prisma, other.id, 'admin', 'fuzz other');
	}, 120_000);

	afterAll(async () => {
		await receiver?.close();
		await new Promise((resolve) => n8n?.close(resolve));
		if (database.name) await dropTestDatabase(database.name);
	});

	/** Mostly the route's own key; sometimes a hostile one, to fuzz the key headers too. */
	function authorization(random: Random, key: string): Record<string, string> {
		if (random.chance(0.85)) return random.chance(0.5) ? { authorization: `Bearer ${key}` } : { 'x-api-key': key };
		return random.pick<Record<string, string>>([
			{},
			{ authorization: 'Bearer' },
			{ authorization: 'Bearer ' },
			{ authorization: `bearer ${key}` },
			{ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
			{ authorization: `Bearer ${'ÿ'.repeat(40)}` },
			{ authorization: `Bearer tcrm_admin_${'é'.repeat(32)}` },
			{ authorization: `Bearer tcrm_admin_${'A'.repeat(5000)}` },
			{ authorization: `Bearer ${key}x` },
			{ authorization: `Bearer ${keys.read}` },
			{ authorization: `Bearer ${keys.otherSite}` },
			{ 'x-api-key': "' OR 1=1 --" },
			{ 'x-api-key': `${key}, ${key}` },
			{ authorization: `Bearer ${key}`, 'x-api-key': 'tcrm_read_x' },
		]);
	}

	function probes(random: Random): Probe[] {
		const list: Probe[] = [];
		const add = (count: number, make: () => Probe) => {
			for (let index = 0; index < count; index++) list.push(make());
		};
		const siteValue = () => (random.chance(0.3) ? random.pick([siteKey, `${siteKey}-b`, siteKey.toUpperCase()]) : valueFor(random, TEXT));

		add(150, () => ({ route: 'GET /api/stats', method: 'GET', path: `/api/stats${queryOf(random, { site: siteValue })}`, headers: authorization(random, keys.read) }));
		for (const report of ['visitors', 'leads', 'campaigns', 'conversion']) {
			add(350, () => {
				// A fifth are ranges a dashboard would send, near the edges the schema allows, so the queries run too.
				const query = random.chance(0.2)
					? `?${random.pick(['from=2000-01-01&to=2000-12-31', 'from=2099-01-01&to=2099-12-31', 'from=2099-12-01T00:00:00-23:59&to=2099-12-31&interval=hour', 'from=2000-01-01T00:00:00%2B23:59&to=2000-01-31&interval=hour', 'to=2026-03-01', 'interval=hour&from=2026-03-01'])}`
					: queryOf(random, { from: () => valueFor(random, [...DATES, randomDate(random)]), to: () => valueFor(random, [...DATES, randomDate(random)]), interval: () => valueFor(random, INTERVALS), site: siteValue });
				return { route: `GET /api/analytics/${report}`, method: 'GET', path: `/api/analytics/${report}${query}`, headers: authorization(random, random.chance(0.8) ? keys.read : keys.admin) };
			});
		}
		add(300, () => ({ route: 'GET /api/privacy/export', method: 'GET', path: `/api/privacy/export${queryOf(random, { email: () => valueFor(random, EMAILS) })}`, headers: authorization(random, keys.admin) }));
		add(250, () => {
			const email = random.pick<unknown>([...EMAILS.filter((value): value is string => typeof value === 'string'), 42, null, true, ['a@b.example'], { a: 1 }, 'a@b.example'.repeat(2000)]);
			const body = random.chance(0.8)
				? JSON.stringify(random.chance(0.9) ? { email } : { email, extra: random.pick(TEXT) })
				: random.pick(['', 'null', '[]', '"a@b.example"', '{"email":', '{"email":"a@b.example"}'.repeat(2), 'email=a@b.example', '\u0000', 'x'.repeat(20_000)]);
			return { route: 'POST /api/privacy/erase', method: 'POST', path: '/api/privacy/erase', headers: { 'content-type': random.pick(['application/json', 'text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded']), ...authorization(random, keys.admin) }, body };
		});
		add(200, () => {
			const workflow = random.chance(0.6) ? random.pick(WORKFLOW_NAMES) : random.pick<unknown>([...TEXT.filter((value): value is string => typeof value === 'string'), 1, null, ['visitor-processor']]);
			const payload = random.pick<unknown>([undefined, {}, { a: '\u0000' }, { deep: JSON.parse('['.repeat(500) + ']'.repeat(500)) }, [], 'x', null, { s: 'é'.repeat(10_000) }, { lone: '\ud800' }]);
			const body = random.chance(0.85) ? JSON.stringify({ workflow, payload }) : random.pick(['', '{', 'null', '[]', '{"workflow":"visitor-processor","x":1}', 'x'.repeat(300_000)]);
			return { route: 'POST /api/test-microworkflow', method: 'POST', path: '/api/test-microworkflow', headers: { 'content-type': random.pick(['application/json', 'application/json', 'text/plain']), ...authorization(random, keys.admin) }, body };
		});
		const tokens = (): Value => {
			const id = random.chance(0.9) ? randomUUID() : randomUUID().toUpperCase();
			return random.pick<Value>([
				signEmailToken(TOKEN_SECRET, id, 'open'),
				signEmailToken(TOKEN_SECRET, id, 'click', random.int(0, 9_999)),
				signEmailToken(TOKEN_SECRET, id, 'unsubscribe'),
				signEmailToken('another-secret-0123456789abcdef-0123', id, 'open'),
				`${signEmailToken(TOKEN_SECRET, id, 'open')}x`,
				`c.${id}.10000.${'A'.repeat(43)}`,
				`c.${id}.-1.${'A'.repeat(43)}`,
				...TEXT,
			]);
		};
		add(600, () => {
			const kind = random.pick(['o', 'c', 'u']);
			const method = kind === 'u' ? random.pick(['GET', 'POST', 'HEAD']) : random.pick(['GET', 'GET', 'HEAD', 'POST']);
			const body = method === 'POST' ? random.pick(['', 'List-Unsubscribe=One-Click', 'List-Unsubscribe=Two-Clicks', '\u0000', 'x'.repeat(5000), '--x\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--x--']) : undefined;
			const headers: Record<string, string> = method === 'POST' ? { 'content-type': random.pick(['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain; charset=latin1', 'application/json']) } : {};
			return { route: `${method} /e/${kind}/:token`, method, path: `/e/${kind}/${encode(tokens())}`, headers, body };
		});
		add(300, () => {
			const origin = random.pick([undefined, `https://${siteKey}.example`, 'https://evil.example', 'null', 'x'.repeat(3000), 'https://é.example']);
			const privacy = random.pick<Record<string, string>>([{}, { 'sec-gpc': '1' }, { dnt: '1' }, { 'sec-gpc': random.pick(NUMBERS) as string }]);
			return { route: 'GET /api/track', method: 'GET', path: `/api/track${queryOf(random, { site: siteValue, v: () => random.pick(NUMBERS) })}`, headers: { ...(origin ? { origin } : {}), ...privacy } };
		});
		add(200, () => ({ route: 'GET /health', method: 'GET', path: '/health', headers: random.chance(0.2) ? {} : authorization(random, random.chance(0.7) ? keys.admin : keys.read) }));
		return list;
	}

	async function send(probe: Probe): Promise<Answer> {
		const response = await fetch(`${receiver.url}${probe.path}`, { method: probe.method, headers: probe.headers, body: probe.body, redirect: 'manual' });
		return { ...probe, status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
	}

	it('answers thousands of hostile requests without a 5xx, and every 4xx names what to fix', async () => {
		const random = generator(SEED);
		const queue = probes(random);
		const answers: Answer[] = [];
		const workers = Array.from({ length: 8 }, async () => {
			for (let probe = queue.shift(); probe; probe = queue.shift()) answers.push(await send(probe));
		});
		await Promise.all(workers);

		const failures = answers.flatMap((answer) => {
			const why = answer.status >= 500 ? `a ${answer.status}` : unnamed(answer);
			return why ? [`${why}: ${answer.method} ${answer.path.slice(0, 200)} ${JSON.stringify(answer.body ?? '').slice(0, 80)} → ${answer.status} ${answer.text.slice(0, 200)}`] : [];
		});
		if (failures.length) console.log(`FUZZ_SEED=${SEED}: ${failures.length} failures, e.g.\n${failures.slice(0, 20).join('\n')}`);
		expect(answers.length).toBeGreaterThan(3000);
		expect(failures).toEqual([]);

		// The fuzzing reached the routes' code, not only the key check: each route answered some requests in full.
		const succeeded = (route: string) => answers.filter((answer) => answer.route === route && answer.status >= 200 && answer.status < 300).length;
		for (const route of ['GET /api/stats', 'GET /api/analytics/visitors', 'GET /api/analytics/conversion', 'POST /api/privacy/erase', 'POST /api/test-microworkflow', 'GET /e/o/:token', 'GET /api/track', 'GET /health']) {
			expect([route, succeeded(route)]).toEqual([route, expect.any(Number)]);
			expect(succeeded(route)).toBeGreaterThan(5);
		}
		const refused = (route: string) => answers.filter((answer) => answer.route === route && answer.status === 400).length;
		for (const route of ['GET /api/analytics/leads', 'GET /api/privacy/export', 'POST /api/privacy/erase', 'GET /e/c/:token']) expect(refused(route)).toBeGreaterThan(20);
	}, 300_000);

	it('names the field and its range for the values of the issue: a far future to, a NUL in an email', async () => {
		const analytics = await send({ route: '', method: 'GET', path: '/api/analytics/visitors?to=9999-12-31', headers: { authorization: `Bearer ${keys.read}` } });
		expect([analytics.status, JSON.parse(analytics.text)]).toEqual([
			400,
			{
				type: 'about:blank',
				title: 'Bad Request',
				status: 400,
				detail: 'to must be a date from 2000-01-01 to 2099-12-31 (got "9999-12-31")',
				error: 'invalid_parameter',
				message: 'to must be a date from 2000-01-01 to 2099-12-31 (got "9999-12-31")',
				issues: [{ field: 'to', message: 'must be a date from 2000-01-01 to 2099-12-31 (got "9999-12-31")' }],
			},
		]);
		const exported = await send({ route: '', method: 'GET', path: '/api/privacy/export?email=a%00@b.example', headers: { authorization: `Bearer ${keys.admin}` } });
		expect([exported.status, JSON.parse(exported.text).issues]).toEqual([400, [{ field: 'email', message: 'must not contain control characters (such as NUL, tab or line breaks)' }]]);
		const erased = await send({ route: '', method: 'POST', path: '/api/privacy/erase', headers: { authorization: `Bearer ${keys.admin}` }, body: JSON.stringify({ email: 'a\u0000@b.example' }) });
		expect([erased.status, JSON.parse(erased.text).issues]).toEqual([400, [{ field: 'email', message: 'must not contain control characters (such as NUL, tab or line breaks)' }]]);
		const halfCharacter = await send({ route: '', method: 'POST', path: '/api/privacy/erase', headers: { authorization: `Bearer ${keys.admin}` }, body: JSON.stringify({ email: 'a\ud800@b.example' }) });
		expect([halfCharacter.status, JSON.parse(halfCharacter.text).issues]).toEqual([400, [{ field: 'email', message: 'must be valid Unicode text (it holds half of a surrogate pair)' }]]);
		const repeated = await send({ route: '', method: 'GET', path: '/api/analytics/leads?to=2026-01-01&to=2026-02-01', headers: { authorization: `Bearer ${keys.read}` } });
		expect([repeated.status, JSON.parse(repeated.text).issues]).toEqual([400, [{ field: 'to', message: 'must be given once, as a single value' }]]);
		const misspelt = await send({ route: '', method: 'GET', path: '/api/analytics/leads?form=2026-01-01', headers: { authorization: `Bearer ${keys.read}` } });
		expect([misspelt.status, JSON.parse(misspelt.text).issues]).toEqual([400, [{ field: 'form', message: expect.stringMatching(/^is not a known field; did you mean "from"\?/) }]]);
	});

	it('answers control bytes in the request line and headers with a 400 from the HTTP parser, never a 5xx', async () => {
		const port = new URL(receiver.url).port;
		const raw = (request: string) =>
			new Promise<string>((resolve, reject) => {
				const socket = connect(Number(port), '127.0.0.1', () => socket.end(request, 'latin1'));
				let answer = '';
				socket.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk));
				socket.on('close', () => resolve(answer.split('\r\n')[0])).on('error', reject);
			});
		for (const request of [
			`GET /api/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \u0000\u0001\r\nConnection: close\r\n\r\n`,
			`GET /health HTTP/1.1\r\nHost: x\r\nX-API-Key: a\u0007b\r\nConnection: close\r\n\r\n`,
			`GET /api/analytics/visitors?to=\u0000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
			`GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${keys.admin}\u00ff\r\nConnection: close\r\n\r\n`,
		]) {
			expect(await raw(request)).toMatch(/^HTTP\/1\.1 4\d\d /);
		}
	});
});
