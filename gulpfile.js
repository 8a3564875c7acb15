// scripts/bundle-nodes.mjs builds the node and credential files; n8n also needs each node's icon
// and codex (*.node.json) beside them, which neither tsc nor the bundler copies.
const { src, dest } = require('gulp');

function buildIcons() {
	return src(['nodes/**/*.{png,svg}', 'nodes/**/*.node.json', 'credentials/**/*.{png,svg}'], { base: '.', encoding: false }).pipe(dest('dist'));
}

exports['build:icons'] = buildIcons;
