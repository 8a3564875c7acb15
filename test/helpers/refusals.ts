import { parseSiteConfig, SiteConfigError } from '../../lib/config/siteConfig';
import { readSettings, SettingsError } from '../../server/settings';

/** The error a site config is refused with, as the receiver loads config/site.json; fails the test when it is accepted. */
export function siteConfigRejection(input: unknown): SiteConfigError {
	try {
		parseSiteConfig(input, 'config/site.json');
	} catch (error) {
		if (error instanceof SiteConfigError) return error;
		throw error;
	}
	throw new Error('the config was accepted');
}

/** The message a refused environment stops the receiver's start with; fails the test when it is accepted. */
export function settingsRefusal(env: NodeJS.ProcessEnv): string {
	try {
		readSettings(env);
	} catch (error) {
		expect(error).toBeInstanceOf(SettingsError);
		return (error as Error).message;
	}
	throw new Error('the settings were accepted');
}
