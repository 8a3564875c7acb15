import { STATUS_CODES, type ServerResponse } from 'node:http';

/**
 * A JSON answer without Express's ETag and freshness check: the answers of the write routes
 * are never cached, and computing a hash of each would cost the ingest path for nothing.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
	res.statusCode = status;
	res.setHeader('Content-Type', 'application/json; charset=utf-8');
	res.end(JSON.stringify(body));
}

/**
 * Every error answer has one shape, an RFC 9457 problem document: `type` about:blank with the
 * status's phrase as `title`, the `detail` saying what to fix, and the receiver's extension members,
 * a stable `error` code to branch on, `message` (the detail again, as answers before 0.2 carried it)
 * and details such as `issues`.
 */
export function sendProblem(res: ServerResponse, status: number, error: string, message: string, extra: Record<string, unknown> = {}): void {
	res.statusCode = status;
	res.setHeader('Content-Type', PROBLEM_TYPE);
	res.end(JSON.stringify(problem(status, error, message, extra)));
}

export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

/** The problem document sendProblem sends, for answers that are passed on before they are sent (the embedded engine's). */
export function problem(status: number, error: string, message: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
	return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail: message, error, message, ...extra };
}

/** The longest piece of the request's path an answer quotes back. */
export const quotedPath = (path: string): string => path.slice(0, 200);

/** The answer to a path no route of the receiver serves (to this client). */
export function sendNoRoute(req: { method: string; path: string }, res: ServerResponse): void {
	sendProblem(res, 404, 'not_found', `No route for ${req.method} ${quotedPath(req.path)}`, { issues: [{ field: 'path', message: 'matches no route of the receiver (see the README for the routes)' }] });
}

/** A database failure the client caused (a value Postgres cannot hold) or one it can retry (the database is away or busy). */
export type DatabaseFailure = 'input' | 'unavailable';

/** Driver adapter error kinds (Prisma's driver-adapter-utils) that say the database cannot be used right now. */
const UNAVAILABLE_KINDS = new Set([
	'DatabaseNotReachable',
	'ConnectionClosed',
	'SocketTimeout',
	'TlsConnectionError',
	'TooManyConnections',
	'TransactionWriteConflict',
	'DatabaseDoesNotExist',
	'DatabaseAccessDenied',
	'AuthenticationFailed',
]);
/** Prisma's own codes for the same: server unreachable or timed out, connection closed, pool or transaction timed out. */
const UNAVAILABLE_PRISMA_CODES = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2028']);
/** SQLSTATE classes: connection exception, transaction rollback, insufficient resources, object not in prerequisite state (lock timeouts), operator intervention, system error. */
const UNAVAILABLE_SQLSTATE_CLASSES = new Set(['08', '40', '53', '55', '57', '58']);
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE']);

/**
 * Sorts an error from Prisma, its driver adapter or pg by whose it is. SQLSTATE class 22 (data
 * exception: a NUL byte, a date out of range, a number too large) is the request's fault, so it
 * must never be answered as the server's; a database that is away or overloaded is worth a retry.
 * Anything else (undefined) is a bug of the receiver.
 */
export function databaseFailure(error: unknown): DatabaseFailure | undefined {
	if (typeof error !== 'object' || error === null) return undefined;
	const { name, code, meta } = error as { name?: unknown; code?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: string; originalCode?: string } } } };
	const cause = meta?.driverAdapterError?.cause ?? (name === 'DriverAdapterError' ? (error as { cause?: { kind?: string; originalCode?: string } }).cause : undefined);
	const sqlState = cause?.originalCode ?? (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined);
	if (sqlState?.startsWith('22') || ['LengthMismatch', 'ValueOutOfRange', 'InvalidInputValue'].includes(cause?.kind ?? '')) return 'input';
	if (cause?.kind && UNAVAILABLE_KINDS.has(cause.kind)) return 'unavailable';
	if (sqlState && UNAVAILABLE_SQLSTATE_CLASSES.has(sqlState.slice(0, 2))) return 'unavailable';
	if (name === 'PrismaClientInitializationError') return 'unavailable';
	if (typeof code === 'string' && (UNAVAILABLE_PRISMA_CODES.has(code) || SOCKET_ERRORS.has(code))) return 'unavailable';
	return undefined;
}

/** Seconds a client should wait before retrying a request the database could not serve. */
export const RETRY_AFTER_SECONDS = 5;

/** The answer to a request the database could not serve right now: nothing changed, retry later. */
export function sendUnavailable(res: ServerResponse, what: string): void {
	res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
	sendProblem(res, 503, 'storage_unavailable', `The ${what} could not be completed right now and changed nothing; retry in a few seconds`);
}
