import type { IExecuteFunctions, INodeExecutionData, INodeProperties } from 'n8n-workflow';

import { crmDatabase } from '../../shared/database';
import { nodeOption } from '../../shared/items';
import { createContext } from '../helpers/context';
import * as enroll from './enroll.operation';
import * as enrollByTrigger from './enrollByTrigger.operation';
import * as handleCrmItems from './handleCrmItems.operation';
import * as handleEmailEvent from './handleEmailEvent.operation';
import * as sendDue from './sendDue.operation';

const operations = { enroll, enrollByTrigger, sendDue, handleEmailEvent, handleCrmItems };

/** Runs the operation of the node; `properties` are the node's, for errors in the builder's words. */
export async function router(this: IExecuteFunctions, properties: INodeProperties[]): Promise<INodeExecutionData[][]> {
	const operation = nodeOption<keyof typeof operations>(this, properties, 'operation');
	const { prisma, sql, credentials } = await crmDatabase(this);
	const context = createContext(prisma, sql, { properties, database: credentials });
	return [await operations[operation as keyof typeof operations].execute.call(this, context)];
}
