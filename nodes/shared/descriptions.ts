import {
	NodeOperationError,
	type IExecuteFunctions,
	type ILoadOptionsFunctions,
	type INodeCredentialDescription,
	type INodeProperties,
	type INodePropertyOptions,
} from 'n8n-workflow';

import { crmDatabase, databaseProblem } from './database';
import { InputError } from './inputError';

/**
 * The CRM database: n8n's own Postgres credential, so a team reuses the one it has. Nodes list it
 * as `{ ...crmDatabaseCredential }`: the n8n lint rules read credentials only as object literals.
 */
export const crmDatabaseCredential: INodeCredentialDescription = {
	name: 'postgres',
	required: true,
};

const SITE_KEY_HELP =
	'The site whose CRM data to use. Items of the CRM Tracker Trigger carry it as "site", which the default expression reads; under a Schedule or Manual trigger, pick the site from the list.';

/**
 * The site a node works on. A list of the sites in the CRM database (the editor can switch it
 * to an expression), defaulting to the site each item of the CRM Tracker Trigger names.
 */
export const siteKeyProperty: INodeProperties = {
	// The site config, the tracker snippet and the docs call it the site key; messages name it so.
	// eslint-disable-next-line n8n-nodes-base/node-param-display-name-wrong-for-dynamic-options
	displayName: 'Site Key',
	name: 'siteKey',
	type: 'options',
	typeOptions: { loadOptionsMethod: 'getSites' },
	required: true,
	default: '={{ $json.site }}',
	description: `${SITE_KEY_HELP} Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>`,
};

/** The Site Key of the Email Orchestrator, whose Send Due may send for every site at once. */
export const siteKeyOrAllProperty: INodeProperties = {
	...siteKeyProperty,
	typeOptions: { loadOptionsMethod: 'getSitesOrAll' },
	description: `${SITE_KEY_HELP} Send Due also takes All Sites (*). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>`,
};

/** One field of the item, `$json.site` or `$json.lead?.email`. */
const FIELD = String.raw`\$json(?:\??\.[A-Za-z_$][\w$]*)+`;

/**
 * A parameter that reads the item only: one field, `{{ $json.site }}`, or the first of several
 * that is set, `{{ $json.leadId || $json.lead?.email || $json.email }}`.
 */
const ITEM_FIELDS = new RegExp(String.raw`^=\{\{\s*(${FIELD}(?:\s*\|\|\s*${FIELD})*)\s*\}\}$`);

/** The fields a parameter reads, when it reads nothing but fields of the item; else null. */
export function readsItemOnly(parameter: unknown): RegExpExecArray | null {
	return typeof parameter === 'string' ? ITEM_FIELDS.exec(parameter) : null;
}

/** Reads one item's value of a parameter that reads fields of the item only. */
type ItemReader = (json: unknown) => unknown;

/** `$json.lead?.email` as the keys it walks: `['lead', 'email']`. */
const keysOf = (path: string): string[] => path.split(/\??\./).slice(1);

/** The reader of a parameter that reads fields of the item only; null for any other parameter. */
function itemReaderOf(parameter: unknown): ItemReader | null {
	const fields = readsItemOnly(parameter);
	if (!fields) return null;
	const paths = fields[1].split('||').map((path) => keysOf(path.trim()));
	return (json) => {
		let value: unknown;
		for (const keys of paths) {
			value = json;
			for (const key of keys) value = value !== null && typeof value === 'object' && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
			if (value) break;
		}
		return value;
	};
}

/**
 * The item readers of one execution, by parameter. n8n's getNode() copies the whole node on every
 * call: once per parameter and execution, not once per item.
 */
const readersOf = new WeakMap<IExecuteFunctions, Map<string, ItemReader | null>>();

/**
 * A parameter's value for one item. One that only reads fields of the item is read from the item
 * itself, as JavaScript would read it (a missing field is undefined; `||` gives the first value that
 * is set, else the last): n8n gives the same value, at the cost of evaluating an expression per item
 * (in n8n 2's sandboxed expression engine, milliseconds), which is more than the node's whole work
 * on a small item.
 */
export function itemParameter(context: IExecuteFunctions, name: string, itemIndex: number, fallback: unknown = ''): unknown {
	let readers = readersOf.get(context);
	if (!readers) readersOf.set(context, (readers = new Map()));
	let reader = readers.get(name);
	if (reader === undefined) readers.set(name, (reader = itemReaderOf(context.getNode().parameters[name])));
	if (!reader) return context.getNodeParameter(name, itemIndex, fallback);
	return reader(context.getInputData()[itemIndex]?.json);
}

/** The Site Key of one item; an empty one (no "site" in the item) names the parameter and the fix. */
export function siteKeyOf(context: IExecuteFunctions, itemIndex: number): string {
	const value = itemParameter(context, 'siteKey', itemIndex);
	if (value !== null && typeof value === 'object') {
		throw new InputError('siteKey', `is ${Array.isArray(value) ? 'a list' : 'an object'}: give one site key, such as {{ $json.site }}, or pick a site from the list`);
	}
	const key = typeof value === 'string' || typeof value === 'number' ? String(value).trim() : '';
	if (!key) {
		throw new InputError(
			'siteKey',
			'is empty: pick a site from the list, or map the site key of the trigger’s item (the CRM Tracker Trigger puts it in "site"; Schedule and Manual triggers have none)',
		);
	}
	return key;
}

async function listSites(context: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const { prisma, credentials } = await crmDatabase(context);
	try {
		const sites = await prisma.site.findMany({ select: { key: true, name: true, domain: true }, orderBy: { key: 'asc' } });
		return sites.map((site) => ({ name: site.name && site.name !== site.key ? `${site.name} (${site.key})` : site.key, value: site.key, description: site.domain }));
	} catch (error) {
		const problem = databaseProblem(error, credentials);
		if (!problem) throw error;
		throw new NodeOperationError(context.getNode(), problem.message, { description: problem.description });
	}
}

/** The `methods` of every node with a Site Key. */
export const siteMethods = {
	loadOptions: {
		async getSites(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
			return await listSites(this);
		},
		async getSitesOrAll(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
			return [{ name: 'All Sites (Send Due Only)', value: '*', description: 'Every site with steps due' }, ...(await listSites(this))];
		},
	},
};
