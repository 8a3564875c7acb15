import { config } from './tracking-config';

/**
 * JSON values under `tcrm.` keys in Web Storage: the configured store (localStorage, or
 * sessionStorage in cookieless mode, where nothing outlives the tab) unless one is named.
 * Where storage is blocked (privacy settings, sandboxed iframes) values live in memory for the
 * life of the page, so tracking degrades to one page instead of failing.
 */
const memory: Record<string, string> = {};

export function storage(forTabOnly?: unknown): Storage {
	try {
		// Reading the property is what throws where storage is blocked.
		return forTabOnly ? sessionStorage : localStorage;
	} catch {
		return { getItem: (key: string) => memory[key], setItem: (key: string, value: string) => (memory[key] = value), removeItem: (key: string) => delete memory[key] } as unknown as Storage;
	}
}

export function get<T>(key: string, store = config!.store): T | undefined {
	try {
		return JSON.parse(store.getItem(`tcrm.${key}`)!) ?? undefined;
	} catch {
		return undefined;
	}
}

export const put = (key: string, value: unknown, store = config!.store) => store.setItem(`tcrm.${key}`, JSON.stringify(value));

export const drop = (key: string, store = config!.store) => store.removeItem(`tcrm.${key}`);
