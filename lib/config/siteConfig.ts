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
	if (!result.success) throw new SiteConfigError(source, toFieldIssues(result.error, input, siteConfigSchema));
	return result.data;
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
	try {
		return JSON.parse(text);
	} catch (error) {
		throw new SiteConfigError(file, [{ field: '(file)', message: `is not valid JSON: ${(error as Error).message}` }]);
	}
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
