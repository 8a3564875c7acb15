import type { SiteConfig, WorkflowName } from '../lib/contracts';

export interface RegisteredSite {
	id: string;
	key: string;
	config: SiteConfig;
	allowedOrigins: ReadonlySet<string>;
	/** Webhook URL of each bundled workflow this site forwards to. */
	endpoints: ReadonlyMap<WorkflowName, string>;
	webhookSecret?: string;
}

function endpointUrl(config: SiteConfig, url: string): string {
	return url.startsWith('/') ? new URL(url, config.integrations.n8nUrl).toString() : url;
}

/** The loaded sites, looked up by public key or id on every request without a query. */
export class SiteRegistry {
	private readonly byKey = new Map<string, RegisteredSite>();
	private readonly byId = new Map<string, RegisteredSite>();
	private readonly anyOrigin = new Set<string>();

	constructor(configs: SiteConfig[], ids: Map<string, string>, env: NodeJS.ProcessEnv = process.env) {
		for (const config of configs) {
			const id = ids.get(config.site.key);
			if (!id) throw new Error(`Site ${config.site.key} has no database row; sync the sites before building the registry`);
			const site: RegisteredSite = {
				id,
				key: config.site.key,
				config,
				allowedOrigins: new Set(config.tracking.allowedOrigins),
				endpoints: new Map(config.integrations.webhookEndpoints.map((endpoint) => [endpoint.workflow, endpointUrl(config, endpoint.url)])),
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

	all(): RegisteredSite[] {
		return [...this.byKey.values()];
	}
}
