/**
 * A problem with one item that the builder fixes in the editor: the one input error of every node
 * and domain module. `field` is a parameter's name (`siteKey`, `options.asOf`) or, when no
 * parameter has that name, a field of the input item (`lead.email`); the item loop
 * (nodes/shared/items.ts) words it with the parameter's label, as the editor shows it.
 */
export class InputError extends Error {
	constructor(
		readonly field: string,
		message: string,
	) {
		super(message);
	}
}
