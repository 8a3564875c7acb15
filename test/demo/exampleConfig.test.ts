/**
 * The shipped example site config against the demo's pages (/demo/, /demo/pricing,
 * /demo/contact) and a real site's (/pricing, /contact), read by the same rules the tracker, the
 * Conversion Detector, the Lead Scorer and the Email Orchestrator apply.
 */
import path from 'node:path';

import { loadSiteConfig } from '../../lib/config/siteConfig';
import { trackerSettings } from '../../lib/contracts/trackerSettings';
import { matchConversionRules } from '../../nodes/ConversionDetector/rules';
import { nextSendTime } from '../../nodes/EmailOrchestrator/schedule';
import { windowOf } from '../../nodes/EmailOrchestrator/sequences';
import { compileScoringRules, scoreLead, type ScoringEvent } from '../../nodes/LeadScorer/scoring';
import { nextStage } from '../../nodes/LeadScorer/stages';
import { relevanceOf } from '../../tracker/src/rules';

const config = loadSiteConfig(path.join(__dirname, '..', '..', 'config', 'site.example.json'));
const SITES = ['http://localhost:3000/demo', 'https://nat-pets.com'];

describe('the example site config', () => {
	it('runs the workflows in the receiver itself: no n8n URL, the bundled workflows’ entry webhooks', () => {
		expect(config.integrations.n8nUrl).toBeUndefined();
		expect(config.integrations.webhookEndpoints.map((endpoint) => endpoint.workflow)).toEqual(['visitor-processor', 'lead-processor', 'email-orchestrator']);
	});

	it.each(SITES)('gives the pricing page of %s its relevance, and only it', (base) => {
		const { rules } = trackerSettings(config);
		const pathOf = (page: string) => new URL(`${base}${page}`).pathname;
		expect(relevanceOf(rules, 'pageview', undefined, pathOf('/pricing'))).toBe(7);
		expect(relevanceOf(rules, 'pageview', undefined, pathOf('/'))).toBe(3);
		expect(relevanceOf(rules, 'pageview', undefined, pathOf('/pricing-old'))).toBe(3);
	});

	it.each(SITES)('makes the contact form of %s a conversion, and an engaged pricing visit another', (base) => {
		const names = (event: { type: string; url: string }, engagementScore: number) => matchConversionRules(event, { engagementScore }, config.crm.conversionRules).map((rule) => rule.name);
		expect(names({ type: 'form_submit', url: `${base}/contact` }, 5)).toEqual(['contact-request']);
		expect(names({ type: 'form_submit', url: `${base}/contact-us?ref=nav` }, 5)).toEqual(['contact-request']);
		expect(names({ type: 'form_submit', url: `${base}/newsletter` }, 5)).toEqual([]);
		expect(names({ type: 'pageview', url: `${base}/pricing` }, 75)).toEqual(['engaged-pricing-visit']);
		expect(names({ type: 'pageview', url: `${base}/pricing` }, 40)).toEqual([]);
	});

	it.each(SITES)('scores a visit to the pricing page of %s, and makes a free-mail contact straight from the form a lead', (base) => {
		const rules = compileScoringRules(config.crm);
		const now = Date.UTC(2026, 11, 5, 12);
		const event = (type: string, page: string, index: number): ScoringEvent => ({ eventId: `e${index}`, type, url: `${base}${page}`, occurredAt: now - 60_000 + index });
		const points = (events: ScoringEvent[], facts = {}) => scoreLead(rules, events, facts, now).total;
		expect(points([event('pageview', '/pricing', 0)]) - points([event('pageview', '/', 0)])).toBeCloseTo(5, 3);
		// The least a contact gives: one page, the form, a free-mail address.
		const contact = points([event('pageview', '/contact', 0), event('form_submit', '/contact', 1)], { freeMail: true });
		expect(nextStage(config.crm.lifecycleStages, 'subscriber', contact)).toBe('lead');
	});

	it('sends the welcome email at once on any day and hour, and keeps the later nurture email to weekday office hours', () => {
		const [nurture, welcome] = ['nurture', 'welcome'].map((name) => config.crm.emailSequences.find((sequence) => sequence.name === name)!);
		expect([welcome.trigger, welcome.steps[0].delayMinutes]).toEqual([{ stage: 'lead' }, 0]);
		expect(nurture.trigger).toEqual({ stage: 'lead' });
		const welcomeWindow = windowOf(welcome);
		const nurtureWindow = windowOf(nurture);
		// A Saturday at 23:30 and a Sunday at 03:00 in Madrid, a Monday at 12:00 in Tokyo.
		for (const [at, zone] of [
			['2026-12-05T22:30:00Z', 'Europe/Madrid'],
			['2026-12-06T02:00:00Z', 'Europe/Madrid'],
			['2026-12-07T03:00:00Z', 'Asia/Tokyo'],
		]) {
			const now = new Date(at);
			expect([at, nextSendTime(now, welcomeWindow, zone)]).toEqual([at, now]);
		}
		// The nurture step of a Saturday-night lead waits for Monday 08:00 in the lead's zone.
		expect(nextSendTime(new Date('2026-12-05T22:30:00Z'), nurtureWindow, 'Europe/Madrid')).toEqual(new Date('2026-12-07T07:00:00Z'));
	});
});
