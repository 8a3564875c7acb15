/**
 * scripts/migrate (npm run db:migrate), built and run as an operator runs it: a DATABASE_URL that
 * names no database would migrate the login's default one (often the shared `postgres`), so it is
 * refused before anything connects, with the words the receiver and the backup scripts use.
 */
import { childEnv, runBuilt } from '../helpers/builtReceiver';

describe('scripts/migrate deploy', () => {
	it.each([
		['names no database', 'postgresql://postgres@127.0.0.1:5432/', 'DATABASE_URL names no database; expected postgresql://user:password@host:5432/database'],
		['is no URL', 'not a url', 'DATABASE_URL is not a URL; expected postgresql://user:password@host:5432/database'],
		['is another database', 'mysql://root@127.0.0.1/crm', 'DATABASE_URL must start with postgresql://; got mysql://'],
	])('refuses a DATABASE_URL that %s, before connecting', async (_case, url, message) => {
		const { code, stderr } = await runBuilt('scripts/migrate.js', ['deploy'], childEnv({ DATABASE_URL: url }));
		expect(code).toBe(2);
		expect(stderr.split('\n')[0]).toBe(message);
	});
});
