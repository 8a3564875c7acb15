#!/usr/bin/env node
import { openDatabase } from '../lib/db';
import { createApiKey, KeyNameTakenError, revokeApiKeys, type KeyScope, type NamedKey } from '../server/auth';

const USAGE = `Usage: node dist/scripts/api-key.js create --site <site key> --scope read|admin --name <label>
       node dist/scripts/api-key.js revoke --name <label> --site <site key>

Creates a key for the read APIs (analytics, stats) or the admin APIs (export, erase) of one
site and prints it once; only its SHA-256 is stored. Uses DATABASE_URL, or the embedded
database in DATA_DIR (default .data/pglite).

On Postgres a key works at once, also while the receiver runs. The embedded database is open in
one process at a time: while the receiver runs on it, this command refuses and prints nothing;
stop the receiver (Ctrl-C), run this, and start it again.`;

class UsageError extends Error {}

/** An option's value; the next option is never taken for it (`--name --scope read` would name a key "--scope"). */
function option(args: string[], name: string): string | undefined {
	const index = args.indexOf(`--${name}`);
	if (index < 0) return undefined;
	const value = args[index + 1];
	if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value: --${name} <${name === 'site' ? 'site key' : name === 'scope' ? 'read|admin' : 'label'}>.`);
	return value;
}

const listed = (keys: NamedKey[]) => keys.map((key) => `"${key.name}" (${key.scope})`).join(', ');

async function main(args: string[]): Promise<number> {
	const [command] = args;
	if (!command || command === '--help' || command === '-h' || command === 'help') {
		console.log(USAGE);
		return 0;
	}
	let siteKey: string | undefined;
	let name: string | undefined;
	let scope: string | undefined;
	try {
		siteKey = option(args, 'site');
		name = option(args, 'name');
		scope = option(args, 'scope');
	} catch (error) {
		if (!(error instanceof UsageError)) throw error;
		console.error(`${error.message}\n\n${USAGE}`);
		return 2;
	}
	if (!siteKey || !name) {
		console.error(`Both --site and --name are needed.\n\n${USAGE}`);
		return 2;
	}
	const db = await openDatabase();
	try {
		const site = await db.prisma.site.findUnique({ where: { key: siteKey }, select: { id: true } });
		if (!site) {
			console.error(`No site "${siteKey}" in the database; start the receiver once with its config so the site is registered.`);
			return 1;
		}
		if (command === 'create') {
			if (scope !== 'read' && scope !== 'admin') {
				console.error('--scope must be read or admin.');
				return 2;
			}
			try {
				console.log(await createApiKey(db.prisma, site.id, scope as KeyScope, name));
			} catch (error) {
				if (!(error instanceof KeyNameTakenError)) throw error;
				console.error(
					`Site "${siteKey}" already has an active key named "${name}" (its keys: ${listed(error.active)}); --name must pick one key, so revoke needs it unique. ` +
						`Choose another --name (such as --name "${name}-2"), or revoke the old key first: node dist/scripts/api-key.js revoke --site ${siteKey} --name "${name}".`,
				);
				return 1;
			}
			return 0;
		}
		if (command === 'revoke') {
			const { revoked, active } = await revokeApiKeys(db.prisma, site.id, name);
			if (revoked === 0) {
				console.error(
					active.length
						? `No active key named "${name}" on site "${siteKey}"; nothing was revoked. Its active keys: ${listed(active)}. Give one of these names with --name.`
						: `No active key named "${name}" on site "${siteKey}"; nothing was revoked. The site has no active keys.`,
				);
				return 1;
			}
			// More than one only for keys made before a name was unique per site.
			console.log(revoked === 1 ? `Revoked the key named "${name}".` : `Revoked the ${revoked} keys named "${name}" (made before key names were unique per site).`);
			return 0;
		}
		console.error(`Unknown command "${command}".\n\n${USAGE}`);
		return 2;
	} finally {
		await db.close();
	}
}

main(process.argv.slice(2)).then(
	(code) => process.exit(code),
	(error: unknown) => {
		console.error((error as Error).message);
		process.exit(1);
	},
);
