import { get, put, storage } from './storage';
import { config } from './tracking-config';

/**
 * The visitor's choice is kept in localStorage even in cookieless mode: an opt-out that
 * lasted only as long as the tab would not be one. It holds no identifier.
 */
export const granted = () => get('consent', storage()) == 'granted';

export const storeConsent = (state: 'granted' | 'denied') => put('consent', state, storage());

/**
 * Whether anything may be sent: not before init(), not after an opt-out, not when the browser
 * signals Global Privacy Control or Do Not Track (unless the site config says it does not
 * honour them: the receiver drops such batches anyway), and only after consent where the site
 * asks for it.
 */
export const allowed = () =>
	!!config &&
	get('consent', storage()) != 'denied' &&
	!(config.respectGlobalPrivacyControl && (navigator as Navigator & { globalPrivacyControl?: boolean }).globalPrivacyControl) &&
	!(config.respectDoNotTrack && navigator.doNotTrack == '1') &&
	(!config.cookieConsent || granted());
