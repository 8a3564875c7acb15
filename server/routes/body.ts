import type { IncomingMessage, ServerResponse } from 'node:http';

import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';

import { sendProblem } from './problems';

/** What one route reads as its body, so a body it cannot read is answered with that route's own limit and content. */
export interface BodyRoute {
	limitBytes: number;
	/** What the route takes, completing "send …", e.g. "at most 50 events per batch". */
	send: string;
}

/** What a body reader refuses, by body-parser's error types (the ingest route's own reader uses the same). */
export type BodyErrorType = 'entity.too.large' | 'charset.unsupported' | 'encoding.unsupported';

const size = (bytes: number) => (bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MB` : `${bytes / 1024} KB`);

/** What to tell a client whose body the route could not read. */
export function bodyErrorMessage(type: string | undefined, route: BodyRoute): string {
	switch (type) {
		case 'entity.too.large':
			return `The body is larger than ${size(route.limitBytes)}; send ${route.send}`;
		case 'charset.unsupported':
			return `The body must be UTF-8; send ${route.send} as UTF-8 (charset=utf-8 or none)`;
		case 'encoding.unsupported':
			return 'The Content-Encoding is not supported; send the body uncompressed';
		case 'request.aborted':
			return 'The request was aborted before its body arrived';
		default:
			return `The body could not be read; send ${route.send}`;
	}
}

/**
 * Why a body must not be read at all, before a byte of it is: any Content-Encoding (the
 * receiver inflates nothing, so a compressed body is refused alike on every route, never with
 * zlib's own words) or a charset other than UTF-8.
 */
export function unreadableBody(req: IncomingMessage): { status: number; type: BodyErrorType } | undefined {
	const encoding = req.headers['content-encoding'];
	if (encoding && encoding.trim().toLowerCase() !== 'identity') return { status: 415, type: 'encoding.unsupported' };
	const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1].toLowerCase();
	if (charset && charset !== 'utf-8' && charset !== 'utf8') return { status: 415, type: 'charset.unsupported' };
	return undefined;
}

/**
 * A body sent with a byte order mark: the mark is no part of the JSON (RFC 8259 §8.1 lets a parser
 * ignore it). body-parser's decoder drops it already; the readers that decode bytes themselves use this.
 */
export const withoutBom = (text: string): string => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

/** How a route answers a body it cannot read; by default a problem document naming the body. */
export type BodyRefusal = (res: Response, status: number, type: string, message: string) => void;

const problemAnswer: BodyRefusal = (res, status, type, message) => sendProblem(res, status, type, message, { issues: [{ field: 'body', message: 'could not be read' }] });

/**
 * Reads a route's body (as text, raw bytes or a urlencoded form) so a body it refuses is answered
 * by the route itself: its own limit and what to send, in its own shape (a page for a form, a
 * problem document for an API). Nothing reaches the app's error handler.
 */
export function readBodyFor(kind: 'text' | 'raw' | 'form', route: BodyRoute, refuse: BodyRefusal = problemAnswer): RequestHandler {
	const options = { limit: route.limitBytes, inflate: false };
	const parser =
		kind === 'form' ? express.urlencoded({ ...options, extended: false }) : kind === 'raw' ? express.raw({ ...options, type: () => true }) : express.text({ ...options, type: () => true, defaultCharset: 'utf-8' });
	return (req: Request, res: Response, next: NextFunction) => {
		const early = unreadableBody(req);
		if (early) {
			// The body is not read: the connection closes after the answer.
			res.setHeader('Connection', 'close');
			refuse(res, early.status, early.type, bodyErrorMessage(early.type, route));
			return;
		}
		void parser(req, res, (error?: unknown) => {
			if (!error) {
				next();
				return;
			}
			const { status, type } = error as { status?: number; type?: string };
			refuse(res, status && status >= 400 && status < 500 ? status : 400, type ?? 'invalid_body', bodyErrorMessage(type, route));
		});
	};
}

/**
 * The JSON of a body read as text, or undefined once a 400 went out: empty and malformed bodies
 * are told what to send instead.
 */
export function parseJsonBody(text: string, res: ServerResponse, send: string): unknown {
	const json = withoutBom(text);
	if (!json.trim()) {
		sendProblem(res, 400, 'empty_body', `The request body is empty; send ${send}`, { issues: [{ field: 'body', message: 'is empty' }] });
		return undefined;
	}
	try {
		return JSON.parse(json);
	} catch (error) {
		sendProblem(res, 400, 'invalid_json', `The body is not valid JSON (${(error as Error).message}); send ${send}`, { issues: [{ field: 'body', message: 'is not valid JSON' }] });
		return undefined;
	}
}
