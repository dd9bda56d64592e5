import { createLogger, onShutdownSignal, runServiceCli } from '@swarmdrop/protocol/node';
import { PROGRAM, parseOwnerArgs, USAGE } from './args.js';
import { Owner } from './owner.js';

// Set by scripts/bundle.mjs in the single-file bundle, which has no package.json beside it.
declare const SWARMDROP_BUNDLED_VERSION: string | undefined;

runServiceCli({
  program: PROGRAM,
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
  ...(typeof SWARMDROP_BUNDLED_VERSION === 'string' ? { version: SWARMDROP_BUNDLED_VERSION } : {}),
  parse: parseOwnerArgs,
  async main(options) {
    const logger = createLogger({ role: 'owner', port: options.port, format: options.logFormat });
    let owner: Owner | undefined;
    // Listen for signals before starting: without a listener, a SIGTERM that
    // arrives during the split, or just after `ready` is printed, kills the
    // process outright (exit by signal, no `stopping` line).
    onShutdownSignal(async () => {
      if (owner) await owner.close();
      else logger.log('stopping', {});
    });
    owner = await Owner.start(options, { logger });
  },
});
