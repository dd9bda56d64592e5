#!/usr/bin/env node
// `pnpm release:artifacts` (after `turbo run build bundle`): collects what a
// release ships into release/ at the repository root:
//   swarmdrop-owner.mjs, swarmdrop-peer.mjs   single-file bundles, run with `node` alone
//   swarmdrop-*.tgz                           the npm packages, as `pnpm pack` makes them
//   SHA256SUMS                                 `sha256sum -c` checks them
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'release');
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });

for (const service of ['owner', 'peer']) {
  const dir = join(root, 'packages', service);
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  const bundle = join(dir, 'bundle', `swarmdrop-${service}.mjs`);
  await copyFile(bundle, join(out, `swarmdrop-${service}.mjs`)).catch((err) => {
    console.error(`release: ${bundle} missing (${err.code}); run \`turbo run bundle\` first`);
    process.exit(1);
  });
  console.log(`release: swarmdrop-${service}.mjs (${pkg.name} ${pkg.version})`);
}
// The services depend on @swarmdrop/protocol and @swarmdrop/service, so they
// are packed alongside them; pnpm pack turns `workspace:*` into the exact version.
for (const pkg of ['protocol', 'service', 'owner', 'peer']) {
  execFileSync('pnpm', ['pack', '--pack-destination', out], {
    cwd: join(root, 'packages', pkg),
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
const files = (await readdir(out)).filter((f) => f !== 'SHA256SUMS').sort();
const sums = [];
for (const f of files) {
  const hash = createHash('sha256')
    .update(await readFile(join(out, f)))
    .digest('hex');
  sums.push(`${hash}  ${f}`);
}
await writeFile(join(out, 'SHA256SUMS'), `${sums.join('\n')}\n`);
console.log(`release: ${files.join(' ')} SHA256SUMS in ${out}`);
