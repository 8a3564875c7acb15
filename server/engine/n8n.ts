/**
 * n8n's own execution engine (n8n-core) run in this process: the node types of installed
 * packages, credentials held in memory, and what an execution needs of its host. The embedded
 * engine (./engine.ts) runs the bundled workflows with it; the tests' harness runs workflows
 * with the same parts.
 *
 * Import after ./environment.ts has set n8n's environment (n8n-core reads it on first use).
 */
import {
	Credentials,
	ExecutionLifecycleHooks,
	ExternalSecretsProxy,
	LazyPackageDirectoryLoader,
	UnrecognizedCredentialTypeError,
	UnrecognizedNodeTypeError,
} from 'n8n-core';
import type { DirectoryLoader } from 'n8n-core';
import { ICredentialsHelper, NodeHelpers, UnexpectedError, Workflow } from 'n8n-workflow';
import type {
	ICredentialDataDecryptedObject,
	ICredentialType,
	IDataObject,
	IHttpRequestOptions,
	INode,
	INodeCredentialsDetails,
	INodeParameters,
	INodeProperties,
	INodeType,
	INodeTypes,
	IRequestOptionsSimplified,
	IVersionedNodeType,
	IWorkflowExecuteAdditionalData,
	LoadedClass,
} from 'n8n-workflow';

/**
 * n8n's lazy loader for an installed package, minus the UI index. `dist/types/nodes.json` of
 * n8n-nodes-base is 8 MB of node descriptions for the editor; parsing it is a third of the load
 * time of every test file and nothing in an execution reads it (node classes are required on
 * first use and carry their own description).
 */
export class InstalledPackageLoader extends LazyPackageDirectoryLoader {
	protected override async readJSON<T>(file: string): Promise<T> {
		if (file.startsWith('dist/types/')) return [] as T;
		return await super.readJSON<T>(file);
	}
}

/** Each package loaded once; loaders are keyed by the package name node types start with. */
export async function loadPackages(loaders: DirectoryLoader[]): Promise<Map<string, DirectoryLoader>> {
	const byName = new Map<string, DirectoryLoader>();
	for (const loader of loaders) {
		if (byName.has(loader.packageName)) throw new UnexpectedError(`Package "${loader.packageName}" is loaded twice`);
		byName.set(loader.packageName, loader);
	}
	await Promise.all(loaders.map(async (loader) => await loader.loadAll()));
	return byName;
}

/** The node and credential types of a set of packages, behind n8n's `INodeTypes` interface. */
export class PackageNodeTypes implements INodeTypes {
	protected constructor(protected readonly loaders: Map<string, DirectoryLoader>) {}

	/** Loads every package's index; a node's code is required on its first use, as n8n does. */
	static async fromLoaders(loaders: DirectoryLoader[]): Promise<PackageNodeTypes> {
		return new PackageNodeTypes(await loadPackages(loaders));
	}

	get packageNames(): string[] {
		return [...this.loaders.keys()];
	}

	getNode(fullType: string): LoadedClass<INodeType | IVersionedNodeType> {
		// Node names never contain a dot, package names can (and can be scoped), so split last.
		const dot = fullType.lastIndexOf('.');
		const loader = this.loaders.get(fullType.slice(0, dot));
		if (dot <= 0 || !loader) throw new UnrecognizedNodeTypeError(fullType.slice(0, dot), fullType.slice(dot + 1));
		return loader.getNode(fullType.slice(dot + 1));
	}

	getByName(nodeType: string): INodeType | IVersionedNodeType {
		return this.getNode(nodeType).type;
	}

	getByNameAndVersion(nodeType: string, version?: number): INodeType {
		return NodeHelpers.getVersionedNodeType(this.getByName(nodeType), version);
	}

	getKnownTypes(): IDataObject {
		const known: IDataObject = {};
		for (const [packageName, loader] of this.loaders) {
			for (const [name, info] of Object.entries(loader.known.nodes)) {
				known[`${packageName}.${name}`] = { ...info };
			}
		}
		return known;
	}

	/** Credential type names are global in n8n (not package-prefixed). */
	getCredentialType(typeName: string): ICredentialType {
		for (const loader of this.loaders.values()) {
			if (typeName in loader.known.credentials || typeName in loader.credentialTypes) {
				return loader.getCredential(typeName).type;
			}
		}
		throw new UnrecognizedCredentialTypeError(typeName);
	}

	/** A credential's properties including those inherited through `extends`, parents first. */
	getCredentialProperties(typeName: string): INodeProperties[] {
		const type = this.getCredentialType(typeName);
		const merged: INodeProperties[] = [];
		for (const parent of type.extends ?? []) {
			NodeHelpers.mergeNodeProperties(merged, this.getCredentialProperties(parent));
		}
		NodeHelpers.mergeNodeProperties(merged, type.properties);
		return merged;
	}
}

export type CredentialsByType = Record<string, ICredentialDataDecryptedObject>;

/**
 * Serves credentials held in memory instead of n8n's encrypted database rows (the embedded
 * engine's, made from the receiver's settings; the tests'). The node still
 * reads them through `this.getCredentials(type)`, and authenticated HTTP helpers still apply the
 * credential type's `authenticate` the way n8n does.
 */
export class StaticCredentialsHelper extends ICredentialsHelper {
	constructor(
		private readonly nodeTypes: PackageNodeTypes,
		private readonly credentials: CredentialsByType,
	) {
		super();
	}

	async getDecrypted(
		_additionalData: IWorkflowExecuteAdditionalData,
		_nodeCredentials: INodeCredentialsDetails,
		type: string,
	): Promise<ICredentialDataDecryptedObject> {
		const data = this.credentials[type];
		if (!data) {
			// Real n8n would fail on a missing row too; say which type is missing.
			throw new UnexpectedError(`This engine was given no credentials of type "${type}"`);
		}
		// n8n fills properties the user left unset with their defaults before a node sees them.
		const withDefaults = NodeHelpers.getNodeParameters(
			this.propertiesOf(type),
			data as INodeParameters,
			true,
			false,
			null,
			null,
		);
		// Given data wins over defaults even where displayOptions would hide a field.
		return { ...withDefaults, ...data } as ICredentialDataDecryptedObject;
	}

	async getCredentials(nodeCredentials: INodeCredentialsDetails, type: string) {
		const credentials = new Credentials(nodeCredentials, type);
		await credentials.setData(this.credentials[type] ?? {});
		return credentials;
	}

	async authenticate(
		credentials: ICredentialDataDecryptedObject,
		typeName: string,
		requestOptions: IHttpRequestOptions | IRequestOptionsSimplified,
		workflow?: Workflow,
		node?: INode,
	): Promise<IHttpRequestOptions> {
		const { authenticate } = this.nodeTypes.getCredentialType(typeName);
		if (typeof authenticate === 'function') {
			return await authenticate(credentials, requestOptions as IHttpRequestOptions);
		}
		if (authenticate?.type === 'generic') {
			if (!workflow || !node) {
				throw new UnexpectedError('Generic credential authentication needs workflow and node');
			}
			// Values like '=Bearer {{$credentials.apiKey}}' are n8n expressions over the credential.
			const resolve = (value: string): string => {
				if (typeof value !== 'string' || !value.startsWith('=')) return value;
				const resolved = workflow.expression.getSimpleParameterValue(
					node,
					value,
					'internal',
					{ $credentials: credentials },
					undefined,
					'',
				);
				return resolved === undefined || resolved === null ? '' : String(resolved);
			};
			const target = requestOptions as unknown as Record<string, Record<string, unknown>>;
			for (const [section, entries] of Object.entries(authenticate.properties)) {
				target[section] ??= {};
				for (const [key, value] of Object.entries(entries as Record<string, string>)) {
					target[section][resolve(key)] = resolve(value);
				}
			}
		}
		return requestOptions as IHttpRequestOptions;
	}

	async preAuthentication(): Promise<ICredentialDataDecryptedObject | undefined> {
		return undefined;
	}

	async runPreAuthentication(): Promise<ICredentialDataDecryptedObject | undefined> {
		return undefined;
	}

	getParentTypes(typeName: string): string[] {
		const parents = this.nodeTypes.getCredentialType(typeName).extends ?? [];
		return parents.flatMap((parent) => [parent, ...this.getParentTypes(parent)]);
	}

	isCredentialUsableByNode(): boolean {
		return true;
	}

	async updateCredentials(
		_nodeCredentials: INodeCredentialsDetails,
		type: string,
		data: ICredentialDataDecryptedObject,
	): Promise<void> {
		// OAuth token refreshes write back; keep them for the rest of this run.
		this.credentials[type] = data;
	}

	async updateCredentialsOauthTokenData(
		_nodeCredentials: INodeCredentialsDetails,
		type: string,
		data: ICredentialDataDecryptedObject,
	): Promise<void> {
		this.credentials[type] = { ...this.credentials[type], ...data };
	}

	getCredentialsProperties(type: string): INodeProperties[] {
		return this.propertiesOf(type);
	}

	private propertiesOf(type: string): INodeProperties[] {
		try {
			return this.nodeTypes.getCredentialProperties(type);
		} catch {
			// Credentials of a type no loaded package declares have no defaults to apply.
			return [];
		}
	}
}

export function createAdditionalData(
	executionId: string,
	workflowId: string,
	hooks: ExecutionLifecycleHooks,
	credentialsHelper: ICredentialsHelper,
	base = 'http://localhost:5678',
): IWorkflowExecuteAdditionalData {
	const unsupported = (what: string) => async (): Promise<never> => {
		throw new UnexpectedError(`${what} is not supported by the embedded engine`);
	};
	return {
		executionId,
		workflowId,
		hooks,
		credentialsHelper,
		externalSecretsProxy: new ExternalSecretsProxy(),
		currentNodeExecutionIndex: 0,
		variables: {},
		restApiUrl: `${base}/rest`,
		instanceBaseUrl: base,
		formBaseUrl: `${base}/form`,
		formWaitingBaseUrl: `${base}/form-waiting`,
		formTestBaseUrl: `${base}/form-test`,
		webhookBaseUrl: `${base}/webhook`,
		webhookWaitingBaseUrl: `${base}/webhook-waiting`,
		webhookTestBaseUrl: `${base}/webhook-test`,
		mcpBaseUrl: `${base}/mcp`,
		mcpTestBaseUrl: `${base}/mcp-test`,
		executeWorkflow: unsupported('Executing a sub-workflow'),
		getRunExecutionData: async () => undefined,
		getRuntimeCredential: async () => undefined,
		startRunnerTask: unsupported('The task runner (Code node)'),
		logAiEvent: () => {},
	};
}

