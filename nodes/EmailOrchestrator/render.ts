import Handlebars from 'handlebars';

import { templateContext, templateProblem, type TemplateFields, type TemplateKind } from '../../lib/contracts/emailTemplates';
import { trackingUrls } from '../../lib/emailTokens';

export interface StepTemplates {
	subject: string;
	html: string;
	text?: string | null;
}

export interface RenderedEmail {
	subject: string;
	html: string;
	text: string;
	/** The original URLs, in click-index order; what `email_messages.links` stores. */
	links: string[];
	/** RFC 8058 headers for the message. */
	headers: Record<string, string>;
}

export interface Tracking {
	/** The receiver's public URL (the Tracking CRM API credential). */
	baseUrl: string;
	secret: string;
	/** The email_messages id the tokens are signed for. */
	messageId: string;
}

/** Our own instance, so helpers a workflow registers elsewhere in the process never leak in. */
const handlebars = Handlebars.create();

/** Templates are few and reused for every lead; compiling once per distinct source is enough. */
const compiled = new Map<string, Handlebars.TemplateDelegate>();

function template(source: string, escape: boolean): Handlebars.TemplateDelegate {
	const key = `${escape ? 'h' : 't'}:${source}`;
	let fn = compiled.get(key);
	if (!fn) {
		fn = handlebars.compile(source, { noEscape: !escape, strict: false });
		compiled.set(key, fn);
	}
	return fn;
}

/** A step's template that does not render (one stored before templates were checked, or edited in the database). */
export class TemplateError extends Error {}

/** One part of an email rendered; a template that fails names the part and why. */
function rendered<K extends TemplateKind>(kind: K, part: 'subject' | 'HTML' | 'text', source: string, escape: boolean, context: TemplateFields<K>): string {
	try {
		return template(source, escape)(context);
	} catch (error) {
		throw new TemplateError(`its ${part} ${templateProblem(source, kind) ?? `does not render (${(error as Error).message})`}`);
	}
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

function decodeEntities(text: string): string {
	return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
		if (name[0] === '#') {
			const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
			return Number.isFinite(code) && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
		}
		return ENTITIES[name.toLowerCase()] ?? whole;
	});
}

const ANCHOR = /<(?:a|area)\b[^>]*>/gi;
const HREF = /(\shref\s*=\s*)(?:"([^"]*)"|'([^']*)')/i;
const TEXT_URL = /https?:\/\/[^\s<>"')\]]+/g;
const HTTP = /^https?:\/\//i;

/**
 * Plain text from the HTML part, for mail clients that show no HTML and for spam filters that
 * want both parts to say the same. Links keep their (tracked) target after the label.
 */
export function htmlToText(html: string): string {
	return decodeEntities(
		html
			.replace(/<(head|style|script|title)\b[\s\S]*?<\/\1>/gi, '')
			.replace(/<img\b[^>]*>/gi, '')
			.replace(/<a\b[^>]*?\shref\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>([\s\S]*?)<\/a>/gi, (_whole, dq: string | undefined, sq: string | undefined, label: string) => {
				const href = decodeEntities(dq ?? sq ?? '');
				const text = label.replace(/<[^>]*>/g, '').trim();
				// A label that is itself a URL would show the untracked address beside the tracked one.
				return !text || text === href || HTTP.test(text) ? href : `${text} (${href})`;
			})
			.replace(/<br\s*\/?>/gi, '\n')
			.replace(/<li\b[^>]*>/gi, '\n- ')
			.replace(/<\/(p|div|h[1-6]|tr|table|ul|ol|blockquote)>/gi, '\n\n')
			.replace(/<[^>]*>/g, ''),
	)
		.replace(/[ \t\u00a0]+/g, ' ')
		.replace(/ *\n */g, '\n')
		.replace(/\n{3,}/g, '\n\n')
		.trim();
}

/**
 * Renders one step for one lead and makes it trackable: every http(s) link (in the HTML
 * anchors and in the text part) is replaced by the receiver's click URL for its index in
 * `links`, and the open pixel closes the body. The receiver's own URLs (e.g. a footer link made
 * from `{{unsubscribeUrl}}`) stay as they are: tracking an unsubscribe click would be noise.
 */
export function renderEmail(step: StepTemplates, fields: Omit<TemplateFields<'step'>, 'unsubscribeUrl'>, tracking: Tracking): RenderedEmail {
	const base = trackingUrls(tracking.baseUrl, tracking.secret, tracking.messageId, []);
	const context = templateContext('step', { ...fields, unsubscribeUrl: base.unsubscribeUrl });
	const receiverRoot = base.unsubscribeUrl.slice(0, base.unsubscribeUrl.indexOf('/e/u/') + 1);
	const html = rendered('step', 'HTML', step.html, true, context);
	const text = step.text ? rendered('step', 'text', step.text, false, context) : undefined;

	const links: string[] = [];
	const indexOf = (url: string): number => {
		let index = links.indexOf(url);
		if (index < 0) index = links.push(url) - 1;
		return index;
	};
	const trackable = (url: string) => HTTP.test(url) && !url.startsWith(receiverRoot);

	const htmlIndexed = html.replace(ANCHOR, (tag) =>
		tag.replace(HREF, (whole, prefix: string, dq: string | undefined, sq: string | undefined) => {
			const url = decodeEntities((dq ?? sq ?? '').trim());
			return trackable(url) ? `${prefix}"\uE000${indexOf(url)}\uE000"` : whole;
		}),
	);
	// Sentence punctuation right after a URL in prose belongs to the sentence, not the link.
	const textIndexed = text?.replace(TEXT_URL, (match) => {
		const url = match.replace(/[.,;:!?]+$/, '');
		return trackable(url) ? `\uE000${indexOf(url)}\uE000${match.slice(url.length)}` : match;
	});

	const urls = trackingUrls(tracking.baseUrl, tracking.secret, tracking.messageId, links);
	const resolve = (source: string) => source.replace(/\uE000(\d+)\uE000/g, (_whole, index: string) => urls.clickUrl(Number(index)));
	const pixel = `<img src="${urls.openPixelUrl}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">`;
	const tracked = resolve(htmlIndexed);
	const withPixel = /<\/body>/i.test(tracked) ? tracked.replace(/<\/body>/i, `${pixel}</body>`) : `${tracked}${pixel}`;

	return {
		subject: rendered('step', 'subject', step.subject, false, context).replace(/[\r\n]+/g, ' ').trim(),
		html: withPixel,
		text: textIndexed !== undefined ? resolve(textIndexed) : htmlToText(tracked),
		links,
		headers: urls.listUnsubscribeHeaders,
	};
}

/**
 * Renders a double opt-in confirmation email with `confirmUrl` among its variables. Nothing in it
 * is tracked (no pixel, no click redirects): the lead has not consented to marketing yet.
 */
export function renderConfirmation(templates: StepTemplates, fields: Omit<TemplateFields<'confirmation'>, 'confirmUrl'>, confirmUrl: string): Pick<RenderedEmail, 'subject' | 'html' | 'text'> {
	const context = templateContext('confirmation', { ...fields, confirmUrl });
	const html = rendered('confirmation', 'HTML', templates.html, true, context);
	return {
		subject: rendered('confirmation', 'subject', templates.subject, false, context).replace(/[\r\n]+/g, ' ').trim(),
		html,
		text: templates.text ? rendered('confirmation', 'text', templates.text, false, context) : htmlToText(html),
	};
}
