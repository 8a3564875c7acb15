import { randomUUID } from 'node:crypto';

import type { IncomingMessage, ServerResponse } from 'node:http';

import type { RequestHandler } from 'express';

import type { Logger } from './logger';

export type RequestLogLevel = 'silent' | 'warn' | 'error';

/**
 * Successful requests are not logged (the volume would be the traffic itself). A 4xx is the
 * client's mistake and a 503 a state the receiver reports on purpose (already logged with its
 * cause where it happens): warnings. Any other 5xx is an error.
 */
export function requestLogLevel(statusCode: number, finished: boolean): RequestLogLevel {
	if (!finished) return 'warn';
	if (statusCode === 503 || (statusCode >= 400 && statusCode < 500)) return 'warn';
	return statusCode >= 500 ? 'error' : 'silent';
}

/** Takes the caller's X-Request-Id (at most 100 characters) or makes one, and answers with it. */
export function requestId(header: string | string[] | undefined): string {
	return (typeof header === 'string' && header.slice(0, 100)) || randomUUID();
}

/**
 * The URL as logged: the path and the names of its query parameters, never their values. A query
 * may hold a person's address (a privacy export), a visitor id or a key pasted by mistake, and a
 * log is kept and shipped where the database's erasure does not reach.
 */
export function loggedUrl(url: string | undefined): string | undefined {
	const query = url?.indexOf('?') ?? -1;
	if (!url || query < 0) return url;
	const names = url
		.slice(query + 1)
		.split('&')
		.filter(Boolean)
		.map((pair) => `${pair.split('=')[0]}=…`);
	return `${url.slice(0, query)}?${names.join('&')}`;
}

/**
 * Every request gets an id, echoed in X-Request-Id; when the answer is worth a log line, one
 * structured line carries the id, method, URL, status and time taken. Nothing is allocated for
 * a request that ends well beyond the id and one listener: the ingest route's answer is on
 * the hot path. Returns the id.
 */
export function logRequest(logger: Logger, req: IncomingMessage, res: ServerResponse): string {
	const id = requestId(req.headers['x-request-id']);
	res.setHeader('x-request-id', id);
	const started = Date.now();
	res.once('close', () => {
		const level = requestLogLevel(res.statusCode, res.writableFinished);
		if (level === 'silent') return;
		logger[level](
			{ req: { id, method: req.method, url: loggedUrl(req.url) }, res: { statusCode: res.statusCode }, responseTime: Date.now() - started },
			res.writableFinished ? 'request completed' : 'request aborted before the answer was sent',
		);
	});
	return id;
}

/** logRequest for the Express routes, with the id on the request as `req.id`. */
export function requestLog(logger: Logger): RequestHandler {
	return (req, res, next) => {
		(req as typeof req & { id: string }).id = logRequest(logger, req, res);
		next();
	};
}
