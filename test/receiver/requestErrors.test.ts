/**
 * Bad requests get a 4xx that names what to fix, in the answer's usual shape, on every route: a
 * body each route reads with its own limit, the encodings and content types it takes, the
 * Authorization schemes, methods a path does not have, and query values out of range.
 */
import { randomBytes } from 'node:crypto';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { batch, BROWSER_UA, pageview } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

interface Answer {
	status: number;
	type: string | null;
	allow: string | null;
	text: string;
	json: { error?: string; message?: string; issues?: Array<{ field: string; message: string }>; [key: string]: unknown };
}

describe('answers to bad requests', () => {
	const prisma = testPrisma();
	// A site on an n8n that does not answer, and one run by the embedded engine, which is off (DISPATCHER=off).
	const site = testSiteConfig();
	const embeddedKey = `embedded-${randomBytes(4).toString('hex')}`;
	const embedded = parseSiteConfig({ site: { key: embeddedKey, name: 'Embedded', domain: `${embeddedKey}.example` }, tracking: { allowedOrigins: [`https://${embeddedKey}.example`] }, privacy: { cookieConsent: false } });
	let receiver: Receiver;
	let adminKey: string;
	let readKey: string;
	let embeddedAdminKey: string;

	beforeAll(async () => {
		receiver = await startTestReceiver([site, embedded], { DISPATCHER: 'off', RATE_LIMIT_PER_IP: 100_000 });
		const siteId = receiver.sites.byPublicKey(site.site.key)!.id;
		adminKey = await createApiKey(prisma, siteId, 'admin', 'errors-admin');
		readKey = await createApiKey(prisma, siteId, 'read', 'errors-read');
		embeddedAdminKey = await createApiKey(prisma, receiver.sites.byPublicKey(embeddedKey)!.id, 'admin', 'errors-embedded');
	});
	afterAll(async () => {
		await receiver?.close();
		await prisma.$disconnect();
	});

	async function call(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
		const response = await fetch(`${receiver.url}${path}`, { method, redirect: 'manual', headers: { 'user-agent': BROWSER_UA, ...init.headers }, body: init.body });
		const text = await response.text();
		let json: Answer['json'] = {};
		try {
			json = JSON.parse(text) as Answer['json'];
		} catch {
			// A page, not JSON.
		}
		return { status: response.status, type: response.headers.get('content-type'), allow: response.headers.get('allow'), text, json };
	}
	const admin = (key = adminKey) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
	const lead = () => JSON.stringify({ site: site.site.key, email: `bom.${randomBytes(3).toString('hex')}@example.com` });
	const signIn = (body: string, headers: Record<string, string> = {}) => call('POST', '/dashboard/sign-in', { headers: { 'content-type': 'application/x-www-form-urlencoded', origin: receiver.url, ...headers }, body });

	describe('a body a route cannot take', () => {
		it('is told each route’s own limit and what that route takes', async () => {
			const bigLead = await call('POST', '/api/lead', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ site: site.site.key, email: 'a@example.com', pad: 'x'.repeat(70_000) }) });
			expect([bigLead.status, bigLead.json.error]).toEqual([413, 'entity.too.large']);
			expect(bigLead.json.message).toMatch(/larger than 64 KB; send one lead as JSON/);
			expect(bigLead.json.message).not.toMatch(/events/);

			const bigTest = await call('POST', '/api/test-microworkflow', { headers: admin(), body: JSON.stringify({ workflow: 'visitor-processor', payload: { pad: 'x'.repeat(300_000) } }) });
			expect([bigTest.status, bigTest.json.error]).toEqual([413, 'entity.too.large']);
			expect(bigTest.json.message).toMatch(/larger than 256 KB; send one JSON object such as \{"workflow":"visitor-processor"\}/);

			const bigBatch = await call('POST', '/api/track', { body: JSON.stringify({ ...batch(site.site.key, [pageview(site.site.key, 'big')]), pad: 'x'.repeat(70_000) }) });
			expect(bigBatch.json.message).toMatch(/larger than 64 KB; send one JSON batch of at most 50 events/);
		});

		it('on the sign-in form is answered with the sign-in page, as its other mistakes are', async () => {
			const big = await signIn(`key=${'x'.repeat(5000)}`);
			expect(big.status).toBe(413);
			expect(big.type).toMatch(/^text\/html/);
			expect(big.text).toMatch(/larger than 4 KB; send the sign-in form with just the key/);
		});

		it('that is empty is told what this route takes', async () => {
			const empty = await call('POST', '/api/lead', { headers: { 'content-type': 'application/json' }, body: '' });
			expect([empty.status, empty.json.error]).toEqual([400, 'empty_body']);
			expect(empty.json.message).toMatch(/send one lead as JSON/);
			expect(empty.json.message).not.toMatch(/batch/);
		});

		it('compressed is refused alike on every route, never with zlib’s words', async () => {
			const gzip = { 'content-encoding': 'gzip' };
			const answers = [
				await call('POST', '/api/track', { headers: gzip, body: '{}' }),
				await call('POST', '/api/lead', { headers: { ...gzip, 'content-type': 'application/json' }, body: '{}' }),
				await call('POST', '/api/test-microworkflow', { headers: { ...admin(), ...gzip }, body: '{}' }),
				await call('POST', '/api/privacy/erase', { headers: { ...admin(), ...gzip }, body: '{}' }),
			];
			for (const answer of answers) {
				expect([answer.status, answer.json.message]).toEqual([415, 'The Content-Encoding is not supported; send the body uncompressed']);
				expect(answer.text).not.toMatch(/header check/);
			}
			const form = await signIn('key=x', gzip);
			expect(form.status).toBe(415);
			expect(form.text).toMatch(/The Content-Encoding is not supported; send the body uncompressed/);
		});

		it('with a page URL far outside ASCII is stored, its path cut to what the indexes take', async () => {
			// 2,000 characters of URL, percent-encoded into 18,000 of path: more than an index row holds.
			const wide = Array.from({ length: 2000 }, (_, n) => String.fromCodePoint(0x4e00 + ((n * 7919) % 20000))).join('');
			const answer = await call('POST', '/api/track', { body: JSON.stringify(batch(site.site.key, [pageview(site.site.key, 'anon-wide', `/${wide}`), pageview(site.site.key, 'anon-narrow', '/pricing')])) });
			expect([answer.status, answer.json]).toEqual([202, { stored: 2, duplicates: 0 }]);
			const stored = await prisma.visitorEvent.findMany({ where: { anonymousId: { in: ['anon-wide', 'anon-narrow'] } }, select: { anonymousId: true, path: true, url: true } });
			const wideRow = stored.find((row) => row.anonymousId === 'anon-wide');
			expect(wideRow?.path?.length).toBeLessThanOrEqual(2048);
			expect(wideRow?.path).toMatch(/^\/(?:%[0-9A-F]{2})+$/);
			expect(new URL(wideRow?.url as string).pathname.startsWith(wideRow?.path as string)).toBe(true);
			expect(stored.find((row) => row.anonymousId === 'anon-narrow')?.path).toBe('/pricing');
		});

		it('starting with a byte order mark is read without it, on every JSON route', async () => {
			const bom = '\ufeff';
			const track = await call('POST', '/api/track', { body: bom + JSON.stringify(batch(site.site.key, [pageview(site.site.key, 'anon-bom')])) });
			expect([track.status, track.json]).toEqual([202, { stored: 1, duplicates: 0 }]);
			expect((await call('POST', '/api/lead', { headers: { 'content-type': 'application/json' }, body: bom + lead() })).status).toBe(202);
			const test = await call('POST', '/api/test-microworkflow', { headers: admin(), body: `${bom}{"workflow":"nope"}` });
			expect(test.json.issues?.[0].field).toBe('workflow');
		});
	});

	describe('POST /api/test-microworkflow', () => {
		it('asks for Content-Type: application/json when the body is sent as anything else', async () => {
			const plain = await call('POST', '/api/test-microworkflow', { headers: { ...admin(), 'content-type': 'text/plain' }, body: '{"workflow":"visitor-processor"}' });
			expect([plain.status, plain.json.error]).toEqual([415, 'unsupported_media_type']);
			expect(plain.json.message).toMatch(/Content-Type: application\/json/);
		});

		it.each([['null'], ['[]'], ['"visitor-processor"']])('answers %s with "must be a JSON object", not the parser’s words', async (body) => {
			const answer = await call('POST', '/api/test-microworkflow', { headers: admin(), body });
			expect([answer.status, answer.json.error, answer.json.issues]).toEqual([400, 'invalid_payload', [{ field: '(root)', message: 'must be a JSON object such as {"workflow":"visitor-processor"}' }]]);
		});

		it('says the embedded engine is not running for an embedded site, and does not blame n8n', async () => {
			const answer = await call('POST', '/api/test-microworkflow', { headers: admin(embeddedAdminKey), body: '{"workflow":"visitor-processor"}' });
			expect([answer.status, answer.json.error]).toEqual([503, 'engine_not_running']);
			expect(answer.json.message).toMatch(/DISPATCHER=on/);
			expect(answer.json.message).not.toMatch(/n8n did not answer|parse URL/);
		});
	});

	describe('the Authorization header', () => {
		it('takes the Bearer scheme in any case', async () => {
			for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
				expect((await call('GET', '/api/stats', { headers: { authorization: `${scheme} ${readKey}` } })).status).toBe(200);
			}
		});

		it('with another scheme is refused naming Bearer where a key is needed, and ignored where it is optional', async () => {
			const refusedStats = await call('GET', '/api/stats', { headers: { authorization: 'Basic abc' } });
			expect([refusedStats.status, refusedStats.json.error, refusedStats.json.issues]).toEqual([401, 'unsupported_auth_scheme', [{ field: 'Authorization', message: 'must use the Bearer scheme: "Bearer <key>"' }]]);
			expect(refusedStats.json.message).toMatch(/"Basic" is not supported; send "Authorization: Bearer <key>"/);
			// A proxy's own Basic auth, passed on, is no key of ours: a form's lead is still taken.
			const taken = await call('POST', '/api/lead', { headers: { authorization: 'Basic abc', 'content-type': 'application/json', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' }, body: lead() });
			expect(taken.status).toBe(202);
		});
	});

	describe('a method a path does not have', () => {
		it.each([
			['PUT', '/api/track', 'GET, HEAD, OPTIONS, POST'],
			['DELETE', '/api/lead', 'OPTIONS, POST'],
			['PATCH', '/api/stats', 'GET, HEAD'],
			['PUT', '/health', 'GET, HEAD'],
			['GET', '/api/test-microworkflow', 'POST'],
		])('%s %s is 405 with Allow: %s', async (method, path, allow) => {
			const answer = await call(method, path);
			expect([answer.status, answer.allow, answer.json.error]).toEqual([405, allow, 'method_not_allowed']);
			expect(answer.json.message).toBe(`${method} is not a method of ${path}; use ${allow}`);
		});

		it('leaves paths no route has at 404', async () => {
			const answer = await call('PUT', '/no/such/path');
			expect([answer.status, answer.allow]).toEqual([404, null]);
		});
	});

	it.each(['/api/stats', '/api/analytics/visitors'])('answers %s?site= (empty) with 400 naming site', async (path) => {
		const answer = await call('GET', `${path}?site=`, { headers: { authorization: `Bearer ${readKey}` } });
		expect([answer.status, answer.json.issues]).toEqual([400, [{ field: 'site', message: 'must not be empty: name the key’s site, or leave the parameter out' }]]);
	});

	it.each(['1.5', 'NaN', '1e400', '99999999999999999999999', '0', '1001', 'abc', '', '0x10', '1e2', '-1'])('answers /mailbox/api/messages?limit=%s with the one message', async (limit) => {
		const answer = await call('GET', `/mailbox/api/messages?limit=${encodeURIComponent(limit)}`);
		expect([answer.status, answer.json.issues]).toEqual([400, [{ field: 'limit', message: `must be a whole number from 1 to 1000 (got ${JSON.stringify(limit)})` }]]);
	});
});
