import { Router, type Request } from 'express';

import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
import { sendProblem } from './problems';

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const PAGES: Record<string, { title: string; body: string }> = {
	'': {
		title: 'Home',
		body: `<h1>Welcome</h1>
<p>A demo site with the tracker on it. Browse around: every page view, scroll, outbound link,
download and form goes to the receiver, and from there to the n8n workflows.</p>
<p><a href="/demo/pricing">See the plans</a> ·
<a href="/demo/guide.pdf">Download the guide (PDF)</a> ·
<a href="https://n8n.io/">An outbound link</a></p>`,
	},
	pricing: {
		title: 'Pricing',
		body: `<h1>Plans</h1><p>Starter 9 €, Pro 29 €, Clinic 99 € a month.</p>
<p style="height:1800px">A long page, so scrolling counts.</p><p><a href="/demo/contact">Talk to us</a></p>`,
	},
	app: {
		title: 'App',
		body: `<h1>A single-page app</h1>
<p>These buttons change the URL the way SPA routers do (history.pushState, replaceState, back);
each real URL change is one page view.</p>
<p><button id="step-2">Go to step 2 (push)</button> <button id="step-3">Replace with step 3</button> <button id="back">Back</button></p>
<p id="route"></p>`,
	},
	contact: {
		title: 'Contact',
		body: `<h1>Contact us</h1>
<form id="contact" method="post" action="/demo/thanks">
<p><label>First name <input name="firstName" autocomplete="given-name"></label></p>
<p><label>Email <input name="email" type="email" required autocomplete="email"></label></p>
<p><label>Company <input name="company" autocomplete="organization"></label></p>
<p><label><input type="checkbox" name="consent" value="yes"> Email me about my enquiry and offers</label></p>
<p><button type="submit">Send</button></p></form>
<p>With the box ticked (and tracking consent), the tracker sends the form as a lead; workflow 03
scores it, 05 enriches it, and 06 sends the first email of the welcome sequence.</p>`,
	},
	thanks: { title: 'Thank you', body: '<h1>Thank you</h1><p>We will be in touch. <a href="/demo/">Back home</a></p>' },
};

/**
 * Shown on every demo page: the tracker sends a form as a lead only with the visitor's consent,
 * and before it tracks at all where the site asks for consent (privacy.cookieConsent).
 */
const CONSENT_BANNER = `<p id="consent-banner">May this demo remember your visit and your enquiry? <button id="consent-yes">Accept</button> <button id="consent-no">Decline</button></p>`;

/** The demo's only script (the receiver's Content-Security-Policy allows no inline code): consent buttons and the SPA. */
const SITE_SCRIPT = `(function () {
	window.tcrm = window.tcrm || function () { (tcrm.q = tcrm.q || []).push(arguments); };
	function on(id, handler) { var element = document.getElementById(id); if (element) element.onclick = handler; }
	var banner = document.getElementById('consent-banner');
	if (localStorage.getItem('demo.consent-answered') && banner) banner.remove();
	function answer(choice) { tcrm('consent', choice); localStorage.setItem('demo.consent-answered', '1'); if (banner) banner.remove(); }
	on('consent-yes', function () { answer('granted'); });
	on('consent-no', function () { answer('denied'); });
	var route = document.getElementById('route');
	if (!route) return;
	function show() { route.textContent = 'Route: ' + location.pathname; }
	on('step-2', function () { history.pushState({}, '', '/demo/app/step-2'); show(); });
	on('step-3', function () { history.replaceState({}, '', '/demo/app/step-3'); show(); });
	on('back', function () { history.back(); });
	addEventListener('popstate', show);
	show();
})();
`;

/** The script tag's data-* attributes: the site, the endpoint and debug mode; the tracker reads the rest of the site config from the receiver. */
function trackerAttributes(site: RegisteredSite): string {
	const options: Record<string, unknown> = { site: site.key, endpoint: '/api/track', debugMode: site.config.tracking.debugMode || undefined };
	return Object.entries(options)
		.filter(([, value]) => value !== undefined)
		.map(([key, value]) => `data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}="${escape(String(value))}"`)
		.join(' ');
}

function page(site: RegisteredSite, name: string): string {
	const { title, body } = PAGES[name];
	const nav = ['', 'pricing', 'app', 'contact'].map((path) => `<a href="/demo/${path}">${escape(PAGES[path].title)}</a>`).join(' · ');
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} · ${escape(site.config.site.name ?? site.key)} demo</title>
<script defer src="${escape(site.config.tracking.scriptPath)}" ${trackerAttributes(site)}></script>
<script defer src="/demo/site.js"></script>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}nav{margin-bottom:2rem}</style>
</head><body>${CONSENT_BANNER}<nav>${nav}</nav>${body}</body></html>`;
}

/**
 * A small demo site served by the receiver itself (`npm start`, then /demo/), with the tracker
 * of the site named by DEMO_SITE (default: the first configured site). That site accepts the
 * receiver's own origins (ownOrigins in siteRegistry.ts) besides its tracking.allowedOrigins; a
 * page reached under any other name is told which origin to add.
 */
export function demoRouter({ sites, siteKey }: { sites: SiteRegistry; siteKey?: string }): Router {
	const router = Router();
	const siteOf = (req: Request) => {
		const site = siteKey ? sites.byPublicKey(siteKey) : sites.all()[0];
		return site && { site, sameOrigin: site.allowedOrigins.has(`${req.protocol}://${req.get('host')}`) };
	};
	router.get('/demo/site.js', (_req, res) => {
		res.type('text/javascript').send(SITE_SCRIPT);
	});
	router.get('/demo/guide.pdf', (_req, res) => {
		res.type('application/pdf').send('%PDF-1.4\n% demo guide\n');
	});
	router.post('/demo/thanks', (_req, res) => {
		res.redirect(303, '/demo/thanks');
	});
	router.get(['/demo', '/demo/:page', '/demo/app/:step'], (req, res) => {
		const found = siteOf(req);
		if (!found) {
			sendProblem(res, 404, 'demo_site_missing', siteKey ? `DEMO_SITE names "${siteKey}", which is not a configured site` : 'No site is configured');
			return;
		}
		const name = req.path.startsWith('/demo/app') ? 'app' : String(req.params.page ?? '');
		// Own keys only: "constructor" or "__proto__" are in every object, but they are no page.
		if (!Object.hasOwn(PAGES, name)) {
			sendProblem(res, 404, 'not_found', `No demo page ${req.path.slice(0, 200)}; try /demo/`, { issues: [{ field: 'path', message: `names no demo page; pages: ${Object.keys(PAGES).map((page) => `/demo/${page}`).join(', ')}` }] });
			return;
		}
		if (!found.sameOrigin) {
			res.setHeader('x-demo-warning', `add ${req.protocol}://${req.get('host')} to tracking.allowedOrigins of ${found.site.key}, or the tracker's requests are refused`);
		}
		res.type('html').send(page(found.site, name));
	});
	return router;
}
