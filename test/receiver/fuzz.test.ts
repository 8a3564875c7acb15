import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { BROWSER_UA, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';
import { prng } from '../helpers/prng';

interface FuzzRequest {
	method: string;
	path: string;
	headers: Record<string, string>;
	body?: string | Uint8Array<ArrayBuffer>;
	label: string;
}

const HOSTILE_STRINGS = [
	"'; DROP TABLE visitor_events; --",
	"' OR '1'='1",
	'1); DELETE FROM leads WHERE (1=1',
	'<script>alert(document.cookie)</script>',
	'<img src=x onerror=alert(1)>',
	'${jndi:ldap://127.0.0.1/a}',
	'{{constructor.constructor("return process")()}}',
	'../../../../etc/passwd',
	'\u0000\u0001\u0002',
	'\ud800',
	'🙂'.repeat(300),
	'%00%0d%0aSet-Cookie:x=1',
	'x'.repeat(5000),
];

const NOT_A_STRING = [null, true, 1, -1, [], {}, { a: 1 }, [1, 2], '\u0000\u0001', 'x'.repeat(5000)];
const NOT_A_NUMBER = ['yesterday', 'NaN', null, true, [], {}, -1, 3.14, 11];
/** What a page shows (name, title, URLs, property values) is clipped and cleaned rather than refused: only what is no string at all is refused. */
const NOT_TEXT = [null, true, 1, -1, [], {}, { a: 1 }, [1, 2]];
/** For each event field, values its schema must refuse. */
const INVALID_EVENT_VALUES: Record<string, unknown[]> = {
	id: [...NOT_A_STRING, '00000000-0000-4000-8000-000000000000', "' OR '1'='1"],
	type: [...NOT_A_STRING, 'pageView', '<script>alert(1)</script>'],
	name: NOT_TEXT,
	ts: [...NOT_A_NUMBER, 8.64e15, Number.MAX_SAFE_INTEGER, 1e300],
	anonymousId: [...NOT_A_STRING, ''],
	sessionId: [...NOT_A_STRING, ''],
	url: [...NOT_TEXT, 'javascript:alert(1)', "'; DROP TABLE visitor_events; --", '\u0000\u0001'],
	title: NOT_TEXT,
	referrer: NOT_TEXT,
	relevance: [...NOT_A_NUMBER, 0, 'high'],
	props: ['x', 1, [], [1], { nested: { deep: 1 } }, null, { k: ['x'] }],
	context: ['x', 1, [], { unknownKey: 1 }, null, { utm_source: 5 }],
};

/** For each lead field, values its schema must refuse. */
const INVALID_LEAD_VALUES: Record<string, unknown[]> = {
	email: [...NOT_A_STRING, 'not-an-email', "a'@b", '<x@y>', `${'x'.repeat(300)}@y.example`, "' OR 1=1 --"],
	eventId: [...NOT_A_STRING, 'abc'],
	anonymousId: [null, 1, [], {}, 'x'.repeat(65)],
	phone: [null, 1, [], 'x'.repeat(41)],
	country: [...NOT_A_STRING, 'Spain', 'E1'],
	timezone: [...NOT_A_STRING, 'Mars/Olympus', "'; DROP TABLE leads; --"],
	consent: ['yes', 1, null, []],
	properties: ['x', [], { nested: { a: 1 } }],
	unknownField: ['<script>alert(1)</script>'],
};

function deepJson(depth: number, open: string, close: string): string {
	return open.repeat(depth) + close.repeat(depth);
}

/** Each generator returns a request that must be refused: none of them is a valid submission. */
function generators(siteKey: string, otherKey: string, pick: <T>(items: readonly T[]) => T, random: () => number): Array<() => FuzzRequest> {
	const valid = () => ({ site: siteKey, events: [pageview(siteKey, 'anon-fuzz')] });
	const track = (body: string | Uint8Array<ArrayBuffer>, label: string, headers: Record<string, string> = {}): FuzzRequest => ({
		method: 'POST',
		path: pick(['/api/track', '/api/lead']),
		headers: { 'content-type': pick(['text/plain', 'application/json', 'text/plain;charset=UTF-8']), 'user-agent': BROWSER_UA, ...headers },
		body,
		label,
	});
	return [
		() => {
			const body: Record<string, unknown> = valid();
			const event = (body.events as Record<string, unknown>[])[0];
			const field = pick(Object.keys(INVALID_EVENT_VALUES));
			event[field] = pick(INVALID_EVENT_VALUES[field]);
			return track(JSON.stringify(body), `wrong event field ${field}`);
		},
		() => {
			const body: Record<string, unknown> = { site: siteKey, email: 'x@y.example' };
			const field = pick(Object.keys(INVALID_LEAD_VALUES));
			body[field] = pick(INVALID_LEAD_VALUES[field]);
			return { ...track(JSON.stringify(body), `bad lead field ${field}`), path: '/api/lead' };
		},
		() => track(JSON.stringify({ ...valid(), events: Array.from({ length: 51 + Math.floor(random() * 20) }, () => pageview(siteKey, 'anon-fuzz')) }), 'too many events'),
		() => track(JSON.stringify({ ...valid(), extra: pick(HOSTILE_STRINGS) }), 'unknown top-level key'),
		() => track(JSON.stringify({ ...valid(), sentAt: pick([8.64e15, Number.MAX_SAFE_INTEGER, 1e300, 0, -1, 1.5, 'now', null]) }), 'bad sentAt'),
		() => track(JSON.stringify({ ...valid(), __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } }), 'prototype pollution'),
		() => track(deepJson(1000 + Math.floor(random() * 5000), pick(['[', '{"a":']), pick([']', '}'])), 'deep JSON'),
		() => track(deepJson(200, '[', ']'), 'deep array'),
		() => track(new Uint8Array([0x7b, 0x22, 0x73, 0x69, 0x74, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]), 'bad UTF-8'),
		() => track(Uint8Array.from({ length: 200 }, () => Math.floor(random() * 256)), 'random bytes'),
		() => track(JSON.stringify({ site: siteKey, events: [{ ...pageview(siteKey, 'a'), title: 'x'.repeat(66_000 + Math.floor(random() * 20_000)) }] }), 'huge string'),
		() => track(pick(['', ' ', 'null', 'true', '0', '"string"', '[]', '{}', '[{}]', 'undefined', 'NaN', '{"site":null}']), 'degenerate JSON'),
		() => track(JSON.stringify({ site: pick([otherKey, 'no-such-site', siteKey.toUpperCase(), `${siteKey} `, pick(HOSTILE_STRINGS)]), events: [pageview(siteKey, 'anon-fuzz')] }), 'wrong or hostile site key', { origin: `https://${siteKey}.example` }),
		() => track(JSON.stringify(valid()), 'foreign origin', { origin: pick(['https://evil.example', 'null', `https://${siteKey}.example.evil.example`, `http://${siteKey}.example`]) }),
		() => track(JSON.stringify({ ...valid(), events: [{ ...pageview(siteKey, 'a'), id: pick(['00000000-0000-4000-8000-000000000000', 'x', pick(HOSTILE_STRINGS)]) }] }), 'non-v7 id'),
		() => track(JSON.stringify({ ...valid(), events: [{ ...pageview(siteKey, 'a'), url: pick(['javascript:alert(1)', 'data:text/html,x', 'ftp://x', '/relative', pick(HOSTILE_STRINGS)]) }] }), 'hostile URL'),
		() => track(JSON.stringify({ ...valid(), events: [{ ...pageview(siteKey, 'a'), props: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) }] }), 'too many props'),
		() => track(JSON.stringify({ ...valid(), events: [{ ...pageview(siteKey, 'a'), props: { nested: { deep: [1, 2, 3] } } }] }), 'nested props'),
		() => {
			const method = pick(['PUT', 'DELETE', 'PATCH', 'GET']);
			return { method, path: '/api/track', headers: { 'user-agent': BROWSER_UA }, body: method === 'GET' ? undefined : JSON.stringify(valid()), label: 'wrong method' };
		},
		() => ({ method: 'GET', path: pick(['/api/analytics/visitors', '/api/stats', '/api/privacy/export?email=a@b.c', `/api/analytics/leads?site=${otherKey}`]), headers: { authorization: `Bearer ${pick(['', 'tcrm_read_x', "' OR 1=1 --", 'x'.repeat(500)])}` }, label: 'read without a valid key' }),
		() => ({ method: 'GET', path: `/${pick(HOSTILE_STRINGS).replace(/[^\x21-\x7e]/g, '').slice(0, 200) || 'x'}`, headers: {}, label: 'unknown path' }),
		() => track(JSON.stringify(valid()), 'unsupported encoding', { 'content-encoding': pick(['gzip', 'br', 'deflate', 'compress']) }),
		() => track(JSON.stringify(valid()), 'unsupported charset', { 'content-type': pick(['text/plain; charset=utf-16', 'application/json; charset=x-unknown', 'text/plain; charset=bogus']) }),
	];
}

describe('fuzzing the receiver with malformed and hostile requests', () => {
	const prisma = testPrisma();
	const site = testSiteConfig();
	const other = testSiteConfig();
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([site, other], { DISPATCHER: 'off', RATE_LIMIT_PER_IP: 1_000_000, RATE_LIMIT_PER_SITE: 1_000_000 });
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	it('answers 10,000 bad requests with 4xx only and stores nothing from them', async () => {
		const random = prng(20261123);
		const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
		const makers = generators(site.site.key, other.site.key, pick, random);
		const total = 10_000;
		const statuses = new Map<number, number>();
		const serverErrors: string[] = [];
		const accepted: string[] = [];
		let next = 0;

		const worker = async () => {
			while (next < total) {
				const index = next++;
				const request = makers[index % makers.length]();
				let status: number;
				try {
					const response = await fetch(`${receiver.url}${request.path}`, { method: request.method, headers: request.headers, body: request.body });
					status = response.status;
					const text = await response.text();
					if (status >= 500) serverErrors.push(`#${index} ${request.label}: ${status} ${text.slice(0, 200)}`);
					else if (status < 400) accepted.push(`#${index} ${request.label}: ${status} ${text.slice(0, 200)}`);
				} catch (error) {
					status = -1;
					serverErrors.push(`#${index} ${request.label}: transport error ${(error as Error).message}`);
				}
				statuses.set(status, (statuses.get(status) ?? 0) + 1);
			}
		};
		await Promise.all(Array.from({ length: 16 }, worker));

		expect(serverErrors).toEqual([]);
		expect([...statuses.values()].reduce((a, b) => a + b, 0)).toBe(total);
		expect(accepted).toEqual([]);

		for (const key of [site.site.key, other.site.key]) {
			const siteId = receiver.sites.byPublicKey(key)!.id;
			expect(await prisma.visitorEvent.count({ where: { siteId } })).toBe(0);
			expect(await prisma.outboxMessage.count({ where: { siteId } })).toBe(0);
			expect(await prisma.lead.count({ where: { siteId } })).toBe(0);
		}
		const key = site.site.key;
		expect(await post(`${receiver.url}/api/track`, { site: key, events: [pageview(key, 'anon-after-fuzz')] })).toEqual({ status: 202, json: { stored: 1, duplicates: 0 } });
	}, 180_000);
});
