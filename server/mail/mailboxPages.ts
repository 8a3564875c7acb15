import type { HeaderField } from './caught';

/** A caught message as the mailbox shows it. */
export interface MailboxEntry {
	id: string;
	siteKey: string | null;
	fromAddress: string;
	toAddresses: string[];
	subject: string;
	receivedAt: Date;
	rawSize: number;
	unsubscribeUrl: string | null;
}

export interface MailboxMessageView extends MailboxEntry {
	messageId: string | null;
	emailMessageId: string | null;
	html: string | null;
	text: string | null;
	headers: HeaderField[];
}

/** Where the catcher listens; undefined when it does not run (SMTP_URL sends mail out). */
export type CatcherAddress = { host: string; port: number } | undefined;

/**
 * The mailbox pages' policy, in place of the receiver's default one: only this router's own
 * script, stylesheet and preview frame. Forms may post anywhere: the one-click unsubscribe button
 * posts to the message's List-Unsubscribe URL, which is PUBLIC_URL's origin, not always this one.
 */
export const PAGE_CSP =
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; form-action 'self' http: https:; base-uri 'none'; frame-ancestors 'none'";

/**
 * The email's own HTML, framed by the message page: a sandbox with no script and its own opaque
 * origin, so a message can read nothing of the mailbox; images load as in a mail client (the open
 * pixel records an open, as it would there); links open in a new, unsandboxed tab, so tracked
 * links and the unsubscribe page work as they do for the recipient.
 */
export const PREVIEW_CSP =
	"sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline' http: https:; font-src http: https: data:; frame-ancestors 'self'";

export const MAILBOX_CSS = `body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f6f6f8}
header,main{max-width:64rem;margin:0 auto;padding:1rem 1.5rem}
header{border-bottom:1px solid #ddd;background:#fff;max-width:none;padding:1rem max(1.5rem,calc((100% - 64rem) / 2))}
h1{font-size:1.4rem;margin:.2rem 0}
h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
.note{color:#555;margin:.2rem 0;font-size:.9rem}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e6e6e6;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#666}
#headers th{text-transform:none;letter-spacing:0;font-size:.9rem;white-space:nowrap}
td.subject a{font-weight:600;color:#0b57d0;text-decoration:none}
td.subject a:hover{text-decoration:underline}
.muted{color:#777}
.empty{padding:2rem;text-align:center;color:#666;background:#fff}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;background:#fff;padding:1rem;margin:0}
dt{color:#666}dd{margin:0;overflow-wrap:anywhere}
iframe{width:100%;height:70vh;border:1px solid #ccc;background:#fff;resize:vertical}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;padding:1rem;border:1px solid #ddd;margin:0}
form.inline{display:inline}
button{font:inherit;padding:.2rem .8rem;cursor:pointer}
`;

/**
 * Shows times in the reader's zone, and reloads the list when new mail arrives (what Mailpit's
 * live list does), by asking the JSON route for the newest message every two seconds.
 */
export const MAILBOX_JS = `(function () {
	document.querySelectorAll('time[datetime]').forEach(function (time) { time.textContent = new Date(time.dateTime).toLocaleString(); });
	var list = document.getElementById('messages');
	if (!list) return;
	var newest = list.getAttribute('data-newest') || '';
	setInterval(function () {
		fetch('/mailbox/api/messages?limit=1', { cache: 'no-store' })
			.then(function (response) { return response.json(); })
			.then(function (body) { var first = body.messages && body.messages[0]; if ((first ? first.id : '') !== newest) location.reload(); })
			.catch(function () {});
	}, 2000);
})();
`;

const escape = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

const LOCAL_ONLY = 'Served only to this machine (loopback address, no proxy): it holds the recipients’ addresses.';

function catcherNote(catcher: CatcherAddress): string {
	return catcher
		? `Mail the CRM sent, caught by the built-in SMTP server at smtp://${escape(catcher.host)}:${catcher.port} and never delivered. Set SMTP_URL to send real mail.`
		: 'The built-in catcher is off: mail goes out through SMTP_URL (or your n8n). Messages it caught before are below.';
}

function pageOf(title: string, body: string): string {
	return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><link rel="icon" href="data:,"><title>${escape(title)} · Mailbox</title>
<link rel="stylesheet" href="/mailbox/mailbox.css"><script defer src="/mailbox/mailbox.js"></script>
</head><body>${body}</body></html>`;
}

const time = (at: Date) => `<time datetime="${at.toISOString()}">${at.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>`;
const subjectOf = (subject: string) => (subject ? escape(subject) : '<span class="muted">(no subject)</span>');
const recipients = (to: string[]) => escape(to.join(', '));

/** The list of caught messages, newest first; `total` counts every caught message, listed or not. */
export function listPage(entries: MailboxEntry[], total: number, catcher: CatcherAddress): string {
	const rows = entries
		.map(
			(entry) =>
				`<tr><td class="subject"><a href="/mailbox/messages/${entry.id}">${subjectOf(entry.subject)}</a></td>` +
				`<td>${recipients(entry.toAddresses)}</td><td>${escape(entry.fromAddress)}</td>` +
				`<td>${entry.siteKey ? escape(entry.siteKey) : '<span class="muted">—</span>'}</td><td>${time(entry.receivedAt)}</td></tr>`,
		)
		.join('\n');
	const shown = entries.length < total ? `<p class="note">The newest ${entries.length} of ${total} messages.</p>` : '';
	const table = entries.length
		? `<table id="messages" data-newest="${entries[0].id}"><thead><tr><th>Subject</th><th>To</th><th>From</th><th>Site</th><th>Received</th></tr></thead><tbody>
${rows}
</tbody></table>${shown}`
		: `<div id="messages" data-newest="" class="empty">No mail yet. Submit the contact form of the demo (/demo/contact) and the welcome email appears here.</div>`;
	return pageOf(
		'Caught mail',
		`<header><h1>Mailbox</h1><p class="note">${catcherNote(catcher)}</p><p class="note">${LOCAL_ONLY}</p></header><main>${table}</main>`,
	);
}

/** One message: its envelope, the HTML preview, the text part and the header lines. */
export function messagePage(message: MailboxMessageView): string {
	const unsubscribe = message.unsubscribeUrl
		? `<a href="${escape(message.unsubscribeUrl)}" target="_blank" rel="noopener">${escape(message.unsubscribeUrl)}</a>
<form class="inline" method="post" action="${escape(message.unsubscribeUrl)}" target="_blank"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit" id="one-click-unsubscribe">One-click unsubscribe</button></form>
<span class="note">(the POST a mail client's Unsubscribe button sends, RFC 8058)</span>`
		: '<span class="muted">none (no http(s) List-Unsubscribe header)</span>';
	const fields: Array<[string, string]> = [
		['From', escape(message.fromAddress)],
		['To', recipients(message.toAddresses)],
		['Received', time(message.receivedAt)],
		['Site', message.siteKey ? escape(message.siteKey) : '<span class="muted">not a CRM email of a known site</span>'],
		['Message-ID', message.messageId ? escape(message.messageId) : '<span class="muted">none</span>'],
		['Size', `${message.rawSize} bytes`],
		['Unsubscribe', unsubscribe],
	];
	const preview = message.html
		? `<iframe id="preview" title="HTML part of the message" sandbox="allow-popups allow-popups-to-escape-sandbox" src="/mailbox/messages/${message.id}/html"></iframe>
<p class="note">Links open in a new tab and reach the receiver as the recipient's click would (tracked links redirect and record the click).</p>`
		: '<p class="muted">The message has no HTML part.</p>';
	const headers = message.headers.map((header) => `<tr><th>${escape(header.name)}</th><td>${escape(header.value)}</td></tr>`).join('');
	return pageOf(
		message.subject || '(no subject)',
		`<header><p class="note"><a href="/mailbox">← Mailbox</a> · ${LOCAL_ONLY}</p><h1>${subjectOf(message.subject)}</h1></header>
<main><dl>${fields.map(([name, value]) => `<dt>${name}</dt><dd>${value}</dd>`).join('')}</dl>
<h2>HTML</h2>${preview}
<h2>Text</h2>${message.text ? `<pre id="text">${escape(message.text)}</pre>` : '<p class="muted">The message has no text part.</p>'}
<h2>Headers</h2><table id="headers">${headers}</table></main>`,
	);
}

/** The message's HTML for the preview frame, with links opening outside the frame: a `<base target>` first in its head. */
export function previewDocument(html: string): string {
	const base = '<base target="_blank">';
	if (/<head\b[^>]*>/i.test(html)) return html.replace(/<head\b[^>]*>/i, (head) => `${head}${base}`);
	// No head: after the doctype and <html> tag, if any, so a standards-mode message stays in standards mode.
	return html.replace(/^(\s*<!doctype\b[^>]*>)?(\s*<html\b[^>]*>)?/i, (prefix) => `${prefix}${base}`);
}
