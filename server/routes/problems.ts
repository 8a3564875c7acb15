import type { Response } from 'express';

/**
 * A JSON answer without Express's ETag and freshness check: the answers of the write routes
 * are never cached, and computing a hash of each would cost the ingest path for nothing.
 */
export function sendJson(res: Response, status: number, body: unknown): void {
	res.statusCode = status;
	res.setHeader('Content-Type', 'application/json; charset=utf-8');
	res.end(JSON.stringify(body));
}

/** Every error answer has one shape: a stable code, a sentence saying what to fix, and details. */
export function sendProblem(res: Response, status: number, error: string, message: string, extra: Record<string, unknown> = {}): void {
	sendJson(res, status, { error, message, ...extra });
}
