import { onShutdownSignal, runServiceCli } from '@swarmdrop/protocol/node';
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
    // Listen for signals before starting: bootstrap can wait a minute for the owner,
    // and a SIGTERM then must stop it cleanly, not kill it by signal.
    const controller = new AbortController();
    let peer: Peer | undefined;
    onShutdownSignal(async () => {
      controller.abort();
      await peer?.close();
    });
    try {
      peer = await Peer.start(options, { signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) return; // stopped while starting: the signal handler exits 0
      throw err;
    }
    const code = await peer.finished;
    await peer.close();
    if (code !== 0) process.stderr.write(`${PROGRAM}: error: ${peer.fatalMessage ?? 'failed'}\n`);
    process.exit(code);
  },
});
