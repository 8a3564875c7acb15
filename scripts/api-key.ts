#!/usr/bin/env node
import { openDatabase } from '../lib/db';
import { createApiKey, type KeyScope } from '../server/auth';

const USAGE = `Usage: node dist/scripts/api-key.js create --site <site key> --scope read|admin --name <label>
       node dist/scripts/api-key.js revoke --name <label> --site <site key>

Creates a key for the read APIs (analytics, stats) or the admin APIs (export, erase) of one
site and prints it once; only its SHA-256 is stored. Uses DATABASE_URL, or the embedded
database in DATA_DIR (default .data/pglite).

On Postgres a key works at once, also while the receiver runs. The embedded database is open in
one process at a time: while the receiver runs on it, this command refuses and prints nothing;
stop the receiver (Ctrl-C), run this, and start it again.`;

function option(args: string[], name: string): string | undefined {
	const index = args.indexOf(`--${name}`);
	return index >= 0 ? args[index + 1] : undefined;
}

async function main(args: string[]): Promise<number> {
	const [command] = args;
	if (!command || command === '--help' || command === '-h' || command === 'help') {
		console.log(USAGE);
		return 0;
	}
	const siteKey = option(args, 'site');
	const name = option(args, 'name');
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
			const scope = option(args, 'scope');
			if (scope !== 'read' && scope !== 'admin') {
				console.error('--scope must be read or admin.');
				return 2;
			}
			console.log(await createApiKey(db.prisma, site.id, scope as KeyScope, name));
			return 0;
		}
		if (command === 'revoke') {
			const { count } = await db.prisma.apiKey.updateMany({ where: { siteId: site.id, name, revokedAt: null }, data: { revokedAt: new Date() } });
			console.log(`Revoked ${count} key(s) named "${name}".`);
			return count > 0 ? 0 : 1;
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
