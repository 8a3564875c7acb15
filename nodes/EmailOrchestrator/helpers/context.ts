import type { PrismaClient } from '../../../lib/db/generated/client';
import { InputError, type ItemGlue } from '../../shared/items';
import { SiteResolver } from '../../shared/subjects';
import { SequenceResolver } from '../sequences';

/** What the operations of one execution share: one client, sites and sequences looked up once, and how item errors are worded. */
export interface OperationContext {
	prisma: PrismaClient;
	glue: ItemGlue;
	sites: SiteResolver;
	sequences: SequenceResolver;
}

export function createContext(prisma: PrismaClient, glue: ItemGlue): OperationContext {
	return { prisma, glue, sites: new SiteResolver(prisma), sequences: new SequenceResolver(prisma) };
}

/** The `asOf` option, or the current time; a wrong value names the parameter. */
export function nowOf(value: unknown): Date {
	if (value === undefined || value === null || value === '') return new Date();
	const now = new Date(value as string);
	if (Number.isNaN(now.getTime())) throw new InputError('options.asOf', `"${String(value)}" is not a date and time`);
	return now;
}
