import { readFileSync } from 'node:fs';
import { OptionError, SwarmdropError } from '@swarmdrop/protocol';
import { parseToken, TOKEN_ENV } from '../token.js';

/** The `version` field of the package.json at `url` (resolved against the caller's module). */
export function packageVersion(url: URL): string {
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

/**
 * Runs a command-line entry point: a bad input becomes one line on stderr and
 * exit status 2, any other failure one line and status 1; a stack trace only
 * with SWARMDROP_DEBUG=1.
 */
export function runMain(program: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const usage =
      err instanceof SwarmdropError && (err.code === 'ERR_OPTION' || err.code === 'ERR_ADDRESS');
    process.stderr.write(
      `${program}: error: ${message}${usage ? ` (see ${program} --help)` : ''}\n`,
    );
    if (process.env.SWARMDROP_DEBUG === '1' && err instanceof Error)
      process.stderr.write(`${err.stack}\n`);
    process.exitCode = usage ? 2 : 1;
  });
}

export interface ServiceCli<O> {
  readonly program: string;
  readonly usage: string;
  /** The service's package.json, for `--version`. */
  readonly packageJson: URL;
  /** The version when it is known without reading `packageJson` (the single-file bundle). */
  readonly version?: string;
  /** Parses argv into options, or says the user asked for help or the version. */
  readonly parse: (argv: string[]) => O | 'help' | 'version';
  readonly main: (options: O) => Promise<void>;
}

/** runMain for a service bin: `--help` and `--version` answered here, the rest by `main`. */
export function runServiceCli<O>(cli: ServiceCli<O>): void {
  runMain(cli.program, async () => {
    const options = cli.parse(process.argv.slice(2));
    if (options === 'help') process.stdout.write(cli.usage);
    else if (options === 'version')
      process.stdout.write(`${cli.version ?? packageVersion(cli.packageJson)}\n`);
    else await cli.main(options);
  });
}

/** Calls `stop` on the first SIGINT or SIGTERM; a second one exits at once. */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    stop(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/**
 * The swarm token from `--token-file FILE`, else from the SWARMDROP_TOKEN
 * environment variable, else undefined (a public swarm). A file that cannot
 * be read or a malformed token is an OptionError naming where it came from.
 */
export function loadToken(
  tokenFile: string | undefined,
  env: NodeJS.ProcessEnv,
): string | undefined {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, 'utf8');
    } catch (err) {
      throw new OptionError('--token-file', `cannot read ${tokenFile}: ${(err as Error).message}`);
    }
    return parseToken(text, '--token-file');
  }
  const fromEnv = env[TOKEN_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : parseToken(fromEnv, TOKEN_ENV);
}
