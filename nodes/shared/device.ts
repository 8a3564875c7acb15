import { isbot } from 'isbot';
import UAParser from 'ua-parser-js';

import { boundedMemo } from '../../lib/memo';

export type DeviceType = 'desktop' | 'mobile' | 'tablet' | 'bot' | 'other';

export interface DeviceInfo {
	deviceType: DeviceType;
	/** Browser name without ua-parser's "Mobile " prefix (Mobile Safari is Safari), or null. */
	browser: string | null;
	/** Major version of the browser, or null. */
	browserVersion: string | null;
	os: string | null;
	osVersion: string | null;
	isBot: boolean;
}

/**
 * Automation frameworks whose user agents isbot's crawler list lets through (Puppeteer and
 * SlimerJS name themselves; headless browsers say "Headless"). Checked here as well so that
 * headless detection does not rest on a third-party list alone.
 */
const AUTOMATION_MARKERS = /headless|puppeteer|slimerjs/i;

/** Names ua-parser uses that dashboards would show twice or in an outdated spelling. */
const OS_NAMES: Readonly<Record<string, string>> = { 'Mac OS': 'macOS' };

// One parser, re-pointed at each user agent: ua-parser compiles nothing per instance, but this
// spares an allocation per call.
const parser = new UAParser();

// A site's visitors share a few hundred user agents, and parsing one costs a quarter of a millisecond.
const RECENT_USER_AGENTS = 2000;
/** Keyed by the automation signal (1 or 0) followed by the user agent. */
const recent = boundedMemo(RECENT_USER_AGENTS, (key) => parseDevice(key.slice(1), { automation: key[0] === '1' }));

/**
 * Device, browser and OS of a user agent. A visitor is a bot when isbot recognises the user
 * agent, when it carries an automation marker, or when the tracker itself reported automation
 * (navigator.webdriver) in the event context. iPadOS Safari asks for desktop sites with a
 * Macintosh user agent, so such iPads count as desktops: the user agent cannot tell them apart.
 */
export function detectDevice(userAgent: string | null | undefined, signals: { automation?: boolean } = {}): DeviceInfo {
	const ua = userAgent?.trim() ?? '';
	return { ...recent(`${signals.automation === true ? 1 : 0}${ua}`) };
}

function parseDevice(ua: string, signals: { automation?: boolean }): DeviceInfo {
	const bot = signals.automation === true || (ua !== '' && (isbot(ua) || AUTOMATION_MARKERS.test(ua)));
	if (ua === '') {
		return { deviceType: bot ? 'bot' : 'other', browser: null, browserVersion: null, os: null, osVersion: null, isBot: bot };
	}
	const { browser, os, device } = parser.setUA(ua).getResult();
	const browserName = browser.name?.replace(/^Mobile /, '') ?? null;
	const osName = os.name === undefined ? null : (OS_NAMES[os.name] ?? os.name);
	return {
		deviceType: bot ? 'bot' : deviceTypeOf(device.type, osName),
		browser: browserName,
		browserVersion: browser.major ?? null,
		os: osName,
		osVersion: os.version ?? null,
		isBot: bot,
	};
}

function deviceTypeOf(type: string | undefined, os: string | null): DeviceType {
	if (type === 'mobile' || type === 'tablet') return type;
	// ua-parser leaves the type of desktop computers empty; a known OS without a type is one.
	if (type === undefined && os !== null) return 'desktop';
	return 'other';
}
