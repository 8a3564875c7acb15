import { historyClaim, type ClientFacts } from '../../server/ingest/historyClaim';

const visitor: ClientFacts = { ipAnonymized: '198.51.100.0', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' };

describe('historyClaim: what lets a lead post take over an anonymous history', () => {
	it.each<[string, ClientFacts, ClientFacts | undefined, boolean, ReturnType<typeof historyClaim>]>([
		['the client the history began on', visitor, visitor, false, { merge: true, proof: 'same-client' }],
		['an id with no history yet', { ipAnonymized: '203.0.113.0', userAgent: 'curl/8' }, undefined, false, { merge: true, proof: 'no-history' }],
		['a server holding an admin key of the site', { ipAnonymized: '203.0.113.0', userAgent: 'node' }, visitor, true, { merge: true, proof: 'site-key' }],
		['another network with the same browser string', { ...visitor, ipAnonymized: '203.0.113.0' }, visitor, false, { merge: false, reason: 'other-client' }],
		['the same network with another browser', { ...visitor, userAgent: 'Mozilla/5.0 Chrome/150.0' }, visitor, false, { merge: false, reason: 'other-client' }],
		['a post without an address', { ...visitor, ipAnonymized: null }, { ...visitor, ipAnonymized: null }, false, { merge: false, reason: 'other-client' }],
		['a post without a user agent', { ...visitor, userAgent: null }, { ...visitor, userAgent: null }, false, { merge: false, reason: 'other-client' }],
	])('%s', (_case, request, firstEvent, vouched, expected) => {
		expect(historyClaim(request, firstEvent, vouched)).toEqual(expected);
	});
});
