import { createLogger, onShutdownSignal, runServiceCli } from '@swarmdrop/protocol/node';
import { PROGRAM, parseOwnerArgs, USAGE } from './args.js';
import { Owner } from './owner.js';

runServiceCli({
  program: PROGRAM,
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
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
