import { eventContextSchema } from '../../lib/contracts';
import { isAutomated, withCampaign } from '../../server/ingest/normalize';
import { BROWSER_UA, pageview } from '../helpers/events';

describe('isAutomated', () => {
	const event = pageview('site', 'anon');
	const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
	const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36';

	it('gives each agent the same verdict every time, also after many distinct agents', () => {
		const verdicts = () => [BROWSER_UA, GOOGLEBOT, HEADLESS, undefined].map((agent) => isAutomated(agent, [event]));
		expect(verdicts()).toEqual([false, true, true, true]);
		expect(verdicts()).toEqual([false, true, true, true]);
		for (let i = 0; i < 12_000; i++) isAutomated(`${BROWSER_UA} build/${i}`, [event]);
		expect(verdicts()).toEqual([false, true, true, true]);
	});

	it('trusts the tracker when it noticed automation in a browser agent', () => {
		expect(isAutomated(BROWSER_UA, [event, { ...event, context: { automation: true } }])).toBe(true);
	});
});

describe('withCampaign', () => {
	const view = (url: string, context?: object) => ({ type: 'pageview' as const, url, context });

	it('takes the UTM parameters and click ids of a landing URL into the context', () => {
		expect(withCampaign(view('https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=spring&ref=x#top', { language: 'en' }))).toEqual({
			language: 'en',
			utm_source: 'news',
			utm_medium: 'email',
			utm_campaign: 'spring',
		});
		expect(withCampaign(view('https://shop.example/p?gclid=abc&msclkid=def&utm_source_platform=Google%20Ads'))).toEqual({
			utm_source_platform: 'Google Ads',
			clickIds: { gclid: 'abc', msclkid: 'def' },
		});
	});

	it('keeps what the client sent, and leaves other events and plain URLs alone', () => {
		expect(withCampaign(view('https://shop.example/?utm_source=url&gclid=url', { utm_source: 'client', clickIds: { fbclid: 'client' } }))).toEqual({
			utm_source: 'client',
			clickIds: { gclid: 'url', fbclid: 'client' },
		});
		const context = { language: 'en' };
		expect(withCampaign(view('https://shop.example/?ref=x&utm=1&xgclid=2', context))).toBe(context);
		expect(withCampaign(view('https://shop.example/pricing', context))).toBe(context);
		expect(withCampaign({ type: 'custom', url: 'https://shop.example/?utm_source=news', context: undefined })).toBeUndefined();
	});

	it('gives only values the contract accepts: no control characters, within its lengths', () => {
		const context = withCampaign(view(`https://shop.example/?utm_source=a%00b%1Fc&utm_term=${'t'.repeat(300)}&gclid=${'g'.repeat(600)}&utm_content=`));
		expect(context).toEqual({ utm_source: 'abc', utm_term: 't'.repeat(200), clickIds: { gclid: 'g'.repeat(500) } });
		expect(eventContextSchema.safeParse(context).success).toBe(true);
	});
});
