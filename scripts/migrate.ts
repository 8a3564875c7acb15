#!/usr/bin/env node
import path from 'node:path';

import { DatabaseOpenError, describePostgresUrl, openDatabase } from '../lib/db';
import { createMigration, diffMigrationsToSchema, isEmptyMigrationScript } from '../lib/db/migrator';
import { checkedDatabaseUrl } from '../lib/db/databaseUrl';

const USAGE = `Usage: node dist/scripts/migrate.js <command>

Prisma migrations without Prisma's native engine (it runs as WebAssembly), so it works offline.

Commands:
  deploy         Apply the migrations in prisma/migrations that the database has not run yet,
                 recorded in _prisma_migrations like \`prisma migrate deploy\`.
                 Database: DATABASE_URL (postgresql://user:password@host:5432/db) when set,
                 otherwise the embedded PGlite database in DATA_DIR (default .data/pglite).
                 The receiver applies them itself when it starts. The embedded database is
                 open in one process at a time: while the receiver runs on it, this refuses.
  create <name>  Write prisma/migrations/<timestamp>_<name>/migration.sql with what
                 prisma/schema.prisma adds to the migrations. Needs no database server.
  diff           Print that SQL; exit 1 when the migrations do not match the schema.
  help           Show this text (also --help, -h).`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
	const [command, ...rest] = argv;
	switch (command) {
		case undefined:
		case 'help':
		case '--help':
		case '-h':
			console.log(USAGE);
			return 0;
		case 'deploy':
			expectNoArguments(command, rest);
			return deploy();
		case 'create':
			if (rest.length === 0) throw new UsageError('"create" needs a migration name.');
			return create(rest.join(' '));
		case 'diff':
			expectNoArguments(command, rest);
			return diff();
		default:
			throw new UsageError(`Unknown command "${command}".`);
	}
}

function expectNoArguments(command: string, args: string[]): void {
	if (args.length > 0) throw new UsageError(`"${command}" takes no arguments, got ${args.join(' ')}.`);
}

async function deploy(): Promise<number> {
	const url = process.env.DATABASE_URL;
	const checked = url ? checkedDatabaseUrl(url, 'DATABASE_URL') : undefined;
	if (typeof checked === 'string') throw new UsageError(checked);
	let db;
	try {
		db = await openDatabase({ migrate: true });
	} catch (error) {
		if (error instanceof DatabaseOpenError) throw error;
		const where = url ? `the database at ${describePostgresUrl(url)} (DATABASE_URL)` : 'the embedded database (DATA_DIR, default .data/pglite)';
		throw new Error(`Could not migrate ${where}: ${engineMessage(error)}`);
	}
	try {
		const applied = db.appliedMigrations;
		console.log(
			applied.length === 0
				? `${db.location}: no pending migrations.`
				: `${db.location}: applied ${applied.length} migration(s):\n${applied.map((name) => `  ${name}`).join('\n')}`,
		);
		return 0;
	} finally {
		await db.close();
	}
}

async function create(name: string): Promise<number> {
	const folder = await createMigration(name);
	console.log(folder ? `Created ${path.relative(process.cwd(), path.join(folder, 'migration.sql'))}` : 'The migrations already match the schema; nothing to create.');
	return 0;
}

async function diff(): Promise<number> {
	const sql = await diffMigrationsToSchema();
	if (isEmptyMigrationScript(sql)) {
		console.error('The migrations match the schema.');
		return 0;
	}
	process.stdout.write(sql.endsWith('\n') ? sql : `${sql}\n`);
	console.error('The migrations do not match the schema; run "create <name>" to add a migration.');
	return 1;
}

/**
 * Engine errors carry a Rust span trace after the message ("\n   0: schema_engine_wasm::…"); users
 * need the message, and the failing migration's name, which only the trace holds.
 */
function engineMessage(error: unknown): string {
	const text = error instanceof Error ? error.message : String(error);
	const [message, trace = ''] = text.split(/\n\s+0: /, 2);
	const migration = /migration_name="([^"]+)"/.exec(trace)?.[1];
	return migration ? `migration ${migration} failed: ${message.trim()}` : message.trim();
}

main(process.argv.slice(2)).then(
	(code) => {
		process.exitCode = code;
	},
	// Exit outright: a failed step can leave its database handle open (an embedded PGlite keeps
	// re-arming timers), and the command is over either way.
	(error: unknown) => {
		if (error instanceof UsageError) {
			console.error(`${error.message}\n\n${USAGE}`);
			process.exit(2);
		}
		console.error(`migrate: ${engineMessage(error)}`);
		process.exit(1);
	},
);
