import type { EventContext } from '../../lib/contracts/tracking';
import { clip } from './text';

/** The contract's utm_* fields and CLICK_ID_PARAMS, as patterns (a test keeps them equal; importing the lists would bundle zod). */
export const UTM = /^utm_(source|medium|campaign|term|content|id|source_platform)$/;
export const CLICK_ID = /^(g|d|fb|tt|tw|y)clid$|^msclkid$|^[gw]braid$|^li_fat_id$/;

/** navigator.webdriver is set by WebDriver, Puppeteer and Playwright; headless Chrome names itself in its user agent. */
export const automated = () => navigator.webdriver || /headless/i.test(navigator.userAgent);

/**
 * The landing page's campaign parameters, click ids, language and time zone (no screen size:
 * it tells dashboards little that the user agent does not, and helps fingerprinting), and the
 * campaign as one key ('' for none) so that a visit from a new campaign starts a new session.
 */
export function landing(): [EventContext, string] {
	const context: EventContext & Record<string, unknown> = {
		language: clip(navigator.language, 35),
		timezone: clip(Intl.DateTimeFormat().resolvedOptions().timeZone, 64),
		automation: automated() || undefined,
	};
	let campaign = '';
	new URLSearchParams(location.search).forEach((value, name) => {
		if (UTM.test(name)) context[name] = clip(value, 200);
		else if (CLICK_ID.test(name)) (context.clickIds ??= {})[name as 'gclid'] = clip(value, 500);
		else return;
		campaign += `${name}=${value}&`;
	});
	return [context, clip(campaign, 1000)];
}
