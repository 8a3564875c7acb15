import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string } = {}): Logger {
	return pino({
		level: options.level ?? process.env.LOG_LEVEL ?? 'info',
		base: { service: 'tracking-crm-receiver' },
		// Keys and addresses must never reach log storage, whatever a handler logs.
		redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie', 'req.remoteAddress'],
	});
}
