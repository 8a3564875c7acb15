import type { SiteConfig, WorkflowName } from '../lib/contracts';

export interface RegisteredSite {
	id: string;
	key: string;
	config: SiteConfig;
	allowedOrigins: ReadonlySet<string>;
	/** Webhook URL (a real n8n) or path (the embedded engine) of each bundled workflow this site forwards to. */
	endpoints: ReadonlyMap<WorkflowName, string>;
	/** The n8n this site's deliveries go to; undefined: the receiver's embedded engine runs them. */
	n8nUrl?: string;
	webhookSecret?: string;
}

/**
 * A webhook path appended to n8nUrl's own path: an n8n behind a reverse proxy at a sub-path
 * (https://tools.example.com/n8n) takes its webhooks under that path, which resolving the path
 * against n8nUrl (`new URL(path, n8nUrl)`) would drop. Joined as text after the origin, so a path
 * that starts with "//" stays a path on that host.
 */
function endpointUrl(config: SiteConfig, url: string): string {
	const { n8nUrl } = config.integrations;
	if (!n8nUrl || !url.startsWith('/')) return url;
	const base = new URL(n8nUrl);
	return new URL(`${base.origin}${base.pathname.replace(/\/$/, '')}${url}`).toString();
}

/** The loaded sites, looked up by public key or id on every request without a query. */
export class SiteRegistry {
	private readonly byKey = new Map<string, RegisteredSite>();
	private readonly byId = new Map<string, RegisteredSite>();
	private readonly anyOrigin = new Set<string>();
	private readonly originsOf = new Map<string, Set<string>>();

	constructor(configs: SiteConfig[], ids: Map<string, string>, env: NodeJS.ProcessEnv = process.env) {
		for (const config of configs) {
			const id = ids.get(config.site.key);
			if (!id) throw new Error(`Site ${config.site.key} has no database row; sync the sites before building the registry`);
			const allowedOrigins = new Set(config.tracking.allowedOrigins);
			this.originsOf.set(config.site.key, allowedOrigins);
			const site: RegisteredSite = {
				id,
				key: config.site.key,
				config,
				allowedOrigins,
				endpoints: new Map(config.integrations.webhookEndpoints.map((endpoint) => [endpoint.workflow, endpointUrl(config, endpoint.url)])),
				n8nUrl: config.integrations.n8nUrl,
				webhookSecret: env[config.integrations.webhookSecretEnv] || undefined,
			};
			this.byKey.set(site.key, site);
			this.byId.set(site.id, site);
			for (const origin of site.allowedOrigins) this.anyOrigin.add(origin);
		}
	}

	byPublicKey(key: string): RegisteredSite | undefined {
		return this.byKey.get(key);
	}

	byDatabaseId(id: string): RegisteredSite | undefined {
		return this.byId.get(id);
	}

	/** Whether some site accepts this origin: enough to answer a CORS preflight, which carries no site key. */
	isKnownOrigin(origin: string): boolean {
		return this.anyOrigin.has(origin);
	}

	/** Lets a site accept more origins once the receiver knows where it listens (see ownOrigins). */
	allowOrigins(key: string, origins: readonly string[]): void {
		const allowed = this.originsOf.get(key);
		if (!allowed) return;
		for (const origin of origins) {
			allowed.add(origin);
			this.anyOrigin.add(origin);
		}
	}

	/** Signs an embedded site's deliveries with the engine's secret (see EmbeddedEngine); n8n sites keep theirs. */
	useEngineSecret(secret: string): void {
		for (const site of this.byKey.values()) if (!site.n8nUrl) site.webhookSecret = secret;
	}

	all(): RegisteredSite[] {
		return [...this.byKey.values()];
	}
}

const LOOPBACK_BINDS = new Set(['127.0.0.1', 'localhost', '::1', '0.0.0.0', '::']);

/**
 * The origins a browser shows for pages the receiver itself serves (the demo at /demo/): the
 * address it listens on (every loopback name when that is loopback or every interface) and
 * PUBLIC_URL. The demo site accepts them whatever HOST and PORT are, so the demo works on the
 * first start without editing the config; no other site does.
 */
export function ownOrigins(host: string, port: number, publicUrl?: string): string[] {
	const hosts = LOOPBACK_BINDS.has(host) ? ['localhost', '127.0.0.1', '[::1]'] : [host.includes(':') ? `[${host}]` : host];
	const origins = hosts.map((name) => (port === 80 ? `http://${name}` : `http://${name}:${port}`));
	if (publicUrl) origins.push(new URL(publicUrl).origin);
	return origins;
}
