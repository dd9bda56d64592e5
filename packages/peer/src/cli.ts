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
  const peer = await Peer.start(options);
  onShutdownSignal(() => peer.close());
  const code = await peer.finished;
  await peer.close();
  if (code !== 0) process.stderr.write(`${PROGRAM}: error: ${peer.fatalMessage ?? 'failed'}\n`);
  process.exit(code);
});
