/**
 * The dashboards read one value per parameter, as the JSON API does: a repeated one is shown as
 * the page's usual notice naming it, never answered with one of the values picked. The sign-in
 * form says what was wrong with a body that carries a key the wrong way.
 */
import { createApiKey } from '../../server/auth';
import type { Receiver } from '../../server/receiver';
import { testPrisma } from '../helpers/db';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

describe('dashboard parameters and sign-in bodies', () => {
	const prisma = testPrisma();
	const site = testSiteConfig({ endpoints: false });
	let receiver: Receiver;
	let readKey: string;
	let cookie: string;

	const signIn = (body: string, contentType = 'application/x-www-form-urlencoded') =>
		fetch(`${receiver.url}/dashboard/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': contentType, origin: receiver.url }, body });

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', RATE_LIMIT_PER_IP: 100_000 });
		readKey = await createApiKey(prisma, receiver.sites.byPublicKey(site.site.key)!.id, 'read', 'repeats-read');
		const response = await signIn(`key=${encodeURIComponent(readKey)}`);
		expect(response.status).toBe(303);
		cookie = response.headers.get('set-cookie')!.split(';')[0];
	});
	afterAll(async () => {
		await receiver?.close();
		await prisma.$disconnect();
	});

	const page = async (path: string) => {
		const response = await fetch(`${receiver.url}${path}`, { redirect: 'manual', headers: { cookie } });
		return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
	};
	const notice = (html: string) => /<p class="error"[^>]*role="alert">([^<]*)<\/p>/.exec(html)?.[1];

	it.each([
		['/dashboard/visitors?range=7d&range=30d', 'Period'],
		['/dashboard/visitors?range=custom&from=2026-01-01&from=2026-01-02&to=2026-01-31', 'From'],
		['/dashboard/leads?interval=day&interval=week', 'Interval'],
		['/dashboard/campaigns?campaign=a&campaign=b', 'Campaign'],
		['/dashboard/leads/list?stage=lead&stage=mql', 'stage'],
	])('shows %s as the page’s notice naming %s', async (path, label) => {
		const answer = await page(path);
		expect(answer.status).toBe(400);
		expect(answer.type).toMatch(/^text\/html/);
		expect(notice(answer.text)).toMatch(new RegExp(`^${label} is given more than once in the address`));
	});

	it.each(['/dashboard/visitors.csv?table=pages&range=7d&range=30d', '/dashboard/leads.csv?range=7d&range=30d', '/dashboard/campaigns.csv?range=7d&range=30d'])('refuses %s as a download’s other mistakes are, in plain text', async (path) => {
		const answer = await page(path);
		expect([answer.status, answer.type]).toEqual([400, expect.stringMatching(/^text\/plain/)]);
		expect(answer.text).toMatch(/^Period is given more than once in the address/);
	});

	it('still answers one value per parameter', async () => {
		expect((await page('/dashboard/visitors?range=7d&channel=Direct')).status).toBe(200);
	});

	it('tells a JSON body to send the key as the form does', async () => {
		const response = await signIn(JSON.stringify({ key: readKey }), 'application/json');
		const text = await response.text();
		expect(response.status).toBe(415);
		expect(notice(text)).toMatch(/form field named key/);
		expect(text).not.toMatch(/Enter an API key/);
	});

	it('tells a form with the key twice to send one', async () => {
		const response = await signIn(`key=${encodeURIComponent(readKey)}&key=${encodeURIComponent(readKey)}`);
		const text = await response.text();
		expect(response.status).toBe(400);
		expect(notice(text)).toMatch(/one key/i);
	});

	it('tells a form whose key is under another name which name to use', async () => {
		const response = await signIn(`apikey=${encodeURIComponent(readKey)}`);
		const text = await response.text();
		expect(response.status).toBe(400);
		expect(notice(text)).toMatch(/named key/);
	});

	it('still asks for a key when the form sends an empty one', async () => {
		const response = await signIn('key=');
		expect(response.status).toBe(401);
		expect(notice(await response.text())).toBe('Enter an API key.');
	});
});
