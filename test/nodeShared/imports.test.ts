import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import ts from 'typescript';

const ROOT = path.resolve(__dirname, '../..');
const NODES = path.join(ROOT, 'nodes');

/**
 * Where a node's code may import from: its own folder, the domain modules every node shares and
 * lib/ (shared with the receiver). A node importing another node couples their releases and
 * hides a shared rule inside one of them; the receiver's code is not part of the n8n package.
 */
const ALLOWED = ['nodes/shared/', 'lib/'];

/** Why a relative import from `from` to `to` (both relative to the repository) is not allowed, or null. */
function violation(from: string, to: string): string | null {
	const own = from.split('/').slice(0, 2).join('/') + '/';
	if (to.startsWith(own) || ALLOWED.some((allowed) => to.startsWith(allowed))) return null;
	return `${from} imports ${to}`;
}

function sources(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
		const full = path.join(dir, entry.name);
		if (entry.isDirectory()) return sources(full);
		return entry.name.endsWith('.ts') ? [full] : [];
	});
}

describe('node import rule', () => {
	// [importing file, imported module, allowed]
	const cases: Array<[string, string, boolean]> = [
		['nodes/LeadScorer/store.ts', 'nodes/LeadScorer/scoring', true],
		['nodes/EmailOrchestrator/actions/sendDue.operation.ts', 'nodes/EmailOrchestrator/steps', true],
		['nodes/LeadScorer/store.ts', 'nodes/shared/leads', true],
		['nodes/LeadScorer/store.ts', 'lib/ids', true],
		['nodes/shared/leads.ts', 'nodes/shared/subjects', true],
		['nodes/Enricher/Enricher.node.ts', 'nodes/LeadScorer/store', false],
		['nodes/LeadScorer/scoring.ts', 'nodes/ConversionDetector/rules', false],
		['nodes/LeadScorer/store.ts', 'server/ingest/ids', false],
		['nodes/shared/leads.ts', 'nodes/LeadScorer/store', false],
		['nodes/Lead/x.ts', 'nodes/LeadScorer/store', false],
	];
	it.each(cases)('%s → %s allowed: %s', (from, to, allowed) => {
		expect(violation(from, to) === null).toBe(allowed);
	});
});

describe('node sources', () => {
	it('import only their own folder, nodes/shared and lib', () => {
		const files = sources(NODES);
		expect(files.length).toBeGreaterThan(20);
		const found: string[] = [];
		for (const file of files) {
			const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
			for (const { fileName } of importedFiles) {
				if (!fileName.startsWith('.')) continue;
				const from = path.relative(ROOT, file).split(path.sep).join('/');
				const to = path.relative(ROOT, path.resolve(path.dirname(file), fileName)).split(path.sep).join('/');
				const problem = violation(from, to);
				if (problem) found.push(problem);
			}
		}
		expect(found).toEqual([]);
	});
});
