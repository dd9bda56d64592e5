import { onShutdownSignal, packageVersion, runMain } from '@swarmdrop/protocol/node';
import { PROGRAM, parsePeerArgs, USAGE } from './args.js';
import { Peer } from './peer.js';

runMain(PROGRAM, async () => {
  const options = parsePeerArgs(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (options === 'version') {
    process.stdout.write(`${packageVersion(new URL('../package.json', import.meta.url))}\n`);
    return;
  }
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
});
