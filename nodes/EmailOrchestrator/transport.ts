import nodemailer, { type Transporter } from 'nodemailer';
import type { ICredentialDataDecryptedObject } from 'n8n-workflow';

/** A nodemailer transport from n8n's built-in SMTP credential, read the way n8n's Send Email node reads it. */
export function smtpTransport(credentials: ICredentialDataDecryptedObject): Transporter {
	const user = String(credentials.user ?? '');
	return nodemailer.createTransport({
		host: String(credentials.host ?? ''),
		port: Number(credentials.port) || 465,
		secure: credentials.secure === true,
		ignoreTLS: credentials.disableStartTls === true,
		name: credentials.hostName ? String(credentials.hostName) : undefined,
		auth: user ? { user, pass: String(credentials.password ?? '') } : undefined,
		// Bounded well inside SEND_GIVE_UP_MS (steps.ts), after which a reservation counts as left by a dead run.
		connectionTimeout: 30_000,
		greetingTimeout: 30_000,
		socketTimeout: 60_000,
	});
}

/**
 * Whether a failed send certainly did not deliver: the server answered with a refusal, or the
 * session never got as far as handing the message over (no connection, failed login or TLS, a
 * rejected envelope). Anything else, such as a connection lost while the message was in flight,
 * may have been accepted, so it must never be sent again.
 */
export function certainlyNotDelivered(error: unknown): boolean {
	const { responseCode, code, syscall } = (error ?? {}) as { responseCode?: number; code?: string; syscall?: string };
	if (typeof responseCode === 'number' && responseCode >= 400) return true;
	if (syscall === 'connect' || syscall === 'getaddrinfo') return true;
	return code === 'EDNS' || code === 'EAUTH' || code === 'ETLS' || code === 'EENVELOPE';
}
