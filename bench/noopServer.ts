/**
 * The baseline for the receiver benchmark: the same Express, reading the body the same way
 * (express.text, same limit, type and charset) and answering 202 with a JSON body the way the
 * receiver does, but with no middleware, no parsing, no validation and no database. The ratio
 * against it shows what our ingest costs.
 */
import express from 'express';

import { TRACK_LIMITS } from '../lib/contracts';
import { sendJson } from '../server/routes/problems';

const app = express();
app.disable('x-powered-by');
app.post('/api/track', express.text({ type: () => true, limit: TRACK_LIMITS.maxBatchBytes, defaultCharset: 'utf-8' }), (_req, res) => {
	sendJson(res, 202, { stored: 5, duplicates: 0 });
});
app.get('/api/track', (_req, res) => {
	res.status(200).end();
});
app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
