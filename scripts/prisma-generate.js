#!/usr/bin/env node
// Prisma 7's CLI insists on locating a native schema engine before `generate`, although
// client generation never runs it. Offline machines cannot download it, so point the CLI
// at any existing file: our migrations run through the WebAssembly engine instead.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
env.PRISMA_HIDE_UPDATE_MESSAGE = '1';
env.CHECKPOINT_DISABLE = '1';

const cli = require.resolve('prisma/build/index.js');
const result = spawnSync(process.execPath, [cli, 'generate', '--schema', path.join(__dirname, '..', 'prisma', 'schema.prisma')], {
	env,
	stdio: 'inherit',
});
process.exit(result.status ?? 1);
