// The n8n rule sets apply where n8n reads our code (package.json, nodes, credentials);
// plain TypeScript rules apply everywhere else. The rule sets for n8n Cloud packages are not
// used: the nodes bundle their own Postgres client (Prisma) and open the CRM database, which
// verified packages may not do.
const n8nNodesBase = require('eslint-plugin-n8n-nodes-base');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const n8n = { 'n8n-nodes-base': n8nNodesBase };

module.exports = tseslint.config(
	{
		ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'lib/db/generated/**', 'coverage/**', 'tracker/dist/**', '.data/**'],
	},
	{
		files: ['**/*.ts'],
		extends: [js.configs.recommended, tseslint.configs.recommended],
		rules: {
			'@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
		},
	},
	{
		files: ['test/**/*.ts', 'bench/**/*.ts'],
		rules: { '@typescript-eslint/no-explicit-any': 'off' },
	},
	{
		files: ['**/*.js'],
		languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' } },
		rules: { '@typescript-eslint/no-require-imports': 'off' },
	},
	{
		files: ['package.json'],
		languageOptions: { parser: tseslint.parser, parserOptions: { extraFileExtensions: ['.json'] } },
		plugins: n8n,
		rules: n8nNodesBase.configs.community.rules,
	},
	{
		files: ['credentials/**/*.ts'],
		plugins: n8n,
		rules: {
			...n8nNodesBase.configs.credentials.rules,
			// Applies to credentials documented on n8n's own site only; ours link to our docs.
			'n8n-nodes-base/cred-class-field-documentation-url-miscased': 'off',
		},
	},
	{
		files: ['nodes/**/*.ts'],
		plugins: n8n,
		rules: n8nNodesBase.configs.nodes.rules,
	},
);
