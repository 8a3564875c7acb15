/**
 * A database that cannot be opened for a reason its user can fix. The message is one line that
 * names the database and the fix, so a command can print it as it is, without a stack.
 */
export class DatabaseOpenError extends Error {
	override name = 'DatabaseOpenError';
}

/** Who holds an embedded data folder, as its lock file records it. */
export interface DataDirHolder {
	pid: number;
	/** What the holder runs, e.g. "the receiver" or "dist/scripts/api-key.js create". */
	owner: string;
	/** When it opened the folder (ISO 8601). */
	since: string;
	/**
	 * Which process had the pid (boot and start time, where /proc tells): a pid is reused, and a
	 * receiver restarted in a container gets the same pid its dead predecessor wrote here.
	 */
	incarnation?: string;
}

/**
 * PGlite is one process's database: a second process that opens the same folder writes into pages
 * the first one overwrites, so its writes are lost without an error. One process owns a folder.
 */
export class EmbeddedDatabaseBusyError extends DatabaseOpenError {
	override name = 'EmbeddedDatabaseBusyError';

	constructor(
		readonly dataDir: string,
		readonly lockFile: string,
		readonly holder: DataDirHolder,
	) {
		const who = holder.pid === process.pid ? 'this process' : `${holder.owner} (pid ${holder.pid}, since ${holder.since.replace(/\.\d+Z$/, 'Z')})`;
		super(
			`The embedded database in ${dataDir} is open in ${who}, and only one process may open it: ` +
				'stop that process (Ctrl-C in its terminal) and run this again, or run on Postgres with DATABASE_URL.',
		);
	}
}

/** What the `pg` driver's connect error means for the user, in the words of one line. */
export function describeConnectError(where: string, error: unknown): string {
	const { code, message = String(error) } = (error ?? {}) as { code?: string; message?: string };
	const unreachable = (why: string) => `Cannot reach the database at ${where} (${why}); start Postgres or fix DATABASE_URL.`;
	switch (code) {
		case 'ECONNREFUSED':
			return unreachable('connection refused');
		case 'ENOTFOUND':
		case 'EAI_AGAIN':
			return unreachable('host name not found');
		case 'EHOSTUNREACH':
		case 'ENETUNREACH':
			return unreachable('no route to the host');
		case 'ETIMEDOUT':
			return unreachable('no answer');
		case '3D000':
			return `The database at ${where} does not exist (${message}); create it (e.g. createdb) or fix the database name in DATABASE_URL.`;
		case '28P01':
		case '28000':
			return `Postgres at ${where} refused the login (${message}); fix the user or password in DATABASE_URL.`;
		case '57P03':
			return `Postgres at ${where} is starting up or shutting down (${message}); try again in a moment.`;
	}
	if (message === 'timeout expired') return unreachable('no answer');
	if (/^Connection terminated/.test(message)) return unreachable('the server closed the connection before answering');
	return `Cannot open the database at ${where} (${message}); check DATABASE_URL.`;
}
