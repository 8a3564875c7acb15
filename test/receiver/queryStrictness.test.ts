/**
 * Query parameters of the JSON routes: an unknown one is refused before a repeated one, a
 * suggestion is offered only for a near miss, an empty or blank filter is refused as the
 * dashboards would read it, and a refused request names the path as the client sent it.
 */
import { createApiKey } from '../../server/auth';
import { nearestName } from '../../lib/contracts/issues';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

interface Answer {
	status: number;
	json: { error?: string; message?: string; issues?: Array<{ field: string; message: string }>; messages?: unknown[]; [key: string]: unknown };
}

describe('query parameters of the JSON routes', () => {
	const prisma = testPrisma();
	const site = testSiteConfig({ endpoints: false });
	let receiver: Receiver;
	let readKey: string;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', RATE_LIMIT_PER_IP: 100_000 });
		readKey = await createApiKey(prisma, receiver.sites.byPublicKey(site.site.key)!.id, 'read', 'strictness-read');
	});
	afterAll(async () => {
		await receiver?.close();
		await prisma.$disconnect();
	});

	async function get(path: string, headers: Record<string, string> = { authorization: `Bearer ${readKey}` }): Promise<Answer> {
		const response = await fetch(`${receiver.url}${path}`, { headers });
		const text = await response.text();
		let json: Answer['json'] = {};
		try {
			json = JSON.parse(text) as Answer['json'];
		} catch {
			// Not JSON: the assertions on status say enough.
		}
		return { status: response.status, json };
	}
	const issues = async (path: string) => {
		const answer = await get(path);
		return [answer.status, answer.json.issues];
	};

	describe('/api/stats', () => {
		it('refuses an unknown parameter as the reports do', async () => {
			expect(await issues('/api/stats?foo=bar')).toEqual([400, [{ field: 'foo', message: 'is not a known field (known fields here: site, from, to, interval)' }]]);
		});

		it('refuses a bracketed parameter, suggesting the plain name', async () => {
			expect(await issues('/api/stats?site[]=nat-pets')).toEqual([400, [{ field: 'site[]', message: expect.stringMatching(/^is not a known field; did you mean "site"\?/) }]]);
		});

		it('checks the range a dashboard sends with every report as the reports check it', async () => {
			expect(await issues('/api/stats?from=2026-01-01&to=2020-01-01')).toEqual([400, [{ field: 'from', message: expect.stringMatching(/^must be before to/) }]]);
			expect(await issues('/api/stats?interval=month')).toEqual([400, [{ field: 'interval', message: 'must be day, hour or week (got "month")' }]]);
			expect((await get('/api/stats?from=2026-03-01&to=2026-03-07&interval=hour')).status).toBe(200);
		});
	});

	describe('the visitors report’s filters', () => {
		it.each(['campaign', 'page', 'channel'])('refuses an empty or blank %s in the project’s words, naming the parameter', async (field) => {
			for (const value of ['', '%20', '%20%20']) {
				const [status, found] = await issues(`/api/analytics/visitors?${field}=${value}`);
				expect([field, value, status]).toEqual([field, value, 400]);
				expect(found).toEqual([{ field, message: expect.stringMatching(/^must not be empty: .*, or leave the parameter out$/) }]);
				expect(JSON.stringify(found)).not.toMatch(/Too small|expected string/);
			}
		});

		it('reads a campaign or page with spaces around it as the dashboard does: trimmed', async () => {
			expect((await get('/api/analytics/visitors?campaign=%20spring%20')).status).toBe(200);
			expect((await get('/api/analytics/visitors?page=%20%2Fpricing%20')).status).toBe(200);
		});
	});

	describe('an unknown parameter of a report', () => {
		it.each(['leads', 'campaigns', 'conversion'])('on %s is suggested no far-off field (page is not site)', async (report) => {
			const [status, found] = await issues(`/api/analytics/${report}?page=x`);
			expect(status).toBe(400);
			expect(found).toEqual([{ field: 'page', message: 'is not a known field (known fields here: site, from, to, interval)' }]);
		});

		it('is still suggested a near miss', async () => {
			expect(await issues('/api/analytics/leads?form=2026-01-01')).toEqual([400, [{ field: 'form', message: expect.stringMatching(/^is not a known field; did you mean "from"\?/) }]]);
			expect(await issues('/api/analytics/visitors?chanel=Direct')).toEqual([400, [{ field: 'chanel', message: expect.stringMatching(/^is not a known field; did you mean "channel"\?/) }]]);
		});

		it('given twice is told it is unknown, not that it must be given once', async () => {
			expect(await issues('/api/analytics/campaigns?channel=a&channel=b')).toEqual([400, [{ field: 'channel', message: expect.stringMatching(/^is not a known field/) }]]);
			expect(await issues('/api/analytics/leads?to=2026-01-01&to=2026-02-01')).toEqual([400, [{ field: 'to', message: 'must be given once, as a single value' }]]);
		});
	});

	describe('the mailbox', () => {
		const remote = { 'x-forwarded-for': '1.2.3.4' };
		it.each(['/mailbox', '/mailbox/api/messages', '/mailbox/messages/00000000-0000-0000-0000-000000000000'])('answers %s from another machine with the path as it was asked for', async (path) => {
			const answer = await get(`${path}?limit=1`, remote);
			expect([answer.status, answer.json.message]).toEqual([404, `No route for GET ${path}`]);
		});

		it.each(['to', 'site'])('refuses an empty %s as the analytics filters do', async (field) => {
			for (const value of ['', '%20']) {
				const answer = await get(`/mailbox/api/messages?${field}=${value}`, {});
				expect([field, value, answer.status, answer.json.issues]).toEqual([field, value, 400, [{ field, message: expect.stringMatching(/^must not be empty: .*, or leave the parameter out$/) }]]);
			}
		});
	});
});

describe('nearestName: the suggestion for an unknown field', () => {
	it.each([
		['form', 'from'],
		['sit', 'site'],
		['site[]', 'site'],
		['intervall', 'interval'],
		['Interval', 'interval'],
		['chanel', 'channel'],
		['page', undefined],
		['foo', undefined],
		['x', undefined],
		['limit', undefined],
		['channel', undefined],
	])('suggests for %s: %s', (unknown, expected) => {
		expect(nearestName(unknown, ['site', 'from', 'to', 'interval', ...(unknown === 'chanel' ? ['channel'] : [])])).toBe(expected);
	});
});
