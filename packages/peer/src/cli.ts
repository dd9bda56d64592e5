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
import { PROGRAM, parsePeerArgs, USAGE } from './args.js';
import { Peer } from './peer.js';

// Set by scripts/bundle.mjs in the single-file bundle, which has no package.json beside it.
declare const SWARMDROP_BUNDLED_VERSION: string | undefined;

runServiceCli({
  program: PROGRAM,
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
  ...(typeof SWARMDROP_BUNDLED_VERSION === 'string' ? { version: SWARMDROP_BUNDLED_VERSION } : {}),
  parse: parsePeerArgs,
  async main(options) {
    const events = new DomainEvents();
    // On a terminal, a live status line under the log (not in a pipe, in CI or with --quiet).
    // The log and the status line share one writer: it never blocks on stdout, and keeps
    // their writes in order.
    const stdout = stdoutWriter();
    const progress = wantsStatusLine({ output: stdout, quiet: options.quiet })
      ? await ProgressLine.create({ role: 'peer', events, output: stdout })
      : undefined;
    const logger = createLogger({
      role: 'peer',
      port: options.listen.port,
      format: options.logFormat,
      ...(progress ? { sink: progress } : {}),
    });
    // Listen for signals before starting: bootstrap can wait a minute for the owner,
    // and a SIGTERM then must stop it cleanly, not kill it by signal.
    const controller = new AbortController();
    let peer: Peer | undefined;
    onShutdownSignal(async () => {
      controller.abort();
      await peer?.close();
      progress?.close();
    });
    try {
      // --quiet is the terminal's, not the peer's: start() refuses keys it does not know.
      const { quiet: _quiet, ...peerOptions } = options;
      peer = await Peer.start(peerOptions, { signal: controller.signal, logger, events });
    } catch (err) {
      progress?.close(); // the error line goes below the log, not under a status line
      if (controller.signal.aborted) return; // stopped while starting: the signal handler exits 0
      throw err;
    }
    const code = await peer.finished;
    await peer.close();
    progress?.close();
    if (code !== 0) process.stderr.write(`${PROGRAM}: error: ${peer.fatalMessage ?? 'failed'}\n`);
    process.exit(code);
  },
});
