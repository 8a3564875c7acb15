import { NodeOperationError, type IDataObject, type IExecuteFunctions, type INodeExecutionData } from 'n8n-workflow';

import type { PrismaClient } from '../../../lib/db/generated/client';
import { SiteResolver, SubjectNotFoundError } from '../../shared/subjects';
import { SequenceResolver } from '../sequences';

/** What the operations of one execution share: one client, and sites and sequences looked up once. */
export interface OperationContext {
	prisma: PrismaClient;
	sites: SiteResolver;
	sequences: SequenceResolver;
}

export function createContext(prisma: PrismaClient): OperationContext {
	return { prisma, sites: new SiteResolver(prisma), sequences: new SequenceResolver(prisma) };
}

/** A problem with one item that names the parameter to fix. */
export class ParameterError extends Error {
	constructor(
		readonly field: string,
		message: string,
	) {
		super(message);
	}
}

/** The `asOf` option, or the current time; a wrong value names the parameter. */
export function nowOf(value: unknown): Date {
	if (value === undefined || value === null || value === '') return new Date();
	const now = new Date(value as string);
	if (Number.isNaN(now.getTime())) throw new ParameterError('options.asOf', `"${String(value)}" is not a date and time`);
	return now;
}

/**
 * Runs `run` for every input item with n8n's per-item conventions: outputs paired to their
 * input, errors naming the item and parameter, and under Continue On Fail an error item instead
 * of a stopped workflow.
 */
export async function forEachItem(this: IExecuteFunctions, run: (itemIndex: number) => Promise<IDataObject[]>): Promise<INodeExecutionData[]> {
	const output: INodeExecutionData[] = [];
	const items = this.getInputData();
	for (let i = 0; i < items.length; i++) {
		try {
			for (const json of await run(i)) output.push({ json, pairedItem: { item: i } });
		} catch (error) {
			const message = error instanceof SubjectNotFoundError || error instanceof ParameterError ? `Parameter "${error.field}": ${error.message}` : (error as Error).message;
			if (this.continueOnFail()) {
				output.push({ json: { error: message }, pairedItem: { item: i } });
				continue;
			}
			throw new NodeOperationError(this.getNode(), message, { itemIndex: i });
		}
	}
	return output;
}
