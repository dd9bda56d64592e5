#!/usr/bin/env node
// Runs the built service: `pnpm install` (or `pnpm build`) in the repository makes dist/.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('swarmdrop-peer: not built yet; run `pnpm build` in the repository first');
  process.exit(1);
}
await import(cli.href);
