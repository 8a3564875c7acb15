import type { Receiver } from '../../server/receiver';
import { clientOf } from '../../server/ingest/normalize';
import { testPrisma } from '../helpers/db';
import { batch, pageview, post } from '../helpers/events';
import { startTestReceiver } from '../helpers/receiver';
import { testSiteConfig } from '../helpers/sites';

describe('clientOf', () => {
	it('counts a client by its network as stored', () => {
		expect(clientOf('198.51.100.7:4431')).toEqual({ network: '198.51.100.0', limitKey: '198.51.100.0' });
		expect(clientOf('::ffff:203.0.113.9')).toEqual({ network: '203.0.113.0', limitKey: '203.0.113.0' });
	});

	it('counts an address that is no IP alone, under a hash that holds nothing of its text', () => {
		const keys = ['garbage', 'unknown', 'garbage2', 'x'.repeat(8000)].map((address) => clientOf(address));
		expect(keys.every(({ network }) => network === null)).toBe(true);
		expect(new Set(keys.map(({ limitKey }) => limitKey)).size).toBe(4);
		expect(clientOf('garbage').limitKey).toBe(keys[0].limitKey);
		for (const { limitKey } of keys) {
			expect(limitKey).toMatch(/^unparsed [\w-]{43}$/);
			expect(limitKey).not.toMatch(/garbage|unknown|xxx/);
		}
	});
});

/** The limits count in fixed one-minute windows: a test that counts to a limit starts early in one. */
async function freshWindow(): Promise<void> {
	const left = 60_000 - (Date.now() % 60_000);
	if (left < 30_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

describe('client addresses behind a proxy', () => {
	const prisma = testPrisma();
	const site = testSiteConfig({ endpoints: false });
	const key = site.site.key;
	let receiver: Receiver;

	beforeAll(async () => {
		receiver = await startTestReceiver([site], { DISPATCHER: 'off', TRUST_PROXY: 'loopback', RATE_LIMIT_PER_IP: 3, RATE_LIMIT_PER_SITE: 1_000 });
	});
	afterAll(async () => {
		await receiver.close();
		await prisma.$disconnect();
	});

	const track = async (address: string, path = '/') => (await post(`${receiver.url}/api/track`, batch(key, [pageview(key, 'anon-address', path)]), { 'x-forwarded-for': address })).status;
	const lead = async (address: string) => (await post(`${receiver.url}/api/lead`, { site: key, email: 'ana@example.com' }, { 'x-forwarded-for': address })).status;

	it('gives each address that is no IP a bucket of its own: one client cannot get the others refused', async () => {
		await freshWindow();
		expect([await track('garbage'), await track('garbage'), await lead('garbage'), await track('garbage')]).toEqual([202, 202, 202, 429]);
		expect([await track('unknown'), await lead('[garbage]:80'), await track('not-an-address')]).toEqual([202, 202, 202]);
	});

	it('counts ip:port, [v6]:port and IPv4-mapped addresses in their network, not in one shared bucket', async () => {
		await freshWindow();
		expect([await track('198.51.100.7:4431'), await lead('198.51.100.8:5000'), await track('198.51.100.9')]).toEqual([202, 202, 202]);
		expect(await track('198.51.100.10:4431')).toBe(429);
		expect([await track('::ffff:192.0.2.1'), await track('::FFFF:192.0.2.2'), await track('192.0.2.3')]).toEqual([202, 202, 202]);
		expect(await track('::ffff:c000:204')).toBe(429);
		expect([await track('::ffff:203.0.113.1'), await track('[2001:db8:7::1]:443')]).toEqual([202, 202]);
	});

	it('stores such an address anonymized, and one that is no IP as none, never as it came', async () => {
		await freshWindow();
		expect([await track('203.0.113.77:4431', '/port'), await track('[2001:db8:85a3:1234::7334]:443', '/v6-port'), await track('::ffff:198.18.7.77', '/mapped'), await track('bogus-77', '/bogus')]).toEqual([
			202, 202, 202, 202,
		]);
		const rows = await prisma.visitorEvent.findMany({ where: { anonymousId: 'anon-address', path: { in: ['/port', '/v6-port', '/mapped', '/bogus'] } }, orderBy: { path: 'asc' } });
		expect(rows.map((row) => [row.path, row.ipAnonymized])).toEqual([
			['/bogus', null],
			['/mapped', '198.18.7.0'],
			['/port', '203.0.113.0'],
			['/v6-port', '2001:db8:85a3::'],
		]);
		expect(JSON.stringify(rows)).not.toMatch(/\.77|4431|7334|bogus-77/);
	});
});
