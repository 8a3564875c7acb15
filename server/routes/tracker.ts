import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { Router } from 'express';
import { z } from 'zod/v4';

import { trackerSettings } from '../../lib/contracts/trackerSettings';
import { privacySignal } from '../ingest/normalize';
import type { SiteRegistry } from '../siteRegistry';
import { parseQuery, text } from './inputs';
import { sendProblem } from './problems';

/** Where `npm run build:tracker` writes the script-tag build: beside the sources, and from dist/server/routes as compiled. */
const CANDIDATES = [path.resolve(__dirname, '../../tracker/dist/t.js'), path.resolve(__dirname, '../../../tracker/dist/t.js')];

/**
 * The script URL carries no version, so a cached copy is trusted for a day and then revalidated
 * with its ETag (a 304 costs no body); stale-while-revalidate serves the old one meanwhile. A new
 * tracker thus reaches every visitor within a day without making them wait for it.
 */
const CACHE_CONTROL = 'public, max-age=86400, stale-while-revalidate=604800';

/**
 * A page asks for its settings on every load: the browser's cache answers for five minutes, then
 * revalidates with the ETag in the background. A changed site config reaches visitors within
 * minutes (after a receiver restart, which loads it).
 */
const SETTINGS_CACHE_CONTROL = 'public, max-age=300, stale-while-revalidate=86400';

/** Other parameters are let through: a page may add a cache buster to the settings URL. */
export const settingsQuery = z.object({ site: text(64) });

/** The build as a browser may receive it: compressed by the tracker's build (t.js.br, t.js.gz) when those files are there. */
interface Representation {
	body: Buffer;
	etag: string;
}

const ENCODINGS = ['br', 'gzip'] as const;
type Encoding = (typeof ENCODINGS)[number];
const EXTENSION: Record<Encoding, string> = { br: '.br', gzip: '.gz' };

interface Built {
	mtimeMs: number;
	identity: Representation;
	encoded: Partial<Record<Encoding, Representation>>;
}

const tagOf = (body: Buffer, suffix = '') => `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}${suffix}"`;

/** A compressed copy counts only when the build wrote it with (or after) this t.js. */
function encodedCopy(file: string, encoding: Encoding, scriptMtimeMs: number): Representation | undefined {
	try {
		if (statSync(file + EXTENSION[encoding]).mtimeMs < scriptMtimeMs) return undefined;
		const body = readFileSync(file + EXTENSION[encoding]);
		return { body, etag: tagOf(body, `-${encoding}`) };
	} catch {
		return undefined;
	}
}

/**
 * Serves the tracker at each site's `tracking.scriptPath` (default /t.js), first-party to the
 * receiver so that no visitor's browser talks to a third party. The file is read again only when
 * it changed on disk, so a rebuild is served without a restart. Browsers that accept brotli or gzip
 * get the build's compressed copy (about half the bytes), each with its own ETag.
 */
export function trackerRouter({ sites, scriptFile }: { sites: SiteRegistry; /** Another build to serve instead (tests). */ scriptFile?: string }): Router {
	const router = Router();
	const candidates = scriptFile ? [scriptFile] : CANDIDATES;
	let built: Built | undefined;

	const load = (): Built | undefined => {
		for (const file of candidates) {
			let mtimeMs: number;
			try {
				mtimeMs = statSync(file).mtimeMs;
			} catch {
				continue;
			}
			if (built?.mtimeMs !== mtimeMs) {
				const body = readFileSync(file);
				const encoded: Built['encoded'] = {};
				for (const encoding of ENCODINGS) {
					const copy = encodedCopy(file, encoding, mtimeMs);
					if (copy) encoded[encoding] = copy;
				}
				built = { mtimeMs, identity: { body, etag: tagOf(body) }, encoded };
			}
			return built;
		}
		return undefined;
	};

	const paths = [...new Set(sites.all().map((site) => site.config.tracking.scriptPath))];
	router.get(paths, (req, res) => {
		const script = load();
		if (!script) {
			sendProblem(res, 404, 'tracker_not_built', 'The tracker script is not built; run "npm run build:tracker" (or "npm run build") on the receiver');
			return;
		}
		const origin = req.headers.origin;
		// A plain <script> needs no CORS; one with crossorigin (for Subresource Integrity) does, from an allowed site.
		if (origin && sites.isKnownOrigin(origin)) res.setHeader('Access-Control-Allow-Origin', origin);
		res.setHeader('Vary', 'Origin, Accept-Encoding');
		// Pages that isolate themselves (COEP require-corp) load only resources that opt in.
		res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
		res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
		res.setHeader('Cache-Control', CACHE_CONTROL);
		// Ours is the choice among what the browser accepts: brotli first, the smaller of the two.
		const encoding = ENCODINGS.find((candidate) => script.encoded[candidate] && req.acceptsEncodings(candidate) === candidate);
		const chosen = encoding ? script.encoded[encoding]! : script.identity;
		if (encoding) res.setHeader('Content-Encoding', encoding);
		res.setHeader('ETag', chosen.etag);
		if (req.fresh) {
			res.status(304).end();
			return;
		}
		res.send(chosen.body);
	});
	/**
	 * The tracker's settings (lib/contracts/trackerSettings.ts), on the endpoint it sends its events
	 * to: a site that proxies /api/track through its own domain proxies both. Only the site's own
	 * origins may read them, as only they may send events. A browser whose Sec-GPC or DNT header
	 * the site honours gets none (204), and so tracks nothing.
	 *
	 * Every answer is readable by the page that asked, refusals included: a refusal holds nothing
	 * but what to fix (the data-site value, tracking.allowedOrigins), and a page the browser may not
	 * read it for shows the site owner a CORS failure in the console and the network panel instead.
	 */
	const settings = new Map(sites.all().map((site) => [site.key, JSON.stringify(trackerSettings(site.config))]));
	router.get('/api/track', (req, res) => {
		const origin = req.headers.origin;
		res.setHeader('Vary', 'Origin, Sec-GPC, DNT');
		if (origin) res.setHeader('Access-Control-Allow-Origin', origin);
		const query = parseQuery(settingsQuery, req, res, 'invalid_parameter');
		if (!query) return;
		const site = sites.byPublicKey(query.site);
		if (!site) {
			sendProblem(res, 404, 'unknown_site', 'No site has this key; use the data-site value of your script tag', { issues: [{ field: 'site', message: 'is not a known site key' }] });
			return;
		}
		if (origin && !site.allowedOrigins.has(origin)) {
			sendProblem(res, 403, 'origin_not_allowed', `Origin ${origin.slice(0, 200)} may not track this site; add it to tracking.allowedOrigins`, {
				issues: [{ field: 'Origin', message: 'is not in the tracking.allowedOrigins of this site' }],
			});
			return;
		}
		res.setHeader('Cache-Control', SETTINGS_CACHE_CONTROL);
		if (privacySignal(req.headers, site.config.privacy)) {
			res.status(204).end();
			return;
		}
		res.type('json').send(settings.get(site.key));
	});
	return router;
}
