// First, before any other module runs: see young-generation.ts.
import '@swarmdrop/service/young-generation';
import { runServiceBin } from '@swarmdrop/service';
import { PROGRAM, parsePeerArgs, USAGE } from './args.js';
import { Peer } from './peer.js';

// Set by scripts/bundle.mjs in the single-file bundle, which has no package.json beside it.
declare const SWARMDROP_BUNDLED_VERSION: string | undefined;

// The bin's shell (status line, log, signals) is the service's: runServiceBin.
// Bootstrap can wait a minute for the owner, and a SIGTERM then must stop it
// cleanly (stopsWhileStarting); once done, the peer exits with its status.
runServiceBin({
  role: 'peer',
  program: PROGRAM,
  usage: USAGE,
  packageJson: new URL('../package.json', import.meta.url),
  ...(typeof SWARMDROP_BUNDLED_VERSION === 'string' ? { version: SWARMDROP_BUNDLED_VERSION } : {}),
  parse: parsePeerArgs,
  logPort: (options) => options.listen.port,
  start: (options, components) => Peer.start(options, components),
  stopsWhileStarting: true,
  async afterStart(peer, closeStatusLine) {
    const code = await peer.finished;
    await peer.close();
    closeStatusLine();
    if (code !== 0) process.stderr.write(`${PROGRAM}: error: ${peer.fatalMessage ?? 'failed'}\n`);
    process.exit(code);
  },
});
