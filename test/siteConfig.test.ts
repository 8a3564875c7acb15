import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadSiteConfig, loadSiteConfigs, parseSiteConfig } from '../lib/config/siteConfig';
import { siteConfigRejection } from './helpers/refusals';

const examplePath = path.join(__dirname, '..', 'config', 'site.example.json');
const example = () => JSON.parse(readFileSync(examplePath, 'utf8'));

describe('site config', () => {
	it('accepts the shipped example and fills defaults', () => {
		const config = loadSiteConfig(examplePath);
		expect(config.site.key).toBe('nat-pets');
		expect(config.tracking.sessionTimeout).toBe(1800);
		expect(config.crm.leadScoringRules).toHaveLength(8);
		expect(config.privacy.anonymizeIPs).toBe(true);

		const minimal = parseSiteConfig({
			site: { key: 'shop', name: 'Shop', domain: 'shop.example' },
			tracking: { allowedOrigins: ['https://shop.example'] },
		});
		expect(minimal.tracking.engagementThresholds).toEqual({ medium: 30, high: 60 });
		expect(minimal.crm.lifecycleStages.map((stage) => stage.name)).toEqual(['subscriber', 'lead', 'mql', 'sql', 'customer']);
		expect(minimal.integrations.webhookSecretEnv).toBe('CRM_WEBHOOK_SECRET');
		expect(minimal.privacy.encryptPii).toBe(false);
	});

	it('takes privacy.encryptPii: true, which seals personal data at rest', () => {
		const input = example();
		input.privacy.encryptPii = true;
		expect(parseSiteConfig(input).privacy.encryptPii).toBe(true);
	});

	it('names the field, the value and what is expected for a wrong type', () => {
		const input = example();
		input.crm.leadScoringRules[3].score = 'ten';
		const error = siteConfigRejection(input);
		expect(error.message).toContain('config/site.json');
		expect(error.issues.some((issue) => issue.field.startsWith('crm.leadScoringRules[3]'))).toBe(true);
		expect(error.message).toMatch(/crm\.leadScoringRules\[3\].*"ten"/);
	});

	it.each([
		['tracking.sessionTimeout', (c: any) => (c.tracking.sessionTimeout = -5), /tracking\.sessionTimeout: must be a positive number of seconds; got -5 \(number\)/],
		['tracking.allowedOrigins[0]', (c: any) => (c.tracking.allowedOrigins[0] = 'https://x.com/'), /tracking\.allowedOrigins\[0\]: must be an origin such as .*; got "https:\/\/x\.com\/"/],
		['site.name', (c: any) => delete c.site.name, /site\.name: is required \(a string\)/],
		['site.key', (c: any) => (c.site.key = 'Bad Key!'), /site\.key: must be 3–64 lowercase letters.*; got "Bad Key!"/],
		['privacy.anonymizeIPs', (c: any) => (c.privacy.anonymizeIPs = false), /privacy\.anonymizeIPs: must be true: raw IP addresses are never stored; got false/],
		['privacy.encryptPii', (c: any) => (c.privacy.encryptPii = 'yes'), /privacy\.encryptPii: expected a boolean; got "yes"/],
		['crm.emailSequences[0].quietHours.start', (c: any) => (c.crm.emailSequences[0].quietHours.start = '25:00'), /crm\.emailSequences\[0\]\.quietHours\.start: must be a time HH:MM; got "25:00"/],
		['tracking.engagementThresholds', (c: any) => (c.tracking.engagementThresholds = { medium: 70, high: 60 }), /tracking\.engagementThresholds: medium must be lower than high/],
		['crm.conversionRules[0].value', (c: any) => (c.crm.conversionRules[0].value = 1e30), /crm\.conversionRules\[0\]\.value: does not fit Decimal\(14, 4\): at most 9999999999\.9999; got 1e\+30 \(number\)/],
	])('rejects a bad %s with a message naming it', (_field, mutate, expected) => {
		const input = example();
		mutate(input);
		expect(siteConfigRejection(input).message).toMatch(expected);
	});

	it.each([
		['site.logo', (c: any) => (c.site.logo = '/assets/logo.png'), /site\.logo: is not a setting here: the dashboards and emails show the site’s name; delete it/],
		['tracking.maxEventsPerSession', (c: any) => (c.tracking.maxEventsPerSession = 50), /tracking\.maxEventsPerSession: is not a setting here: .*sessionTimeout.*; delete it/],
		['crm.autoEnrichment', (c: any) => (c.crm.autoEnrichment = true), /crm\.autoEnrichment: is not a setting here: .*workflow 05.*; delete it/],
		['privacy.gdprCompliant', (c: any) => (c.privacy.gdprCompliant = true), /privacy\.gdprCompliant: is not a setting here: .*cookieConsent.*; delete it/],
		['privacy.allowOptOut', (c: any) => (c.privacy.allowOptOut = true), /privacy\.allowOptOut: is not a setting here: .*consent\("denied"\).*; delete it/],
	])('refuses the original system’s %s, which nothing here would read, saying what does its job', (_field, mutate, expected) => {
		const input = example();
		mutate(input);
		expect(siteConfigRejection(input).message).toMatch(expected);
	});

	it('suggests the right spelling of an unknown field', () => {
		const input = example();
		input.trackng = input.tracking;
		const error = siteConfigRejection(input);
		expect(error.message).toMatch(/trackng: is not a known field; did you mean "tracking"\?/);
	});

	it('reports unreadable and malformed files by path', () => {
		const dir = mkdtempSync(path.join(os.tmpdir(), 'site-config-'));
		const broken = path.join(dir, 'broken.json');
		writeFileSync(broken, '{ "site": ');
		expect(() => loadSiteConfig(broken)).toThrow(/broken\.json:\n {2}- \(file\): is not valid JSON/);
		expect(() => loadSiteConfig(path.join(dir, 'missing.json'))).toThrow(/missing\.json:\n {2}- \(file\): cannot be read \(ENOENT\)/);
	});

	it('loads a folder of sites and refuses two sites with one key', () => {
		const dir = mkdtempSync(path.join(os.tmpdir(), 'sites-'));
		mkdirSync(path.join(dir, 'sites'));
		const second = example();
		second.site.name = 'Second';
		writeFileSync(path.join(dir, 'sites', 'a.json'), JSON.stringify(example()));
		writeFileSync(path.join(dir, 'sites', 'b.json'), JSON.stringify(second));
		expect(() => loadSiteConfigs(path.join(dir, 'sites'))).toThrow(/b\.json:\n {2}- site\.key: must be unique across sites; .*a\.json uses it too/);
		second.site.key = 'second-site';
		writeFileSync(path.join(dir, 'sites', 'b.json'), JSON.stringify(second));
		expect(loadSiteConfigs(path.join(dir, 'sites')).map((c) => c.site.key)).toEqual(['nat-pets', 'second-site']);
	});
});

describe('site config scoring rules', () => {
	it('rejects a fit rule whose pattern does not compile or whose value does not fit the operator', () => {
		const input = example();
		input.crm.leadScoringRules[5].value = '(?i)owner';
		expect(siteConfigRejection(input).message).toMatch(/crm\.leadScoringRules\[5\]\.value: must be a valid JavaScript regular expression; got "\(\?i\)owner"/);
		const listRule = example();
		listRule.crm.leadScoringRules[6].value = 'ES';
		expect(siteConfigRejection(listRule).message).toMatch(/crm\.leadScoringRules\[6\]\.value: must be a list of strings for operator "in"; got "ES"/);
	});

	it('takes repeat-visit rules and names the field of a wrong one', () => {
		const config = parseSiteConfig(example(), 'config/site.json');
		expect(config.crm.leadScoringRules[7]).toEqual({ visits: 2, perVisit: true, score: 3, cap: 12, group: 'browsing', halfLifeDays: 30 });
		const fractional = example();
		fractional.crm.leadScoringRules[7].visits = 2.5;
		expect(siteConfigRejection(fractional).message).toMatch(/crm\.leadScoringRules\[7\]\.visits: expected an int; got 2\.5/);
		fractional.crm.leadScoringRules[7].visits = 0;
		expect(siteConfigRejection(fractional).message).toMatch(/crm\.leadScoringRules\[7\]\.visits: must be at least 1 visit; got 0/);
		const typo = example();
		typo.crm.leadScoringRules[7] = { visits: 3, score: 5, perVist: true };
		expect(siteConfigRejection(typo).message).toMatch(/crm\.leadScoringRules\[7\]\.perVist: is not a known field; got true/);
	});
});

describe('site config email sequences', () => {
	const site = (crm: Record<string, unknown>) => ({ site: { key: 'shop', name: 'Shop', domain: 'shop.example' }, tracking: { allowedOrigins: ['https://shop.example'] }, crm });
	const welcome = (extra: Record<string, unknown> = {}) => ({ name: 'welcome', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 0, subject: 'Hi', html: '<p>Hi</p>' }], ...extra });
	const rules = [
		{ name: 'contact-request', event: 'form_submit' },
		{ name: 'purchase', event: 'purchase', value: 90 },
	];

	it('ends a sequence on no conversion unless its exitOn names conversion rules', () => {
		const config = parseSiteConfig(site({ conversionRules: rules, emailSequences: [welcome(), welcome({ name: 'trial', exitOn: { conversions: ['purchase'] } }), welcome({ name: 'empty', exitOn: {} })] }));
		expect(config.crm.emailSequences.map((sequence) => sequence.exitOn)).toEqual([undefined, { conversions: ['purchase'] }, { conversions: [] }]);
	});

	it('names the entry of exitOn.conversions that is no conversion rule, the rules there are, and the fix', () => {
		const error = siteConfigRejection(site({ conversionRules: rules, emailSequences: [welcome(), welcome({ name: 'trial', exitOn: { conversions: ['purchase', 'purchased'] } })] }));
		expect(error.issues).toHaveLength(1);
		expect(error.message).toMatch(
			/crm\.emailSequences\[1\]\.exitOn\.conversions\[1\]: must name a rule of crm\.conversionRules \(it has: contact-request, purchase\); add a conversion rule named "purchased" or correct the name; got "purchased"/,
		);
		expect(siteConfigRejection(site({ emailSequences: [welcome({ exitOn: { conversions: ['purchase'] } })] })).message).toMatch(/crm\.emailSequences\[0\]\.exitOn\.conversions\[0\]: must name a rule of crm\.conversionRules \(it has none\)/);
		expect(siteConfigRejection(site({ conversionRules: rules, emailSequences: [welcome({ exitOn: { conversion: ['purchase'] } })] })).message).toMatch(/crm\.emailSequences\[0\]\.exitOn\.conversion: is not a known field; did you mean "conversions"\?/);
	});
});
