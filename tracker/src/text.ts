/**
 * A string the receiver accepts: without the control characters it refuses and within the
 * contract's length. The receiver refuses a whole batch for one bad field, so none is sent.
 */
// eslint-disable-next-line no-control-regex
export const clip = (value: string, max: number) => value.replace(/[\0-\b\v\f\x0e-\x1f\x7f]/g, '').slice(0, max);
