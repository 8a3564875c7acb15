/** @type {import('jest').Config} */
module.exports = {
	testEnvironment: 'node',
	roots: ['<rootDir>/test'],
	testMatch: ['**/*.test.ts'],
	transform: {
		'^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
	},
	// The generated Prisma client imports its own files with a .js suffix (ESM style).
	moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
	// Playwright needs Symbol.dispose, which Jest's sandbox lacks on Node 20 (see the file).
	setupFiles: ['<rootDir>/test/setup/symbolDispose.ts'],
	globalSetup: '<rootDir>/test/setup/globalSetup.ts',
	globalTeardown: '<rootDir>/test/setup/globalTeardown.ts',
	testTimeout: 60000,
	maxWorkers: 2,
};
