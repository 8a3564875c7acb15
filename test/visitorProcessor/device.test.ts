import { detectDevice, type DeviceInfo } from '../../nodes/shared/device';

/** Real user agents, as browsers and crawlers send them. */
const UA = {
	chromeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
	edgeWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80',
	firefoxLinux: 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
	safariMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
	safariIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
	chromeIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1',
	chromeAndroid: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
	chromeAndroidReduced: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36',
	firefoxAndroid: 'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0',
	samsungInternet: 'Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36',
	safariIpad: 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1',
	chromeGalaxyTab: 'Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
	smartTv: 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36',
	playstation: 'Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)',
	googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
	googlebotSmartphone:
		'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
	bingbot: 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
	gptbot: 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)',
	headlessChrome: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36',
	puppeteer: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Puppeteer',
	slimerjs: 'Mozilla/5.0 (X11; Linux x86_64; rv:60.0) Gecko/20100101 SlimerJS/1.0.0',
	lighthouse:
		'Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/114.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse',
	curl: 'curl/8.4.0',
	pythonRequests: 'python-requests/2.31.0',
};

const CASES: [keyof typeof UA, Partial<DeviceInfo>][] = [
	['chromeWindows', { deviceType: 'desktop', browser: 'Chrome', browserVersion: '124', os: 'Windows', osVersion: '10', isBot: false }],
	['edgeWindows', { deviceType: 'desktop', browser: 'Edge', browserVersion: '124', os: 'Windows', isBot: false }],
	['firefoxLinux', { deviceType: 'desktop', browser: 'Firefox', browserVersion: '125', os: 'Ubuntu', isBot: false }],
	['safariMac', { deviceType: 'desktop', browser: 'Safari', browserVersion: '17', os: 'macOS', osVersion: '10.15.7', isBot: false }],
	['safariIphone', { deviceType: 'mobile', browser: 'Safari', browserVersion: '17', os: 'iOS', osVersion: '17.4', isBot: false }],
	['chromeIphone', { deviceType: 'mobile', browser: 'Chrome', os: 'iOS', isBot: false }],
	['chromeAndroid', { deviceType: 'mobile', browser: 'Chrome', browserVersion: '124', os: 'Android', osVersion: '14', isBot: false }],
	['chromeAndroidReduced', { deviceType: 'mobile', browser: 'Chrome', os: 'Android', osVersion: '10', isBot: false }],
	['firefoxAndroid', { deviceType: 'mobile', browser: 'Firefox', os: 'Android', isBot: false }],
	['samsungInternet', { deviceType: 'mobile', browser: 'Samsung Internet', os: 'Android', isBot: false }],
	['safariIpad', { deviceType: 'tablet', browser: 'Safari', os: 'iOS', osVersion: '16.6', isBot: false }],
	['chromeGalaxyTab', { deviceType: 'tablet', browser: 'Chrome', os: 'Android', isBot: false }],
	['smartTv', { deviceType: 'other', os: 'Tizen', isBot: false }],
	['playstation', { deviceType: 'other', os: 'PlayStation', isBot: false }],
	['googlebot', { deviceType: 'bot', browser: null, os: null, isBot: true }],
	['googlebotSmartphone', { deviceType: 'bot', browser: 'Chrome', os: 'Android', isBot: true }],
	['bingbot', { deviceType: 'bot', isBot: true }],
	['gptbot', { deviceType: 'bot', isBot: true }],
	['headlessChrome', { deviceType: 'bot', browser: 'Chrome Headless', os: 'Linux', isBot: true }],
	['puppeteer', { deviceType: 'bot', browser: 'Chrome', isBot: true }],
	['slimerjs', { deviceType: 'bot', isBot: true }],
	['lighthouse', { deviceType: 'bot', isBot: true }],
	['curl', { deviceType: 'bot', browser: null, isBot: true }],
	['pythonRequests', { deviceType: 'bot', isBot: true }],
];

describe('detectDevice', () => {
	test.each(CASES)('%s', (name, expected) => {
		expect(detectDevice(UA[name])).toMatchObject(expected);
	});

	test('the full shape of a result', () => {
		expect(detectDevice(UA.safariIphone)).toEqual({
			deviceType: 'mobile',
			browser: 'Safari',
			browserVersion: '17',
			os: 'iOS',
			osVersion: '17.4',
			isBot: false,
		});
	});

	test("the tracker's automation flag marks an ordinary-looking browser as a bot", () => {
		expect(detectDevice(UA.chromeWindows, { automation: true })).toMatchObject({ deviceType: 'bot', browser: 'Chrome', os: 'Windows', isBot: true });
		expect(detectDevice(UA.chromeWindows, { automation: false })).toMatchObject({ deviceType: 'desktop', isBot: false });
	});

	test('a missing user agent is unknown, not a bot, unless the tracker reported automation', () => {
		const unknown = { deviceType: 'other', browser: null, browserVersion: null, os: null, osVersion: null, isBot: false };
		expect(detectDevice(undefined)).toEqual(unknown);
		expect(detectDevice(null)).toEqual(unknown);
		expect(detectDevice('   ')).toEqual(unknown);
		expect(detectDevice('', { automation: true })).toMatchObject({ deviceType: 'bot', isBot: true });
	});

	test('a browser-like user agent of unknown OS is "other"; a bare product token is a bot to isbot', () => {
		expect(detectDevice('Mozilla/5.0 (AcmeOS 3.1) AcmeKiosk/2.0')).toMatchObject({ deviceType: 'other', browser: null, os: null, isBot: false });
		expect(detectDevice('AcmeKiosk')).toMatchObject({ deviceType: 'bot', isBot: true });
	});

	test('parsing one user agent does not leak into the next', () => {
		expect(detectDevice(UA.safariIpad).deviceType).toBe('tablet');
		expect(detectDevice(UA.chromeWindows).deviceType).toBe('desktop');
		expect(detectDevice(UA.safariIpad).deviceType).toBe('tablet');
	});
});
