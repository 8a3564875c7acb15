import { NodeOperationError, type ICredentialDataDecryptedObject, type IExecuteFunctions } from 'n8n-workflow';

import type { PrismaClient } from '../../../lib/db/generated/client';
import type { RawDatabase } from '../../../lib/db/rawSql';
import { type ItemGlue } from '../../shared/items';
import { checkedTime } from '../../shared/parameters';
import { SiteResolver } from '../../shared/subjects';
import { SequenceResolver } from '../sequences';

/** What the operations of one execution share: one client, sites and sequences looked up once, and how item errors are worded. */
export interface OperationContext {
	prisma: PrismaClient;
	glue: ItemGlue;
	sites: SiteResolver;
	sequences: SequenceResolver;
}

export function createContext(prisma: PrismaClient, sql: RawDatabase, glue: ItemGlue): OperationContext {
	return { prisma, glue, sites: new SiteResolver(sql), sequences: new SequenceResolver(prisma) };
}

/**
 * The Tracking CRM API credential of Send Due and Enroll by Trigger and Send, which sign their
 * emails' tracking and unsubscribe links with its Email Token Secret. The node takes it as optional
 * (EmailOrchestrator.node.ts), so these operations say themselves that it is missing.
 */
export async function apiCredentialOf(context: IExecuteFunctions): Promise<ICredentialDataDecryptedObject> {
	if (!context.getNode().credentials?.trackingCrmApi) {
		throw new NodeOperationError(context.getNode(), 'No Tracking CRM API credential: Send Due and Enroll by Trigger and Send sign the tracking and unsubscribe links of their emails with its Email Token Secret', {
			description: 'Select the receiver’s Tracking CRM API credential in the node’s “Credential to connect with” (Tracking CRM API).',
		});
	}
	return await context.getCredentials('trackingCrmApi');
}

/**
 * A run's clock: the As Of time, fixed, for a backfill; else the wall clock, read anew each time
 * the run reaches its next piece of work.
 */
export function clockOf(value: unknown): () => Date {
	if (value === undefined || value === null || value === '') return () => new Date();
	const at = nowOf(value);
	return () => at;
}

/** The `asOf` option, or the current time; a wrong value names the parameter. */
export function nowOf(value: unknown): Date {
	return checkedTime('options.asOf', value) ?? new Date();
}
