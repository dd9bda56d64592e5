import { onShutdownSignal, packageVersion, runMain } from '@swarmdrop/protocol/node';
import { PROGRAM, parseOwnerArgs, USAGE } from './args.js';
import { Owner } from './owner.js';

runMain(PROGRAM, async () => {
  const options = parseOwnerArgs(process.argv.slice(2));
  if (options === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (options === 'version') {
    process.stdout.write(`${packageVersion(new URL('../package.json', import.meta.url))}\n`);
    return;
  }
  const owner = await Owner.start(options);
  onShutdownSignal(() => owner.close());
});
