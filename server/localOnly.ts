import type { IncomingHttpHeaders } from 'node:http';

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 (how a dual-stack socket reports an IPv4 peer). */
function isLoopbackAddress(address: string | undefined): boolean {
	const ip = (address ?? '').replace(/^::ffff:/i, '');
	return ip === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip);
}

/** A name this machine is reached by over loopback: localhost, *.localhost, 127.x.x.x, [::1]. */
function isLoopbackHost(host: string | undefined): boolean {
	let hostname: string;
	try {
		hostname = new URL(`http://${host ?? ''}`).hostname.toLowerCase();
	} catch {
		return false;
	}
	return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || isLoopbackAddress(hostname);
}

const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'];

/**
 * Whether a request comes from a person on this machine, for pages that must not leave it (the
 * mailbox holds recipients' addresses, the demo's panel a visitor's score and emails). Three checks, all on what the client cannot choose:
 * - the socket's peer is a loopback address; never X-Forwarded-For, whatever TRUST_PROXY says;
 * - no proxy header at all: a reverse proxy on this machine connects from loopback too, on
 *   behalf of anyone on the internet;
 * - the Host names this machine by a loopback name: a web page whose domain is re-pointed at
 *   127.0.0.1 (DNS rebinding) reaches us from the visitor's own loopback, under its own name.
 */
export function isLocalRequest(remoteAddress: string | undefined, headers: IncomingHttpHeaders): boolean {
	return isLoopbackAddress(remoteAddress) && PROXY_HEADERS.every((name) => headers[name] === undefined) && isLoopbackHost(headers.host);
}
