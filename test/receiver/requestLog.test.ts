import { Writable } from 'node:stream';

import pino from 'pino';

import { startReceiver, type Receiver } from '../../server/receiver';
import { requestLogLevel } from '../../server/requestLog';
import { testDbUrl } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { testSiteConfig } from '../helpers/sites';

describe('request ids and request logs', () => {
	const site = testSiteConfig();
	const lines: Array<Record<string, any>> = [];
	let receiver: Receiver;

	beforeAll(async () => {
		const sink = new Writable({
			write(chunk: Buffer, _encoding, done) {
				for (const text of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(text));
				done();
			},
		});
		receiver = await startReceiver({
			sites: [site],
			database: { url: testDbUrl(), migrate: false },
			settings: { PORT: 0, DISPATCHER: 'off' },
			logger: pino({ level: 'info' }, sink),
		});
	});
	afterAll(() => receiver.close());

	const requestLines = () => lines.filter((line) => line.req && line.res);

	it('answers every request with an id: the caller\'s X-Request-Id, or a new UUID', async () => {
		const given = await fetch(`${receiver.url}/health`, { headers: { 'x-request-id': 'trace-42' } });
		expect(given.headers.get('x-request-id')).toBe('trace-42');
		const made = await fetch(`${receiver.url}/health`);
		expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		const long = await fetch(`${receiver.url}/health`, { headers: { 'x-request-id': 'x'.repeat(300) } });
		expect(long.headers.get('x-request-id')).toBe('x'.repeat(100));
	});

	it('logs a rejected request once, as a warning with its id, and an accepted one not at all', async () => {
		const key = site.site.key;
		const before = requestLines().length;
		const accepted = await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-log')]), { 'x-request-id': 'accepted-1' });
		expect(accepted.status).toBe(202);
		const rejected = await post(`${receiver.url}/api/track`, '{"site":', { 'x-request-id': 'rejected-1' });
		expect(rejected.status).toBe(400);
		await new Promise((resolve) => setTimeout(resolve, 50));
		const logged = requestLines().slice(before);
		expect(logged).toEqual([
			expect.objectContaining({ level: 40, req: { id: 'rejected-1', method: 'POST', url: '/api/track' }, res: { statusCode: 400 }, msg: 'request completed' }),
		]);
		expect(typeof logged[0].responseTime).toBe('number');
	});

	it('logs the names of a query\'s parameters, never their values: a refused privacy export leaves no address in the log', async () => {
		const before = requestLines().length;
		const answer = await fetch(`${receiver.url}/api/privacy/export?email=ana.person%40example.com&site=${site.site.key}`, { headers: { 'x-request-id': 'export-1' } });
		expect(answer.status).toBe(401);
		await new Promise((resolve) => setTimeout(resolve, 50));
		const logged = requestLines().slice(before);
		expect(logged.map((line) => line.req)).toEqual([{ id: 'export-1', method: 'GET', url: '/api/privacy/export?email=…&site=…' }]);
		expect(JSON.stringify(lines)).not.toMatch(/ana\.person/);
	});

	it('chooses the level from the status: nothing for success, warnings for 4xx and 503, errors for other 5xx', () => {
		expect([200, 202, 204, 304, 400, 404, 429, 500, 502, 503].map((status) => requestLogLevel(status, true))).toEqual([
			'silent',
			'silent',
			'silent',
			'silent',
			'warn',
			'warn',
			'warn',
			'error',
			'error',
			'warn',
		]);
		expect(requestLogLevel(200, false)).toBe('warn');
	});
});
