/** The ESM build for bundlers: `import { init, track } from …`, then init({ site, endpoint }). Every export is safe(): it never throws into the page. */
import * as tracker from './tracker';

export type { TrackerOptions, Traits } from './tracker';

/** Starts the tracker with a site's options (TrackerOptions), against the page's URL. Only the first call counts. */
export const init = tracker.safe((options: tracker.TrackerOptions) => tracker.boot(options, location.href));
export const track = tracker.safe(tracker.track);
export const identify = tracker.safe(tracker.identify);
export const consent = tracker.safe(tracker.consent);
export const optOut = tracker.safe(tracker.optOut);
export const reset = tracker.safe(tracker.reset);
