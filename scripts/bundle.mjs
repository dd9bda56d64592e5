#!/usr/bin/env node
// Bundles the service in the current directory (packages/owner or packages/peer)
// into one ES module that runs with `node` alone: bundle/<bin name>.mjs.
// Run by the package's `bundle` script; `pnpm release:artifacts` collects the results.
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const pkg = JSON.parse(await readFile('package.json', 'utf8'));
const [bin] = Object.keys(pkg.bin ?? {});
if (!bin) {
  console.error(`bundle: ${pkg.name} has no "bin" in package.json`);
  process.exit(2);
}
const nodeMajor = /(\d+)/.exec(pkg.engines?.node ?? '20')?.[1] ?? '20';
const outfile = join('bundle', `${bin}.mjs`);
// The bundle has no package folder beside it either: the dashboard's page,
// script and style are compiled in as text (dashboardAssets() in @swarmdrop/service).
// The service shell itself (@swarmdrop/service) and protocol are workspace
// packages: esbuild inlines them like any other dependency.
const dashboardDir = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'packages',
  'service',
  'dashboard',
);
const dashboard = {
  html: await readFile(join(dashboardDir, 'index.html'), 'utf8'),
  js: await readFile(join(dashboardDir, 'dashboard.js'), 'utf8'),
  css: await readFile(join(dashboardDir, 'dashboard.css'), 'utf8'),
};
await mkdir('bundle', { recursive: true });
await build({
  entryPoints: ['src/cli.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: `node${nodeMajor}`,
  // The bundle has no package.json beside it: --version is compiled in.
  define: {
    SWARMDROP_BUNDLED_VERSION: JSON.stringify(pkg.version),
    SWARMDROP_DASHBOARD_ASSETS: JSON.stringify(dashboard),
  },
  banner: {
    js: [
      '#!/usr/bin/env node',
      `// ${pkg.name} ${pkg.version}: single-file bundle; needs only Node.js ${pkg.engines?.node ?? ''}`,
      // CommonJS dependencies (pino, prom-client) require Node's modules at
      // run time; an ES module has no `require`, and esbuild's shim then
      // throws "Dynamic require of node:os is not supported".
      "import { createRequire as __swarmdropCreateRequire } from 'node:module';",
      'const require = __swarmdropCreateRequire(import.meta.url);',
    ].join('\n'),
  },
  legalComments: 'eof',
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
console.log(`bundle: ${outfile} (${pkg.name} ${pkg.version})`);
