import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { loadSiteConfig } from '../../lib/config/siteConfig';

const example = readFileSync(path.join(__dirname, '..', '..', 'config', 'site.example.json'), 'utf8');

function written(name: string, text: string): string {
	const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'site-config-file-')), name);
	writeFileSync(file, text);
	return file;
}

describe('the site config file', () => {
	it('loads with a UTF-8 byte order mark, as editors on Windows save it', () => {
		expect(loadSiteConfig(written('bom.json', `\uFEFF${example}`)).site.key).toBe('nat-pets');
	});

	it('reports a JSON syntax error by line and column instead of a character position', () => {
		// Line 3 lacks the colon: the value after "key" starts at column 11.
		const file = written('broken.json', '{\n  "site": {\n    "key" "nat-pets"\n  }\n}\n');
		expect(() => loadSiteConfig(file)).toThrow(/broken\.json:\n {2}- \(file\): is not valid JSON: .* at line 3, column 11$/);
		expect(() => loadSiteConfig(file)).not.toThrow(/position/);
	});

	it('counts lines and columns after a byte order mark as an editor shows them', () => {
		const file = written('bom-broken.json', '\uFEFF{\n  "a": 1,\n}');
		expect(() => loadSiteConfig(file)).toThrow(/is not valid JSON: .* at line 3, column 1$/);
	});
});
