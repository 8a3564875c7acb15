import {
	NodeOperationError,
	type ICredentialDataDecryptedObject,
	type IDataObject,
	type IExecuteFunctions,
	type INodeExecutionData,
	type INodeProperties,
} from 'n8n-workflow';

import { databaseProblem } from './database';
import { InputError } from './inputError';
import { ErasedPerson, logErasedItems } from './leads';
import { optionParameter } from './parameters';

export { InputError };

/** An InputError, for node files (n8n's lint rules allow only n8n's error classes after `throw new`). */
export function inputError(field: string, message: string): InputError {
	return new InputError(field, message);
}

/**
 * The label the editor shows for a parameter path such as `options.asOf`, if the node has it. A
 * name can be declared once per operation, with different options; any declaration that has the
 * whole path answers.
 */
export function labelOf(properties: readonly INodeProperties[], path: string): string | undefined {
	const [name, ...rest] = path.split('.');
	for (const property of properties) {
		if (property.name !== name) continue;
		if (rest.length === 0) return property.displayName;
		const options = ((property.options ?? []) as Array<Partial<INodeProperties>>).filter(
			(option): option is INodeProperties => typeof option.displayName === 'string' && typeof option.name === 'string',
		);
		const inner = labelOf(options, rest.join('.'));
		if (inner !== undefined) return `${property.displayName} › ${inner}`;
	}
	return undefined;
}

/** What the item loop needs to word errors: the node's parameters, and its database credential. */
export interface ItemGlue {
	properties: readonly INodeProperties[];
	database?: ICredentialDataDecryptedObject;
}

/** The error n8n shows for a failed item, in the builder's words. */
export function nodeErrorOf(context: IExecuteFunctions, glue: ItemGlue, error: unknown, itemIndex: number): NodeOperationError {
	// Already worded for the builder, with its description.
	if (error instanceof NodeOperationError) return error;
	const problem = glue.database ? databaseProblem(error, glue.database) : undefined;
	if (problem) return new NodeOperationError(context.getNode(), problem.message, { itemIndex, description: problem.description });
	const message = (error as Error | undefined)?.message ?? 'The item was not processed';
	const field = error instanceof InputError ? error.field : undefined;
	if (field === undefined || field.startsWith('credentials.')) return new NodeOperationError(context.getNode(), message, { itemIndex });
	const label = labelOf(glue.properties, field);
	return new NodeOperationError(context.getNode(), label ? `${label}: ${message}` : `Field "${field}": ${message}`, { itemIndex });
}

/**
 * A setting that is the same for every item (Operation, Input), read once and checked against the
 * options its list offers: any other value stops the node naming the field, before anything is
 * read or written, rather than running some other operation.
 */
export function nodeOption<T extends string>(context: IExecuteFunctions, properties: readonly INodeProperties[], name: string): T {
	try {
		return optionParameter<T>(context, properties, name, 0);
	} catch (error) {
		throw nodeErrorOf(context, { properties }, error, 0);
	}
}

/**
 * A failed item under n8n's conventions: the node stops with an error naming the item, or, with
 * Continue On Fail (Using Error Output), the item goes on as `{ error }` paired to its input.
 */
export function failedItem(context: IExecuteFunctions, glue: ItemGlue, error: unknown, itemIndex: number): INodeExecutionData {
	const nodeError = nodeErrorOf(context, glue, error, itemIndex);
	if (!context.continueOnFail()) throw nodeError;
	return { json: { error: nodeError.message }, pairedItem: { item: itemIndex } };
}

/**
 * Runs `run` for every input item: outputs paired to their input, failures as failedItem. An item
 * whose lead was erased ({@link ErasedPerson}) is left out, and the log says how many were.
 */
export async function forEachItem(
	this: IExecuteFunctions,
	glue: ItemGlue,
	run: (itemIndex: number) => Promise<IDataObject[]>,
): Promise<INodeExecutionData[]> {
	const output: INodeExecutionData[] = [];
	const items = this.getInputData();
	let erased = 0;
	for (let i = 0; i < items.length; i++) {
		try {
			for (const json of await run(i)) output.push({ json, pairedItem: { item: i } });
		} catch (error) {
			if (error instanceof ErasedPerson) erased += 1;
			else output.push(failedItem(this, glue, error, i));
		}
	}
	logErasedItems(this, erased);
	return output;
}
