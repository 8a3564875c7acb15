import { startSession, updateSession, type Session } from '../../tracker/src/rules';

/**
 * A tracker session of five events, as the tracker counts it: two pages, a scroll to 75 %, a
 * minute engaged and a form, relevance 22 in all, from 00:00 UTC on 2026-01-01 to 61 s later.
 */
export function sampleSession(campaign: string): Session {
	const start = Date.UTC(2026, 0, 1);
	const session = startSession(start, campaign);
	updateSession(session, 'pageview', start, 'https://shop.example/', 5);
	updateSession(session, 'scroll', start + 5000, 'https://shop.example/', 2, { depth: 75 });
	updateSession(session, 'pageview', start + 9000, 'https://shop.example/pricing', 5);
	updateSession(session, 'engagement', start + 60_000, 'https://shop.example/pricing', 2, { engagedMs: 60_000 });
	updateSession(session, 'form_submit', start + 61_000, 'https://shop.example/pricing', 8);
	return session;
}
