import { Router } from 'express';

import { openApiDocument } from '../openapi/document';
import { REFERENCE_CSP, REFERENCE_CSS, referencePage } from '../openapi/page';
import type { SiteRegistry } from '../siteRegistry';

const STYLESHEET = '/docs/api.css';

/**
 * The API reference: the OpenAPI 3.1 document at /api/openapi.json for tools, and the same
 * document as a page for people at /docs/api. Both are built once, at start: the routes and the
 * sites' script paths they describe are fixed for the receiver's lifetime.
 */
export function apiReferenceRouter({ sites, version }: { sites: SiteRegistry; version: string }): Router {
	const router = Router();
	const document = openApiDocument({ version, scriptPaths: [...new Set(sites.all().map((site) => site.config.tracking.scriptPath))] });
	const json = JSON.stringify(document);
	const page = referencePage(document, STYLESHEET);

	router.get('/api/openapi.json', (_req, res) => {
		// Public and the same for everyone: API tools on other origins (editors, code generators) may read it.
		res.set({ 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-cache' });
		res.type('json').send(json);
	});
	router.get('/docs/api', (_req, res) => {
		res.set({ 'Content-Security-Policy': REFERENCE_CSP, 'Cache-Control': 'no-cache' });
		res.type('html').send(page);
	});
	router.get(STYLESHEET, (_req, res) => {
		res.set('Cache-Control', 'no-cache');
		res.type('css').send(REFERENCE_CSS);
	});
	return router;
}
