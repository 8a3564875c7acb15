import { isAutomated } from '../../server/ingest/normalize';
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
