// First, before any other module runs: see young-generation.ts.
import '@swarmdrop/service/young-generation';
import { runServiceBin } from '@swarmdrop/service';
import { PROGRAM, parseOwnerArgs, USAGE } from './args.js';
import { Owner } from './owner.js';

// Set by scripts/bundle.mjs in the single-file bundle, which has no package.json beside it.
declare const SWARMDROP_BUNDLED_VERSION: string | undefined;

// The bin's shell (status line, log, signals) is the service's: runServiceBin.
// The owner serves until a signal; one before it is ready is logged as `stopping`.
runServiceBin({
  role: 'owner',
  program: PROGRAM,
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
  ...(typeof SWARMDROP_BUNDLED_VERSION === 'string' ? { version: SWARMDROP_BUNDLED_VERSION } : {}),
  parse: parseOwnerArgs,
  logPort: (options) => options.port,
  start: (options, { logger, events }) => Owner.start(options, { logger, events }),
});
