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
