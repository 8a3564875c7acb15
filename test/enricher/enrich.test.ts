import { createServer, type Server } from 'node:net';
import { createSocket, type Socket } from 'node:dgram';

import { createMxChecker, enrich } from '../../nodes/Enricher/enrich';
import { emailFacts, phoneFacts } from '../../nodes/shared/contact';

describe('enrich (offline)', () => {
	it('tells free-mail, disposable and company addresses apart', () => {
		expect(emailFacts('Jane@Gmail.com')).toMatchObject({ validSyntax: true, domain: 'gmail.com', freeMail: true, disposable: false, companyDomain: null });
		expect(emailFacts('x@mailinator.com')).toMatchObject({ disposable: true, companyDomain: null });
		expect(emailFacts('jane@eu.mail.acme.co.uk')).toMatchObject({ freeMail: false, disposable: false, companyDomain: 'acme.co.uk' });
		expect(emailFacts('not an email')).toMatchObject({ validSyntax: false, domain: null, companyDomain: null });
	});

	it('formats phone numbers as E.164 with the lead’s country', () => {
		expect(phoneFacts('030 1234567', 'DE')).toMatchObject({ e164: '+49301234567', valid: true, country: 'DE' });
		expect(phoneFacts('+1 (415) 555-2671', null)).toMatchObject({ e164: '+14155552671', valid: true, country: 'US' });
		expect(phoneFacts('12', 'DE')).toMatchObject({ valid: false });
	});

	it('collects tags, device and country', () => {
		const result = enrich({
			email: 'jane@gmail.com',
			phone: '0171 1234567',
			country: 'de',
			userAgent: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
		});
		expect(result.tags).toEqual(['bot', 'free-mail']);
		expect(result.country).toBe('DE');
		expect(result.phone?.e164).toBe('+491711234567');
		expect(result.device?.isBot).toBe(true);
		expect(enrich({ email: 'ceo@acme.io', phone: 'abc' }).tags).toEqual(['company-domain', 'invalid-phone']);
	});
});

describe('createMxChecker', () => {
	let silent: Socket;
	let port: number;
	beforeAll(async () => {
		// A DNS "server" that never answers: the lookup must give up at the timeout, not fail.
		silent = createSocket('udp4');
		await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
		port = silent.address().port;
	});
	afterAll(() => silent.close());

	it('answers null after the timeout when DNS does not answer, and does not cache that', async () => {
		const cache = new Map<string, boolean>();
		const check = createMxChecker({ timeoutMs: 200, servers: [`127.0.0.1:${port}`] }, cache);
		const started = Date.now();
		await expect(check('acme.example')).resolves.toBeNull();
		expect(Date.now() - started).toBeLessThan(2_000);
		expect(cache.size).toBe(0);
	});

	it('serves cached answers without asking DNS', async () => {
		const check = createMxChecker({ timeoutMs: 200, servers: [`127.0.0.1:${port}`] }, new Map([['acme.example', true]]));
		await expect(check('acme.example')).resolves.toBe(true);
	});

	it('treats a refused connection as unknown', async () => {
		const server: Server = createServer();
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		const closedPort = (server.address() as { port: number }).port;
		await new Promise<void>((resolve) => server.close(() => resolve()));
		const check = createMxChecker({ timeoutMs: 300, servers: [`127.0.0.1:${closedPort}`] });
		await expect(check('acme.example')).resolves.toBeNull();
	});
});

/**
 * A DNS server with fixed answers per name and type: NXDOMAIN, SERVFAIL, or records (none = an
 * empty NOERROR answer). Enough of RFC 1035 for the resolver's MX, A and AAAA questions.
 */
type Zone = Record<string, { rcode?: 2 | 3; mx?: string[]; a?: string[]; aaaa?: boolean; failA?: boolean }>;

function encodeName(name: string): Buffer {
	const labels = name === '' || name === '.' ? [] : name.split('.');
	return Buffer.concat([...labels.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])), Buffer.from([0])]);
}

function answerOf(query: Buffer, zone: Zone): Buffer {
	let offset = 12;
	const labels: string[] = [];
	while (query[offset] !== 0) {
		labels.push(query.subarray(offset + 1, offset + 1 + query[offset]).toString());
		offset += query[offset] + 1;
	}
	const question = query.subarray(12, offset + 5);
	const type = query.readUInt16BE(offset + 1);
	const entry = zone[labels.join('.').toLowerCase()] ?? { rcode: 3 };
	const record = (rtype: number, rdata: Buffer) => {
		const head = Buffer.alloc(12);
		head.writeUInt16BE(0xc00c, 0);
		head.writeUInt16BE(rtype, 2);
		head.writeUInt16BE(1, 4);
		head.writeUInt32BE(60, 6);
		head.writeUInt16BE(rdata.length, 10);
		return Buffer.concat([head, rdata]);
	};
	let rcode = entry.rcode ?? 0;
	let answers: Buffer[] = [];
	if (rcode === 0 && type === 15) answers = (entry.mx ?? []).map((host) => record(15, Buffer.concat([Buffer.from([0, 10]), encodeName(host)])));
	if (rcode === 0 && type === 1) {
		if (entry.failA) rcode = 2;
		else answers = (entry.a ?? []).map((ip) => record(1, Buffer.from(ip.split('.').map(Number))));
	}
	const header = Buffer.alloc(12);
	header.writeUInt16BE(query.readUInt16BE(0), 0);
	header.writeUInt16BE(0x8180 | rcode, 2);
	header.writeUInt16BE(1, 4);
	header.writeUInt16BE(answers.length, 6);
	return Buffer.concat([header, question, ...answers]);
}

describe('createMxChecker against a DNS server with known answers', () => {
	let server: Socket;
	let address: string;
	const zone: Zone = {
		'mail.test': { mx: ['mx1.mail.test'] },
		'web-only.test': { a: ['192.0.2.10'] },
		'no-mail.test': { mx: ['.'], a: ['192.0.2.11'] },
		'parked.test': {},
		'flaky.test': { rcode: 2 },
		'half.test': { failA: true },
	};
	beforeAll(async () => {
		server = createSocket('udp4');
		server.on('message', (message, peer) => server.send(answerOf(message, zone), peer.port, peer.address));
		await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
		address = `127.0.0.1:${server.address().port}`;
	});
	afterAll(() => server.close());

	it.each<[string, boolean | null, string]>([
		['mail.test', true, 'has MX records'],
		['web-only.test', true, 'has no MX but an address record (implicit MX)'],
		['no-mail.test', false, 'publishes the null MX "."'],
		['gone.test', false, 'does not exist (NXDOMAIN)'],
		['parked.test', false, 'has neither MX nor address records'],
		['flaky.test', null, 'gets SERVFAIL'],
		['half.test', null, 'has no MX and its address lookup fails'],
	])('%s → %s: the domain %s', async (domain, expected) => {
		const cache = new Map<string, boolean>();
		const check = createMxChecker({ timeoutMs: 1000, servers: [address] }, cache);
		await expect(check(domain)).resolves.toBe(expected);
		expect(cache.has(domain)).toBe(expected !== null);
	});
});
