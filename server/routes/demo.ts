import { Router, type Request, type Response } from 'express';
import { z } from 'zod/v4';

import type { PrismaClient } from '../../lib/db';
import { scoreExplanation, type RuleExplanation } from '../analytics/leads';
import { MESSAGE_SUBJECT_FIELD, siteCipher } from '../../lib/pii';
import { isLocalRequest } from '../localOnly';
import type { RegisteredSite, SiteRegistry } from '../siteRegistry';
import { parseQuery } from './inputs';
import { sendProblem } from './problems';

const escape = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const PAGES: Record<string, { title: string; body: string }> = {
	'': {
		title: 'Home',
		body: `<h1>Welcome</h1>
<p>A demo site with the tracker on it. Browse around: every page view, scroll, outbound link,
download and form goes to the receiver, and from there to the n8n workflows. The panel in the
corner shows what the CRM saw of your visit, and why the receiver refuses it if it does.</p>
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

/**
 * The demo's only script (the receiver's Content-Security-Policy allows no inline code): consent
 * buttons, the SPA, and the panel that shows what the CRM saw of this browser. The panel reads
 * GET /demo/crm every two seconds with the tracker's anonymous id (tcrm.id in localStorage, or in
 * sessionStorage in cookieless mode). When the receiver refuses the tracker (its settings, or a
 * batch or lead it posts: the demo wraps fetch to see the answers the tracker ignores), the panel
 * says why in the receiver's own words, so a refused page never looks like a working one.
 */
const SITE_SCRIPT = `(function () {
	'use strict';
	window.tcrm = window.tcrm || function () { (tcrm.q = tcrm.q || []).push(arguments); };
	function on(id, handler) { var element = document.getElementById(id); if (element) element.onclick = handler; }
	function stored(key) { try { return JSON.parse(localStorage.getItem(key) || sessionStorage.getItem(key)); } catch (error) { return null; } }

	var banner = document.getElementById('consent-banner');
	if (localStorage.getItem('demo.consent-answered') && banner) banner.remove();
	function answer(choice) { tcrm('consent', choice); localStorage.setItem('demo.consent-answered', '1'); if (banner) banner.remove(); draw(); }
	on('consent-yes', function () { answer('granted'); });
	on('consent-no', function () { answer('denied'); });

	var route = document.getElementById('route');
	if (route) {
		var show = function () { route.textContent = 'Route: ' + location.pathname; };
		on('step-2', function () { history.pushState({}, '', '/demo/app/step-2'); show(); });
		on('step-3', function () { history.replaceState({}, '', '/demo/app/step-3'); show(); });
		on('back', function () { history.back(); });
		addEventListener('popstate', show);
		show();
	}

	var panel = document.getElementById('crm-panel');
	var tag = document.querySelector('script[data-site]');
	if (!panel || !tag) return;
	var endpoint = new URL(tag.dataset.endpoint || '/api/track', tag.src).href;
	/** What the receiver said when it refused the tracker, in words; '' while it accepts. */
	var refusal = '';
	var settings = null;

	function refused(status, request, body) {
		var why = body && body.message ? body.message : 'the receiver answered ' + status;
		refusal = 'Refused (' + status + ' to ' + request + '): ' + why;
		draw();
	}
	fetch(endpoint + '?site=' + encodeURIComponent(tag.dataset.site)).then(function (response) {
		if (response.status === 204) {
			refusal = 'Not tracked (204 to GET /api/track): your browser sends Global Privacy Control or Do Not Track, and this site honours it';
			return draw();
		}
		// Drawn at once: the consent line must not wait for the next poll, two seconds away.
		return response.json().then(function (body) { if (response.ok) { settings = body; draw(); } else refused(response.status, 'GET /api/track', body); });
	}).catch(function () { refusal = 'The receiver cannot be reached: nothing is tracked'; draw(); });

	var send = window.fetch;
	window.fetch = function (resource, init) {
		var sent = send.apply(this, arguments);
		var url = String(resource && resource.url || resource);
		if (init && init.method === 'POST' && url.indexOf(new URL('.', endpoint).href) === 0) {
			var request = 'POST ' + new URL(url).pathname;
			sent.then(function (response) {
				return response.clone().json().then(function (body) {
					if (!response.ok) refused(response.status, request, body);
					else if (body.reason) refused(response.status, request, { message: 'the receiver stored nothing: ' + body.reason });
					else if (refusal) { refusal = ''; draw(); }
				});
			}, function () { refusal = 'The receiver did not answer ' + request + '; the tracker keeps the events and retries'; draw(); }).catch(function () {});
		}
		return sent;
	};

	function add(parent, name, content, className) {
		var element = document.createElement(name);
		if (content !== undefined) element.textContent = content;
		if (className) element.className = className;
		parent.appendChild(element);
		return element;
	}
	function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ''; }
	function points(value) { return (value > 0 ? '+' : '') + value; }
	function status() {
		if (refusal) return refusal;
		// The tracker keeps [state, banner version]; trackers before the version kept the state alone.
		var choice = [].concat(stored('tcrm.consent'))[0];
		if (choice === 'denied') return 'You declined: the tracker sends nothing and has forgotten this browser.';
		if (settings && settings.consent && choice !== 'granted') return 'Waiting for your consent: the tracker sends nothing until you accept.';
		return '';
	}

	/** The latest answer of GET /demo/crm: null before this browser has a tracker id. */
	var crm = null;
	function draw() {
		if (!panel) return;
		panel.textContent = '';
		add(panel, 'h2', 'What the CRM saw');
		var problem = status() || (crm && crm.error ? crm.message : '');
		if (problem) add(panel, 'p', problem, 'crm-refused');
		if (!crm || crm.error) {
			if (!crm) add(panel, 'p', 'No visitor yet: this browser has no tracker id.');
			return;
		}
		add(panel, 'p', 'Receiver: ' + crm.receiver.events + ' event' + (crm.receiver.events === 1 ? '' : 's') + ' of this browser stored' + (crm.receiver.lastAt ? ', the last at ' + time(crm.receiver.lastAt) : '')
			+ (crm.receiver.bots ? '; ' + crm.receiver.bots + ' of them flagged as a bot’s (an automated browser), which no session, lead or figure counts' : ''));
		var visit = crm.visits.latest;
		add(panel, 'p', visit
			? 'Session: ' + visit.pages + ' page' + (visit.pages === 1 ? '' : 's') + ', engagement ' + visit.engagementLevel + ' (' + visit.engagementScore + '/100)' + (crm.visits.count > 1 ? '; visit ' + crm.visits.count : '')
			: 'Session: none yet (the Visitor Processor makes it from the events)');
		if (crm.conversions.length) add(panel, 'p', 'Conversions: ' + crm.conversions.map(function (c) { return c.goal; }).join(', '));
		if (!crm.lead) {
			add(panel, 'p', 'Lead: none yet (send the contact form, with the box ticked; an address erased through the privacy API is never stored again)');
			return;
		}
		add(panel, 'p', 'Lead: stage ' + crm.lead.stage + ', score ' + crm.lead.score + (crm.lead.timeZone ? ', time zone ' + crm.lead.timeZone : ''));
		var reasons = add(panel, 'ul');
		crm.lead.reasons.forEach(function (reason) { add(reasons, 'li', reason.rule + ' → ' + points(reason.points)).title = reason.cause; });
		crm.lead.emails.forEach(function (email) { add(panel, 'p', 'Email: “' + email.subject + '” ' + email.status + (email.sentAt ? ' at ' + time(email.sentAt) : '')); });
		if (crm.mailbox) add(panel, 'a', 'Open the mailbox').href = crm.mailbox;
	}

	function poll() {
		var id = stored('tcrm.id');
		var read = id ? fetch('/demo/crm?visitor=' + encodeURIComponent(id)).then(function (response) { return response.json(); }) : Promise.resolve(null);
		read.then(function (answer) { crm = answer; }, function () {}).then(function () { draw(); setTimeout(poll, 2000); });
	}
	poll();
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
<link rel="icon" href="data:,">
<title>${escape(title)} · ${escape(site.config.site.name ?? site.key)} demo</title>
<script defer src="${escape(site.config.tracking.scriptPath)}" ${trackerAttributes(site)}></script>
<script defer src="/demo/site.js"></script>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}nav{margin-bottom:2rem}
#crm-panel{position:fixed;right:1rem;bottom:1rem;width:22rem;max-width:calc(100vw - 4rem);max-height:70vh;overflow:auto;font-size:13px;line-height:1.4;background:#f7f7f9;border:1px solid #ccd;border-radius:6px;padding:.5rem .75rem;box-shadow:0 2px 8px #0002}
#crm-panel h2{font-size:14px;margin:0 0 .25rem}#crm-panel p,#crm-panel ul{margin:.25rem 0}#crm-panel ul{padding-left:1.25rem}.crm-refused{color:#a00;font-weight:600}</style>
</head><body>${CONSENT_BANNER}<nav>${nav}</nav>${body}<aside id="crm-panel" aria-live="polite"></aside></body></html>`;
}

/**
 * GET /demo/crm: one browser, by the anonymous id its tracker made (tcrm.id in its storage), a
 * UUIDv7 with 74 random bits that only that browser holds. Other anonymous ids are refused: the
 * receiver's own for a lead posted without one (lead:<SHA-256 of the address>) could be computed
 * by anyone who knows the address.
 */
const crmQuery = z.strictObject({
	visitor: z.uuid({ version: 'v7', error: 'must be the tracker’s anonymous id of this browser, a UUIDv7 (tcrm.id in its localStorage)' }).prefault(''),
});

/** Rounded for reading: decay makes points fractional. */
const tenths = (value: number) => Math.round(value * 10) / 10;

/** The lead's score by rule, largest first, and the cause of each rule's latest change; rules back at 0 are left out. */
const scoreReasons = (explanation: readonly RuleExplanation[]): Array<{ rule: string; points: number; cause: string }> =>
	explanation.map((rule) => ({ rule: rule.rule, points: tenths(rule.points), cause: rule.latestCause })).filter((reason) => reason.points !== 0);

/**
 * What one site's CRM holds of one browser: no name, address or any row of another site. The
 * subjects of its emails are opened (sealed on a site with privacy.encryptPii, as they may greet the
 * lead by name): the panel shows them to that browser alone.
 */
async function crmView(prisma: PrismaClient, site: RegisteredSite, anonymousId: string) {
	const siteId = site.id;
	const [events, bots, visitor] = await Promise.all([
		prisma.visitorEvent.aggregate({ where: { siteId, anonymousId }, _count: { _all: true }, _max: { receivedAt: true } }),
		prisma.visitorEvent.count({ where: { siteId, anonymousId, isBot: true } }),
		prisma.visitor.findUnique({ where: { siteId_anonymousId: { siteId, anonymousId } }, select: { id: true, leadId: true } }),
	]);
	const [sessions, sessionCount, conversions, lead, explanation] = visitor
		? await Promise.all([
				prisma.visitorSession.findFirst({
					where: { siteId, visitorId: visitor.id },
					orderBy: { startedAt: 'desc' },
					select: { startedAt: true, pageviews: true, engagementLevel: true, engagementScore: true, entryPage: true, exitPage: true, channel: true },
				}),
				prisma.visitorSession.count({ where: { siteId, visitorId: visitor.id } }),
				prisma.conversion.findMany({ where: { siteId, visitorId: visitor.id }, orderBy: { occurredAt: 'asc' }, take: 20, select: { goal: true, value: true, currency: true, occurredAt: true } }),
				visitor.leadId
					? prisma.lead.findFirst({
							where: { id: visitor.leadId, siteId },
							select: {
								lifecycleStage: true,
								score: true,
								timezone: true,
								emailMessages: { select: { subject: true, status: true, sentAt: true }, orderBy: { createdAt: 'asc' }, take: 20 },
							},
						})
					: null,
				visitor.leadId ? scoreExplanation(prisma, siteId, visitor.leadId) : [],
			])
		: [null, 0, [], null, []];
	const cipher = siteCipher(siteId, site.config.privacy.encryptPii);
	return {
		receiver: { events: events._count._all, bots, lastAt: events._max.receivedAt },
		visits: {
			count: sessionCount,
			latest: sessions && {
				startedAt: sessions.startedAt,
				pages: sessions.pageviews,
				engagementLevel: sessions.engagementLevel,
				engagementScore: Math.round(sessions.engagementScore),
				entryPage: sessions.entryPage,
				exitPage: sessions.exitPage,
				channel: sessions.channel,
			},
		},
		conversions: conversions.map((conversion) => ({ goal: conversion.goal, value: Number(conversion.value), currency: conversion.currency, at: conversion.occurredAt })),
		lead: lead && {
			stage: lead.lifecycleStage,
			score: tenths(lead.score),
			timeZone: lead.timezone,
			reasons: scoreReasons(explanation),
			emails: lead.emailMessages.map((email) => ({ ...email, subject: cipher ? cipher.open(email.subject, MESSAGE_SUBJECT_FIELD) : email.subject })),
		},
		mailbox: lead?.emailMessages.length ? '/mailbox' : null,
	};
}

/**
 * A small demo site served by the receiver itself (`npm start`, then /demo/), with the tracker
 * of the site named by DEMO_SITE (default: the first configured site). That site accepts the
 * receiver's own origins (ownOrigins in siteRegistry.ts) besides its tracking.allowedOrigins; a
 * page reached under any other name is told which origin to add.
 */
export function demoRouter({ prisma, sites, siteKey }: { prisma: PrismaClient; sites: SiteRegistry; siteKey?: string }): Router {
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
	const noDemoSite = (res: Response) =>
		sendProblem(res, 404, 'demo_site_missing', siteKey ? `DEMO_SITE names "${siteKey}", which is not a configured site` : 'No site is configured');
	/**
	 * The panel's data: what the demo site's CRM holds of one browser, and nothing of any other
	 * site. Only that browser knows its anonymous id; the answer holds no address all the same.
	 */
	router.get('/demo/crm', async (req, res) => {
		// Anyone who learns a browser's id (it travels in every batch) could otherwise read that visitor's score and emails.
		if (!isLocalRequest(req.socket.remoteAddress, req.headers)) {
			sendProblem(res, 403, 'local_only', 'The panel shows what the CRM holds of this browser, so the receiver answers it only on its own machine: open the demo at http://127.0.0.1 or http://localhost on the receiver’s port');
			return;
		}
		const query = parseQuery(crmQuery, req, res, 'invalid_parameter', 'query');
		if (!query) return;
		const found = siteOf(req);
		if (!found) {
			noDemoSite(res);
			return;
		}
		res.setHeader('Cache-Control', 'no-store');
		res.json({ site: found.site.key, visitor: query.visitor, ...(await crmView(prisma, found.site, query.visitor)) });
	});
	router.get(['/demo', '/demo/:page', '/demo/app/:step'], (req, res) => {
		const found = siteOf(req);
		if (!found) {
			noDemoSite(res);
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
