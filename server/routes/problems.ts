import type { ServerResponse } from 'node:http';

/**
 * A JSON answer without Express's ETag and freshness check: the answers of the write routes
 * are never cached, and computing a hash of each would cost the ingest path for nothing.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
	res.statusCode = status;
	res.setHeader('Content-Type', 'application/json; charset=utf-8');
	res.end(JSON.stringify(body));
}

/** Every error answer has one shape: a stable code, a sentence saying what to fix, and details. */
export function sendProblem(res: ServerResponse, status: number, error: string, message: string, extra: Record<string, unknown> = {}): void {
	sendJson(res, status, { error, message, ...extra });
}

/** What to tell a client whose body could not be read, by the body reader's error type. */
export const BODY_ERRORS = {
	'entity.too.large': 'The body is larger than 64 KB; send at most 50 events per batch',
	'charset.unsupported': 'The body must be UTF-8',
	'encoding.unsupported': 'The Content-Encoding is not supported; send the body uncompressed',
	'request.aborted': 'The request was aborted before its body arrived',
	'entity.verify.failed': 'The body could not be verified',
} as const;
