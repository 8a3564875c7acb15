import { readFileSync } from 'node:fs';
import path from 'node:path';

import { parseSiteConfig } from '../../lib/config/siteConfig';
import { emailSequenceDefinitionSchema } from '../../lib/contracts/siteConfig';
import { siteConfigRejection } from '../helpers/refusals';

/**
 * Settings that used to load and then silently do nothing: each is refused at load, naming the
 * field as written in the file and the fix.
 */

const examplePath = path.join(__dirname, '..', '..', 'config', 'site.example.json');
const example = () => JSON.parse(readFileSync(examplePath, 'utf8'));

const site = (extra: Record<string, unknown> = {}) => ({ site: { key: 'shop', name: 'Shop', domain: 'shop.example' }, tracking: { allowedOrigins: ['https://shop.example'] }, ...extra });
const sequence = (extra: Record<string, unknown> = {}) => ({ name: 'welcome', trigger: { stage: 'lead' }, steps: [{ delayMinutes: 0, subject: 'Hi', html: '<p>Hi</p>' }], ...extra });

describe('a sequence’s trigger stage', () => {
	it('must be one of crm.lifecycleStages: a misspelt one gets a did-you-mean and the stages there are', () => {
		const error = siteConfigRejection(site({ crm: { emailSequences: [sequence({ trigger: { stage: 'leed' } })] } }));
		expect(error.issues).toHaveLength(1);
		expect(error.message).toMatch(
			/crm\.emailSequences\[0\]\.trigger\.stage: must name a stage of crm\.lifecycleStages; did you mean "lead"\? \(it has: subscriber, lead, mql, sql, customer\); got "leed"/,
		);
	});

	it('names the site’s own stages, and the fix when no stage is near', () => {
		const stages = [{ name: 'new', minScore: 0 }, { name: 'hot', minScore: 50 }];
		const error = siteConfigRejection(site({ crm: { lifecycleStages: stages, emailSequences: [sequence({ trigger: { stage: 'hot' } }), sequence({ name: 'vip', trigger: { stage: 'vip' } })] } }));
		expect(error.issues.map((issue) => issue.field)).toEqual(['crm.emailSequences[1].trigger.stage']);
		expect(error.message).toMatch(/must name a stage of crm\.lifecycleStages \(it has: new, hot\); add a stage named "vip" or correct the name; got "vip"/);
	});

	it('is not checked for tag and event triggers', () => {
		const config = parseSiteConfig(site({ crm: { emailSequences: [sequence({ trigger: { tag: 'leed' } }), sequence({ name: 'demo', trigger: { event: 'leed' } })] } }));
		expect(config.crm.emailSequences).toHaveLength(2);
	});
});

describe('crm.lifecycleStages', () => {
	it('refuses a name used twice, pointing at the first', () => {
		const stages = [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'customer' }, { name: 'lead' }];
		const error = siteConfigRejection(site({ crm: { lifecycleStages: stages } }));
		expect(error.issues).toHaveLength(1);
		expect(error.message).toMatch(/crm\.lifecycleStages\[3\]\.name: is also the name of crm\.lifecycleStages\[1\]: .*; rename or remove one of them; got "lead"/);
	});

	it.each([
		['lower than', 5],
		['equal to', 10],
	])('refuses a minScore %s that of the scored stage before it, which would then never be entered by scoring', (_how, minScore) => {
		const stages = [{ name: 'subscriber', minScore: 0 }, { name: 'lead', minScore: 10 }, { name: 'mql', minScore }];
		expect(siteConfigRejection(site({ crm: { lifecycleStages: stages } })).message).toMatch(
			new RegExp(`crm\\.lifecycleStages\\[2\\]\\.minScore: must be higher than 10, the minScore of "lead" before it: .*"lead" would never be entered by scoring; list the stages from the lowest minScore to the highest; got ${minScore} \\(number\\)`),
		);
	});

	it('compares a minScore with the last stage that has one, skipping stages set by events', () => {
		const rising = [{ name: 'subscriber', minScore: 0 }, { name: 'partner' }, { name: 'lead', minScore: 10 }, { name: 'customer' }];
		expect(parseSiteConfig(site({ crm: { lifecycleStages: rising } })).crm.lifecycleStages).toEqual(rising);
		const falling = [{ name: 'subscriber', minScore: 20 }, { name: 'partner' }, { name: 'lead', minScore: 10 }];
		expect(siteConfigRejection(site({ crm: { lifecycleStages: falling } })).message).toMatch(/crm\.lifecycleStages\[2\]\.minScore: must be higher than 20, the minScore of "subscriber" before it/);
	});
});

describe('a sequence’s quietHours', () => {
	it('refuses start equal to end, which pauses nothing', () => {
		const error = siteConfigRejection(site({ crm: { emailSequences: [sequence({ quietHours: { start: '08:00', end: '08:00' } })] } }));
		expect(error.message).toMatch(
			/crm\.emailSequences\[0\]\.quietHours\.end: is the same time as quietHours\.start, which leaves no quiet hours .*; set end to when sending may start again, or remove quietHours; got "08:00"/,
		);
	});

	it('refuses it in a Sequence Definition parameter too, and takes an overnight window', () => {
		expect(emailSequenceDefinitionSchema.safeParse(sequence({ quietHours: { start: '21:00', end: '21:00' } })).success).toBe(false);
		expect(emailSequenceDefinitionSchema.safeParse(sequence({ quietHours: { start: '21:00', end: '08:00' } })).success).toBe(true);
	});
});

describe('integrations.webhookEndpoints', () => {
	it('refuses a workflow named twice, of which only the last entry would be used', () => {
		const webhookEndpoints = [
			{ workflow: 'visitor-processor', url: '/webhook/crm-visitor-processor' },
			{ workflow: 'lead-processor', url: '/webhook/crm-lead-processor' },
			{ workflow: 'visitor-processor', url: '/webhook/visitors' },
		];
		const error = siteConfigRejection(site({ integrations: { webhookEndpoints } }));
		expect(error.issues).toHaveLength(1);
		expect(error.message).toMatch(
			/integrations\.webhookEndpoints\[2\]\.workflow: names "visitor-processor" again, as integrations\.webhookEndpoints\[0\] does: .*only the last one listed would be used; keep one entry for it/,
		);
	});
});

describe('integrations.n8nUrl', () => {
	it('refuses a user name and password, suggesting the URL without them and keeping the password out of the message', () => {
		const error = siteConfigRejection(site({ integrations: { n8nUrl: 'https://admin:hunter2@tools.example.com/n8n' } }));
		expect(error.message).toMatch(/integrations\.n8nUrl: must not hold a user name or password .*; write "https:\/\/tools\.example\.com\/n8n"; got "https:\/\/admin:\*\*\*@tools\.example\.com\/n8n"/);
		expect(error.message).not.toContain('hunter2');
	});

	it.each([
		['a query', 'https://tools.example.com/n8n?token=1'],
		['a fragment', 'http://127.0.0.1:5678/#/workflows'],
		['an empty query', 'http://127.0.0.1:5678?'],
	])('refuses %s, which no webhook path would keep', (_what, n8nUrl) => {
		const bare = new URL(n8nUrl);
		const suggested = `${bare.origin}${bare.pathname === '/' ? '' : bare.pathname}`;
		expect(siteConfigRejection(site({ integrations: { n8nUrl } })).message).toContain(`integrations.n8nUrl: must not have a query (?…) or fragment (#…): each webhook path is appended to this URL's path, so they would never reach n8n; write "${suggested}"`);
	});

	it('takes an n8n served under a path', () => {
		expect(parseSiteConfig(site({ integrations: { n8nUrl: 'https://tools.example.com/n8n' } })).integrations.n8nUrl).toBe('https://tools.example.com/n8n');
	});
});

describe('tracking.allowedOrigins', () => {
	it.each([
		['https://bücher.de', 'https://xn--bcher-kva.de', 'the host in punycode'],
		['https://Other.Example.com', 'https://other.example.com', 'in lowercase'],
		['https://x.example:443', 'https://x.example', 'without the default port'],
		['http://x.example:80', 'http://x.example', 'without the default port'],
	])('refuses %s, saying the browser sends %s', (written, sent, why) => {
		const input = example();
		input.tracking.allowedOrigins[1] = written;
		const error = siteConfigRejection(input);
		expect(error.issues).toHaveLength(1);
		expect(error.message).toContain(`tracking.allowedOrigins[1]: is not written as a browser sends it, so no request would match it: a browser sends "${sent}" (${why}); write that instead; got "${written}"`);
	});

	it('keeps the general message for what is no origin at all', () => {
		const input = example();
		input.tracking.allowedOrigins[0] = 'https://nat-pets.com/shop';
		expect(siteConfigRejection(input).message).toMatch(/tracking\.allowedOrigins\[0\]: must be an origin such as https:\/\/www\.example\.com \(scheme and host, no path or trailing slash\)/);
	});
});

describe('a matches rule’s pattern', () => {
	const fitRule = (value: string) => site({ crm: { leadScoringRules: [{ field: 'jobTitle', operator: 'matches', value, score: 10 }] } });

	it.each(['^(a+)+$', '^(\\w+\\s?)*$', '((ceo|cto) ?)+', '(?<=(a+)+)x', '([a-z]{2,})+@'])(
		'refuses %p, which can take exponential time on a crafted job title, suggesting a simpler pattern',
		(pattern) => {
			const error = siteConfigRejection(fitRule(pattern));
			expect(error.issues.map((issue) => issue.field)).toEqual(['crm.leadScoringRules[0].value']);
			expect(error.message).toContain(
				'crm.leadScoringRules[0].value: repeats a group that itself repeats (such as (a+)+ or (\\w+\\s?)*), which can take exponential time on a crafted value and hang the process that scores it; repeat only the innermost part, e.g. ^a+$ instead of ^(a+)+$, or list the words, e.g. \\b(owner|founder)\\b; got ',
			);
		},
	);

	it('refuses one of more than 25 repetitions', () => {
		expect(siteConfigRejection(fitRule('a?'.repeat(26))).message).toContain('crm.leadScoringRules[0].value: has more than 25 repetitions (+, *, ?, {n}), which can take too long to test on a crafted value; simplify it, e.g. list the words: \\b(owner|founder)\\b');
	});

	it.each(['\\b(owner|founder|director|head|manager)\\b', '^(?:ceo|cto|cfo)$', '(?<!vice )president', '(?<=chief )officer', '^[a-z]+ (manager|lead)$', 'a?'.repeat(25)])('takes %p', (pattern) => {
		expect(parseSiteConfig(fitRule(pattern)).crm.leadScoringRules).toEqual([{ field: 'jobTitle', operator: 'matches', value: pattern, score: 10 }]);
	});

	it('still names a pattern that does not compile as such', () => {
		expect(siteConfigRejection(fitRule('(owner')).message).toMatch(/crm\.leadScoringRules\[0\]\.value: must be a valid JavaScript regular expression; got "\(owner"/);
	});
});
