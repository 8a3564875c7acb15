/**
 * What a DATABASE_URL must be for the CRM: a postgresql:// URL naming its own database. Without a
 * database name Postgres connects to the login's default one (often the shared `postgres`), which
 * the migrations would fill with the CRM's tables. The receiver, the migrations and the backup
 * scripts refuse the same URLs with these words; none quotes the URL, which may hold a password.
 */

export const databaseOf = (url: URL): string => decodeURIComponent(url.pathname.replace(/^\//, ''));

/** The URL, or why it names no database of the CRM, with the fix; `source` names where it came from. */
export function checkedDatabaseUrl(value: string, source: string): URL | string {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		return `${source} is not a URL; expected postgresql://user:password@host:5432/database`;
	}
	if (url.protocol !== 'postgresql:' && url.protocol !== 'postgres:') return `${source} must start with postgresql://; got ${url.protocol}//`;
	if (databaseOf(url) === '') return `${source} names no database; expected postgresql://user:password@host:5432/database`;
	return url;
}
