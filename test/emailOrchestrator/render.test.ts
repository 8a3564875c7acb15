import { TEMPLATE_FIELDS } from '../../lib/contracts/emailTemplates';
import { htmlToText, renderConfirmation, renderEmail } from '../../nodes/EmailOrchestrator/render';
import { verifyEmailToken } from '../../lib/emailTokens';
import { suppressionCause } from '../../nodes/EmailOrchestrator/suppression';
import { certainlyNotDelivered } from '../../nodes/EmailOrchestrator/transport';

const SECRET = 'x'.repeat(40);
const tracking = { baseUrl: 'https://crm.example.com/r/', secret: SECRET, messageId: '0190a8d2-1c2b-7def-8abc-0123456789ab' };
const tokenOf = (url: string, kind: string) => url.match(new RegExp(`^https://crm\\.example\\.com/r/e/${kind}/([^"\\s)]+)$`))?.[1] ?? '';

/** The fields Send Due gives a step of a lead: every field of TEMPLATE_FIELDS.step but the unsubscribe link. */
const ana = { firstName: 'Ana', lastName: null, email: 'ana@example.com', company: 'A&B', jobTitle: null, country: null, phone: null, lifecycleStage: 'lead', properties: {}, sequence: 'welcome' };

describe('renderEmail', () => {
	const step = {
		subject: 'Hi {{firstName}}, about {{company}}',
		html: '<html><body><p>Hello {{firstName}} &amp; team</p><a href="https://shop.example/a?x=1&amp;y={{company}}">Shop</a> <a href=\'https://docs.example/\'>https://docs.example/</a> <a href="mailto:help@example.com">Mail</a> <a href="https://shop.example/a?x=1&amp;y={{company}}">Again</a><a href="{{unsubscribeUrl}}">Unsubscribe</a></body></html>',
	};
	const email = renderEmail(step, ana, tracking);

	it('fills the lead’s fields, escaping them in HTML but not in the subject', () => {
		expect(email.subject).toBe('Hi Ana, about A&B');
		expect(email.html).toContain('<p>Hello Ana &amp; team</p>');
	});

	it('lists each http(s) link once, decoded, and rewrites every occurrence to its click URL', () => {
		expect(email.links).toEqual(['https://shop.example/a?x=1&y=A&B', 'https://docs.example/']);
		const hrefs = [...email.html.matchAll(/href=(?:"([^"]*)"|'([^']*)')/g)].map((match) => match[1] ?? match[2]);
		expect(hrefs).toHaveLength(5);
		const clicks = hrefs.filter((href) => href.includes('/e/c/')).map((href) => verifyEmailToken(SECRET, tokenOf(href, 'c'), 'click'));
		expect(clicks.map((check) => (check.valid ? check.linkIndex : -1))).toEqual([0, 1, 0]);
		expect(hrefs).toContain('mailto:help@example.com');
		// the footer link is the receiver's own unsubscribe URL, untracked
		const unsubscribe = hrefs.find((href) => href.includes('/e/u/')) ?? '';
		expect(verifyEmailToken(SECRET, tokenOf(unsubscribe, 'u'), 'unsubscribe')).toMatchObject({ valid: true, messageId: tracking.messageId });
	});

	it('adds the open pixel before </body> and the RFC 8058 headers', () => {
		const pixel = email.html.match(/<img src="([^"]+)"[^>]*><\/body>/)?.[1] ?? '';
		expect(verifyEmailToken(SECRET, tokenOf(pixel, 'o'), 'open')).toMatchObject({ valid: true, action: 'open' });
		expect(email.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
		expect(email.headers['List-Unsubscribe']).toMatch(/^<https:\/\/crm\.example\.com\/r\/e\/u\/u\.[^>]+>$/);
	});

	it('derives the text part from the tracked HTML', () => {
		expect(email.text).toMatch(/^Hello Ana & team\n\nShop \(https:\/\/crm\.example\.com\/r\/e\/c\/c\.[^)]+\) https:\/\/crm\.example\.com\/r\/e\/c\/c\./);
		expect(email.text).not.toContain('<');
		expect(email.text).not.toContain('/e/o/');
	});

	it('tracks the links of a given text part too, keeping sentence punctuation outside', () => {
		const withText = renderEmail({ ...step, text: 'Hi {{firstName}}, see https://docs.example/. Or https://new.example/x!' }, ana, tracking);
		expect(withText.links).toEqual(['https://shop.example/a?x=1&y=A&B', 'https://docs.example/', 'https://new.example/x']);
		expect(withText.text).toMatch(/^Hi Ana, see https:\/\/crm\.example\.com\/r\/e\/c\/c\.\S+\. Or https:\/\/crm\.example\.com\/r\/e\/c\/c\.\S+!$/);
	});

	it('puts the pixel at the end of a fragment without <body>', () => {
		expect(renderEmail({ subject: 's', html: '<p>x</p>' }, ana, tracking).html).toMatch(/^<p>x<\/p><img src="https:\/\/crm\.example\.com\/r\/e\/o\//);
	});

	it('converts common HTML to readable text', () => {
		expect(htmlToText('<head><style>p{}</style></head><h1>Title</h1><ul><li>one</li><li>two</li></ul>line<br>break &eacute;&#233;&#xe9;')).toBe('Title\n\n- one\n- two\n\nline\nbreak &eacute;éé');
	});
});

describe('the fields a template renders with', () => {
	/** Every listed field of a kind as `name=value`, the lead's properties by one of them. */
	const everyField = (fields: readonly string[]) => fields.map((field) => (field === 'properties' ? 'plan={{properties.plan}}' : `${field}={{${field}}}`)).join(' ');
	// What else a sender holds: its lead row.
	const lead = { ...ana, id: '0190a8d2-0000-7000-8000-000000000001', emailHash: 'h4sh', timezone: 'Europe/Madrid', lastName: 'Ruiz', jobTitle: 'CEO', country: 'ES', phone: '+34600000000', properties: { plan: 'pro' } };

	it('are the step’s listed ones, each filled, and nothing else the sender holds', () => {
		const { subject } = renderEmail({ subject: `${everyField(TEMPLATE_FIELDS.step)} id={{id}} hash={{emailHash}}`, html: '<p>x</p>' }, lead, tracking);
		expect(subject).toMatch(
			/^firstName=Ana lastName=Ruiz email=ana@example\.com company=A&B jobTitle=CEO country=ES phone=\+34600000000 lifecycleStage=lead plan=pro sequence=welcome unsubscribeUrl=https:\/\/crm\.example\.com\/r\/e\/u\/\S+ id= hash=$/,
		);
	});

	it('are the confirmation’s listed ones, each filled, and nothing else the sender holds', () => {
		const { subject } = renderConfirmation({ subject: `${everyField(TEMPLATE_FIELDS.confirmation)} stage={{lifecycleStage}}`, html: '<p>x</p>' }, { ...lead, siteName: 'Nat Pets' }, 'https://crm.example.com/r/c/token');
		expect(subject).toBe('firstName=Ana lastName=Ruiz email=ana@example.com company=A&B jobTitle=CEO country=ES phone=+34600000000 siteName=Nat Pets confirmUrl=https://crm.example.com/r/c/token stage=');
	});
});

describe('suppressionCause', () => {
	it.each([
		[null, [], null],
		['subscribed', [], null],
		['unsubscribed', [], 'unsubscribed'],
		['do_not_contact', [], 'do_not_contact'],
		['bounced', ['erased'], 'bounced'],
		[undefined, ['erased'], 'erased'],
		['subscribed', ['unsubscribed', 'complained'], 'complained'],
		[null, ['manual'], 'manual'],
	])('channel %s and suppressions %j → %s', (status, reasons, expected) => {
		expect(suppressionCause(status, reasons)).toBe(expected);
	});
});

describe('certainlyNotDelivered', () => {
	it.each([
		[{ responseCode: 550, code: 'EENVELOPE' }, true],
		[{ responseCode: 451, code: 'EMESSAGE' }, true],
		[{ code: 'ESOCKET', syscall: 'connect', originalCode: 'ECONNREFUSED' }, true],
		[{ code: 'EAUTH' }, true],
		[{ code: 'ECONNECTION', command: 'CONN' }, false], // "connection closed unexpectedly": may have landed
		[{ code: 'ETIMEDOUT' }, false],
		[new Error('boom'), false],
	])('%j → %s', (error, expected) => {
		expect(certainlyNotDelivered(error)).toBe(expected);
	});
});
