import { NodeOperationError, type IExecuteFunctions, type INodeExecutionData } from 'n8n-workflow';

import { prismaFor } from '../../shared/database';
import { createContext } from '../helpers/context';
import * as enroll from './enroll.operation';
import * as enrollByTrigger from './enrollByTrigger.operation';
import * as handleEmailEvent from './handleEmailEvent.operation';
import * as sendDue from './sendDue.operation';

const operations = { enroll, enrollByTrigger, sendDue, handleEmailEvent };

export async function router(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
	const operation = this.getNodeParameter('operation', 0) as string;
	if (!Object.hasOwn(operations, operation)) throw new NodeOperationError(this.getNode(), `The operation "${operation}" is not supported`);
	const context = createContext(prismaFor(await this.getCredentials('postgres')));
	return [await operations[operation as keyof typeof operations].execute.call(this, context)];
}
