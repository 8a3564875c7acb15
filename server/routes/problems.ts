import type { Response } from 'express';

/** Every error answer has one shape: a stable code, a sentence saying what to fix, and details. */
export function sendProblem(res: Response, status: number, error: string, message: string, extra: Record<string, unknown> = {}): void {
	res.status(status).json({ error, message, ...extra });
}
