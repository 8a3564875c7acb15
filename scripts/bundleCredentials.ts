/**
 * The three credentials the bundled workflows refer to (by these ids), built from the same
 * environment the receiver uses, so one .env sets up both sides.
 */
export const CREDENTIAL_IDS = { postgres: 'crmPostgresDb001', trackingCrmApi: 'crmTrackingApi01', smtp: 'crmSmtpSender001' } as const;

export interface CredentialJson {
	id: string;
	name: string;
	type: string;
	data: Record<string, unknown>;
}

export class CredentialSettingsError extends Error {}

function parseUrl(name: string, value: string, protocols: string[]): URL {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		throw new CredentialSettingsError(`${name} is not a URL (got "${value}"); expected e.g. ${protocols[0]}//user:password@host:port${protocols[0] === 'postgresql:' ? '/database' : ''}`);
	}
	if (!protocols.includes(url.protocol)) throw new CredentialSettingsError(`${name} must start with ${protocols.join(' or ')}//; got ${url.protocol}//`);
	return url;
}

export function bundleCredentials(env: NodeJS.ProcessEnv): CredentialJson[] {
	const missing = ['DATABASE_URL', 'CRM_WEBHOOK_SECRET'].filter((name) => !env[name]);
	if (missing.length) throw new CredentialSettingsError(`Set ${missing.join(' and ')} to create the credentials (the receiver uses the same values)`);
	const database = parseUrl('DATABASE_URL', env.DATABASE_URL!, ['postgresql:', 'postgres:']);
	const credentials: CredentialJson[] = [
		{
			id: CREDENTIAL_IDS.postgres,
			name: 'CRM database',
			type: 'postgres',
			data: {
				host: database.hostname,
				port: Number(database.port || 5432),
				database: decodeURIComponent(database.pathname.slice(1)),
				user: decodeURIComponent(database.username || 'postgres'),
				password: decodeURIComponent(database.password),
				ssl: database.searchParams.get('sslmode') === 'require' ? 'require' : 'disable',
			},
		},
		{
			id: CREDENTIAL_IDS.trackingCrmApi,
			name: 'Tracking CRM API',
			type: 'trackingCrmApi',
			data: { receiverUrl: env.RECEIVER_URL || env.PUBLIC_URL || 'http://127.0.0.1:3000', webhookSecret: env.CRM_WEBHOOK_SECRET, emailTokenSecret: env.EMAIL_TOKEN_SECRET ?? '' },
		},
	];
	if (env.SMTP_URL) {
		const smtp = parseUrl('SMTP_URL', env.SMTP_URL, ['smtp:', 'smtps:']);
		credentials.push({
			id: CREDENTIAL_IDS.smtp,
			name: 'CRM SMTP',
			type: 'smtp',
			data: {
				host: smtp.hostname,
				port: Number(smtp.port || (smtp.protocol === 'smtps:' ? 465 : 587)),
				user: decodeURIComponent(smtp.username),
				password: decodeURIComponent(smtp.password),
				secure: smtp.protocol === 'smtps:',
				disableStartTls: smtp.searchParams.get('starttls') === 'off',
			},
		});
	}
	return credentials;
}
