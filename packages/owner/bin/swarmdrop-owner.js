#!/usr/bin/env node
// Runs the built service; `pnpm build` (or `pnpm install`, which builds) makes dist/.
import('../dist/cli.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli.js')) {
    console.error('swarmdrop-owner: not built yet; run `pnpm build` in the repository first');
    process.exit(1);
  }
  throw err;
});
