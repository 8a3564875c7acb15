/**
 * The baseline for the receiver benchmark: Express with the same body reading and JSON answer
 * but no validation, no database. The ratio against it shows what our ingest costs.
 */
import express from 'express';

const app = express();
app.disable('x-powered-by');
app.post('/api/track', express.text({ type: () => true, limit: 64 * 1024 }), (_req, res) => {
	res.status(202).json({ stored: 0, duplicates: 0 });
});
app.get('/api/track', (_req, res) => {
	res.status(200).end();
});
app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
