import { SettingsError } from '../settings';

/**
 * The data of n8n's built-in `smtp` credential (n8n-nodes-base's Smtp.credentials), the field
 * names the Email Orchestrator reads in nodes/EmailOrchestrator/transport.ts. A type alias, not an
 * interface, so it is assignable to n8n's ICredentialDataDecryptedObject without importing n8n here.
 */
export type SmtpCredential = {
	user: string;
	password: string;
	host: string;
	port: number;
	/** TLS from the first byte (smtps, usually port 465); otherwise STARTTLS when the server offers it. */
	secure: boolean;
	disableStartTls: boolean;
	/** The name the client greets with (EHLO); empty: nodemailer's default. */
	hostName: string;
};

const DEFAULT_PORTS: Record<string, number> = { 'smtp:': 587, 'smtps:': 465 };

const FORM = 'write it as smtp://user:password@host:587 (STARTTLS when offered) or smtps://user:password@host:465 (TLS), with special characters of the user and password percent-encoded';

/** A SettingsError, so a start with a bad SMTP_URL ends with this message alone (server/main.ts). */
function malformed(problem: string): SettingsError {
	return new SettingsError(`SMTP_URL ${problem}: ${FORM}`);
}

/**
 * The `smtp` credential for SMTP_URL, e.g. smtp://apikey:secret@smtp.example.com:587. A value
 * that is not such a URL throws an error naming SMTP_URL and the form to use; the message never
 * repeats the value, which holds a password (which is why this check is not part of the settings
 * schema: its errors quote the value they refuse).
 */
export function smtpCredentialFromUrl(value: string): SmtpCredential {
	let url: URL;
	try {
		// "host:587" parses as a URL of scheme "host:"; a mail server's URL always has "//".
		if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value.trim())) throw new TypeError('no scheme://');
		url = new URL(value.trim());
	} catch {
		throw malformed('is not a URL');
	}
	const defaultPort = DEFAULT_PORTS[url.protocol];
	if (!defaultPort) throw malformed(`has the scheme "${url.protocol.slice(0, 20)}", not smtp: or smtps:`);
	if (!url.hostname) throw malformed('names no host');
	if ((url.pathname && url.pathname !== '/') || url.search || url.hash) throw malformed('has a path, query or fragment after the host and port, which nothing reads');
	const port = url.port ? Number(url.port) : defaultPort;
	if (port === 0) throw malformed('names port 0');
	let user: string;
	let password: string;
	try {
		user = decodeURIComponent(url.username);
		password = decodeURIComponent(url.password);
	} catch {
		throw malformed('has a user or password with a malformed %-escape');
	}
	if (password && !user) throw malformed('has a password but no user');
	return {
		user,
		password,
		// smtp: is no scheme WHATWG URL knows, so its host keeps its case; an IPv6 address keeps the brackets a socket does not want.
		host: url.hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1'),
		port,
		secure: url.protocol === 'smtps:',
		disableStartTls: false,
		hostName: '',
	};
}

/**
 * The `smtp` credential for the built-in catcher: plain SMTP on this machine, no login. STARTTLS
 * is off on both sides, as the catcher has no certificate a client would trust.
 */
export function catcherCredential(host: string, port: number): SmtpCredential {
	return { user: '', password: '', host, port, secure: false, disableStartTls: true, hostName: '' };
}
