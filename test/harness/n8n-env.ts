/**
 * Environment for running n8n-core in-process. Imported for its side effects, first thing in
 * `./n8n`, so it runs before any n8n module can construct its DI-managed config.
 *
 * n8n-core's `InstanceSettings` (created lazily the first time a node runs) reads
 * `N8N_USER_FOLDER` and writes `<folder>/.n8n/config` with a generated encryption key. Without
 * this it would write into the developer's real `~/.n8n` (a user's own N8N_USER_FOLDER is
 * overridden on purpose), and parallel Jest workers would race on one file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// One folder per test file: Jest evaluates this module once per file (one module registry, so
// one DI container and one InstanceSettings per file), and files in a worker run one at a time.
export const harnessUserFolder = mkdtempSync(path.join(tmpdir(), 'n8n-harness-'));
process.env.N8N_USER_FOLDER = harnessUserFolder;

// Jest's `process` inside a test file is a sandboxed copy whose 'exit' listeners never fire, so
// cleanup hangs off the test file's lifecycle instead.
if (typeof afterAll === 'function') {
	afterAll(() => rmSync(harnessUserFolder, { recursive: true, force: true }));
}

// The config file holds only a throwaway key; n8n otherwise warns that its mode is too open.
process.env.N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS ??= 'false';
// n8n's Logger reports every node load and execution step; tests want quiet output unless
// someone debugging asks for more with N8N_LOG_LEVEL=debug.
process.env.N8N_LOG_LEVEL ??= 'silent';
process.env.N8N_DIAGNOSTICS_ENABLED ??= 'false';
