#!/usr/bin/env node
/** Reseals the personal data of sites with privacy.encryptPii under the first key of PII_ENCRYPTION_KEYS; see USAGE. */
import { parseArgs } from 'node:util';

import { DatabaseOpenError, openDatabase } from '../lib/db';
import { piiKeyringFromEnv, PiiKeyError, type PiiKeyring } from '../lib/pii';
import { DEFAULT_BATCH_SIZE, encryptingSites, MAX_BATCH_SIZE, rotateSite, rotationSummary } from './rotate-pii-key-core';
import { OperatorError, runScript, UsageError } from './workflowTools';
import { otherHashKeyProblem, sitesPinnedToOtherHashKey } from '../lib/piiHashKey';

const USAGE = `Usage: scripts/rotate-pii-key [--site <site key>] [--batch-size <rows>]

For each site whose config has privacy.encryptPii: true, reseals under the first key of
PII_ENCRYPTION_KEYS every value of the site that is sealed with an older key:
  leads             address, names, phone, company and job title; a lead still in clear is
                    sealed and given the keyed hash of its address
  email_messages    recipient and subject
  mailbox_messages  the caught mail's recipients, subject, parts and headers
  outbox            the lead submissions, pending, dead-lettered or delivered
Values of the last three written in clear (before the site turned encryption on) stay in clear.
Each batch of rows is its own short transaction that waits at most a moment for a row another
writer holds (then lets go and is tried again): the receiver and n8n may keep running. Prints, per
site, how many rows of each table were resealed of how many read.

Rotating a key:
  1. make a key: openssl rand -base64 32
  2. put it first in PII_ENCRYPTION_KEYS, keeping the old one after it (new:<key>,old:<key>), in
     the receiver's and n8n's environment (or the Tracking CRM API credential), and restart them
  3. run this command; a second run that reseals 0 rows in every table confirms no value is left
     on an old key
  4. remove the old key from PII_ENCRYPTION_KEYS (and the credential)
PII_HASH_KEY is never rotated: suppressions of erased addresses keep only its hash.

Options:
  --site <key>          only this site (its public key)
  --batch-size <rows>   rows per transaction (1–${MAX_BATCH_SIZE}, default ${DEFAULT_BATCH_SIZE})
  -h, --help            this text

Uses DATABASE_URL, or the embedded database in DATA_DIR (default .data/pglite). Exit code 0 when
every site was resealed, 1 otherwise, 2 on bad usage.`;

function batchSizeOf(value: string | undefined): number {
	if (value === undefined) return DEFAULT_BATCH_SIZE;
	const size = Number(value);
	if (!Number.isInteger(size) || size < 1 || size > MAX_BATCH_SIZE) throw new UsageError(`--batch-size must be a whole number of rows from 1 to ${MAX_BATCH_SIZE}; got "${value}"`);
	return size;
}

async function main(argv: string[]): Promise<number> {
	const { values } = parseArgs({ args: argv, options: { site: { type: 'string' }, 'batch-size': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
	if (values.help) {
		console.log(USAGE);
		return 0;
	}
	const batchSize = batchSizeOf(values['batch-size']);
	const db = await openDatabase({ owner: 'scripts/rotate-pii-key' }).catch((error: unknown) => {
		throw error instanceof DatabaseOpenError ? new OperatorError(error.message) : error;
	});
	const stopping = new AbortController();
	const stop = () => stopping.abort(new Error('interrupted'));
	process.once('SIGINT', stop);
	process.once('SIGTERM', stop);
	try {
		// The sites first: the keys are needed, and their absence an error, only where a site seals.
		const sites = await encryptingSites(db.prisma, values.site);
		if (values.site && sites.length === 0) throw new OperatorError(`No site "${values.site}" with privacy.encryptPii: true in the database`);
		if (sites.length === 0) {
			console.log('No site has privacy.encryptPii: true; nothing to reseal');
			return 0;
		}
		let keyring: PiiKeyring;
		try {
			keyring = piiKeyringFromEnv();
		} catch (error) {
			throw error instanceof PiiKeyError ? new OperatorError(error.message) : error;
		}
		// Resealing writes each lead's hash under this key: under another than the site's, its leads would move onto it.
		const pinnedElsewhere = await sitesPinnedToOtherHashKey(db.prisma, keyring.hashKey);
		const refused = sites.filter((site) => pinnedElsewhere.has(site.id)).map((site) => site.key);
		if (refused.length > 0) throw new OperatorError(`PII_HASH_KEY: ${otherHashKeyProblem(refused)}`);
		let failed = 0;
		for (const site of sites) {
			try {
				const result = await rotateSite(db.prisma, site, keyring, { batchSize, signal: stopping.signal });
				console.log(rotationSummary(result, keyring.currentKeyId));
			} catch (error) {
				failed += 1;
				console.error(`${site.key}: stopped: ${(error as Error).message}`);
			}
		}
		return failed === 0 ? 0 : 1;
	} finally {
		await db.close();
	}
}

runScript(main, USAGE);
