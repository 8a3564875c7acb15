import { fromOwnOrigin, ownOrigins } from '../../server/dashboard/csrf';
import { ensureFirstKeys, FIRST_KEY_NAME } from '../../server/dashboard/firstKeys';
import { consentText } from '../../server/dashboard/leadPages';
import { countedUpToNote } from '../../server/dashboard/pages';
import { amountsIn, describeEntry } from '../../server/dashboard/leads';
import { dateFieldValue, previousRange, resolveRange } from '../../server/dashboard/range';
import { cookieValue, keyForSignIn, readSession, signatureMatches, signSession } from '../../server/dashboard/session';
import { SignInLimit } from '../../server/dashboard/signInLimit';
import { displayCell, formatDuration, formatMoney, toCsv, type Table } from '../../server/dashboard/tables';
import { change, type Figure } from '../../server/dashboard/visitors';
import { createApiKey, hashApiKey } from '../../server/auth';
import { SiteRegistry } from '../../server/siteRegistry';
import { syncSites } from '../../server/sites';
import { testPrisma } from '../helpers/db';
import { testSiteConfig } from '../helpers/sites';

/** 2026-03-10 14:25 UTC, a Tuesday afternoon. */
const NOW = new Date('2026-03-10T14:25:00Z');
const iso = (range: ReturnType<typeof resolveRange>) => (range.ok ? [range.range.from.toISOString(), range.range.to.toISOString(), range.range.interval] : range);

describe('dashboard period', () => {
	it('makes presets whole UTC hours or days ending with the current one, hourly up to two days', () => {
		expect(iso(resolveRange({}, NOW))).toEqual(['2026-03-04T00:00:00.000Z', '2026-03-11T00:00:00.000Z', 'day']);
		expect(iso(resolveRange({ range: '24h' }, NOW))).toEqual(['2026-03-09T15:00:00.000Z', '2026-03-10T15:00:00.000Z', 'hour']);
		expect(iso(resolveRange({ range: '30d', interval: 'hour' }, NOW))).toEqual(['2026-02-09T00:00:00.000Z', '2026-03-11T00:00:00.000Z', 'hour']);
		expect(iso(resolveRange({ range: '90d' }, NOW))).toEqual(['2025-12-11T00:00:00.000Z', '2026-03-11T00:00:00.000Z', 'day']);
	});

	it('reads a custom period as whole days from From to To included, and refuses what cannot be a period', () => {
		expect(iso(resolveRange({ range: 'custom', from: '2026-03-01', to: '2026-03-01' }, NOW))).toEqual(['2026-03-01T00:00:00.000Z', '2026-03-02T00:00:00.000Z', 'hour']);
		const refused = (query: Record<string, string>) => {
			const result = resolveRange(query, NOW);
			return result.ok ? 'accepted' : `${result.field} ${result.message}`;
		};
		expect(refused({ range: 'custom', from: '2026-03-05', to: '2026-03-01' })).toBe('From must be on or before To');
		expect(refused({ range: 'custom', from: '2026-03-05' })).toBe('To is needed for a custom period: give both From and To dates');
		expect(refused({ range: 'custom', from: '2026-02-30', to: '2026-03-01' })).toMatch(/^From must be an ISO 8601 date/);
		expect(refused({ range: 'custom', from: '2024-01-01', to: '2026-03-01' })).toBe('From and To may be at most 366 days apart (they are 791 days apart)');
		expect(refused({ range: 'week' })).toBe('Period must be one of Last 24 hours, Last 7 days, Last 30 days, Last 90 days, Custom');
		expect(refused({ interval: 'minute' })).toBe('Interval must be Automatic, Hour, Day or Week');
		expect(refused({ interval: 'constructor' })).toBe('Interval must be Automatic, Hour, Day or Week');
	});

	it('shows more than 31 days by day even when hours were asked for, and says so', () => {
		const result = resolveRange({ range: '90d', interval: 'hour' }, NOW);
		expect(result.ok && [result.range.interval, result.range.note]).toEqual(['day', 'Hourly points cover at most 31 days; shown by day.']);
	});

	it('chooses hours up to two days, weeks past four months, days between, and takes weeks when asked', () => {
		const automatic = (query: Parameters<typeof resolveRange>[0]) => {
			const result = resolveRange(query, NOW);
			return result.ok ? result.range.interval : result.message;
		};
		expect([automatic({ range: '24h' }), automatic({ range: '90d' }), automatic({ range: 'custom', from: '2025-06-01', to: '2026-03-01' }), automatic({ range: '30d', interval: 'week' })]).toEqual([
			'hour',
			'day',
			'week',
			'week',
		]);
	});

	it('compares with the period of the same length just before', () => {
		const previous = previousRange({ from: new Date('2026-03-04T00:00:00Z'), to: new Date('2026-03-11T00:00:00Z'), interval: 'day' });
		expect([previous.from.toISOString(), previous.to.toISOString()]).toEqual(['2026-02-25T00:00:00.000Z', '2026-03-04T00:00:00.000Z']);
	});
});

describe('dashboard date fields', () => {
	it('gives <input type=date> the UTC date a custom bound falls on, the last day a To time covers', () => {
		expect(dateFieldValue('2026-12-07', false)).toEqual({ date: '2026-12-07', timed: false });
		expect(dateFieldValue('2026-12-07', true)).toEqual({ date: '2026-12-07', timed: false });
		expect(dateFieldValue('2026-12-07T10:00:00+14:00', false)).toEqual({ date: '2026-12-06', timed: true });
		expect(dateFieldValue('2026-12-08T00:00:00Z', true)).toEqual({ date: '2026-12-07', timed: true });
		expect(dateFieldValue('2026-12-07T15:30:00Z', true)).toEqual({ date: '2026-12-07', timed: true });
		expect(dateFieldValue('nope', false)).toEqual({ date: '', timed: false });
		expect(dateFieldValue('', true)).toEqual({ date: '', timed: false });
	});
});

describe('dashboard money', () => {
	it('writes every amount one way: whole ones without cents, others with two decimals', () => {
		expect([formatMoney(50, 'EUR'), formatMoney('50.0000', 'EUR'), formatMoney(49.9, 'EUR'), formatMoney('49.9000'), formatMoney(1234.5, 'USD'), formatMoney(-0.001), formatMoney(0.125)]).toEqual([
			'50 EUR',
			'50 EUR',
			'49.90 EUR',
			'49.90',
			'1,234.50 USD',
			'0',
			'0.13',
		]);
		expect([displayCell(98, 'money', false), displayCell(49.9, 'money', false)]).toEqual(['98', '49.90']);
		expect(toCsv({ name: 'v', title: 'V', columns: [{ label: 'Value (EUR)', kind: 'money' }], rows: [[98], [49.9]], empty: '' })).toBe('Value (EUR)\r\n98.00\r\n49.90\r\n');
	});

	it('rewrites the amounts a conversion activity stored at the Decimal(14, 4) scale, and nothing else', () => {
		expect(amountsIn('Converted: contact-request (50.0000 EUR), signup, demo (12.5000)')).toBe('Converted: contact-request (50 EUR), signup, demo (12.50)');
		expect(amountsIn('Converted: plan (v2) (49.9000 EUR)')).toBe('Converted: plan (v2) (49.90 EUR)');
		const entry = (kind: 'conversion' | 'activity', data: Record<string, unknown>) => describeEntry({ at: new Date(), kind, data });
		expect(entry('activity', { type: 'conversion', description: 'Converted: contact-request (50.0000 EUR)' })).toEqual(['Activity: conversion', 'Converted: contact-request (50 EUR)']);
		expect(entry('activity', { type: 'note', description: 'Quoted (50.0000 EUR)' })).toEqual(['Activity: note', 'Quoted (50.0000 EUR)']);
		expect(entry('conversion', { goal: 'contact-request', value: 49.9, currency: 'EUR' })).toEqual(['Conversion', 'contact-request · 49.90 EUR']);
	});
});

describe('dashboard figures and CSV', () => {
	const figure = (kind: Figure['kind'], value: number | null, previous: number | null): Figure => ({ name: 'x', label: 'X', kind, value, previous });

	it('says a lead’s consent was withdrawn once a channel is unsubscribed, complained of or closed, not when it bounced', () => {
		const lead = (consentGiven: boolean, ...statuses: string[]) => ({ consentGiven, channels: statuses.map((status) => ({ channel: 'email', status, reason: null, changedAt: NOW })) });
		expect([lead(false), lead(true), lead(true, 'subscribed'), lead(true, 'bounced'), lead(true, 'unsubscribed'), lead(true, 'complained'), lead(true, 'do_not_contact'), lead(false, 'unsubscribed')].map(consentText)).toEqual([
			'Not given',
			'Given',
			'Given',
			'Given',
			'Given, then withdrawn',
			'Given, then withdrawn',
			'Given, then withdrawn',
			'Not given',
		]);
	});

	it('says up to when figures count only where they are behind the page by two seconds or more', () => {
		const asOf = new Date('2026-03-10T14:24:51.400Z');
		expect(countedUpToNote(asOf, new Date('2026-03-10T14:24:52.900Z'))).toBe('');
		expect(countedUpToNote(asOf, new Date('2026-03-10T14:25:00.000Z'))).toBe(
			'<p class="note" id="counted-up-to">Visits and conversions are counted up to <time datetime="2026-03-10T14:24:51.400Z">14:24:51</time> UTC: the last 8 seconds are still being added, and show on the next load.</p>',
		);
	});

	it('says how a figure moved: percent for amounts, points for rates', () => {
		expect([change(figure('count', 12, 8)), change(figure('count', 6, 8)), change(figure('count', 3, 0)), change(figure('count', 5, 5))]).toEqual(['+50.0%', '−25.0%', 'new (none before)', 'no change']);
		expect([change(figure('percent', 0.4, 0.5)), change(figure('percent', null, 0.5)), change(figure('seconds', null, null))]).toEqual([
			'−10.0 pts',
			'no data in this period',
			'no data in either period',
		]);
		expect([formatDuration(42.4), formatDuration(95), formatDuration(3725)]).toEqual(['42s', '1m 35s', '1h 02m']);
	});

	it('writes RFC 4180 CSV whose text cells cannot run as formulas', () => {
		const table: Table = {
			name: 't',
			title: 'T',
			columns: [
				{ label: 'Page', kind: 'text' },
				{ label: 'Views', kind: 'count' },
				{ label: 'Bounce rate', kind: 'percent' },
				{ label: 'At', kind: 'time' },
			],
			rows: [
				['=1+2', 3, 0.125, new Date('2026-03-01T00:00:00Z')],
				['+SUM(A1)', -4, null, null],
				['-x', 0, 1, null],
				['@cmd', 1, 0.333333, null],
				['\tTab', 1, 0, null],
				['/a,"b"\nc', 1, 0, null],
			],
			empty: '',
		};
		expect(toCsv(table).split('\r\n')).toEqual([
			'Page,Views,Bounce rate (%),At',
			"'=1+2,3,12.5,2026-03-01T00:00:00.000Z",
			"'+SUM(A1),-4,,",
			"'-x,0,100,",
			"'@cmd,1,33.33,",
			"'\tTab,1,0,",
			'"/a,""b""\nc",1,0,',
			'',
		]);
	});
});

describe('dashboard session cookie', () => {
	const KEY_ID = '01937a2b-0000-7000-8000-000000000001';

	it('verifies its own signature only, and only until it expires', () => {
		const expiresAt = Math.floor(NOW.getTime() / 1000) + 3600;
		const value = signSession('secret-one', KEY_ID, expiresAt);
		const parts = readSession(value, NOW)!;
		expect(parts).toMatchObject({ keyId: KEY_ID, expiresAt });
		expect(signatureMatches('secret-one', parts.keyId, parts.expiresAt, parts.mac)).toBe(true);
		expect(signatureMatches('secret-two', parts.keyId, parts.expiresAt, parts.mac)).toBe(false);
		expect(signatureMatches('secret-one', parts.keyId, parts.expiresAt + 3600, parts.mac)).toBe(false);
		expect(readSession(value, new Date((expiresAt + 1) * 1000))).toBeUndefined();
		expect(readSession(`${value}x`, NOW)).toBeUndefined();
		expect(readSession('tcrm_read_abc', NOW)).toBeUndefined();
		expect(cookieValue(`a=1; tcrm_dashboard=${value}; b=2`, 'tcrm_dashboard')).toBe(value);
		expect(cookieValue('xtcrm_dashboard=1', 'tcrm_dashboard')).toBeUndefined();
	});

	it('accepts form posts from its own origins only', () => {
		const own = ownOrigins('http', '127.0.0.1:3000', 'https://CRM.example.com:443/base');
		expect(own).toEqual(['http://127.0.0.1:3000', 'https://crm.example.com']);
		expect(fromOwnOrigin({ origin: 'http://127.0.0.1:3000' }, own)).toBe(true);
		expect(fromOwnOrigin({ origin: 'https://crm.example.com' }, own)).toBe(true);
		expect(fromOwnOrigin({ referer: 'http://127.0.0.1:3000/dashboard/visitors?range=7d' }, own)).toBe(true);
		expect(fromOwnOrigin({ origin: 'null', referer: 'http://127.0.0.1:3000/dashboard' }, own)).toBe(false);
		expect(fromOwnOrigin({ origin: 'http://127.0.0.1:3001' }, own)).toBe(false);
		expect(fromOwnOrigin({}, own)).toBe(false);
	});

	it('refuses a network after ten failures in a minute, until the next minute', () => {
		const limit = new SignInLimit();
		const minute = Date.UTC(2026, 2, 10, 14, 25);
		for (let failure = 0; failure < 9; failure++) limit.fail('192.0.2.0', minute + failure);
		expect(limit.blocked('192.0.2.0', minute + 10)).toBeUndefined();
		limit.fail('192.0.2.0', minute + 10);
		expect(limit.blocked('192.0.2.0', minute + 20_000)).toBe(40);
		expect(limit.blocked('198.51.100.0', minute + 20_000)).toBeUndefined();
		expect(limit.blocked('192.0.2.0', minute + 60_000)).toBeUndefined();
	});
});

describe('first read keys', () => {
	const prisma = testPrisma();
	afterAll(() => prisma.$disconnect());

	it('gives a read key to each site without an unrevoked key, once', async () => {
		const [fresh, keyed, revokedOnly] = [testSiteConfig(), testSiteConfig(), testSiteConfig()];
		const configs = [fresh, keyed, revokedOnly];
		const sites = new SiteRegistry(configs, await syncSites(prisma, configs));
		const id = (config: typeof fresh) => sites.byPublicKey(config.site.key)!.id;
		await createApiKey(prisma, id(keyed), 'admin', 'ops');
		const revoked = await createApiKey(prisma, id(revokedOnly), 'read', 'old');
		await prisma.apiKey.update({ where: { keyHash: hashApiKey(revoked) }, data: { revokedAt: new Date() } });

		const made = await ensureFirstKeys(prisma, sites);
		expect(made.map((entry) => entry.site)).toEqual([fresh.site.key, revokedOnly.site.key]);
		for (const entry of made) {
			expect(entry.key).toMatch(/^tcrm_read_[\w-]{32}$/);
			await expect(keyForSignIn(prisma, entry.key)).resolves.toMatchObject({ siteId: sites.byPublicKey(entry.site)!.id, name: FIRST_KEY_NAME });
		}
		await expect(ensureFirstKeys(prisma, sites)).resolves.toEqual([]);
	});
});
