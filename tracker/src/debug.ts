import { config } from './tracking-config';

/**
 * The tracker runs inside other people's pages: nothing it does may throw into them. Every
 * entry point (public API, listeners, timers) goes through safe(); what goes wrong is told
 * only to a site that asked for it with debugMode.
 */
export const warn = (message: unknown, debugMode = config?.debugMode) => debugMode && console.warn('[tracking-crm]', message);

export const safe =
	<A extends unknown[]>(run: (...args: A) => unknown) =>
	(...args: A): void => {
		try {
			run(...args);
		} catch (error) {
			warn(error);
		}
	};

/** A window listener that never throws into the page. */
export const on = <K extends keyof WindowEventMap>(type: K, listener: (event: WindowEventMap[K]) => unknown, options?: boolean | AddEventListenerOptions) =>
	addEventListener(type, safe(listener), options);
