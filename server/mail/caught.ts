import type { AddressObject, ParsedMail } from 'mailparser';

import { isUuid } from '../../lib/ids';

/** One header line of a caught message, unfolded. A type alias, so it is a Prisma JSON value as it is. */
export type HeaderField = {
	name: string;
	value: string;
};

/** What the catcher stores of one message, before it knows the site. */
export interface CaughtMessage {
	messageId: string | null;
	fromAddress: string;
	toAddresses: string[];
	subject: string;
	html: string | null;
	text: string | null;
	headers: HeaderField[];
	rawSize: number;
}

/** Header lines as sent, in order, with folded continuation lines joined (RFC 5322 §2.2.3). */
export function headerFields(lines: ParsedMail['headerLines']): HeaderField[] {
	return lines.map(({ line }) => {
		const colon = line.indexOf(':');
		return { name: line.slice(0, Math.max(colon, 0)).trim(), value: line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim() };
	});
}

/**
 * The Email Orchestrator sends each message with the Message-ID `<email_messages id@sender domain>`
 * (sendDue.operation.ts), which is how a caught message finds its site and CRM record.
 */
export function crmMessageIdOf(messageId: string | null): string | null {
	const local = /^<?([^@<>]+)@/.exec(messageId?.trim() ?? '')?.[1];
	return local && isUuid(local) ? local.toLowerCase() : null;
}

function addressText(address: AddressObject | AddressObject[] | undefined): string {
	return [address ?? []].flat().map((entry) => entry.text).join(', ');
}

/** The row of one received message: `recipients` are the envelope's (RCPT TO), Bcc included. */
export function caughtMessage(parsed: ParsedMail, recipients: string[], rawSize: number): CaughtMessage {
	return {
		messageId: parsed.messageId ?? null,
		fromAddress: addressText(parsed.from),
		// Lower case, so a lookup by address finds the mail however the address was capitalized.
		toAddresses: recipients.map((address) => address.toLowerCase()),
		subject: parsed.subject ?? '',
		html: parsed.html || null,
		text: parsed.text ?? null,
		headers: headerFields(parsed.headerLines),
		rawSize,
	};
}

/**
 * The one-click unsubscribe target of a message: the first http(s) URL of its List-Unsubscribe
 * header (RFC 2369 lists `<…>` URIs, mailto: ones included; RFC 8058 POSTs to the https one).
 */
export function listUnsubscribeUrl(headers: readonly HeaderField[]): string | null {
	const field = headers.find((header) => header.name.toLowerCase() === 'list-unsubscribe');
	const urls = [...(field?.value.matchAll(/<([^>]*)>/g) ?? [])].map((match) => match[1].trim());
	return urls.find((url) => /^https?:\/\//i.test(url)) ?? null;
}
