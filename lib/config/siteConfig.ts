import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

import { formatIssues, siteConfigSchema, toFieldIssues, type FieldIssue, type SiteConfig } from '../contracts';

/** A site config that cannot be used; `issues` name each field, what it held and what is expected. */
export class SiteConfigError extends Error {
	constructor(
		readonly source: string,
		readonly issues: FieldIssue[],
	) {
		super(`Invalid site config ${source}:\n${formatIssues(issues)}`);
		this.name = 'SiteConfigError';
	}
}

export function parseSiteConfig(input: unknown, source = 'site config'): SiteConfig {
	const result = siteConfigSchema.safeParse(input);
	if (!result.success) throw new SiteConfigError(source, toFieldIssues(result.error, input, siteConfigSchema).map(withPasswordMasked));
	return result.data;
}

/**
 * The issue with the password of a URL it received masked (integrations.n8nUrl is refused for
 * holding one): the message ends up in the receiver's log, which must not keep it either.
 */
function withPasswordMasked(issue: FieldIssue): FieldIssue {
	if (typeof issue.received !== 'string') return issue;
	// A URL's password runs from the user name's colon to the last "@" before the path.
	const masked = issue.received.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:)[^/?#]*@/i, '$1***@');
	return masked === issue.received ? issue : { ...issue, received: masked };
}

function readJson(file: string): unknown {
	let text: string;
	try {
		text = readFileSync(file, 'utf8');
	} catch (error) {
		throw new SiteConfigError(file, [
			{ field: '(file)', message: `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the path or set SITE_CONFIG` },
		]);
	}
	// Editors on Windows save UTF-8 with a byte order mark, which JSON.parse takes for a stray character.
	const json = text.replace(/^\uFEFF/, '');
	try {
		return JSON.parse(json);
	} catch (error) {
		throw new SiteConfigError(file, [{ field: '(file)', message: `is not valid JSON: ${withLineAndColumn((error as Error).message, json)}` }]);
	}
}

/**
 * JSON.parse's message with its "at position N" (a character offset nobody can find in an editor)
 * as the line and column of that character. Newer Node versions add "(line L column C)" after the
 * position themselves; that is dropped for the one wording.
 */
function withLineAndColumn(message: string, json: string): string {
	return message.replace(/ at position (\d+)(?: \(line \d+ column \d+\))?/, (_whole, position: string) => {
		const before = json.slice(0, Number(position));
		const line = before.split('\n').length;
		const column = before.length - before.lastIndexOf('\n');
		return ` at line ${line}, column ${column}`;
	});
}

export function loadSiteConfig(file: string): SiteConfig {
	return parseSiteConfig(readJson(file), file);
}

/**
 * Loads one site config file, or every `*.json` in a folder (one file per site), and checks
 * that no two sites share a key.
 */
export function loadSiteConfigs(location: string): SiteConfig[] {
	const isFolder = statSync(location, { throwIfNoEntry: false })?.isDirectory() ?? false;
	const files = isFolder
		? readdirSync(location)
				.filter((name) => name.endsWith('.json'))
				.sort()
				.map((name) => path.join(location, name))
		: [location];
	if (files.length === 0) {
		throw new SiteConfigError(location, [{ field: '(folder)', message: 'holds no *.json site config; copy config/site.example.json there' }]);
	}
	const configs = files.map(loadSiteConfig);
	const seen = new Map<string, string>();
	configs.forEach((config, index) => {
		const other = seen.get(config.site.key);
		if (other) {
			throw new SiteConfigError(files[index], [
				{ field: 'site.key', received: config.site.key, message: `must be unique across sites; ${other} uses it too` },
			]);
		}
		seen.set(config.site.key, files[index]);
	});
	return configs;
}
