/** The ESM build for bundlers: `import { init, track } from …`, then init({ site, endpoint }). Every export is safe(): it never throws into the page. */
import * as tracker from './tracker';

export type { TrackerOptions, Traits } from './tracker';

/** Starts the tracker with a site's options (TrackerOptions), against the page's URL: it reads the site's settings from the endpoint. Only the first call counts. */
export const init = tracker.safe((options: tracker.TrackerOptions) => tracker.boot(options, location.href));
/** Calls before the site's settings arrived from the receiver wait for them; a consent choice counts at once. */
export const track = tracker.whenReady(tracker.track);
export const identify = tracker.whenReady(tracker.identify);
export const reset = tracker.whenReady(tracker.reset);
export const consent = tracker.safe(tracker.consent);
export const optOut = tracker.safe(tracker.optOut);
