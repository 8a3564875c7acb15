/**
 * The test site that scripts/run-all-tests and scripts/n8n-node-tester send their payloads for: a
 * site of its own in the CRM database, so test traffic never lands in a real site's rows, and with
 * no email sequence and no double opt-in, so no workflow mails anyone — whatever address a payload
 * holds.
 */
import { parseSiteConfig } from '../lib/config/siteConfig';
import type { SiteConfig } from '../lib/contracts';
import { describePostgresUrl, openDatabase, type Database, type PrismaClient } from '../lib/db';
import { removeSite, syncSites } from '../server/sites';
import { OperatorError, UsageError } from './workflowTools';

export const SELF_TEST_SITE = 'crm-selftest';

/** A reserved top-level domain (RFC 2606): no real site has it, so it marks the scripts' own sites. */
export const selfTestDomain = (key: string): string => `${key}.invalid`;

/** The payloads' rules, and no email sequence nor double opt-in. */
export function selfTestSiteConfig(key: string): SiteConfig {
	return parseSiteConfig(
		{
			site: { key, name: 'Self-test of scripts/run-all-tests and scripts/n8n-node-tester', domain: selfTestDomain(key) },
			tracking: { allowedOrigins: [`https://${selfTestDomain(key)}`] },
			privacy: { doubleOptIn: false },
			crm: {
				leadScoringRules: [
					{ event: 'pageview', score: 1, cap: 20, group: 'browsing' },
					{ event: 'pageview', urlPattern: '/**/pricing', score: 5, group: 'intent' },
					{ event: 'form_submit', score: 10 },
				],
				conversionRules: [{ name: 'contact-request', event: 'form_submit', value: 50, currency: 'EUR' }],
				emailSequences: [],
			},
		},
		'the self-test site',
	);
}

/** The CRM database the scripts' test site is in: the one n8n's "CRM database" credential uses. */
export async function openCrmDatabase(databaseUrl: string | undefined, script: string): Promise<Database> {
	if (!databaseUrl) {
		throw new UsageError(
			`No CRM database: set DATABASE_URL (or --database) to the database n8n's "CRM database" credential uses. ${script} sends its payloads for a test site it makes there (${SELF_TEST_SITE}), so no real site gets a row.`,
		);
	}
	try {
		return await openDatabase({ url: databaseUrl, migrate: false });
	} catch (error) {
		throw new OperatorError(`Cannot open the CRM database ${describePostgresUrl(databaseUrl)}: ${(error as Error).message.split('\n')[0]}`);
	}
}

/** The test site's row, if there is one; a site of that key that the scripts did not make is refused. */
export async function findSelfTestSite(prisma: PrismaClient, key: string, script: string): Promise<{ id: string } | null> {
	const row = await prisma.site.findUnique({ where: { key }, select: { id: true, domain: true } }).catch((error: unknown) => {
		if ((error as { code?: string }).code === 'P2021') {
			throw new OperatorError(`The CRM database has no CRM tables: point DATABASE_URL (--database) at the database n8n's "CRM database" credential uses, or migrate it first (npm run db:migrate with DATABASE_URL set).`);
		}
		throw error;
	});
	if (row && row.domain !== selfTestDomain(key)) {
		throw new OperatorError(
			`The site "${key}" in the CRM database is a real site (domain ${row.domain}): ${script} writes only into a test site it made itself (domain ${selfTestDomain(key)}). Pick another --test-site.`,
		);
	}
	return row ? { id: row.id } : null;
}

/**
 * Makes the test site the way both scripts do, or brings the one an earlier run kept to the current
 * config; `fresh` removes the earlier run's rows first. Returns the site's id.
 */
export async function prepareSelfTestSite(prisma: PrismaClient, key: string, { script, fresh }: { script: string; fresh: boolean }): Promise<string> {
	const earlier = await findSelfTestSite(prisma, key, script);
	if (earlier && fresh) await removeSite(prisma, earlier.id);
	return (await syncSites(prisma, [selfTestSiteConfig(key)])).get(key)!;
}

export interface SelfTestRows {
	leads: number;
	/** Email messages of the test site: it has no sequence, so any is a defect. */
	emails: number;
}

export async function selfTestRows(prisma: PrismaClient, siteId: string): Promise<SelfTestRows> {
	const [leads, emails] = await Promise.all([prisma.lead.count({ where: { siteId } }), prisma.emailMessage.count({ where: { siteId } })]);
	return { leads, emails };
}

/** The line a script prints when the test site has email messages, which must never happen. */
export const mailedLine = (rows: SelfTestRows): string =>
	`FAIL  the test site has ${rows.emails} email message(s): it has no sequences, so none may exist. Look at workflow 06 and the site's config.`;
