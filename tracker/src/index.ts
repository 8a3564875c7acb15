/** The ESM build for bundlers: `import { init, track } from …`, then init({ site, endpoint }). */
export { consent, identify, init, optOut, reset, track, type TrackerOptions, type Traits } from './tracker';
