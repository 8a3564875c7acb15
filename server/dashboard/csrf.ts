/**
 * Whether a form post comes from the dashboard's own pages. The session cookie is SameSite=Strict,
 * so another site's form cannot carry it; this check also stops a post without it (signing a
 * person in with someone else's key). Browsers send Origin with every POST (the pages' referrer
 * policy keeps it from being "null"); Referer is the fallback for one that does not. A post with
 * neither is refused: a browser always sends one of them, and scripts can set either.
 */
export function fromOwnOrigin(headers: { origin?: string; referer?: string }, ownOrigins: readonly string[]): boolean {
	const claimed = headers.origin ?? originOf(headers.referer);
	return claimed !== undefined && ownOrigins.includes(claimed.toLowerCase());
}

function originOf(url: string | undefined): string | undefined {
	if (!url) return undefined;
	try {
		return new URL(url).origin;
	} catch {
		return undefined;
	}
}

/** The origins the receiver is reached at: as this request names it (behind trusted proxies, their header) and PUBLIC_URL's. */
export function ownOrigins(protocol: string, host: string | undefined, publicUrl: string | undefined): string[] {
	// Through URL, as a browser serializes an origin: lower case, without a default port.
	return [originOf(host ? `${protocol}://${host}` : undefined), originOf(publicUrl)].filter((origin): origin is string => origin !== undefined);
}
