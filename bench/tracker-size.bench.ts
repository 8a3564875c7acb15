/**
 * The tracker's size as the build checks it (tracker/scripts/size.mjs): bytes and gzip -9 bytes
 * of the script-tag build and of the ESM build.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const script = path.resolve(__dirname, '../../tracker/scripts/size.mjs');
process.exit(spawnSync(process.execPath, [script], { stdio: 'inherit' }).status ?? 1);
