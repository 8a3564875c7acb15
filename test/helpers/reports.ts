/** A report's figures, without the instant they are counted up to (rollupsForRead), which differs on every read. */
export function figuresOf<T extends { asOf: Date }>(report: T): Omit<T, 'asOf'> {
	return Object.fromEntries(Object.entries(report).filter(([key]) => key !== 'asOf')) as Omit<T, 'asOf'>;
}
