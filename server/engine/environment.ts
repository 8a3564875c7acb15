import { mkdirSync } from 'node:fs';

/**
 * n8n's environment for the engine in this process, set before n8n-core is first loaded: it
 * reads these once. Its instance settings (`<folder>/.n8n/config`, with a key for credentials
 * the engine never stores) go to a folder of the receiver's, never to `~/.n8n` or the
 * N8N_USER_FOLDER of a real n8n on the same machine.
 */
export function prepareN8nEnvironment(userFolder: string): void {
	mkdirSync(userFolder, { recursive: true });
	process.env.N8N_USER_FOLDER = userFolder;
	process.env.N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS ??= 'false';
	process.env.N8N_DIAGNOSTICS_ENABLED ??= 'false';
	// The receiver logs each execution that fails; n8n's own logger would repeat every step.
	process.env.N8N_LOG_LEVEL ??= 'error';
}
