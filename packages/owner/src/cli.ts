// First, before any other module runs: see young-generation.ts.
import '@swarmdrop/service/young-generation';
import {
  createLogger,
  DomainEvents,
  onShutdownSignal,
  ProgressLine,
  runServiceCli,
  stdoutWriter,
  wantsStatusLine,
} from '@swarmdrop/service';
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
    const events = new DomainEvents();
    // On a terminal, a live status line under the log (not in a pipe, in CI or with --quiet).
    // The log and the status line share one writer: it never blocks on stdout, and keeps
    // their writes in order.
    const stdout = stdoutWriter();
    const progress = wantsStatusLine({ output: stdout, quiet: options.quiet })
      ? await ProgressLine.create({ role: 'owner', events, output: stdout })
      : undefined;
    const logger = createLogger({
      role: 'owner',
      port: options.port,
      format: options.logFormat,
      ...(progress ? { sink: progress } : {}),
    });
    let owner: Owner | undefined;
    // Listen for signals before starting: without a listener, a SIGTERM that
    // arrives during the split, or just after `ready` is printed, kills the
    // process outright (exit by signal, no `stopping` line).
    onShutdownSignal(async () => {
      if (owner) await owner.close();
      else logger.log('stopping', {});
      progress?.close();
    });
    try {
      // --quiet is the terminal's, not the owner's: start() refuses keys it does not know.
      const { quiet: _quiet, ...ownerOptions } = options;
      owner = await Owner.start(ownerOptions, { logger, events });
    } catch (err) {
      progress?.close(); // the error line goes below the log, not under a status line
      throw err;
    }
  },
});
